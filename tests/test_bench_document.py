"""`docs/benchmarks.md` is written by hand around generated blocks: `bench/run_all.py --render`
(run as a subprocess: tests never import bench) replaces a block only with a newer result
file, adds a block for a measure that has none, and leaves every hand-written line as it was.
The result files are written here by hand, in the format `bench/results.py` documents."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- bench:([\w.-]+):start[^>]*-->\n.*?<!-- bench:\1:end -->", re.DOTALL)

DOCUMENT = """# Benchmarks

A new measure's block goes before the `<!-- bench:new -->` line (this sentence names it too).

Hand-written introduction, with a table of our own:

| a | b |
|---|---|
| 1 | 2 |

## Answer trust

<!-- bench:faq_matching:start 2026-12-01T10:00:00+00:00 -->
### faq_matching (old figures)

| set | right Q&A first |
|---|---|
| in-repo | 0.5 |
<!-- bench:faq_matching:end -->

Analysis between two blocks: hybrid was below vector here.

<!-- bench:shop:start 2026-12-06T12:00:00+00:00 -->
### shop (figures newer than the result file)
<!-- bench:shop:end -->

## Every other measure

<!-- bench:new -->

---

## Measured notes (by hand)

Notes that must survive every run.
"""


def _result(name: str, date: str, **extra) -> dict:
    return {
        "name": name,
        "title": "",
        "measured": {
            "date": date,
            "revision": "abc1234",
            "load": [7.5, 6.25, 5.0],
            "machine": "2 CPU",
            "seconds": 99,
            "settings": {},
        },
        "method": f"How {name} was measured.",
        "tables": [],
        "text": "",
        "figures": {},
        **extra,
    }


def _render(tmp_path: Path, results: dict[str, dict]) -> str:
    folder = tmp_path / "results"
    folder.mkdir(exist_ok=True)
    for name, payload in results.items():
        (folder / f"{name}.json").write_text(json.dumps(payload))
    (folder / "embedder-onnx.json").write_text('{"not": "a result file"}')
    document = tmp_path / "benchmarks.md"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--render"],
        env={"PATH": "/usr/bin:/bin", "BENCH_DOC": str(document), "BENCH_RESULTS_DIR": str(folder)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return document.read_text()


def _outside_blocks(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", BLOCK.sub("", text))


def test_a_render_replaces_only_older_blocks_and_keeps_the_hand_written_text(tmp_path):
    (tmp_path / "benchmarks.md").write_text(DOCUMENT)
    faq = _result(
        "faq_matching",
        "2026-12-06T11:00:00+00:00",
        title="FAQ matching",
        tables=[
            {
                "title": "Right Q&A first",
                "columns": ["set", "retrieval mode", "right Q&A first", "MRR@10"],
                "rows": [
                    ["in-repo, paraphrase", "hybrid", 0.9444, 0.97],
                    ["support_kbs, test", "vector", 0.902, None],
                ],
                "note": "Fusion chosen on dev.",
            }
        ],
        text="Free text after the tables.",
    )
    results = {
        "faq_matching": faq,
        "shop": _result("shop", "2026-12-06T11:30:00+00:00", text="OLDER SHOP FIGURES"),
        "web_tier": _result("web_tier", "2026-12-06T11:00:00+00:00", figures={"req_s": 355}),
        "retrieval_scifact": _result(
            "retrieval_scifact", "2026-12-06T11:00:00+00:00", text="SHARD ONLY", partial="ingestion shard 1/4"
        ),
    }
    text = _render(tmp_path, results)

    # Every hand-written line is where it was: without the blocks, the two texts are the same.
    assert _outside_blocks(text) == _outside_blocks(DOCUMENT)
    assert (
        text.index("Hand-written introduction") < text.index("## Answer trust") < text.index("Measured notes")
    )

    # The older block is replaced by the result file, rendered as tables.
    assert "old figures" not in text and "| in-repo | 0.5 |" not in text
    assert "<!-- bench:faq_matching:start 2026-12-06T11:00:00+00:00 -->" in text
    assert (
        "### faq_matching: FAQ matching (measured 2026-12-06 11:00 UTC at abc1234, 99 s, load 7.5 / 6.25 / 5.0)"
        in text
    )
    assert "| set | retrieval mode | right Q&A first | MRR@10 |\n|---|---|---|---|\n" in text
    assert "| in-repo, paraphrase | hybrid | 0.944 | 0.97 |" in text
    assert "| support_kbs, test | vector | 0.902 | – |" in text
    assert "Fusion chosen on dev." in text and "Free text after the tables." in text
    assert text.index("### faq_matching") < text.index("Analysis between two blocks")

    # A block newer than its result file is kept; a partial run never reaches the document.
    assert "figures newer than the result file" in text and "OLDER SHOP FIGURES" not in text
    assert "SHARD ONLY" not in text and "bench:retrieval_scifact" not in text

    # A measure without a block gets one before the `bench:new` line, its raw figures as JSON.
    assert (
        text.index("<!-- bench:web_tier:end -->")
        < text.index("\n<!-- bench:new -->\n")
        < text.index("\n---\n")
    )
    assert "before the `<!-- bench:new -->` line (this sentence names it too)." in text
    assert '"req_s": 355' in text

    # Rendering again changes nothing.
    assert _render(tmp_path, results) == text


def test_the_committed_document_keeps_its_notes_outside_the_blocks():
    """Every measure's figures in docs/benchmarks.md are in a block, and the measured notes
    (written by hand) are outside every block, so `make bench` cannot drop them."""
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    names = re.findall(r"<!-- bench:([\w.-]+):start", text)
    assert len(names) == len(set(names))
    assert {"retrieval_scifact", "faq_matching", "relevance_gate", "multilingual", "shop"} <= set(names)
    outside = BLOCK.sub("", text)
    assert "## Measured notes (by hand)" in outside
    assert "## The relevance gate and FAQ matching" in outside
    assert "<!-- bench:" not in outside.replace("<!-- bench:new -->", "").replace("`<!-- bench:", "")


def _commit(repo: Path, message: str) -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    git("add", "-A")
    git("commit", "-q", "-m", message)
    return git("rev-parse", "--short=7", "HEAD")


def test_a_later_result_measured_on_code_without_the_block_does_not_replace_it(tmp_path):
    """A checkout behind main measures later than a block another checkout landed: its date is
    newer, its code is older, so the landed figures stay; measured on code that includes the
    block's commit, it replaces them."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "code.py").write_text("before\n")
    before = _commit(repo, "code before the change the block measured")
    (repo / "code.py").write_text("after\n")
    (repo / "benchmarks.md").write_text(DOCUMENT)
    landed = _commit(repo, "the change and its figures")
    older_code = _result("faq_matching", "2026-12-06T11:00:00+00:00", text="FIGURES OF THE OLDER CODE")
    older_code["measured"]["revision"] = before + "-dirty"

    def render(payload: dict) -> str:
        folder = tmp_path / "results"
        folder.mkdir(exist_ok=True)
        (folder / "faq_matching.json").write_text(json.dumps(payload))
        completed = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "run_all.py"), "--render"],
            env={
                "PATH": "/usr/bin:/bin",
                "BENCH_DOC": str(repo / "benchmarks.md"),
                "BENCH_RESULTS_DIR": str(folder),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert completed.returncode == 0, completed.stderr
        return (repo / "benchmarks.md").read_text()

    text = render(older_code)
    assert "FIGURES OF THE OLDER CODE" not in text and "old figures" in text

    newer_code = {**older_code, "text": "FIGURES OF THE LANDED CODE"}
    newer_code["measured"] = {**older_code["measured"], "revision": landed}
    text = render(newer_code)
    assert "FIGURES OF THE LANDED CODE" in text and "old figures" not in text


def test_every_bench_module_is_a_measure_that_writes_its_result_or_says_it_is_a_tool():
    """Read from the source (tests never import bench): `make bench` runs every module with a
    `main()` unless it says `MEASURE = False`; a measure run alone writes its result file
    (`results.standalone`), and a tool that parses its own arguments is never run by it."""
    import ast

    from testkit.source import parse

    for path in sorted((ROOT / "bench").glob("*.py")):
        if path.stem in {"run_all", "__init__", "results"}:
            continue
        source = path.read_text()
        tree = parse(path)
        main = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"), None)
        if main is None:
            continue
        tool = any(
            isinstance(node, ast.Assign)
            and any(isinstance(target, ast.Name) and target.id == "MEASURE" for target in node.targets)
            and isinstance(node.value, ast.Constant)
            and node.value.value is False
            for node in tree.body
        )
        if tool:
            continue
        assert "argparse" not in ast.unparse(main), (
            f"{path.name}: main() parses arguments: a tool? MEASURE = False"
        )
        assert "results.standalone(" in source, f"{path.name}: run alone, it must write its result file"
