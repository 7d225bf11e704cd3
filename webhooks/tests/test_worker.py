"""The real Celery worker delivers webhooks to a loopback receiver: retries after a 500, a
closed connection and a hang (backoff shortened by settings, nothing mocked), keeps a
conversation's events in order, sends a delivery whose enqueue was lost (the sweep), and
disables an endpoint after 20 failures in a row, emailing its admins."""

from __future__ import annotations

import time

import pytest

from organizations.models import AuditEvent
from organizations.services import event_emit
from testkit.webhook_receiver import WebhookReceiver
from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, Endpoint

pytestmark = pytest.mark.django_db(transaction=True)


def _wait(predicate, *, timeout: float = 60.0, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s: {message}")


def _queues_purge() -> None:
    from supportai.celery import app

    with app.connection_for_write() as connection:
        for queue in ("default", "ingestion"):
            try:
                connection.default_channel.queue_purge(queue)
            except Exception:  # the queue does not exist yet
                pass


@pytest.fixture(scope="module")
def module_receiver():
    receiver = WebhookReceiver(hang_seconds=5)
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def smtp():
    from chat.tests.smtp_sink import SmtpSink

    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, module_receiver, smtp, tmp_path_factory):
    """One worker process for the module (starting one costs seconds)."""
    from django.conf import settings as django_settings
    from django.db import connection

    from testkit import processes

    with django_db_blocker.unblock():
        env = processes.base_env(
            DATABASE_URL=processes.database_url_for(connection.settings_dict),
            REDIS_URL=django_settings.REDIS_URL,
            SCRAPE_ALLOWLIST=module_receiver.netloc,
            CONN_MAX_AGE="0",
            LOG_LEVEL="INFO",
            WEBHOOK_RETRY_BASE_DELAY="0.2",
            WEBHOOK_RETRY_MAX_DELAY="0.4",
            WEBHOOK_TIMEOUT="1.5",
            WEBHOOK_CONNECT_TIMEOUT="1",
            WEBHOOK_SWEEP_GRACE="0",
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(smtp.port),
            EMAIL_TIMEOUT="5",
        )
        _queues_purge()
    log = tmp_path_factory.mktemp("webhook-worker") / "worker.log"
    process = processes.celery_worker_start(
        env=env, queues="default", concurrency=2, log_path=log, extra=["--pool", "prefork"]
    )
    processes.celery_worker_wait_ready(log, timeout=120)
    yield process
    processes.process_stop(process)
    with django_db_blocker.unblock():
        _queues_purge()


@pytest.fixture
def receiver(module_receiver, settings, worker):
    settings.SCRAPE_ALLOWLIST = [module_receiver.netloc]
    module_receiver.received.clear()
    module_receiver.plan, module_receiver.default = [], "ok"
    yield module_receiver
    module_receiver.plan, module_receiver.default = [], "ok"
    # Let the worker go idle before the test's tables are truncated (a delivery it is still
    # recording holds row locks; TRUNCATE then deadlocks with it).
    from django.utils import timezone

    Endpoint.objects.unscoped().update(is_active=False)
    Delivery.objects.unscoped().filter(status="pending").update(status="failed", next_attempt_at=None)
    _queues_purge()
    _wait(
        lambda: not Delivery.objects.unscoped().filter(locked_until__gt=timezone.now()).exists(),
        timeout=30,
        message="the worker finished its last attempt",
    )
    time.sleep(0.5)


def _endpoint(tenant, receiver):
    return services.endpoint_create(
        organization=tenant.organization,
        url=receiver.url("/hooks"),
        events=["message.created", "csat.created"],
    )


def test_the_worker_delivers_and_retries_through_500_close_and_hang(tenant, receiver):
    receiver.plan = ["500", "close", "hang"]
    _endpoint(tenant, receiver)
    event = event_emit(
        organization=tenant.organization, type="message.created", data={"conversation_id": "c"}
    )
    delivery = Delivery.objects.for_organization(tenant.organization).get()
    arrived = receiver.wait_for(4, timeout=90)
    assert {request.delivery_id for request in arrived} == {str(delivery.pk)}  # stable across retries
    assert {request.json()["id"] for request in arrived} == {str(event.pk)}

    def done():
        delivery.refresh_from_db()
        return delivery.status == "delivered"

    _wait(done, message="delivery marked delivered")
    assert delivery.attempts == 4 and delivery.response_status == 200
    attempts = DeliveryAttempt.objects.for_organization(tenant.organization).filter(delivery=delivery)
    log = list(attempts.order_by("number").values_list("response_status", "error"))
    assert log[0] == (500, "HTTP 500") and log[1][0] is None and log[2][0] is None and log[3] == (200, "")
    # The hang cost the worker WEBHOOK_TIMEOUT (1.5 s), not the receiver's 5 s.
    hang = attempts.get(number=3)
    assert 1000 <= hang.duration_ms < 4000, hang.duration_ms
    # Backoff: each retry came later than the previous one, not at once.
    gaps = [later.at - earlier.at for earlier, later in zip(arrived, arrived[1:], strict=False)]
    assert all(gap >= 0.09 for gap in gaps), gaps


def test_a_conversations_events_arrive_in_order_despite_failures(tenant, receiver):
    receiver.plan = ["500", "503"]
    _endpoint(tenant, receiver)
    for number in range(3):
        event_emit(
            organization=tenant.organization,
            type="message.created",
            data={"conversation_id": "c", "n": number},
        )
    arrived = receiver.wait_for(5, timeout=90)
    assert [request.json()["data"]["n"] for request in arrived] == [0, 0, 0, 1, 2]


def test_a_delivery_whose_enqueue_was_lost_is_sent_by_the_sweep(tenant, receiver):
    import datetime as dt

    from django.utils import timezone

    from organizations.models import Event
    from webhooks.tasks import deliveries_sweep_task

    endpoint, _ = _endpoint(tenant, receiver)
    # A delivery row whose enqueue never reached the broker (written without one).
    event = Event.objects.create(organization=tenant.organization, type="csat.created", data={"score": 5})
    Delivery.objects.create(
        organization=tenant.organization,
        endpoint=endpoint,
        event=event,
        event_type=event.type,
        next_attempt_at=timezone.now(),
        give_up_at=timezone.now() + dt.timedelta(hours=24),
    )
    time.sleep(0.5)
    assert receiver.received == []
    deliveries_sweep_task.delay()  # what beat runs every 15 s
    [request] = receiver.wait_for(1, timeout=60)
    assert request.headers["X-SupportAI-Event"] == "csat.created"
    assert request.json()["data"] == {"score": 5}


def test_twenty_failures_in_a_row_disable_the_endpoint_and_email_admins(tenant, receiver, smtp):
    receiver.default = "500"
    endpoint, _ = _endpoint(tenant, receiver)
    smtp.messages.clear()
    for number in range(3):  # three conversations retrying at once: 20 failures come sooner
        event_emit(
            organization=tenant.organization, type="message.created", data={"conversation_id": str(number)}
        )

    def disabled():
        endpoint.refresh_from_db()
        return not endpoint.is_active

    _wait(disabled, timeout=120, message="endpoint disabled")
    assert endpoint.consecutive_failures >= 20 and endpoint.disabled_at is not None
    # Three conversations' attempts race to disable it: the audit log says so once, as the system.
    [audited] = AuditEvent.objects.for_organization(tenant.organization).filter(action="webhook.disabled")
    assert (audited.actor_type, audited.target_id) == ("system", str(endpoint.pk))
    _wait(lambda: smtp.messages, timeout=60, message="disabled email sent")
    [message] = smtp.messages
    assert message["To"] == tenant.owner.email and "disabled" in message["Subject"].lower()
    count = len(receiver.received)
    time.sleep(1.5)
    assert len(receiver.received) == count  # nothing more is sent while disabled
