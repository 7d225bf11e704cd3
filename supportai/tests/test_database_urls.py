"""Without Redis the broker lives in Django's own database: its URL must reach the very server
Django reaches. With the embedded Postgres (socket directory in OPTIONS["host"], HOST empty)
the broker URL used to point at libpq's default socket, i.e. a system Postgres if the
machine has one, shared by every installation on the host (issue 12)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy
from django.conf import settings
from django.db import connection

from supportai.database_urls import broker_url, database_url

pytestmark = [pytest.mark.django_db, pytest.mark.without_redis]


def _data_directory_via_sqlalchemy(url: str) -> str:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sqlalchemy.text("SELECT current_setting('data_directory')")).scalar()
    finally:
        engine.dispose()


def _data_directory_via_django() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('data_directory')")
        return cursor.fetchone()[0]


def test_the_settings_broker_without_redis_is_the_server_django_uses():
    """The settings module itself, imported the way a worker imports it (REDIS_URL unset)."""
    env = {**os.environ, "REDIS_URL": "", "DJANGO_SETTINGS_MODULE": "supportai.settings"}
    env.pop("PYTEST_CURRENT_TEST", None)
    printed = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.CELERY_BROKER_URL)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.BASE_DIR,
    ).stdout.strip()
    assert printed.startswith("sqla+postgresql+psycopg://")
    assert _data_directory_via_sqlalchemy(printed.removeprefix("sqla+")) == _data_directory_via_django()


def test_the_broker_url_of_this_connection_is_this_server():
    url = broker_url(connection.settings_dict).removeprefix("sqla+")
    assert _data_directory_via_sqlalchemy(url) == _data_directory_via_django()


def test_socket_directory_port_credentials_and_options_all_carry_over():
    database = {
        "NAME": "support ai",
        "USER": "app",
        "PASSWORD": "p@ss:/word",
        "HOST": "",
        "PORT": "5544",
        "OPTIONS": {"host": "/srv/my data/pg", "sslmode": "disable", "isolation_level": 1},
    }
    url = database_url(database, scheme="postgresql+psycopg")
    parsed = sqlalchemy.engine.make_url(url)
    assert parsed.username == "app" and parsed.password == "p@ss:/word"
    assert parsed.database == "support ai" and parsed.host is None
    assert parsed.query == {"host": "/srv/my data/pg", "port": "5544", "sslmode": "disable"}

    tcp = sqlalchemy.engine.make_url(
        database_url({"NAME": "db", "USER": "u", "PASSWORD": "", "HOST": "db.internal", "PORT": ""})
    )
    assert (tcp.host, tcp.port, tcp.username, tcp.password) == ("db.internal", 5432, "u", None)
    # HOST wins over OPTIONS["host"], as in Django's own connection parameters.
    both = database_url({"NAME": "db", "HOST": "10.0.0.5", "PORT": 6000, "OPTIONS": {"host": "/tmp"}})
    assert both == "postgresql://10.0.0.5:6000/db"
