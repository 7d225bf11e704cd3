"""Mail of the support desk: the team hears of each handoff; a visitor who left hears the reply.

Team: one email per handoff.

`handoff_request` enqueues `handoff_notify_mail_task` when its transaction commits. The task
claims the handoff first (`handoff_notified_at`, a conditional UPDATE), so a redelivered or
duplicated task sends nothing twice; if the mail server fails, the claim is released and the
task retries with backoff. Recipients: the organization's members who turned on "Email me
when a visitor waits" (each gets their own message; addresses are never shared).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from chat.models import Conversation, Message
from organizations import selectors as organization_selectors

logger = logging.getLogger(__name__)

TRIGGER_WORDS = {
    Conversation.HandoffTrigger.ASKED: "asked for a person",
    Conversation.HandoffTrigger.UNANSWERED: "got answers the assistant could not ground",
    Conversation.HandoffTrigger.THUMBS_DOWN: "gave an answer a thumbs-down",
    Conversation.HandoffTrigger.REOPENED: "wrote again after the conversation was resolved",
    Conversation.HandoffTrigger.BACKEND: "was handed to a person by your system",
}


def handoff_notify_enqueue(*, conversation: Conversation) -> None:
    """After commit: one notification task for this handoff (keyed by its request time)."""
    from chat.tasks import handoff_notify_mail_task

    conversation_id = str(conversation.pk)
    requested_at = conversation.handoff_requested_at.isoformat()

    def enqueue() -> None:
        try:
            handoff_notify_mail_task.delay(conversation_id, requested_at)
        except Exception as error:  # broker down: the handoff stands; the queue badge still shows it
            logger.warning(
                "handoff email for %s not enqueued (%s)", conversation_id, error.__class__.__name__
            )

    transaction.on_commit(enqueue)


def _one_line(text: str) -> str:
    return " ".join((text or "").split())


def handoff_notify_mail(*, conversation_id: str, requested_at: str) -> int:
    """Sends the handoff email to the opted-in members; returns how many were sent (0 when
    this handoff was already notified, is gone, or nobody opted in)."""
    requested = dt.datetime.fromisoformat(requested_at)
    conversation = (
        Conversation.objects.unscoped()  # a worker re-fetching by id; the row names its tenant
        .select_related("organization", "assistant")
        .filter(pk=conversation_id, handoff_requested_at=requested)
        .first()
    )
    if conversation is None:
        return 0
    organization = conversation.organization
    recipients = organization_selectors.handoff_mail_recipients(organization=organization)
    if not recipients:
        return 0
    claimed_at = timezone.now()
    claimed = (
        Conversation.objects.for_organization(organization)
        .filter(pk=conversation.pk, handoff_requested_at=requested)
        .filter(Q(handoff_notified_at__isnull=True) | Q(handoff_notified_at__lt=requested))
        .update(handoff_notified_at=claimed_at)
    )
    if not claimed:
        return 0
    last_question = (
        Message.objects.for_organization(organization)
        .filter(conversation=conversation, role=Message.Role.USER)
        .order_by("-created_at")
        .values_list("content", flat=True)
        .first()
    )
    link = settings.SITE_URL + reverse("inbox-conversation", args=[conversation.pk])
    who = conversation.customer_id or "A visitor"
    body = (
        f"{who} {TRIGGER_WORDS.get(conversation.handoff_trigger, 'asked for a person')} "
        f"({conversation.assistant.name}, {requested:%Y-%m-%d %H:%M} UTC).\n\n"
        + (f"Their last message:\n> {last_question[:1000]}\n\n" if last_question else "")
        + (
            f"They left an email address for the reply: {conversation.handoff_email}\n\n"
            if conversation.handoff_email
            else ""
        )
        + f"Open the conversation: {link}\n\n"
        'You get this because you turned on "Email me when a visitor waits" in the inbox.\n'
    )
    # One line whatever the organization's name holds (a line break in a subject is a header injection).
    subject = f"{_one_line(organization.name)}: a visitor is waiting for a person"
    messages = [
        EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[address])
        for address in recipients
    ]
    try:
        get_connection().send_messages(messages)
    except Exception:
        # Not sent: release the claim so the retry (or a later handoff) can send it.
        Conversation.objects.for_organization(organization).filter(
            pk=conversation.pk, handoff_notified_at=claimed_at
        ).update(handoff_notified_at=None)
        raise
    return len(messages)


# --- an operator's reply to a visitor who has gone --------------------------------------------

VISITOR_GONE = dt.timedelta(minutes=10)


def _mail_host() -> str:
    from urllib.parse import urlsplit

    return urlsplit(settings.SITE_URL).hostname or "localhost"


def thread_id(*, conversation_id) -> str:
    """The Message-ID every email of one conversation refers to, so a mail client threads
    them and a reply by email can be matched to its conversation later."""
    return f"<conversation-{conversation_id}@{_mail_host()}>"


def visitor_reply_mail_enqueue(*, conversation: Conversation, message: Message) -> None:
    """After commit: email the reply when the visitor left an address (or is verified with
    one: `Conversation.reply_email`) and their widget has
    not been seen for `VISITOR_GONE` (or never was: a conversation run by a backend)."""
    if not conversation.reply_email:
        return
    seen = conversation.visitor_seen_at
    if seen is not None and timezone.now() - seen < VISITOR_GONE:
        return
    from chat.tasks import visitor_reply_mail_task

    message_id = str(message.pk)

    def enqueue() -> None:
        try:
            visitor_reply_mail_task.delay(message_id)
        except Exception as error:  # broker down: the reply is still in the conversation
            logger.warning("reply email for %s not enqueued (%s)", message_id, error.__class__.__name__)

    transaction.on_commit(enqueue)


def visitor_reply_mail(*, message_id: str) -> int:
    """Sends one operator reply to the conversation's email address (once: the message row
    is locked and marked `emailed_at`). Returns 1 when sent."""
    with transaction.atomic():
        message = (
            Message.objects.unscoped()  # a worker re-fetching by id; the row names its tenant
            .select_for_update()
            .select_related("conversation", "conversation__organization")
            .filter(pk=message_id, role=Message.Role.OPERATOR)
            .first()
        )
        if message is None or (message.metadata or {}).get("emailed_at"):
            return 0
        conversation = message.conversation
        address = conversation.reply_email
        if not address:
            return 0
        organization = conversation.organization
        root = thread_id(conversation_id=conversation.pk)
        email = EmailMessage(
            subject=f"{_one_line(organization.name)}: a reply to your question",
            body=(
                f"{message.content}\n\n"
                f"— {_one_line(organization.name)} support\n\n"
                "You asked us to answer by email if you had left the chat. Replies to this "
                "email do not reach us: to continue the conversation, open the chat on our "
                "website again.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[address],
            headers={
                "Message-ID": f"<reply-{message.pk}@{_mail_host()}>",
                "In-Reply-To": root,
                "References": root,
                "X-SupportAI-Conversation": str(conversation.pk),
            },
        )
        email.send()
        message.metadata = dict(message.metadata or {}, emailed_at=timezone.now().isoformat())
        message.save(update_fields=["metadata"])
    return 1
