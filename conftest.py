"""Shared fixtures. Tests run against the real embedded Postgres (pgvector) and a real
Redis (REDIS_URL, default db 15 on 127.0.0.1:6379)."""

import os

os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))

import pytest  # noqa: E402

from supportai.testing import *  # noqa: E402,F401,F403


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters and other cache state never leak between tests."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _live_listener_closed():
    """A test that opened a live event stream (chat/live.py) closes this process's LISTEN
    connection after it: the test database cannot be dropped while it is open."""
    yield
    from chat import live

    if live.listening():
        live.streams_stop(wait=5)
