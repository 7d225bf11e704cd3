"""Handoff emails: one per handoff to the members who opted in, by the real worker, over real
SMTP on loopback (aiosmtpd)."""

from __future__ import annotations

import pytest

from chat import services
from chat.models import Conversation
from chat.services import notifications
from knowledge.tests.conftest import site, wait_for, worker  # noqa: F401 (the worker fixture needs site)
from organizations import services as organization_services
from organizations.models import Membership
from testkit.fixtures import member_add


def _opt_in(tenant, user) -> None:
    membership = Membership.objects.for_organization(tenant.organization).get(user=user)
    organization_services.membership_notifications_set(membership=membership, handoff_email=True)


@pytest.mark.django_db
def test_one_email_per_handoff_to_opted_in_members_only(tenant, assistant, offline, smtp_sink, settings):
    settings.SITE_URL = "https://support.acme.example"
    agent = member_add(tenant, role="agent", email="agent@acme.example")
    member_add(tenant, role="admin", email="quiet-admin@acme.example")  # did not opt in
    _opt_in(tenant, agent)
    _opt_in(tenant, tenant.owner)
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    services.message_post(conversation=session, content="My parcel never arrived")
    services.handoff_request(conversation=session, email="visitor@example.org")
    requested_at = session.handoff_requested_at.isoformat()

    sent = notifications.handoff_notify_mail(conversation_id=str(session.pk), requested_at=requested_at)
    assert sent == 2
    messages = smtp_sink.wait_for(2)
    assert sorted(recipients[0] for _, recipients in smtp_sink.envelopes) == [
        "agent@acme.example",
        tenant.owner.email,
    ]
    message = messages[0]
    assert message["Subject"] == "Acme Inc: a visitor is waiting for a person"
    body = message.get_content()
    assert f"https://support.acme.example/inbox/{session.pk}/" in body
    assert "My parcel never arrived" in body and "visitor@example.org" in body
    assert len(message.get_all("To")) == 1  # addresses are not shared between members
    # The same handoff again (a redelivered task): nothing more.
    assert notifications.handoff_notify_mail(conversation_id=str(session.pk), requested_at=requested_at) == 0
    # A new handoff after resolution: a new email.
    services.conversation_resolve(conversation=session)
    services.handoff_request(conversation=session)
    assert (
        notifications.handoff_notify_mail(
            conversation_id=str(session.pk), requested_at=session.handoff_requested_at.isoformat()
        )
        == 2
    )
    assert len(smtp_sink.wait_for(4)) == 4


@pytest.mark.django_db
def test_double_handoff_enqueues_one_notification(tenant, assistant, django_capture_on_commit_callbacks):
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    with django_capture_on_commit_callbacks() as callbacks:
        services.handoff_request(conversation=session)
        services.handoff_request(conversation=session)
        services.handoff_request(conversation=session, email="late@example.org")
    enqueued = [
        callback
        for callback in callbacks
        if callback.__qualname__.endswith("handoff_notify_enqueue.<locals>.enqueue")
    ]
    assert len(enqueued) == 1


@pytest.mark.django_db
def test_a_failed_send_releases_the_claim_for_the_retry(tenant, assistant, settings):
    from chat.tests.smtp_sink import _free_port

    _opt_in(tenant, tenant.owner)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _free_port(), 2
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    services.handoff_request(conversation=session)
    with pytest.raises(OSError):  # connection refused: nobody listens there
        notifications.handoff_notify_mail(
            conversation_id=str(session.pk), requested_at=session.handoff_requested_at.isoformat()
        )
    session.refresh_from_db()
    assert session.handoff_notified_at is None


@pytest.mark.django_db
def test_a_handoff_nobody_opted_in_for_sends_nothing(tenant, assistant, smtp_sink):
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    services.handoff_request(conversation=session)
    assert (
        notifications.handoff_notify_mail(
            conversation_id=str(session.pk), requested_at=session.handoff_requested_at.isoformat()
        )
        == 0
    )
    assert smtp_sink.messages == []


def test_the_worker_emails_once_per_handoff(tenant, assistant, worker, smtp_sink, settings):  # noqa: F811
    """The real path: handoff API → on commit → Redis → Celery worker → SMTP on loopback."""
    _opt_in(tenant, tenant.owner)
    worker.start(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=smtp_sink.port,
        SITE_URL="https://support.acme.example",
    )
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    api = tenant.client()
    for _ in range(3):  # asked three times: one handoff, one email
        assert api.post(f"/api/v1/sessions/{session.pk}/handoff", {}, format="json").status_code == 200
    (message,) = smtp_sink.wait_for(1)
    assert f"https://support.acme.example/inbox/{session.pk}/" in message.get_content()
    wait_for(
        lambda: (
            Conversation.objects.for_organization(tenant.organization).get(pk=session.pk).handoff_notified_at
        ),
        timeout=30,
        message="the worker records that it notified",
    )
    import time

    time.sleep(2)  # anything else the worker would send has had time to arrive
    assert len(smtp_sink.messages) == 1
