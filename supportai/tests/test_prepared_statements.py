"""Statements are bound server-side and prepared once a connection has run them a few times
(`DATABASE_PREPARED_STATEMENTS`, `DATABASE_PREPARE_THRESHOLD`; docs/benchmarks.md): Postgres
then parses a repeated statement once per connection instead of once per execution. Nothing
in a request may throw the connection's prepared statements away (psycopg deallocates all
of them after any ROLLBACK)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

pytestmark = [pytest.mark.django_db, pytest.mark.without_redis]


def _settings_options(**env_overrides: str) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "supportai.settings", **env_overrides}
    env.pop("PYTEST_CURRENT_TEST", None)
    for name in ("DATABASE_PREPARED_STATEMENTS", "DATABASE_PREPARE_THRESHOLD"):
        if name not in env_overrides:
            env.pop(name, None)
    code = (
        "import json; from django.conf import settings; "
        "options = settings.DATABASES['default']['OPTIONS']; "
        "print(json.dumps({k: options.get(k) for k in ('server_side_binding', 'prepare_threshold')}))"
    )
    printed = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.BASE_DIR,
        timeout=120,
    ).stdout
    return json.loads(printed.strip().splitlines()[-1])


def test_settings_prepare_by_default_and_the_switch_turns_it_off():
    assert _settings_options() == {"server_side_binding": True, "prepare_threshold": 5}
    assert _settings_options(DATABASE_PREPARE_THRESHOLD="2") == {
        "server_side_binding": True,
        "prepare_threshold": 2,
    }
    # Behind a pooler that cannot keep prepared statements: Django's default client-side binding.
    assert _settings_options(DATABASE_PREPARED_STATEMENTS="false") == {
        "server_side_binding": None,
        "prepare_threshold": None,
    }


def _threshold() -> int:
    threshold = settings.DATABASES["default"]["OPTIONS"].get("prepare_threshold")
    if threshold is None:
        pytest.skip("DATABASE_PREPARED_STATEMENTS is off in this environment")
    return threshold


def _prepared_on_this_connection(marker: str) -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE strpos(statement, %s) > 0",
            [marker],
        )
        return cursor.fetchall()


def test_a_repeated_statement_is_prepared_once_it_reached_the_threshold():
    threshold = _threshold()
    marker = "prepared_statement_probe_1"
    sql = f"SELECT %s::int + 1 AS {marker}"
    with connection.cursor() as cursor:
        for value in range(threshold):
            cursor.execute(sql, [value])
            assert cursor.fetchone() == (value + 1,)
        assert _prepared_on_this_connection(marker) == []  # not before it was seen `threshold` times
        for value in range(3):
            cursor.execute(sql, [value])
            assert cursor.fetchone() == (value + 1,)
    [(generic, custom)] = _prepared_on_this_connection(marker)
    assert generic + custom == 3  # prepared once, executed three times


def test_api_requests_keep_the_connection_prepared_statements(tenant):
    """The API key's lookup runs on every API request: after a few requests it is prepared and
    stays prepared (with the Postgres cache too: a request used to roll a failed cache insert
    back, which made psycopg deallocate every prepared statement of the connection)."""
    client = tenant.client()
    threshold = _threshold()
    for _ in range(threshold + 3):
        response = client.get("/api/v1/organization")
        assert response.status_code == 200, response.content
    [(generic, custom)] = _prepared_on_this_connection('FROM "organizations_apikey"')
    assert generic + custom >= 3


@pytest.fixture
def widened_table():
    """A table whose column another connection (a migration) widens while statements
    selecting it are prepared on this one."""
    import psycopg

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE prepared_probe (name varchar(5))")
        cursor.execute("INSERT INTO prepared_probe VALUES ('a')")

    def widen(type_: str) -> None:
        with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
            other.execute(f"ALTER TABLE prepared_probe ALTER COLUMN name TYPE {type_}")

    yield widen
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE prepared_probe")


def _probe(cursor) -> list:
    cursor.execute("SELECT name FROM prepared_probe WHERE name = %s", ["a"])
    return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_a_statement_prepared_before_a_migration_changed_its_columns_still_runs(widened_table):
    from django.db import NotSupportedError, transaction

    threshold = _threshold()
    with connection.cursor() as cursor:
        for _ in range(threshold + 1):
            assert _probe(cursor) == [("a",)]
    assert _prepared_on_this_connection("FROM prepared_probe")
    widened_table("varchar(10)")
    with connection.cursor() as cursor:  # autocommit: deallocated and run again
        assert _probe(cursor) == [("a",)]
        for _ in range(threshold + 1):
            assert _probe(cursor) == [("a",)]
    assert _prepared_on_this_connection("FROM prepared_probe")  # prepared again, the new type
    widened_table("text")
    # Inside a transaction it fails once (the transaction is aborted); the rollback clears.
    with pytest.raises(NotSupportedError), transaction.atomic(), connection.cursor() as cursor:
        _probe(cursor)
    with connection.cursor() as cursor:
        assert _probe(cursor) == [("a",)]
