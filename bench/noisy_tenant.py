"""One noisy tenant against everyone else: does org A's slow outbound work hold every web
thread? The scenario (and its pass mark) is `testkit/noisy_tenant.py`; this runs it with
and without Redis and reports it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/<name>.py` as well as `-m`

from bench import common  # noqa: E402
from testkit.noisy_tenant import LLM_WAIT_S, scenario_run  # noqa: E402


def main(*, duration: float | None = None) -> dict:
    probe_seconds = duration or common.duration_seconds(15)
    env = common.bench_env()
    common.database_ready(env)
    runs = []
    for redis in (True, False):
        if redis and not env.get("REDIS_URL"):
            continue
        run = scenario_run(env=env, redis=redis, probe_seconds=probe_seconds)
        runs.append(run)
        print(
            f"{run['backend']}: org B p95 idle {run['idle']['p95_ms']} ms, loaded {run['loaded']['p95_ms']} ms, "
            f"idle after {run['idle_after']['p95_ms']} ms "
            f"(×{run['ratio_p95']}; ×{run['ratio_p95_bracketed']} bracketed), failures {run['loaded']['failures']}; org A {run['org_a_outcomes']}",
            flush=True,
        )
    return {"probe_seconds": probe_seconds, "runs": runs}


def report(results: dict) -> str:
    lines = [
        f"Org B probe: 2 clients of GET /api/v1/organization for {results['probe_seconds']:.0f} s, "
        "idle and then while org A keeps 24 slow scrapes and 24 slow-LLM chat turns in flight "
        f"(8 bytes/s page; provider answers after {LLM_WAIT_S:.0f} s; a refused request is retried "
        "after its Retry-After); latencies in ms.\n"
    ]
    rows = [
        {
            "backend": run["backend"],
            "B idle p50": run["idle"]["p50_ms"],
            "B idle p95": run["idle"]["p95_ms"],
            "B loaded p50": run["loaded"]["p50_ms"],
            "B loaded p95": run["loaded"]["p95_ms"],
            "B idle-after p95": run["idle_after"]["p95_ms"],
            "p95 × idle": run["ratio_p95"],
            "p95 × max(idle, idle after)": run["ratio_p95_bracketed"],
            "B failures": json.dumps(run["loaded"]["failures"]) if run["loaded"]["failures"] else "none",
            "A scrape outcomes": json.dumps(run["org_a_outcomes"]["scrape"]),
            "A chat outcomes": json.dumps(run["org_a_outcomes"]["chat"]),
        }
        for run in results["runs"]
    ]
    lines.append(common.table(rows, list(rows[0].keys()) if rows else []))
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
