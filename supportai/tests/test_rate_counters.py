"""The fixed-window counters under concurrency, on both stores (Redis and Postgres)."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection

from core.rate_counters import window_counts_increment, window_counts_read
from testkit.fixtures import tenant_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.without_redis]


@pytest.fixture(params=["postgres", "redis"])
def store(request, settings):
    if request.param == "redis" and not settings.REDIS_URL:
        pytest.skip("no Redis in this configuration (make test runs both)")
    settings.RATE_COUNTER_STORE = request.param
    return request.param


def test_concurrent_increments_get_every_count_exactly_once(store):
    def hit(_):
        try:
            return window_counts_increment(buckets=[("test:one", 3600), ("test:two", 60)])
        finally:
            connection.close()  # each pool thread has its own connection

    # Windows end on multiples of their size (the minute, the hour): 300 increments that straddle
    # one are two windows' counts (1, 1, 2, 2, …), which the test is not about. Start with at
    # least 30 s of the minute (and so of the hour) left.
    if time.time() % 60 > 30:
        time.sleep(60 - time.time() % 60 + 0.05)
    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(hit, range(300)))
    assert len({r["test:two"].window_end for r in results}) == 1, "the increments took over 30 s"
    assert sorted(r["test:one"].count for r in results) == list(range(1, 301))
    assert sorted(r["test:two"].count for r in results) == list(range(1, 301))
    read = window_counts_read(buckets=[("test:one", 3600), ("test:never", 3600)])
    assert read["test:one"].count == 300 and read["test:never"].count == 0
    assert 0 < read["test:one"].reset <= 3600
    assert read["test:one"].window_end % 3600 == 0  # hourly windows end on the hour


def test_a_new_window_starts_from_one(store, settings):
    first = window_counts_increment(buckets=[("test:short", 1)])["test:short"]
    later = first
    while later.window_end == first.window_end:  # a one-second window: wait for the next
        later = window_counts_increment(buckets=[("test:short", 1)])["test:short"]
    assert later.count == 1 and later.window_end > first.window_end


def test_postgres_counter_survives_an_ended_window_row(settings):
    settings.RATE_COUNTER_STORE = "postgres"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO supportai_rate_counter (key, window_end, count) VALUES ('test:stale', 1, 999)"
        )
    assert window_counts_read(buckets=[("test:stale", 60)])["test:stale"].count == 0
    assert window_counts_increment(buckets=[("test:stale", 60)])["test:stale"].count == 1


def test_without_redis_120_concurrent_requests_against_a_limit_of_40_let_exactly_40_through(
    live_server, settings
):
    # The default path (no REDIS_URL) counts in Postgres; before, Django's database cache
    # let far more than the limit through under concurrency.
    settings.RATE_COUNTER_STORE = "postgres"
    tenant = tenant_create("Limited without Redis", rate_limit_per_hour=40)
    headers = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
    url = f"{live_server.url}/api/v1/organization"

    def call(_):
        response = requests.get(url, headers=headers, timeout=60)
        return response.status_code, response.headers

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(call, range(120)))
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 40 and statuses.count(429) == 80
    remaining = sorted(int(h["X-RateLimit-Remaining"]) for s, h in results if s == 200)
    assert remaining == list(range(40))
