"""`make bench`: run every `bench/<name>.py` module that has a `main()` returning a dict of
figures, then write `docs/benchmarks.md` with the figures, the command, the machine and
the date. `BENCH_ONLY=web_tier,rate_limit_accuracy` re-measures a subset and keeps the other
modules' last figures (from `docs/benchmarks.json`, or on a fresh clone, where that local file
is missing, their sections of the committed `docs/benchmarks.md`; each section is labelled
with when and at which revision it was measured); `BENCH_DURATION=N` sets the seconds per
measured run (each module has a short default)."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

OUTPUT = ROOT / "docs" / "benchmarks.md"
RESULTS_JSON = ROOT / "docs" / "benchmarks.json"
NOTES = ROOT / "docs" / "benchmark-notes.md"


def modules(*, everything: bool = False) -> list[str]:
    names = sorted(
        path.stem for path in (ROOT / "bench").glob("*.py") if path.stem not in {"run_all", "__init__"}
    )
    only = {name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip()}
    return [name for name in names if everything or not only or name in only]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_kb = int(
            next(
                ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")
            ).split()[1]
        )
        memory = f"{memory_kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration):
        memory = "unknown RAM"
    return f"{os.cpu_count()} CPU ({cpu}), {memory}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _previous() -> dict:
    try:
        stored = json.loads(RESULTS_JSON.read_text())
    except (OSError, ValueError):
        return {"date": "", "figures": {}, "measured": {}}
    return {
        "date": stored.get("date", ""),
        "figures": stored.get("figures", {}),
        "measured": stored.get("measured", {}),
    }


def _previous_sections() -> dict[str, str]:
    """The sections of the committed `docs/benchmarks.md` by module name: what a partial run
    keeps when `docs/benchmarks.json` (local, not committed) does not hold that module, as on
    a fresh clone."""
    try:
        text = OUTPUT.read_text()
    except OSError:
        return {}
    text = text.split("\n---\n", 1)[0]  # the hand-written notes follow the generated part
    sections: dict[str, str] = {}
    for chunk in text.split("\n## ")[1:]:
        name = chunk.split(" ", 1)[0].split("\n", 1)[0]
        if not chunk.startswith(f"{name}\n\nFAILED"):
            sections[name] = "## " + chunk.rstrip("\n") + "\n"
    return sections


def _section(module, name: str, result: dict, measured: dict) -> str:
    body = (
        module.report(result)
        if callable(getattr(module, "report", None))
        else ("```json\n" + json.dumps(result, indent=2, default=str) + "\n```")
    )
    doc = (module.__doc__ or "").strip()
    when = (
        f"measured {measured.get('date', '?')[:16].replace('T', ' ')} UTC at {measured.get('revision', '?')}"
    )
    if measured.get("seconds") is not None:
        when += f", {measured['seconds']} s"
    return f"## {name} ({when})\n\n{doc}\n\n{body}\n"


def main() -> int:
    # Stopping the bench (SIGTERM) unwinds like Ctrl-C, so every module's `finally` stops
    # the servers it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = dt.datetime.now(dt.UTC)
    revision = git_revision()
    previous = _previous()
    previous_sections = _previous_sections()
    selected = set(modules())
    sections, figures, measured, failures = [], {}, {}, []
    for name in modules(everything=True):
        module = importlib.import_module(f"bench.{name}")
        if not callable(getattr(module, "main", None)):
            continue
        if name not in selected:
            if name in previous["figures"]:  # kept from an earlier run, labelled as such
                figures[name] = previous["figures"][name]
                measured[name] = previous["measured"].get(name, {"date": previous["date"], "revision": "?"})
                sections.append(_section(module, name, figures[name], measured[name]))
            elif name in previous_sections:  # only in the committed report: kept as written
                sections.append(previous_sections[name])
            continue
        print(f"\n=== bench/{name}.py ===", flush=True)
        clock = time.monotonic()
        try:
            result = module.main()
        except Exception:
            failures.append(name)
            text = traceback.format_exc()
            print(text, flush=True)
            sections.append(f"## {name}\n\nFAILED:\n\n```\n{text[-2000:]}\n```\n")
            continue
        figures[name] = result
        measured[name] = {
            "date": started.isoformat(),
            "revision": revision,
            "seconds": round(time.monotonic() - clock),
        }
        sections.append(_section(module, name, result, measured[name]))

    command = "make bench" + (
        f"  (BENCH_ONLY={os.environ['BENCH_ONLY']})" if os.environ.get("BENCH_ONLY") else ""
    )
    if os.environ.get("BENCH_DURATION"):
        command += f"  (BENCH_DURATION={os.environ['BENCH_DURATION']})"
    header = [
        "# Benchmarks",
        "",
        "Generated by `bench/run_all.py`; do not edit by hand (measured notes live in",
        "`docs/benchmark-notes.md`, appended below).",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine()}",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC, revision {revision}",
        f"- Cache/broker: {'Redis ' + os.environ['REDIS_URL'] if os.environ.get('REDIS_URL') else 'Postgres (no REDIS_URL)'}",
        "- Load generator and server share the same cores, so every figure is a lower bound.",
        "",
    ]
    text = "\n".join(header) + "\n" + "\n".join(sections)
    if NOTES.exists():
        text += "\n---\n\n" + NOTES.read_text()
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(text)
    RESULTS_JSON.write_text(
        json.dumps(
            {"date": started.isoformat(), "figures": figures, "measured": measured}, indent=2, default=str
        )
    )
    print(
        f"\nwrote {OUTPUT.relative_to(ROOT)}" + (f"; FAILED: {', '.join(failures)}" if failures else ""),
        flush=True,
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
