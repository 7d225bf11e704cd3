"""Shared fixtures. Tests run against the real embedded Postgres (pgvector) and a real
Redis (REDIS_URL, default db 15 on 127.0.0.1:6379). With REDIS_URL set but empty, the
suite runs the README's default path instead (cache, rate limits and broker in Postgres):
`make test` runs the tests marked `without_redis` a second time that way.

In parallel (pytest-xdist, `-n N`), each worker process has its own Redis database, because
tests flush theirs: worker gwK uses db (B - K), B being REDIS_URL's db (`make test`: 15, 14,
13, 12 with 4 workers), and its own test database (pytest-django's `_gwK` suffix). The
embedded Postgres server itself is shared: it starts under pgserver's inter-process lock."""

import os

# The test process starts like every SupportAI process (supportai/startup.py: the embedded
# Postgres, the development key). pytest-django has read the settings already, which only
# named where the server listens; nothing has connected yet.
from supportai.startup import process_start  # noqa: E402

process_start()

import pytest  # noqa: E402

from testkit.fixtures import *  # noqa: E402,F401,F403


def redis_url_for_worker(url: str, index: int) -> str:
    """The Redis URL of xdist worker number `index`: REDIS_URL's db minus `index`."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    if base - index < 0:
        raise pytest.UsageError(
            f"{index + 1} test workers need Redis dbs {base} down to {base - index}: start from a "
            f"higher db (TEST_REDIS_URL) or run fewer workers (TEST_WORKERS)."
        )
    return urlunsplit(parts._replace(path=f"/{base - index}"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config, specs):
    """Before the workers start: give each its own Redis db (read by its settings at start)."""
    url = os.environ.get("REDIS_URL", "")
    for index, spec in enumerate(specs):
        spec.env["REDIS_URL"] = redis_url_for_worker(url, index) if url else ""
        spec.env["SUPPORTAI_TEST_REDIS_URL"] = spec.env["REDIS_URL"]


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(config, items):
    """What must run in one worker process: a module's tests that share a module-scoped
    fixture (a stack of processes, a browser) and every browser test (one Chromium, one
    live server, instead of one per worker)."""
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.xdist_group("browser"))
            continue
        fixtures = getattr(item, "_fixtureinfo", None)
        definitions = fixtures.name2fixturedefs.values() if fixtures is not None else ()
        if any(definition.scope == "module" for defs in definitions for definition in defs):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        from django.conf import settings

        # testkit.pytest_env named the Redis before the settings were read; a run that bypassed
        # it (`-p no:testkit.pytest_env`, another addopts) would otherwise test another stack.
        if settings.REDIS_URL != os.environ.get("REDIS_URL", ""):
            raise pytest.UsageError(
                f"REDIS_URL {os.environ.get('REDIS_URL')!r} was set after the settings read "
                f"{settings.REDIS_URL!r}: load testkit.pytest_env (pyproject's addopts)"
            )
    else:
        from django.conf import settings

        # Settings were read before this file: make sure they saw this worker's db.
        expected = os.environ.get("SUPPORTAI_TEST_REDIS_URL")
        if expected is None or settings.REDIS_URL != expected:
            raise pytest.UsageError(
                f"xdist worker {worker}: REDIS_URL {settings.REDIS_URL!r} is not its own ({expected!r})"
            )


@pytest.fixture(autouse=True)
def _fast_password_hashing(request):
    """Every tenant fixture creates an owner with a password, and PBKDF2's million rounds
    (half a second of CPU each) are not what a test in this process is about. Tests whose
    users sign in to a server in another process (`procs`, `live_env`, the chaos and stack
    suites) keep the real hasher: that process's settings must be able to read the hash."""
    node = request.node
    if (
        node.get_closest_marker("chaos")
        or node.get_closest_marker("stack")
        or {"procs", "live_env"} & set(request.fixturenames)
    ):
        return
    request.getfixturevalue("settings").PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
