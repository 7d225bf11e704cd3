"""The bench's result files and how they become `docs/benchmarks.md` (stdlib only: rendering
needs neither Django nor the measures).

**Result file.** Every measure writes `.data/bench-results/<name>.json` (`BENCH_RESULTS_DIR`
moves the folder), whether it runs alone (`python bench/<name>.py`) or under `make bench`:

    {
      "name": "faq_matching",                      # the module's file name
      "title": "FAQ matching: right Q&A first",    # optional, the block's heading
      "measured": {"date": ISO-8601 UTC, "revision": "abc1234" or "abc1234-dirty",
                   "load": [1, 5, 15 min, when written], "machine": str, "seconds": int | null,
                   "settings": {BENCH_* variables set for the run}},
      "method": str,        # how it was measured and how parameters were chosen (markdown)
      "tables": [{"title": str, "columns": [str], "rows": [[cell]], "note": str}],
      "text": str,          # free markdown after the tables (a module's `report()`)
      "figures": {...},     # the raw figures, for whoever reads the file
      "partial": str        # optional: why this run is not a full measurement (a quick or
                            # sharded run); such a file is never put in the document
    }

A measure module keeps `main() -> dict` (its figures; a module with a `main()` that is a tool
run by hand, not a measure, says `MEASURE = False` and `make bench` passes it over) and may define `tables(figures) ->
list[dict]` (built with `table()`) and `report(figures) -> str`; `measure(module)` runs it,
builds the file and writes it, and is what both `run_all.py` and the module's own
`if __name__ == "__main__"` call. A run that is not a full measurement returns figures with a
`"partial"` reason (e.g. `BENCH_SCIFACT_SHARD`), which keeps it out of the document. `write()`
is there for a script that assembles its payload itself (e.g. a figure computed in another
process). The "Answer trust" measures (issue 19) put their headline figures in `tables`, one
table per measure with a row per mode, so the report reads the same whoever changes them.

**Document.** `docs/benchmarks.md` is written by hand except for blocks

    <!-- bench:<name>:start <measured date> -->
    ...generated...
    <!-- bench:<name>:end -->

which `splice()` replaces in place when the result file is newer than the block's date (and
`run_all.py` checks that it was measured on code that includes the commit which landed the
block); text outside the blocks is never touched. A measure without a block yet gets one inserted before
the `<!-- bench:new -->` line (or at the end of the file).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIR = Path(os.environ.get("BENCH_RESULTS_DIR") or ROOT / ".data" / "bench-results")
NEW_ANCHOR = "<!-- bench:new -->"
# Where the figures go and which measures run, not how they were measured: not in the stamp.
RUNNER_SETTINGS = {"BENCH_ONLY", "BENCH_DOC", "BENCH_RESULTS_DIR"}
BLOCK = re.compile(
    r"<!-- bench:(?P<name>[\w.-]+):start(?: (?P<stamp>\S+))? -->\n.*?<!-- bench:(?P=name):end -->",
    re.DOTALL,
)


def table(*, title: str, columns: list[str], rows: list[list], note: str = "") -> dict:
    """One table of a result file; every row has one cell per column."""
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"{title!r}: row {row!r} has {len(row)} cells for {len(columns)} columns")
    return {"title": title, "columns": list(columns), "rows": [list(row) for row in rows], "note": note}


def revision() -> str:
    """The commit measured, `-dirty` when tracked files differ from it (the benchmark document
    itself excepted: rendering changes it between a measure and its commit)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=7", "HEAD")
        changed = git(
            "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs/benchmarks.md"
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if changed else "")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    memory = "unknown RAM"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
    except OSError:
        pass
    return f"{os.cpu_count()} CPU ({cpu}), {memory}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _load() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def path(name: str) -> Path:
    return DIR / f"{name}.json"


def write(
    name: str,
    *,
    figures: dict,
    tables: list[dict] = (),
    text: str = "",
    method: str = "",
    title: str = "",
    seconds: float | None = None,
    started: dt.datetime | None = None,
    partial: str = "",
) -> dict:
    """Stamp the figures (date, revision, load, machine, BENCH_* settings) and write them to
    `.data/bench-results/<name>.json` (atomically: a reader never sees half a file)."""
    payload = {
        "name": name,
        "title": title,
        "measured": {
            "date": (started or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
            "revision": revision(),
            "load": _load(),
            "machine": machine(),
            "seconds": None if seconds is None else round(seconds),
            "settings": {
                key: value
                for key, value in sorted(os.environ.items())
                if key.startswith("BENCH_") and key not in RUNNER_SETTINGS
            },
        },
        "method": method.strip(),
        "tables": list(tables),
        "text": text.strip(),
        "figures": figures,
    }
    if partial:
        payload["partial"] = partial
    DIR.mkdir(parents=True, exist_ok=True)
    temporary = path(name).with_suffix(".json.tmp")
    temporary.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    temporary.replace(path(name))
    return payload


def read_all() -> dict[str, dict]:
    """Every result file in the folder, by name (files that are not a result are skipped)."""
    found = {}
    for file in sorted(DIR.glob("*.json")) if DIR.is_dir() else []:
        try:
            payload = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(payload, dict) and payload.get("name") == file.stem and "measured" in payload:
            found[file.stem] = payload
    return found


def measure(module, *, name: str | None = None) -> dict:
    """Run a measure module's `main()` and write its result file; returns the payload."""
    import time

    name = name or Path(module.__file__).stem
    started, clock = dt.datetime.now(dt.UTC), time.monotonic()
    figures = module.main()
    tables_of = getattr(module, "tables", None)
    report = getattr(module, "report", None)
    return write(
        name,
        figures=figures,
        tables=tables_of(figures) if callable(tables_of) else [],
        text=report(figures) if callable(report) else "",
        method=module.__doc__ or "",
        title=getattr(module, "TITLE", ""),
        seconds=time.monotonic() - clock,
        started=started,
        partial=str(figures.get("partial") or "") if isinstance(figures, dict) else "",
    )


def standalone(module) -> int:
    """`if __name__ == "__main__": sys.exit(results.standalone(sys.modules[__name__]))`: run the
    measure alone, write its result file and print where (`python bench/run_all.py --render`
    then puts it in docs/benchmarks.md)."""
    payload = measure(module)
    print("\n" + render(payload) + "\n")
    print(
        f"wrote {path(payload['name'])}"
        + (f" (partial: {payload['partial']})" if payload.get("partial") else "")
    )
    return 0


# Rendering -----------------------------------------------------------------------------


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_table(spec: dict) -> str:
    lines = []
    if spec.get("title"):
        lines += [f"**{spec['title']}**", ""]
    lines.append("| " + " | ".join(spec["columns"]) + " |")
    lines.append("|" + "---|" * len(spec["columns"]))
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in spec["rows"]]
    if spec.get("note"):
        lines += ["", spec["note"]]
    return "\n".join(lines)


def stamp_text(measured: dict) -> str:
    text = (
        f"measured {measured.get('date', '?')[:16].replace('T', ' ')} UTC at {measured.get('revision', '?')}"
    )
    if measured.get("seconds") is not None:
        text += f", {measured['seconds']} s"
    if measured.get("load"):
        text += ", load " + " / ".join(str(value) for value in measured["load"])
    if measured.get("settings"):
        text += ", " + " ".join(f"{key}={value}" for key, value in measured["settings"].items())
    return text


def render(payload: dict) -> str:
    """A result file as markdown (the body of its block, heading included)."""
    heading = payload["name"] + (f": {payload['title']}" if payload.get("title") else "")
    parts = [f"### {heading} ({stamp_text(payload['measured'])})"]
    if payload.get("method"):
        parts.append(payload["method"])
    parts += [render_table(spec) for spec in payload.get("tables", [])]
    if payload.get("text"):
        parts.append(payload["text"])
    if not payload.get("tables") and not payload.get("text"):
        parts.append("```json\n" + json.dumps(payload.get("figures"), indent=2, default=str) + "\n```")
    return "\n\n".join(parts)


def _date(stamp: str | None) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(stamp or "")
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def block(name: str, body: str, stamp: str) -> str:
    return f"<!-- bench:{name}:start {stamp} -->\n{body.strip()}\n<!-- bench:{name}:end -->"


def blocks(text: str) -> dict[str, str | None]:
    """The generated blocks of a document: {name: its stamp}."""
    return {match["name"]: match["stamp"] for match in BLOCK.finditer(text)}


def splice(text: str, name: str, body: str, stamp: str, *, force: bool = False) -> tuple[str, bool]:
    """Put `body` in the block `name` of the document `text` if `stamp` is newer than the
    block's (or `force`); a missing block is added before the `<!-- bench:new -->` line, or
    at the end. Returns the new text and whether it changed. Nothing outside the block moves."""
    new = block(name, body, stamp)
    for match in BLOCK.finditer(text):
        if match["name"] != name:
            continue
        current, candidate = _date(match["stamp"]), _date(stamp)
        if not force and current and candidate and candidate <= current:
            return text, False
        return text[: match.start()] + new + text[match.end() :], text[match.start() : match.end()] != new
    # The anchor is a line of its own: the document's prose names it too (in back-quotes).
    anchor = re.search(rf"^{re.escape(NEW_ANCHOR)}$", text, flags=re.MULTILINE)
    if anchor:
        return text[: anchor.start()] + new + "\n\n" + text[anchor.start() :], True
    return text.rstrip("\n") + "\n\n" + new + "\n", True
