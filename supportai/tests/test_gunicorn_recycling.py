"""Worker recycling (`max_requests`) with the real gunicorn, as `make run` starts it: a
recycled worker is replaced, the replacement runs the `post_worker_init` warm-up too, and
no request fails across the restarts."""

import re
import time

import pytest
import requests
from django.db import connection

from testkit import processes

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


def test_recycled_workers_are_replaced_and_warmed_up(tmp_path):
    env = processes.base_env(
        DATABASE_URL=processes.database_url_for(connection.settings_dict),
        GUNICORN_MAX_REQUESTS="3",
        GUNICORN_MAX_REQUESTS_JITTER="0",
        LLM_MODEL="",
        EMBEDDING_MODEL="openai/remote-embedder",  # nothing heavy to load in the warm-up
        LOG_LEVEL="WARNING",
    )
    log_path = tmp_path / "gunicorn.log"
    process, base_url = processes.gunicorn_start(env=env, workers=1, threads=2, log_path=log_path)
    try:
        statuses = [requests.get(f"{base_url}/healthz", timeout=30).status_code for _ in range(10)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the last replacement may still be starting
            booted, warmed = _workers(log_path)
            if booted == warmed:
                break
            time.sleep(0.2)
    finally:
        processes.process_stop(process)
    log = log_path.read_text(errors="replace")
    assert statuses == [200] * 10
    assert "Autorestarting worker after current request" in log
    booted, warmed = _workers(log_path)
    assert len(booted) >= 3, log[-3000:]
    assert warmed == booted, log[-3000:]


def _workers(log_path) -> tuple[set[str], set[str]]:
    """(pids of the workers gunicorn started, pids whose post_worker_init warm-up ran)."""
    log = log_path.read_text(errors="replace")
    booted = set(re.findall(r"Booting worker with pid: (\d+)", log))
    warmed = set(re.findall(r"Worker (\d+): engine warm-up started", log))
    return booted, warmed
