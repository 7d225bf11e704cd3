"""Helpers shared by the bench modules (no `main()`, so `run_all.py` does not run it)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from testkit import processes  # noqa: E402
from testkit.processes import UNLIMITED, auth_headers, log_path  # noqa: E402,F401  (bench modules use common.*)

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_report.lua"


def duration_seconds(default: float) -> float:
    """BENCH_DURATION (seconds per measured run) overrides each module's default."""
    return float(os.environ.get("BENCH_DURATION", default))


def bench_env() -> dict[str, str]:
    # The offline answerer (no LLM network), and the per-address limits lifted: every simulated
    # visitor comes from 127.0.0.1, where a shop's come from many addresses, so widget-token
    # mints and open live streams (the shop's 200 panels) measure the flow, not the per-IP abuse
    # limits (which tests/test_attack_widget.py and chat/tests/test_live.py prove).
    return processes.base_env(
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
        LLM_MODEL=os.environ.get("BENCH_LLM_MODEL", ""),
        WIDGET_TOKEN_RATE_PER_IP="1000000/h",
        WIDGET_TOKEN_RATE_PER_CLIENT="1000000/h",
        LIVE_STREAMS_PER_IP="1000000",
    )


def database_ready(env: dict[str, str]) -> None:
    processes.manage("migrate", "--noinput", "-v", "0", env=env)


def wrk_run(
    *,
    url: str,
    concurrency: int,
    duration: float,
    headers: dict[str, str],
    method: str = "GET",
    body: str = "",
    paths: list[str] | None = None,
    timeout: float = 10.0,
    targets: list[str] | None = None,
    threads: int | None = None,
) -> dict:
    """One bounded wrk run; returns req/s, latency percentiles (ms), status counts and the
    mean Server-Timing phases (ms).

    "{n}" in `body` makes every request's body different (`wrk_report.lua` numbers each thread's
    requests from 1): the run's own random prefix keeps them different from an earlier run's
    against the same server too. Without it a measured run repeated its warm-up's questions
    word for word ("ticket 0x1", "0x2", ...), which the web workers' query-embedding caches then
    answered without a forward pass."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    body = body.replace("{n}", f"{secrets.token_hex(4)}-{{n}}")
    command = [
        "wrk",
        "-t",
        str(threads or min(concurrency, 2)),
        "-c",
        str(concurrency),
        "-d",
        f"{max(1, int(duration))}s",
        "--timeout",
        f"{int(timeout)}s",
        "-s",
        str(WRK_SCRIPT),
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    env = dict(
        os.environ,
        WRK_METHOD=method,
        WRK_BODY=body,
        WRK_PATHS=",".join(paths or []),
        WRK_TARGETS=",".join(targets or []),
    )
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=duration + 60)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {result.stdout}\n{result.stderr}")
    raw = json.loads(line[len("WRKJSON ") :])
    seconds = raw["duration_us"] / 1e6
    codes = {int(code): count for code, count in raw["codes"].items()}
    return {
        "concurrency": concurrency,
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": raw["latency_us"]["p50"] / 1000,
        "p95_ms": raw["latency_us"]["p95"] / 1000,
        "p99_ms": raw["latency_us"]["p99"] / 1000,
        "max_ms": raw["latency_us"]["max"] / 1000,
        "codes": codes,
        "5xx": sum(count for code, count in codes.items() if code >= 500),
        "socket_errors": sum(raw["errors"].values()),
        "server_timing_ms": {name: round(value, 2) for name, value in raw["server_timing_ms"].items()},
    }


def table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(column, "")) for column in columns) + " |")
    return "\n".join(lines)


def timing_text(phases: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.1f}" for name, value in sorted(phases.items()))
