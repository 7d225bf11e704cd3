"""Fixtures for the cross-cutting chaos and attack suites: real processes on loopback,
each stopped by the pid this suite started."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from knowledge.tests.conftest import site, worker  # noqa: F401  (the loopback site and Celery worker fixtures)
from testkit import processes


class ProcessGroup:
    """Processes started by one test; all stopped (by pid) when the test ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def gunicorn(
        self, *, env: dict[str, str], name: str = "web", workers: int = 2
    ) -> tuple[subprocess.Popen, str]:
        process, url = processes.gunicorn_start(env=env, workers=workers, log_path=self.log(name))
        self.started.append(process)
        return process, url

    def worker(self, *, env: dict[str, str], name: str = "worker", **kwargs) -> subprocess.Popen:
        process = processes.celery_worker_start(env=env, log_path=self.log(name), **kwargs)
        self.started.append(process)
        processes.celery_worker_wait_ready(self.log(name))
        return process

    def redis(self) -> tuple[subprocess.Popen, int]:
        process, port = processes.redis_server_start()
        self.started.append(process)
        return process, port

    def stop_all(self) -> None:
        for process in reversed(self.started):
            processes.process_stop(process)


@pytest.fixture
def procs(tmp_path):
    group = ProcessGroup(tmp_path)
    yield group
    group.stop_all()


@pytest.fixture
def live_env(transactional_db, settings):
    """Environment for a subprocess that must see this test's (committed) database rows."""
    from django.db import connection

    return processes.base_env(
        DATABASE_URL=processes.database_url_for(connection.settings_dict),
        REDIS_URL=settings.REDIS_URL,
        LOG_LEVEL="INFO",
        CONN_MAX_AGE="60",
    )


@pytest.fixture
def celery_broker(settings):
    """Point this process's Celery producer at a given broker for one test, then restore."""
    from supportai.celery import app

    previous = app.conf.broker_url

    def _reset_pools() -> None:
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None

    def use(url: str) -> None:
        _reset_pools()
        app.conf.broker_url = url
        settings.CELERY_BROKER_URL = url

    yield use
    _reset_pools()
    app.conf.broker_url = previous


def assert_error_shape(response, status_code: int) -> dict:
    assert response.status_code == status_code, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert body["status"] == "error" and body["status_code"] == status_code and body["detail"]
    assert "Traceback" not in response.text
    return body
