from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from testkit.sites import LoopbackSite


@pytest.fixture
def site(settings):
    server = LoopbackSite()
    settings.SCRAPE_ALLOWLIST = [server.netloc]
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(name: str, data: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Tenant fixtures create owners with passwords; PBKDF2's deliberate slowness is not under test here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- a real Celery worker process ---------------------------------------------------------
def queues_purge() -> None:
    """Drop messages left in this test run's broker by earlier tests (our Redis DB, or the
    test database's broker tables)."""
    from supportai.celery import app

    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in ("default", "ingestion"):
            try:
                channel.queue_purge(queue)
            except Exception:  # the queue does not exist yet
                pass


class WorkerHarness:
    def __init__(self, *, env: dict, log_dir) -> None:
        self.env = env
        self.log_dir = log_dir
        self.processes: list = []
        self.started = 0

    def start(self, **env_overrides):
        from testkit import processes

        self.started += 1
        log = self.log_dir / f"worker-{self.started}.log"
        process = processes.celery_worker_start(
            env={**self.env, **{key: str(value) for key, value in env_overrides.items()}},
            queues="ingestion,default",
            concurrency=1,
            log_path=log,
            extra=["--pool", "prefork"],
        )
        self.processes.append(process)
        processes.celery_worker_wait_ready(log, timeout=90)
        return process

    def log_text(self) -> str:
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.log_dir.glob("worker-*.log"))
        )

    def stop_all(self) -> None:
        from testkit import processes

        for process in reversed(self.processes):
            processes.process_stop(process)


@pytest.fixture
def worker(transactional_db, settings, tmp_path, site):
    from django.db import connection

    from testkit import processes

    queues_purge()
    env = processes.base_env(
        DATABASE_URL=processes.database_url_for(connection.settings_dict),
        REDIS_URL=settings.REDIS_URL,  # "" = the Postgres broker of this database
        SCRAPE_ALLOWLIST=site.netloc,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        CONN_MAX_AGE="0",
        LOG_LEVEL="INFO",
        EMBEDDING_THREADS="1",
    )
    harness = WorkerHarness(env=env, log_dir=tmp_path)
    yield harness
    harness.stop_all()
    queues_purge()


def wait_for(predicate, *, timeout: float = 90.0, interval: float = 0.2, message: str = ""):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s: {message}")
