"""Rate-limit accuracy: 1,100 requests for one organization (limit 1,000/hour) at
concurrency 50, spread over two separate gunicorn masters (2 workers each) that share one
Redis, alternating between two API keys of that organization. Goal: accepted ≤ limit × 1.01,
no 429 before the limit is reached, both keys drain one bucket, and another organization is
unaffected."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import requests

from bench import common
from bench.common import processes

LIMIT = 1000
TOTAL = 1100
CONCURRENCY = 50


def main(*, total: int = TOTAL, limit: int = LIMIT, concurrency: int = CONCURRENCY) -> dict:
    env = common.bench_env()
    common.database_ready(env)
    tenant = processes.tenant_provision(env=env, name="Bench limit", rate_limit=limit, keys=2)
    other = processes.tenant_provision(env=env, name="Bench other", rate_limit=limit)
    servers = []
    try:
        for index in range(2):
            servers.append(processes.gunicorn_start(env=env, log_path=common.log_path(f"ratelimit-{index}")))
        urls = [f"{base}/api/v1/organization" for _, base in servers]
        headers = [common.auth_headers(key) for key in tenant["keys"]]

        def call(index: int) -> tuple[int, int, dict[str, str]]:
            # A fresh connection per request: no keep-alive reuse races in the client.
            try:
                response = requests.get(urls[index % 2], headers=headers[(index // 2) % 2], timeout=60)
            except requests.RequestException as error:
                return index, 0, {"error": error.__class__.__name__}
            return index, response.status_code, dict(response.headers)

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(call, range(total)))
        other_response = requests.get(urls[1], headers=common.auth_headers(other["keys"][0]), timeout=30)
    finally:
        for server, _ in servers:
            processes.process_stop(server)

    statuses = [status for _, status, _ in results]
    accepted = statuses.count(200)
    limited = statuses.count(429)
    accepted_remaining = sorted(int(h["X-RateLimit-Remaining"]) for _, s, h in results if s == 200)
    per_server = {
        f"server {i + 1}": sum(1 for idx, s, _ in results if s == 200 and idx % 2 == i) for i in range(2)
    }
    per_key = {
        f"key {i + 1}": sum(1 for idx, s, _ in results if s == 200 and (idx // 2) % 2 == i) for i in range(2)
    }
    headers_ok = all(
        h.get("X-RateLimit-Limit") == str(limit)
        and "X-RateLimit-Reset" in h
        and (s != 429 or "Retry-After" in h)
        for _, s, h in results
        if s
    )
    result = {
        "requests": total,
        "limit": limit,
        "concurrency": concurrency,
        "accepted": accepted,
        "rejected_429": limited,
        "other_status": sorted(set(statuses) - {200, 429}),
        "overshoot_pct": round(100 * (accepted - limit) / limit, 2),
        "false_429_below_limit": max(0, min(limit, total) - accepted) if limited else 0,
        "remaining_values_distinct": len(set(accepted_remaining)) == len(accepted_remaining),
        "accepted_per_server": per_server,
        "accepted_per_key": per_key,
        "headers_complete": headers_ok,
        "other_org_status": other_response.status_code,
        "other_org_remaining": int(other_response.headers.get("X-RateLimit-Remaining", -1)),
        "goal_met": accepted <= limit * 1.01
        and accepted >= min(limit, total)
        and other_response.status_code == 200,
    }
    print(json.dumps(result, indent=2), flush=True)
    return result


def report(result: dict) -> str:
    rows = [{"figure": key, "value": value} for key, value in result.items()]
    return common.table(rows, ["figure", "value"])


if __name__ == "__main__":
    main()
