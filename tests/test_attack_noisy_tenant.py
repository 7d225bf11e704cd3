"""Issue 13.2 on the real stack: one tenant's slow outbound work must not take the web tier
from everyone else.

gunicorn as `make run` starts it (2 gthread workers × 8 threads), a loopback page that
trickles 8 bytes/s (allow-listed) and the loopback OpenAI-compatible provider made slow.
Org A keeps 24 scrapes of the slow page and 24 chat turns on the slow provider in flight;
org B's bare authenticated GETs must keep their idle latency (p95 within 2×) and never
time out. Before the caps, org B's requests timed out (every thread held by org A). Run on
both configurations: Redis, and the no-Redis default where the caps live in Postgres.
"""

import pytest
from django.db import connection

from testkit import noisy_tenant, processes

# Latency bounds: no other test process may compete for the CPU (see pyproject, `alone`).
pytestmark = [pytest.mark.chaos, pytest.mark.alone, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("redis", [True, False], ids=["redis", "postgres"])
def test_a_noisy_tenant_does_not_slow_down_the_others(redis, settings):
    env = processes.base_env(
        DATABASE_URL=processes.database_url_for(connection.settings_dict),
        REDIS_URL=settings.CACHES["default"]["LOCATION"] if redis else "",
        LOG_LEVEL="WARNING",
    )
    run = noisy_tenant.scenario_run(env=env, redis=redis, probe_seconds=8, log_name="test-noisy")
    idle, loaded = run["idle"], run["loaded"]
    outcomes = run["org_a_outcomes"]
    # Org A was saturating its caps: its excess was refused with 429, not queued.
    assert outcomes["scrape"].get("429", 0) > 0 and outcomes["chat"].get("429", 0) > 0, outcomes
    # Org A's admitted work is bounded by its caps (2 pages, 4 LLM turns at a time).
    assert run["site_requests_received"] <= 2 * 3, run  # at most 2 at once, 10 s each
    assert run["llm_requests_received"] <= 4, run  # at most 4 turns at a time, 30 s each
    assert loaded["failures"] == {}, loaded
    # The idle figure brackets the load (probed before and after it: the machine is shared).
    assert run["ratio_p95_bracketed"] <= 2, run
    assert loaded["p95_ms"] <= 2 * max(idle["p95_ms"], run["idle_after"]["p95_ms"]), run
