"""R3 and R5/R6 for ingestion, with a real Celery worker and a real gunicorn.

- Poison message: a source whose processing kills the worker child every time (simulated
  by SIGKILL of the pool child each time it starts the fetch, like an OOM kill) is given up
  after a bounded number of attempts — the message is acked, no redelivery loop — and the
  worker goes on to ingest the next source.
- Broker down: with Redis stopped, `POST /api/v1/knowledge/urls` still answers 202 and the
  source is stored as `pending` (the row is the outbox); when Redis is back, the stuck-source
  sweeper re-drives it and it is ingested exactly once.
(Worker child / whole worker killed mid-ingestion → completes once: knowledge/tests/test_worker.py.)"""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from knowledge.models import KnowledgeSource
from knowledge.services.ingestion import MAX_ATTEMPTS
from knowledge.tests.conftest import wait_for
from testkit import processes
from testkit.fixtures import tenant_create
from testkit.sites import html_page

pytestmark = [pytest.mark.chaos, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _source(source_id) -> KnowledgeSource:
    return KnowledgeSource.objects.unscoped().get(pk=source_id)


def _slow(site, path: str, seconds: float) -> None:
    body = html_page("Slow", "<p>The warehouse opens at dawn.</p>")
    site.page(path, body, content_type="text/html", delay=seconds)


def test_a_poison_source_is_given_up_after_bounded_attempts_and_the_worker_carries_on(api, site, worker):
    parent = worker.start()
    _slow(site, "/poison", 30.0)
    site.page("/fine", html_page("Fine", "<p>Returns are accepted within 30 days.</p>"))
    poison_id = api.post("/api/v1/knowledge/urls", {"url": site.url("/poison")}, format="json").json()[
        "data"
    ]["id"]
    for attempt in range(1, MAX_ATTEMPTS + 1):
        wait_for(
            lambda n=attempt: site.requests.count("/poison") >= n,
            timeout=60,
            message=f"attempt {attempt} never started",
        )
        for child in processes.process_children(parent):
            os.kill(child.pid, signal.SIGKILL)  # the child dies on this message, again
    final = wait_for(
        lambda: _source(poison_id) if _source(poison_id).status == "failed" else None,
        timeout=60,
        message="the poison source was never given up",
    )
    assert "Gave up after" in final.error
    assert final.attempts == MAX_ATTEMPTS
    fine_id = api.post("/api/v1/knowledge/urls", {"url": site.url("/fine")}, format="json").json()["data"][
        "id"
    ]
    wait_for(lambda: _source(fine_id).status == "ready", timeout=90, message="the worker did not carry on")
    time.sleep(2)
    assert site.requests.count("/poison") == MAX_ATTEMPTS  # no redelivery loop
    assert parent.poll() is None


def test_with_redis_down_a_new_source_is_kept_pending_and_re_driven_when_redis_returns(
    procs,
    live_env,
    site,
    celery_broker,
):
    redis_process, port = procs.redis()
    broker = f"redis://127.0.0.1:{port}/0"
    env = dict(live_env, REDIS_URL=broker, SCRAPE_ALLOWLIST=site.netloc, KNOWLEDGE_STUCK_AFTER_SECONDS="1")
    tenant = tenant_create("Broker Outage", rate_limit_per_hour=10_000)
    headers = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
    site.page("/policy", html_page("Policy", "<p>Refunds are paid within five business days.</p>"))
    _web, url = procs.gunicorn(env=env, workers=1)

    processes.process_stop(redis_process)
    started = time.monotonic()
    created = requests.post(
        f"{url}/api/v1/knowledge/urls", json={"url": site.url("/policy")}, headers=headers, timeout=60
    )
    elapsed = time.monotonic() - started
    assert created.status_code == 202, created.text
    assert elapsed < 15, elapsed
    source_id = created.json()["data"]["id"]
    assert _source(source_id).status == "pending"
    listed = requests.get(f"{url}/api/v1/knowledge/urls", headers=headers, timeout=30)
    assert listed.status_code == 200

    restarted, _ = processes.redis_server_start(port=port)  # back, and empty: the message is gone
    procs.started.append(restarted)
    procs.worker(env=env, queues="ingestion,default", concurrency=1)
    time.sleep(1.5)
    # What celery beat runs every few minutes (`knowledge-requeue-stuck`): a due sweep.
    from knowledge.tasks import sources_requeue_stuck_task

    celery_broker(broker)
    sources_requeue_stuck_task.apply_async(queue="ingestion")
    wait_for(lambda: _source(source_id).status in {"ready", "failed"}, timeout=90, message="never re-driven")
    source = _source(source_id)
    assert source.status == "ready", source.error
    assert source.attempts == 1 and site.requests.count("/policy") == 1  # exactly once
    log = procs.log("web").read_text()
    assert "Traceback" not in log
