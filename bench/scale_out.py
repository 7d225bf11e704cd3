"""Scale-out: the same Postgres and Redis behind one web process vs two, and one ingestion
worker vs two. Web: gunicorn masters with ONE gthread worker (8 threads) each, the bare
authenticated GET at concurrency 32, wrk spreading its connections over the processes.
Workers: the time for Celery ingestion workers to drain the same batch of knowledge
documents (text files: parse, embed, index: CPU-bound), and the same for single-page URL
sources served by a loopback site that answers after 0.3 s, as a remote web server does
(I/O-bound). On this 2-core machine the load
generator shares the cores, so the ratio is a lower bound of what a second machine gives."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/<name>.py` as well as `-m`

from bench import common  # noqa: E402
from testkit import processes  # noqa: E402

CONCURRENCY = 32


def _web(env: dict, headers: dict, *, processes_count: int, duration: float) -> dict:
    servers = []
    try:
        for index in range(processes_count):
            servers.append(
                processes.gunicorn_start(env=env, workers=1, log_path=common.log_path(f"scale-web-{index}"))
            )
        targets = [base.split("//", 1)[1] for _, base in servers]
        first = servers[0][1]
        common.wrk_run(
            url=first + "/api/v1/organization", concurrency=8, duration=2, headers=headers, targets=targets
        )
        return common.wrk_run(
            url=first + "/api/v1/organization",
            concurrency=CONCURRENCY,
            duration=duration,
            headers=headers,
            targets=targets,
            threads=2,
        )
    finally:
        for server, _ in servers:
            processes.process_stop(server)


def main(*, duration: float | None = None) -> dict:
    duration = duration or common.duration_seconds(8)
    env = common.bench_env()
    common.database_ready(env)
    tenant = processes.tenant_provision(env=env, name="Bench scale", rate_limit=common.UNLIMITED)
    headers = common.auth_headers(tenant["keys"][0])
    one = _web(env, headers, processes_count=1, duration=duration)
    two = _web(env, headers, processes_count=2, duration=duration)
    result = {
        "web_1_process_rps": one["rps"],
        "web_2_processes_rps": two["rps"],
        "web_speedup": round(two["rps"] / one["rps"], 2) if one["rps"] else None,
        "web_1_process_p95_ms": one["p95_ms"],
        "web_2_processes_p95_ms": two["p95_ms"],
        "web_5xx": one["5xx"] + two["5xx"],
    }
    from bench import ingestion

    result.update(ingestion.worker_scale(env=env))
    result.update(ingestion.crawl_worker_scale(env=env))
    print(json.dumps(result, indent=2), flush=True)
    return result


def report(result: dict) -> str:
    return common.table([{"figure": k, "value": v} for k, v in result.items()], ["figure", "value"])


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
