"""Rate-limit accuracy on both configurations, and what counting costs per request.

For each configuration — Redis (`REDIS_URL` set) and the default path without Redis (the
counters are an `INSERT … ON CONFLICT … RETURNING` row in Postgres) — 1,200 requests for
one organization with a limit of 100/hour, at concurrency 100, spread over two separate
gunicorn masters (2 workers each) that share the store, alternating between two API keys of
that organization. Goal: exactly 100 accepted on both, no 429 before the limit is reached,
both keys drain one bucket, and another organization is unaffected.

Cost: 3,000 sequential counter increments in one process per store (the time one request
spends counting), next to Django's database cache doing the same count the way the old
limiter did (`cache.add` + `cache.incr`, the non-atomic path that let 455 of 1,200 through).
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/<name>.py` as well as `-m`

from bench import common  # noqa: E402
from testkit import processes  # noqa: E402

LIMIT = 100
TOTAL = 1200
CONCURRENCY = 100
COST_CALLS = 3000

_COST_SCRIPT = """
import json, time
from django.core.cache import caches
from django.conf import settings
from core.api.ratelimit import rate_limit_hit
from django.core.cache.backends.db import DatabaseCache
result = {}
for store in ("redis", "postgres"):
    if store == "redis" and not settings.REDIS_URL:
        continue
    settings.RATE_COUNTER_STORE = store
    rate_limit_hit(group="bench-cost", key="warm", limit=10**9, window=3600)
    started = time.perf_counter()
    for _ in range(%(calls)d):
        rate_limit_hit(group="bench-cost", key=store, limit=10**9, window=3600)
    result[store] = round(1e6 * (time.perf_counter() - started) / %(calls)d, 1)
db_cache = DatabaseCache("supportai_cache", {})
db_cache.add("bench-cost-dbcache", 0, 3600)
started = time.perf_counter()
for _ in range(%(calls)d):
    db_cache.add("bench-cost-dbcache", 0, 3600)
    db_cache.incr("bench-cost-dbcache")
result["django database cache (before)"] = round(1e6 * (time.perf_counter() - started) / %(calls)d, 1)
print(json.dumps(result))
"""


def _accuracy(*, env: dict[str, str], label: str, total: int, limit: int, concurrency: int) -> dict:
    common.database_ready(env)
    tenant = processes.tenant_provision(env=env, name="Bench limit", rate_limit=limit, keys=2)
    other = processes.tenant_provision(env=env, name="Bench other", rate_limit=limit)
    servers = []
    try:
        for index in range(2):
            servers.append(
                processes.gunicorn_start(env=env, log_path=common.log_path(f"ratelimit-{label}-{index}"))
            )
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
    accepted_remaining = sorted(int(h["X-RateLimit-Remaining"]) for _, s, h in results if s == 200)
    headers_ok = all(
        h.get("X-RateLimit-Limit") == str(limit)
        and "X-RateLimit-Reset" in h
        and (s != 429 or "Retry-After" in h)
        for _, s, h in results
        if s
    )
    return {
        "accepted": accepted,
        "rejected_429": statuses.count(429),
        "other_status": sorted(set(statuses) - {200, 429}),
        "remaining_values_distinct": len(set(accepted_remaining)) == len(accepted_remaining),
        "accepted_per_key": [
            sum(1 for idx, s, _ in results if s == 200 and (idx // 2) % 2 == i) for i in range(2)
        ],
        "headers_complete": headers_ok,
        "other_org_status": other_response.status_code,
        "goal_met": accepted == min(limit, total) and other_response.status_code == 200,
    }


def main(*, total: int = TOTAL, limit: int = LIMIT, concurrency: int = CONCURRENCY) -> dict:
    with_redis = common.bench_env()
    without_redis = {key: value for key, value in with_redis.items() if key != "REDIS_URL"}
    without_redis["REDIS_URL"] = ""
    result: dict = {"requests": total, "limit": limit, "concurrency": concurrency}
    configurations = [("postgres", without_redis)]
    if with_redis.get("REDIS_URL"):
        configurations.insert(0, ("redis", with_redis))
    for label, env in configurations:
        result[label] = _accuracy(env=env, label=label, total=total, limit=limit, concurrency=concurrency)
    cost = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "shell", "-c", _COST_SCRIPT % {"calls": COST_CALLS}],
        cwd=processes.ROOT,
        env=with_redis if with_redis.get("REDIS_URL") else without_redis,
        capture_output=True,
        text=True,
        check=True,
    )
    result["microseconds_per_count"] = json.loads(cost.stdout.strip().splitlines()[-1])
    result["goal_met"] = all(result[label]["goal_met"] for label, _ in configurations)
    print(json.dumps(result, indent=2), flush=True)
    return result


def report(result: dict) -> str:
    rows = []
    for label in ("redis", "postgres"):
        if label in result:
            for key, value in result[label].items():
                rows.append({"figure": f"{label}: {key}", "value": value})
    for store, micros in result.get("microseconds_per_count", {}).items():
        rows.append({"figure": f"cost per count, {store} (µs)", "value": micros})
    for key in ("requests", "limit", "concurrency", "goal_met"):
        rows.append({"figure": key, "value": result.get(key)})
    return common.table(rows, ["figure", "value"])


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
