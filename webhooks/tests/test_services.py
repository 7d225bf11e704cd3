"""Events become deliveries in the emitting transaction; the seams emit them; one attempt
against a real loopback receiver (signature, headers, retries, give-up, ordering, disabling)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest
from django.db import transaction
from django.utils import timezone

from organizations.models import AuditEvent, Event
from organizations.services import event_emit
from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, Endpoint

pytestmark = pytest.mark.django_db(transaction=True)


def _endpoint(tenant, receiver, events=("message.created", "conversation.created"), path="/hooks"):
    endpoint, secret = services.endpoint_create(
        organization=tenant.organization, url=receiver.url(path), events=list(events)
    )
    return endpoint, secret


def _deliveries(tenant):
    return Delivery.objects.for_organization(tenant.organization)


def test_an_event_gets_one_delivery_per_subscribed_active_endpoint(tenant, other_tenant, receiver):
    subscribed, _ = _endpoint(tenant, receiver)
    _endpoint(tenant, receiver, events=["csat.created"])
    paused, _ = _endpoint(tenant, receiver)
    services.endpoint_update(endpoint=paused, is_active=False)
    _endpoint(other_tenant, receiver)
    event = event_emit(
        organization=tenant.organization, type="message.created", data={"conversation_id": "c"}
    )
    delivery = _deliveries(tenant).get()
    assert (delivery.endpoint_id, delivery.event_id, delivery.ordering_key) == (
        subscribed.pk,
        event.pk,
        "conversation:c",
    )
    assert not Delivery.objects.for_organization(other_tenant.organization).exists()


def test_the_playgrounds_conversations_are_recorded_but_never_delivered(tenant, receiver):
    """An operator's test chats in the dashboard must not reach a CRM as visitor conversations."""
    from assistants.models import Assistant
    from chat import services as chat_services

    _endpoint(tenant, receiver)
    assistant = Assistant.objects.create(organization=tenant.organization, name="A")
    test_chat = chat_services.session_create(
        organization=tenant.organization,
        assistant=assistant,
        visitor_id="playground:owner@example.com",
        metadata={"source": "playground"},
    )
    chat_services.message_post(conversation=test_chat, content="Hello")
    recorded = Event.objects.for_organization(tenant.organization)
    assert recorded.filter(type="message.created").count() == 2
    assert all(event.data.get("playground") for event in recorded)
    assert not _deliveries(tenant).exists()
    visitor = chat_services.session_create(
        organization=tenant.organization, assistant=assistant, visitor_id="v1"
    )
    chat_services.message_post(conversation=visitor, content="Hello")
    assert _deliveries(tenant).count() == 3  # conversation.created + two message.created


def test_a_rolled_back_change_leaves_no_event_and_no_delivery(tenant, receiver):
    _endpoint(tenant, receiver)
    with pytest.raises(RuntimeError), transaction.atomic():
        event_emit(organization=tenant.organization, type="message.created", data={"conversation_id": "c"})
        raise RuntimeError("the change failed")
    assert not Event.objects.for_organization(tenant.organization).exists()
    assert not _deliveries(tenant).exists()
    assert receiver.received == []


def test_a_stored_chat_messages_deliveries_are_written_by_its_own_statement(tenant, receiver):
    """The chat's message store folds the deliveries into the statement inserting the message
    and its event (organizations.services.event_fold): they commit or roll back with it."""
    from django.db import IntegrityError, connection
    from django.test.utils import CaptureQueriesContext

    from assistants.models import Assistant
    from chat.models import Message
    from chat.services.conversations import message_store, session_create

    _endpoint(tenant, receiver)
    _endpoint(tenant, receiver, events=["csat.created"])  # not subscribed: no delivery
    assistant = Assistant.objects.create(organization=tenant.organization, name="A")
    session = session_create(organization=tenant.organization, assistant=assistant, visitor_id="v")
    _deliveries(tenant).delete()  # conversation.created's

    def store(key: str) -> Message:
        return message_store(
            message=Message(
                organization_id=tenant.organization.pk,
                conversation=session,
                role=Message.Role.USER,
                content="Hi",
                idempotency_key=key,
            )
        )

    with CaptureQueriesContext(connection) as captured:
        message = store("k1")
    assert len(captured.captured_queries) == 1  # autocommitted: no BEGIN/COMMIT either
    event = Event.objects.for_organization(tenant.organization).get(type="message.created")
    delivery = _deliveries(tenant).get()
    assert (delivery.event_id, delivery.event_type, delivery.ordering_key, delivery.status) == (
        event.pk,
        "message.created",
        f"conversation:{session.pk}",
        Delivery.Status.PENDING,
    )
    assert services.delivery_attempt(delivery_id=delivery.pk) == "delivered"
    [request] = receiver.received
    assert request.json()["data"]["message_id"] == str(message.pk)
    # A duplicate Idempotency-Key: no message, no event, no delivery.
    with pytest.raises(IntegrityError), transaction.atomic():
        store("k1")
    assert Event.objects.for_organization(tenant.organization).filter(type="message.created").count() == 1
    assert _deliveries(tenant).count() == 1
    # Rolled back with the caller's transaction: nothing of it stays.
    with pytest.raises(RuntimeError), transaction.atomic():
        store("k2")
        assert _deliveries(tenant).count() == 2  # written in the caller's transaction
        raise RuntimeError("the change failed")
    assert _deliveries(tenant).count() == 1
    assert Message.objects.for_organization(tenant.organization).count() == 1


def test_the_seams_emit_their_events(tenant, receiver):
    from assistants.services import assistant_create
    from chat.models import Message
    from chat.services.conversations import conversation_create, message_store, session_create
    from chat.services.handoff import conversation_resolve, csat_create, handoff_request
    from chat.services.messages import message_feedback_set

    assistant = assistant_create(organization=tenant.organization, name="Helper")
    session = session_create(organization=tenant.organization, assistant=assistant, visitor_id="v")
    conversation = conversation_create(organization=tenant.organization, assistant=assistant)
    answer = message_store(
        message=Message(
            organization_id=tenant.organization.pk,
            conversation=session,
            role=Message.Role.ASSISTANT,
            content="Hi",
        )
    )
    message_feedback_set(message=answer, rating="up")
    handoff_request(conversation=conversation, reason="please")
    conversation_resolve(conversation=conversation)
    csat_create(conversation=conversation, score=5)
    types = list(
        Event.objects.for_organization(tenant.organization)
        .order_by("created_at")
        .values_list("type", flat=True)
    )
    for expected in (
        "conversation.created",
        "message.created",
        "feedback.created",
        "handoff.requested",
        "conversation.resolved",
        "csat.created",
    ):
        assert expected in types, (expected, types)
    message_event = Event.objects.for_organization(tenant.organization).get(type="message.created")
    assert message_event.data == {
        "conversation_id": str(session.pk),
        "message_id": str(answer.pk),
        "role": "assistant",
        "in_reply_to": None,
    }
    assert "Hi" not in str(message_event.data)  # ids and facts, never message text


def test_source_ready_and_failed_are_emitted_once(tenant, receiver):
    from knowledge.models import KnowledgeSource
    from knowledge.services.ingestion import _ready, source_fail

    source = KnowledgeSource.objects.create(
        organization=tenant.organization,
        kind=KnowledgeSource.Kind.URL,
        url="https://docs.example.org/",
        title="Docs",
    )
    source_fail(source_id=source.pk, error="HTTP 500")
    source_fail(source_id=source.pk, error="HTTP 500 again")  # already failed: no second event
    other = KnowledgeSource.objects.create(
        organization=tenant.organization,
        kind=KnowledgeSource.Kind.URL,
        url="https://docs.example.org/b",
        status=KnowledgeSource.Status.PROCESSING,
    )
    _ready(source=other)
    _ready(source=other)  # a re-sync of a ready source is not news
    events = Event.objects.for_organization(tenant.organization)
    failed = events.get(type="source.failed")
    assert failed.data["source_id"] == str(source.pk) and failed.data["error"] == "HTTP 500"
    assert events.get(type="source.ready").data["source_id"] == str(other.pk)


def test_a_delivery_is_signed_and_carries_the_contract_headers(tenant, receiver):
    endpoint, secret = _endpoint(tenant, receiver)
    event = event_emit(
        organization=tenant.organization, type="message.created", data={"conversation_id": "c"}
    )
    delivery = _deliveries(tenant).get()
    assert services.delivery_attempt(delivery_id=delivery.pk) == "delivered"
    [request] = receiver.received
    assert request.headers["X-SupportAI-Event"] == "message.created"
    assert request.headers["X-SupportAI-Delivery"] == str(delivery.pk)
    assert request.headers["Content-Type"] == "application/json"
    stamp, signature = request.headers["X-SupportAI-Signature"].split(",")
    timestamp = stamp.removeprefix("t=")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert signature == f"v1={expected}"
    assert abs(int(timestamp) - timezone.now().timestamp()) < 10
    body = request.json()
    assert body == {
        "id": str(event.pk),
        "type": "message.created",
        "created_at": event.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "organization": {"id": str(tenant.organization.pk), "name": tenant.organization.name},
        "data": {"conversation_id": "c"},
    }
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 200)
    assert delivery.duration_ms is not None and delivery.response_excerpt == '{"ok":true}'
    assert services.delivery_attempt(delivery_id=delivery.pk) == "delivered"  # done: not sent twice
    assert len(receiver.received) == 1


def test_failures_are_recorded_and_retried_with_the_same_delivery_id(tenant, receiver, settings):
    receiver.plan = ["500", "close", "hang"]
    settings.WEBHOOK_TIMEOUT = 1.0
    _endpoint(tenant, receiver)
    event_emit(organization=tenant.organization, type="message.created", data={"conversation_id": "c"})
    delivery = _deliveries(tenant).get()
    outcomes = []
    for _ in range(4):
        Delivery.objects.unscoped().filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        outcomes.append(services.delivery_attempt(delivery_id=delivery.pk))
    assert outcomes == ["retrying", "retrying", "retrying", "delivered"]
    assert {request.delivery_id for request in receiver.received} == {str(delivery.pk)}
    attempts = list(DeliveryAttempt.objects.for_organization(tenant.organization).order_by("number"))
    assert [attempt.response_status for attempt in attempts] == [500, None, None, 200]
    assert attempts[0].response_excerpt == "receiver says no" and attempts[0].error == "HTTP 500"
    assert "broke" in attempts[1].error or "connect" in attempts[1].error.lower()
    assert "time" in attempts[2].error and attempts[2].duration_ms < 3000
    endpoint = Endpoint.objects.for_organization(tenant.organization).get()
    assert endpoint.consecutive_failures == 0  # reset by the success


def test_backoff_grows_with_jitter_and_is_capped(settings):
    settings.WEBHOOK_RETRY_BASE_DELAY, settings.WEBHOOK_RETRY_MAX_DELAY = 10, 3600
    first = [services.retry_delay(attempts=1) for _ in range(50)]
    assert all(5 <= delay <= 10 for delay in first) and len(set(first)) > 1
    assert all(20 <= services.retry_delay(attempts=3) <= 40 for _ in range(20))
    assert all(1800 <= services.retry_delay(attempts=30) <= 3600 for _ in range(20))


def test_gives_up_after_the_retry_window(tenant, receiver, settings):
    receiver.default = "503"
    _endpoint(tenant, receiver)
    event_emit(organization=tenant.organization, type="message.created", data={"conversation_id": "c"})
    delivery = _deliveries(tenant).get()
    Delivery.objects.unscoped().filter(pk=delivery.pk).update(
        give_up_at=timezone.now() + dt.timedelta(seconds=0.05)
    )
    settings.WEBHOOK_RETRY_BASE_DELAY = 1
    assert services.delivery_attempt(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.error.startswith("Given up after 1 attempts")
    # The sweep gives up pending ones whose window has passed, without sending.
    event_emit(organization=tenant.organization, type="message.created", data={"conversation_id": "d"})
    late = _deliveries(tenant).get(ordering_key="conversation:d")
    Delivery.objects.unscoped().filter(pk=late.pk).update(give_up_at=timezone.now())
    services.deliveries_sweep()
    late.refresh_from_db()
    assert late.status == "failed" and len(receiver.received) == 1


def test_a_later_event_of_the_same_conversation_waits_for_the_earlier(tenant, receiver):
    receiver.plan = ["500"]
    _endpoint(tenant, receiver)
    for number in range(2):
        event_emit(
            organization=tenant.organization,
            type="message.created",
            data={"conversation_id": "c", "n": number},
        )
    event_emit(organization=tenant.organization, type="message.created", data={"conversation_id": "other"})
    first, second = _deliveries(tenant).filter(ordering_key="conversation:c").order_by("position")
    unrelated = _deliveries(tenant).get(ordering_key="conversation:other")
    assert services.delivery_attempt(delivery_id=first.pk) == "retrying"
    assert services.delivery_attempt(delivery_id=second.pk) == "waiting"
    assert services.delivery_attempt(delivery_id=unrelated.pk) == "delivered"  # not held up
    Delivery.objects.unscoped().filter(pk=first.pk).update(next_attempt_at=timezone.now())
    assert services.delivery_attempt(delivery_id=first.pk) == "delivered"
    assert services.delivery_attempt(delivery_id=second.pk) == "delivered"
    bodies = [request.json()["data"] for request in receiver.received]
    assert [body.get("n") for body in bodies if body["conversation_id"] == "c"] == [0, 0, 1]


def test_the_address_is_checked_again_at_every_delivery(tenant, receiver, fake_dns, settings):
    fake_dns({"hooks.customer-crm.com": ["93.184.216.34"]})
    endpoint, _ = services.endpoint_create(
        organization=tenant.organization, url="https://hooks.customer-crm.com/in", events=["message.created"]
    )
    fake_dns({"hooks.customer-crm.com": ["169.254.169.254"]})  # DNS changed since it was saved
    event_emit(organization=tenant.organization, type="message.created", data={})
    delivery = _deliveries(tenant).get()
    assert services.delivery_attempt(delivery_id=delivery.pk) == "retrying"
    delivery.refresh_from_db()
    assert "link-local" in delivery.error and delivery.response_status is None


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_from_the_receiver_is_never_followed(tenant, settings, status):
    """An allowed receiver answering with a redirect to an internal address: the delivery is a
    failed attempt (the 3xx is its answer), and the internal address never hears of it."""
    from testkit.sites import LoopbackSite

    public, internal = LoopbackSite(), LoopbackSite()
    try:
        settings.SCRAPE_ALLOWLIST = [public.netloc]
        public.redirect("/in", internal.url("/in"), status=status)
        internal.page("/in", b"ok", content_type="text/plain")
        services.endpoint_create(
            organization=tenant.organization, url=public.url("/in"), events=["message.created"]
        )
        event_emit(organization=tenant.organization, type="message.created", data={})
        delivery = _deliveries(tenant).get()
        assert services.delivery_attempt(delivery_id=delivery.pk) == "retrying"
        delivery.refresh_from_db()
        assert delivery.response_status == status and delivery.error == f"HTTP {status}"
        assert public.requests == ["/in"] and internal.requests == []
    finally:
        public.close()
        internal.close()


def test_disabled_after_consecutive_failures_and_admins_emailed(tenant, receiver, settings):
    from chat.tests.smtp_sink import SmtpSink
    from testkit.fixtures import member_add

    member_add(tenant, role="admin", email="admin@acme.example")
    member_add(tenant, role="agent", email="agent@acme.example")
    sink = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", sink.port, 5
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    try:
        receiver.default = "500"
        endpoint, _ = _endpoint(tenant, receiver)
        for number in range(settings.WEBHOOK_DISABLE_AFTER_FAILURES):
            event_emit(
                organization=tenant.organization,
                type="message.created",
                data={"conversation_id": str(number)},
            )
        for delivery in _deliveries(tenant).order_by("position"):
            services.delivery_attempt(delivery_id=delivery.pk)
        endpoint.refresh_from_db()
        assert not endpoint.is_active and endpoint.consecutive_failures == 20
        assert "20 failed deliveries" in endpoint.disabled_reason
        assert len(receiver.received) == 20
        # In the audit log once, as the system's doing, without the receiver's URL.
        [audited] = AuditEvent.objects.for_organization(tenant.organization).filter(action="webhook.disabled")
        assert (audited.actor, audited.actor_type) == ("system", "system")
        assert (audited.target_type, audited.target_id) == ("endpoint", str(endpoint.pk))
        assert audited.changes == {
            "is_active": False,
            "disabled_reason": endpoint.disabled_reason,
            "consecutive_failures": 20,
        }
        assert receiver.url("") not in str(audited.changes)
        assert services.endpoint_disabled_mail(endpoint_id=endpoint.pk) == 2
        [message] = sink.messages
        assert sorted(message["To"].split(", ")) == ["admin@acme.example", "owner@acme-inc.example"]
        assert endpoint.url in message.get_content() and "HTTP 500" in message.get_content()
        # While disabled nothing is sent, and new events get no deliveries.
        pending = _deliveries(tenant).filter(status="pending").first()
        assert services.delivery_attempt(delivery_id=pending.pk) == "endpoint_inactive"
        event_emit(organization=tenant.organization, type="message.created", data={"conversation_id": "new"})
        assert not _deliveries(tenant).filter(ordering_key="conversation:new").exists()
        # Enabled again: the count restarts.
        services.endpoint_update(endpoint=endpoint, is_active=True)
        endpoint.refresh_from_db()
        assert endpoint.is_active and endpoint.consecutive_failures == 0 and endpoint.disabled_at is None
    finally:
        sink.stop()


def test_the_sweep_enqueues_due_first_in_line_deliveries_once_per_grace(tenant, receiver, settings):
    settings.WEBHOOK_SWEEP_GRACE = 10
    _endpoint(tenant, receiver)
    for conversation in ("a", "a", "b"):
        event_emit(
            organization=tenant.organization, type="message.created", data={"conversation_id": conversation}
        )
    Delivery.objects.unscoped().update(next_attempt_at=timezone.now() - dt.timedelta(seconds=20))
    first_a, second_a = _deliveries(tenant).filter(ordering_key="conversation:a").order_by("position")
    b = _deliveries(tenant).get(ordering_key="conversation:b")
    assert services.deliveries_sweep() == 2  # a's first and b; a's second waits for a's first
    first_a.refresh_from_db()
    assert timezone.now() - first_a.next_attempt_at < dt.timedelta(seconds=5)  # taken: moved to now
    assert services.deliveries_sweep() == 0  # not again while the worker may still hold them
    Delivery.objects.unscoped().filter(pk__in=[first_a.pk, b.pk]).update(status="delivered")
    assert services.deliveries_sweep() == 1  # now a's second is first in line
    assert second_a.pk in [delivery.pk for delivery in _deliveries(tenant).filter(status="pending")]
