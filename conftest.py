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


@pytest.fixture(scope="session", autouse=True)
def _celery_broker_follows_the_test_database(django_db_setup, django_db_blocker):
    """Without Redis the broker is a table in Django's database, and settings derived its URL
    before pytest-django swapped in the test database: publish where the test's workers (given
    the test database's URL) consume."""
    from django.conf import settings

    if settings.REDIS_URL:
        yield
        return
    from django.db import connection

    from supportai.celery import app
    from supportai.database_urls import broker_url

    previous = app.conf.broker_url
    app.conf.broker_url = broker_url(connection.settings_dict)
    app._pool = None
    app.amqp._producer_pool = None
    yield
    # Let go of the broker's connections, or the test database cannot be dropped.
    from kombu.transport.sqlalchemy import Channel

    if app._pool is not None:
        app._pool.force_close_all()
    for engine, _session in Channel._engines.values():
        engine.dispose()
    Channel._engines.clear()
    app.conf.broker_url = previous
