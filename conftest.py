"""Shared fixtures. Tests run against the real embedded Postgres (pgvector) and a real
Redis (REDIS_URL, default db 15 on 127.0.0.1:6379). With REDIS_URL set but empty, the
suite runs the README's default path instead (cache, rate limits and broker in Postgres):
`make test` runs the tests marked `without_redis` a second time that way."""

import os

os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))

import pytest  # noqa: E402

from supportai.testing import *  # noqa: E402,F401,F403


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    """Rate-limit counters and other cache state never leak between tests."""
    from django.conf import settings
    from django.core.cache import cache

    uses_database = request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(
        request.fixturenames
    )
    if settings.REDIS_URL or uses_database:
        cache.clear()
    # Without Redis the cache is a table in the test database, which a test that does not
    # use the database cannot reach (and does not need clean).
    yield


@pytest.fixture(autouse=True)
def _live_listener_closed():
    """A test that opened a live event stream (chat/live.py) closes this process's LISTEN
    connection after it: the test database cannot be dropped while it is open."""
    yield
    from chat import live

    if live.listening():
        live.streams_stop(wait=5)
