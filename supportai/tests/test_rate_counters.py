"""The fixed-window counters under concurrency, on both stores (Redis and Postgres)."""

import hashlib
import re
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.core.cache.backends.base import CacheKeyWarning
from django.db import connection

from core.rate_counters import stored_key, window_counts_increment, window_counts_read
from supportai.models import RateCounter
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
            "INSERT INTO supportai_rate_counter (key, window_end, count) VALUES (%s, 1, 999)",
            [stored_key("test:stale")],
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


def test_any_key_is_stored_short_hashed_and_without_a_cache_key_warning(store):
    """Keys name visitors, emails, addresses as callers give them: spaces, control characters,
    over 250 characters. Stored, they are the policy and a keyed hash (memcached-safe, within
    the table's 250); before, Redis warned (CacheKeyWarning) and Postgres failed (DataError,
    which opened the counter store's circuit for everyone)."""
    odd = ["with spaces", "ctl\x00\x01\x7f\n\tend", "x" * 300 + "@example.com", "ünï 👍"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)  # it fails the test
        for who in odd:
            key = f"visitor:org-1:{who}"
            counts = [window_counts_increment(buckets=[(key, 3600)])[key].count for _ in range(3)]
            assert counts == [1, 2, 3]
            assert window_counts_read(buckets=[(key, 3600)])[key].count == 3
        other = "visitor:org-1:with spaces "  # another visitor: a count of its own
        assert window_counts_increment(buckets=[(other, 3600)])[other].count == 1
    stored = {stored_key(f"visitor:org-1:{who}") for who in odd}
    assert len(stored) == len(odd)
    for key in stored:
        assert re.fullmatch(r"visitor:[0-9a-f]{32}", key), key
    if store == "postgres":
        assert stored <= set(RateCounter.objects.values_list("key", flat=True))
    # Keyed: not a plain hash of the id, so nobody without SECRET_KEY can name a visitor's key.
    assert stored_key("visitor:org-1:with spaces").split(":")[1] not in {
        hashlib.sha256(b"org-1:with spaces").hexdigest()[:32],
        hashlib.sha256(b"with spaces").hexdigest()[:32],
    }
