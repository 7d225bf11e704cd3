"""Without Redis the cache is a Postgres table; `migrate` creates it even when the database
was first migrated with Redis configured (found by hand: `make bench`, then `make run`
without REDIS_URL, answered every dashboard page with 500)."""

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.without_redis]

DATABASE_CACHE = {
    "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "supportai_cache_probe"}
}


def _table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def test_migrate_creates_the_cache_table_for_the_postgres_cache(settings):
    settings.CACHES = DATABASE_CACHE
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS supportai_cache_probe")
    try:
        call_command("migrate", "--noinput", verbosity=0)  # every migration already applied
        assert _table_exists("supportai_cache_probe")
        cache = caches.create_connection("default")
        cache.set("probe", "works", 30)
        assert cache.get("probe") == "works"
        call_command("migrate", "--noinput", verbosity=0)  # and again: idempotent
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS supportai_cache_probe")


def test_with_redis_no_cache_table_is_made(settings):
    if not settings.REDIS_URL:
        pytest.skip("runs in the Redis configuration (make test runs both)")
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    call_command("migrate", "--noinput", verbosity=0)
    assert not _table_exists("supportai_cache_probe")
