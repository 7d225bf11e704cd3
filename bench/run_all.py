"""`make bench`: run every `bench/<name>.py` module that has a `main()`, write each one's figures
to `.data/bench-results/<name>.json` (`bench/results.py` says what is in the file), then put
them in `docs/benchmarks.md`, replacing only the generated blocks (`<!-- bench:<name>:start
<date> -->` … `<!-- bench:<name>:end -->`) whose result file is newer; the hand-written text
around them is kept as it is.

- `BENCH_ONLY=web_tier,rate_limit_accuracy` (or `make bench BENCH=...`) runs a subset; a
  group name runs its modules (`answer_trust`: SciFact, FAQ matching, the relevance gate and
  the multilingual set, issue 19). The other blocks keep their last figures, each labelled
  with when, at which revision and at which load it was measured.
- `python bench/run_all.py --render` (`make bench-render`) runs nothing: it puts the result
  files already in `.data/bench-results/` (e.g. from `python bench/faq_matching.py`, which
  writes its file too) in the document.
- `BENCH_DURATION=N` sets the seconds per measured run (each module has a short default);
  `BENCH_DOC` writes another document than `docs/benchmarks.md`."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

from bench import results  # noqa: E402

OUTPUT = Path(os.environ.get("BENCH_DOC") or ROOT / "docs" / "benchmarks.md")
GROUPS = {
    "answer_trust": ("retrieval_scifact", "faq_matching", "relevance_gate", "multilingual"),
}


def selected() -> list[str]:
    """The modules BENCH_ONLY names (groups expanded), or every module with a `main()`."""
    names = sorted(
        path.stem for path in (ROOT / "bench").glob("*.py") if path.stem not in {"run_all", "__init__"}
    )
    only = set()
    for item in os.environ.get("BENCH_ONLY", "").split(","):
        only.update(GROUPS.get(item.strip(), (item.strip(),)) if item.strip() else ())
    unknown = only - set(names)
    if unknown:
        raise SystemExit(
            f"BENCH_ONLY: no bench module {', '.join(sorted(unknown))} (groups: {', '.join(GROUPS)})"
        )
    return [name for name in names if not only or name in only]


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=OUTPUT.parent)


def _measured_on_newer_code(text: str, name: str, payload: dict) -> bool:
    """Whether the result was measured on code that includes the commit which put the block's
    current figures in the document. A date alone is not enough: a checkout behind main can
    measure later than a block another checkout landed, on code without that block's change.
    A block not committed yet, or a document outside git, leaves the decision to the date."""
    stamp = results.blocks(text).get(name)
    if not stamp:
        return True
    found = _git("log", "-1", "--format=%H", "-S", f"<!-- bench:{name}:start {stamp} -->", "--", OUTPUT.name)
    landed = found.stdout.strip() if found.returncode == 0 else ""
    if not landed:
        return True
    measured = payload["measured"].get("revision", "").removesuffix("-dirty")
    return _git("merge-base", "--is-ancestor", landed, measured).returncode == 0


def render(text: str) -> tuple[str, list[str], list[str]]:
    """Splice every result file newer than its block (in date and in code) into the document
    text; returns the text, the blocks updated and the result files passed over as older code."""
    updated, behind = [], []
    for name, payload in results.read_all().items():
        if payload.get("partial"):
            continue
        if not _measured_on_newer_code(text, name, payload):
            behind.append(name)
            continue
        text, changed = results.splice(text, name, results.render(payload), payload["measured"]["date"])
        if changed:
            updated.append(name)
    return text, updated, behind


def run(names: list[str]) -> tuple[list[str], list[str]]:
    measured, failures = [], []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        if not callable(getattr(module, "main", None)) or getattr(module, "MEASURE", True) is False:
            continue  # a helper, or a tool (`MEASURE = False`) run by hand
        print(f"\n=== bench/{name}.py ===", flush=True)
        try:
            results.measure(module, name=name)
            measured.append(name)
        except Exception:
            failures.append(name)
            print(traceback.format_exc(), flush=True)
    return measured, failures


def last_run(*, started: dt.datetime, measured: list[str], failures: list[str]) -> str:
    command = "make bench" + (
        f"  (BENCH_ONLY={os.environ['BENCH_ONLY']})" if os.environ.get("BENCH_ONLY") else ""
    )
    if os.environ.get("BENCH_DURATION"):
        command += f"  (BENCH_DURATION={os.environ['BENCH_DURATION']})"
    broker = f"Redis {os.environ['REDIS_URL']}" if os.environ.get("REDIS_URL") else "Postgres (no REDIS_URL)"
    lines = [
        f"Last `make bench`: `{command}` on {started:%Y-%m-%d %H:%M} UTC at {results.revision()}, "
        f"{round(time.time() - started.timestamp())} s; machine: {results.machine()}; cache/broker: {broker}.",
        f"Measured: {', '.join(measured) or 'nothing'}."
        + (
            f" **Failed** (their blocks keep the previous figures): {', '.join(failures)}."
            if failures
            else ""
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    # Stopping the bench (SIGTERM) unwinds like Ctrl-C, so every module's `finally` stops
    # the servers it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = dt.datetime.now(dt.UTC)
    measured, failures = ([], []) if "--render" in argv else run(selected())
    text = OUTPUT.read_text() if OUTPUT.exists() else "# Benchmarks\n"
    text, updated, behind = render(text)
    if "--render" not in argv:
        body = last_run(started=started, measured=measured, failures=failures)
        text, _ = results.splice(text, "last-run", body, started.isoformat(timespec="seconds"), force=True)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(
        f"\n{OUTPUT}: updated {', '.join(updated) or 'no block'}"
        + (f"; kept (result measured on code older than the block's): {', '.join(behind)}" if behind else "")
        + (f"; FAILED: {', '.join(failures)}" if failures else ""),
        flush=True,
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
