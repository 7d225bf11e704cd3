"""An operator's reply to a visitor whose widget has been gone 10 minutes goes to the email
address the visitor left, by the worker, over real SMTP, with threading headers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from chat import services
from chat.models import Conversation, Message
from chat.services import notifications
from chat.tests.conftest import widget_client
from knowledge.tests.conftest import site, wait_for, worker  # noqa: F401 (the worker fixture needs site)


def _visitor_with_email(tenant, widget):
    visitor = widget_client(organization=tenant.organization, widget=widget, visitor_id="v_mail")
    session_id = visitor.post("/api/v1/sessions", {}, format="json").json()["data"]["id"]
    response = visitor.post(
        f"/api/v1/sessions/{session_id}/handoff", {"email": "ada@example.org"}, format="json"
    )
    assert response.status_code == 200
    return visitor, session_id


def _seen_minutes_ago(tenant, session_id, minutes: int) -> Conversation:
    Conversation.objects.for_organization(tenant.organization).filter(pk=session_id).update(
        visitor_seen_at=timezone.now() - dt.timedelta(minutes=minutes)
    )
    return (
        Conversation.objects.for_organization(tenant.organization)
        .select_related("organization")
        .get(pk=session_id)
    )


def _reply_enqueues(conversation, user, capture) -> int:
    with capture() as callbacks:
        services.operator_reply_post(conversation=conversation, user=user, content="We found your parcel.")
    return sum(1 for callback in callbacks if "visitor_reply_mail_enqueue" in callback.__qualname__)


@pytest.mark.django_db
def test_only_a_gone_visitor_with_an_address_is_emailed(
    tenant, assistant, widget, offline, django_capture_on_commit_callbacks
):
    visitor, session_id = _visitor_with_email(tenant, widget)
    assert visitor.get(f"/api/v1/sessions/{session_id}/messages").status_code == 200
    present = (
        Conversation.objects.for_organization(tenant.organization)
        .select_related("organization")
        .get(pk=session_id)
    )
    assert present.visitor_seen_at is not None  # the widget's read counts as presence
    assert _reply_enqueues(present, tenant.owner, django_capture_on_commit_callbacks) == 0
    gone = _seen_minutes_ago(tenant, session_id, 11)
    assert _reply_enqueues(gone, tenant.owner, django_capture_on_commit_callbacks) == 1
    no_address = services.session_create(organization=tenant.organization, assistant=assistant)
    assert _reply_enqueues(no_address, tenant.owner, django_capture_on_commit_callbacks) == 0


@pytest.mark.django_db
def test_an_api_key_read_is_not_the_visitors_presence(tenant, assistant, offline):
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    tenant.client().get(f"/api/v1/sessions/{session.pk}/messages")
    session.refresh_from_db()
    assert session.visitor_seen_at is None


@pytest.mark.django_db
def test_the_email_threads_and_is_sent_once(tenant, assistant, widget, offline, smtp_sink, settings):
    settings.SITE_URL = "https://support.acme.example"
    _, session_id = _visitor_with_email(tenant, widget)
    gone = _seen_minutes_ago(tenant, session_id, 30)
    reply = services.operator_reply_post(
        conversation=gone, user=tenant.owner, content="We found your parcel."
    )
    assert notifications.visitor_reply_mail(message_id=str(reply.pk)) == 1
    assert notifications.visitor_reply_mail(message_id=str(reply.pk)) == 0  # a redelivered task
    (message,) = smtp_sink.wait_for(1)
    assert message["To"] == "ada@example.org"
    assert str(message["Message-ID"]).strip() == f"<reply-{reply.pk}@support.acme.example>"
    # (long headers are folded onto a continuation line; a mail client unfolds them)
    root = f"<conversation-{session_id}@support.acme.example>"
    assert str(message["In-Reply-To"]).strip() == str(message["References"]).strip() == root
    assert "We found your parcel." in message.get_content()
    assert Message.objects.for_organization(tenant.organization).get(pk=reply.pk).metadata["emailed_at"]


def test_the_worker_emails_the_reply(tenant, assistant, widget, worker, smtp_sink):  # noqa: F811
    worker.start(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=smtp_sink.port,
        SITE_URL="https://support.acme.example",
    )
    _, session_id = _visitor_with_email(tenant, widget)
    gone = _seen_minutes_ago(tenant, session_id, 11)
    reply = services.operator_reply_post(conversation=gone, user=tenant.owner, content="Your refund is done.")
    (message,) = smtp_sink.wait_for(1)
    assert message["To"] == "ada@example.org" and "Your refund is done." in message.get_content()
    assert str(message["References"]).strip() == f"<conversation-{session_id}@support.acme.example>"
    wait_for(
        lambda: (
            Message.objects.for_organization(tenant.organization).get(pk=reply.pk).metadata.get("emailed_at")
        ),
        timeout=30,
        message="the worker marks the reply as emailed",
    )


@pytest.mark.django_db
def test_the_email_sends_the_visitor_back_to_the_chat_not_to_reply(
    tenant, assistant, widget, offline, smtp_sink
):
    """Found on a desk walk: the email said "Reply to this email to continue the conversation",
    but it comes from DEFAULT_FROM_EMAIL and email replies are not read into the conversation:
    the visitor's answer would be lost. It sends them back to the chat instead."""
    visitor = widget_client(organization=tenant.organization, widget=widget, visitor_id="v_page")
    session_id = visitor.post(
        "/api/v1/sessions",
        {"metadata": {"url": "https://shop.example/kettles/red", "source": "widget"}},
        format="json",
    ).json()["data"]["id"]
    visitor.post(f"/api/v1/sessions/{session_id}/handoff", {"email": "bea@example.org"}, format="json")
    gone = _seen_minutes_ago(tenant, session_id, 11)
    reply = services.operator_reply_post(conversation=gone, user=tenant.owner, content="The lid is RK-7.")
    assert notifications.visitor_reply_mail(message_id=str(reply.pk)) == 1
    (message,) = smtp_sink.wait_for(1)
    body = message.get_content()
    assert "The lid is RK-7." in body
    assert "Reply to this email" not in body
    assert "Replies to this email do not reach us" in body
    # It names no page: the address is the visitor's to choose (any metadata) and the email
    # address is not verified, so a link here would have the organization's own mail send a
    # link of anyone's choosing to anyone (found by review).
    assert "shop.example" not in body and "open the chat on our website again." in body
