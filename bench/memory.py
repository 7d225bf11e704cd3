"""Memory under sustained load: RSS of each gunicorn web worker (gthread, as `make run`)
while wrk keeps the chat-free API busy, sampled every few seconds; the goal is no growth
beyond 10% over the second half of the run. `BENCH_MEMORY_SECONDS` sets the duration
(default 600 s: ten minutes, as the proof asks; `BENCH_MEMORY_INGEST_SECONDS` for the worker).
The ingestion worker is measured the same way while it ingests documents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/<name>.py` as well as `-m`

from bench import common  # noqa: E402
from testkit import processes  # noqa: E402


def _sample(pids: list[int]) -> list[int]:
    values = []
    for pid in pids:
        try:
            values.append(processes.rss_bytes(pid))
        except Exception:  # a worker that was recycled
            values.append(0)
    return values


def _series_summary(series: list[tuple[float, list[int]]]) -> dict:
    mib = [[round(value / 2**20, 1) for value in values] for _, values in series]
    half = len(series) // 2
    growth = []
    for index in range(len(series[0][1])):
        middle, last = series[half][1][index], series[-1][1][index]
        growth.append(round(100 * (last - middle) / middle, 1) if middle else None)
    return {
        "samples": len(series),
        "rss_start_mib": mib[0],
        "rss_mid_mib": mib[half],
        "rss_end_mib": mib[-1],
        "growth_second_half_pct": growth,
        "goal_met": all(value is not None and value <= 10 for value in growth),
    }


def main(*, seconds: float | None = None, interval: float = 3.0) -> dict:
    seconds = seconds or float(os.environ.get("BENCH_MEMORY_SECONDS", 600))
    ingest_seconds = float(os.environ.get("BENCH_MEMORY_INGEST_SECONDS", seconds))
    # Measures the workers' own growth, so they must not be recycled mid-run (which would
    # also make a recycled worker's RSS read as 0).
    env = dict(common.bench_env(), GUNICORN_MAX_REQUESTS="0")
    common.database_ready(env)
    tenant = processes.tenant_provision(env=env, name="Bench memory", rate_limit=common.UNLIMITED)
    headers = common.auth_headers(tenant["keys"][0])
    server, base_url = processes.gunicorn_start(env=env, log_path=common.log_path("memory-web"))
    load_kind = "bare GET /api/v1/organization"
    try:
        workers = [child.pid for child in processes.process_children(server)]
        from bench import knowledge_base, web_tier

        context = {"base_url": base_url, "headers": headers}
        spec = web_tier._scenario_chat_turn(context)
        if isinstance(spec, str):
            spec = {"path": "/api/v1/organization", "headers": headers}
        else:
            load_kind = "chat turns (offline answerer, 10k-chunk knowledge base)"
            web_tier._warm(base_url, spec)
        del knowledge_base
        env_load = dict(
            os.environ,
            WRK_METHOD=spec.get("method", "GET"),
            WRK_BODY=spec.get("body", ""),
            WRK_PATHS=",".join(spec.get("paths") or []),
        )
        command = [
            "wrk",
            "-t",
            "2",
            "-c",
            "8",
            "-d",
            f"{int(seconds)}s",
            "--timeout",
            "30s",
            "-s",
            str(common.WRK_SCRIPT),
        ]
        for name, value in spec["headers"].items():
            command += ["-H", f"{name}: {value}"]
        load = subprocess.Popen(
            [*command, base_url + spec.get("path", "/")], stdout=subprocess.PIPE, text=True, env=env_load
        )
        series: list[tuple[float, list[int]]] = []
        started = time.monotonic()
        while load.poll() is None:
            series.append((time.monotonic() - started, _sample(workers)))
            time.sleep(interval)
        output = load.stdout.read()
        line = next((ln for ln in output.splitlines() if ln.startswith("WRKJSON ")), "{}")
        summary = json.loads(line.replace("WRKJSON ", "", 1))
    finally:
        processes.process_stop(server)
    result = {
        "seconds": seconds,
        "load": load_kind,
        "requests": summary.get("requests"),
        "codes": summary.get("codes"),
        "web_workers": len(workers),
        **_series_summary(series),
    }
    from bench import ingestion

    result["ingestion_worker"] = ingestion.worker_memory(env=env, seconds=ingest_seconds)
    print(json.dumps(result, indent=2), flush=True)
    return result


def report(result: dict) -> str:
    return common.table([{"figure": k, "value": v} for k, v in result.items()], ["figure", "value"])


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
