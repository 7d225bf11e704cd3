"""Slow and idle clients against the web tier (Slowloris): gunicorn exactly as `make run`
starts it (`supportai.gunicorn_worker.BufferedThreadWorker`, 2 workers × 8 threads), and for
comparison gunicorn's stock gthread worker with the same sizes (what `make run` ran before
issue 13), each on a free loopback port. While N connections each send one more header line
every 5 s without ever finishing the request (or M connections send nothing at all), a
normal client makes sequential requests, each on a new connection: `GET /healthz` and an
authenticated `GET /api/v1/organization`. A request counts as failed when it does not
answer within 5 s. The last row holds 500 live event streams open instead (`GET
/api/v1/sessions/{id}/events`, as 500 open widget panels would): the configured worker holds
them on its stream threads (256 per worker), gthread has only its 16 request threads. The same
2-core machine runs the attackers, the prober and the server.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/<name>.py` as well as `-m`

from bench import common  # noqa: E402
from testkit import processes  # noqa: E402
from testkit.slow_clients import SlowClients, latency_probe  # noqa: E402

SERVERS = (
    ("stock gthread (before)", "--worker-class gthread"),
    ("make run's worker (after)", ""),
)
SCENARIOS = (
    ("no slow clients", 0, 0),
    ("40 slow clients (one header line / 5 s)", 40, 0),
    ("1,000 slow clients (one header line / 5 s)", 1000, 0),
    ("1,000 idle connections (nothing sent)", 0, 1000),
    ("500 open live event streams (widget panels)", 0, 0),
)
STREAMS = 500


def main(*, duration: float | None = None) -> dict:
    duration = duration or common.duration_seconds(8)
    env = common.bench_env()
    common.database_ready(env)
    tenant = processes.tenant_provision(env=env, name="Bench slowloris", rate_limit=common.UNLIMITED)
    headers = common.auth_headers(tenant["keys"][0])
    streams = _stream_requests(env, headers)
    results: dict = {"duration_s": duration, "scenarios": []}
    for server_title, arguments in SERVERS:
        server, base_url = processes.gunicorn_start(
            env=dict(env, GUNICORN_CMD_ARGS=arguments), log_path=common.log_path("slowloris")
        )
        address = urlsplit(base_url)
        try:
            latency_probe(base_url + "/api/v1/organization", seconds=3, headers=headers)  # warm up
            for title, slow, idle in SCENARIOS:
                requests_ = streams if title.startswith("500 open") else []
                with SlowClients(
                    address.hostname, address.port, slow=slow, idle=idle, streams=requests_
                ) as attack:
                    time.sleep(5 if requests_ else 2)
                    health = latency_probe(base_url + "/healthz", seconds=duration)
                    api = latency_probe(base_url + "/api/v1/organization", seconds=duration, headers=headers)
                    held = attack.open_now
                    streaming = attack.streaming
                    rss = sum(
                        p.memory_info().rss
                        for p in [psutil.Process(server.pid), *processes.process_children(server)]
                    )
                row = {
                    "server": server_title,
                    "scenario": title,
                    "held_open": held,
                    "streams_answered": streaming,
                    "rss_mib": round(rss / 2**20, 1),
                    "healthz": health,
                    "api": api,
                }
                print(row, flush=True)
                results["scenarios"].append(row)
        finally:
            processes.process_stop(server)
    return results


def _stream_requests(env: dict, headers: dict) -> list[bytes]:
    """One GET …/events request per session, for STREAMS sessions of the bench tenant."""
    server, base_url = processes.gunicorn_start(env=env, log_path=common.log_path("slowloris-setup"))
    try:
        assistant = requests.post(
            f"{base_url}/api/v1/assistants", json={"name": "Streams"}, headers=headers, timeout=30
        ).json()["data"]["id"]
        with requests.Session() as http:
            sessions = [
                http.post(
                    f"{base_url}/api/v1/sessions",
                    json={"assistant_id": assistant},
                    headers=headers,
                    timeout=30,
                ).json()["data"]["id"]
                for _ in range(STREAMS)
            ]
    finally:
        processes.process_stop(server)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return [
        f"GET /api/v1/sessions/{session}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
        f"Accept: text/event-stream\r\n\r\n".encode()
        for session in sessions
    ]


def _cell(probe: dict) -> str:
    if not probe["requests"]:
        return "–"
    if probe["p50_ms"] is None:
        return f"none answered ({probe['failed']} tried)"
    return f"{probe['p50_ms']} / {probe['p95_ms']} / {probe['max_ms']} ms, {probe['failed']} of {probe['requests']} failed"


def report(result: dict) -> str:
    lines = [
        f"{result['duration_s']:.0f} s per probe; cells: p50 / p95 / max of answered requests, and failures (no answer within 5 s).",
        "",
        "| web worker | slow clients | connections held open (streams answered) | web tier RSS | GET /healthz"
        " | GET /api/v1/organization |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["scenarios"]:
        lines.append(
            f"| {row.get('server', '')} | {row['scenario']} | {row['held_open']}"
            f"{' (' + str(row['streams_answered']) + ')' if row.get('streams_answered') else ''}"
            f" | {row.get('rss_mib', '–')} MiB | {_cell(row['healthz'])}"
            f" | {_cell(row['api'])} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
