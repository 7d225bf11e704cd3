"""R12: a task enqueued inside a transaction that rolls back never runs (real worker).

`delay_on_commit` hands the message to the broker only after COMMIT; the control run with
plain `.delay()` inside the same kind of rolled-back transaction shows why it matters: the
worker runs it against a row that does not exist."""

from __future__ import annotations

import time

import pytest
import redis
from django.db import transaction

from organizations.models import Organization
from tests.chaos_tasks import PROBE_QUEUE, chaos_probe

pytestmark = [pytest.mark.chaos, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


class Rollback(Exception):
    pass


def _wait_for(client: redis.Redis, marker: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = client.get(f"chaos-probe:{marker}")
        if value is not None:
            return value.decode()
        time.sleep(0.1)
    raise AssertionError(f"the worker never ran the {marker!r} probe")


def test_task_enqueued_in_a_rolled_back_transaction_never_runs(procs, live_env, celery_broker):
    _redis_process, port = procs.redis()
    broker = f"redis://127.0.0.1:{port}/0"
    env = dict(live_env, REDIS_URL=broker)
    celery_broker(broker)
    procs.worker(env=env, queues=PROBE_QUEUE, extra=["--include", "tests.chaos_tasks"])
    client = redis.Redis.from_url(broker)

    with transaction.atomic():
        committed = Organization.objects.create(name="Committed", slug="committed-org")
        chaos_probe.delay_on_commit(str(committed.pk), "committed")
    assert _wait_for(client, "committed") == "found"

    with pytest.raises(Rollback), transaction.atomic():
        ghost = Organization.objects.create(name="Ghost", slug="ghost-org")
        chaos_probe.delay_on_commit(str(ghost.pk), "rolled-back")
        raise Rollback

    # Control: the naive `.delay()` inside a rolled-back transaction does reach the worker.
    with pytest.raises(Rollback), transaction.atomic():
        naive = Organization.objects.create(name="Naive", slug="naive-org")
        chaos_probe.delay(str(naive.pk), "control")
        raise Rollback
    assert _wait_for(client, "control") == "missing"

    # FIFO, one worker process: a sentinel after both proves the first one was never queued.
    chaos_probe.delay(str(committed.pk), "sentinel")
    assert _wait_for(client, "sentinel") == "found"
    assert client.get("chaos-probe:rolled-back") is None
    assert not Organization.objects.filter(slug__in=["ghost-org", "naive-org"]).exists()
