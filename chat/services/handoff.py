"""The support desk's state machine: bot → waiting → human → resolved, and the rating.

`handoff_status` moves only through these functions. Each change is made under a row
lock (`SELECT … FOR UPDATE`), so two requests at once (a double click, a retried POST, the
phrase trigger racing the button) make one change and emit one event: a handoff pages the
team once however often it is asked for. Every change wakes the conversation's live
streams (the widget's header follows the status) and the domain events go through
`organizations.services.event_emit`.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from chat import live
from chat.models import Conversation, CsatRating, Message
from chat.services import notifications
from core.errors import Conflict, ValidationFailed
from organizations import services as organization_services

logger = logging.getLogger(__name__)

Status = Conversation.HandoffStatus
Trigger = Conversation.HandoffTrigger

REASON_MAX_CHARS = 500
COMMENT_MAX_CHARS = 2000


def handoff_email_clean(*, email: str) -> str:
    """A visitor's reply-to address; refuses anything that could smuggle mail headers."""
    email = (email or "").strip()
    if not email:
        return ""
    if any(char in email for char in "\r\n\0") or len(email) > 254:
        raise ValidationFailed(
            "Enter a valid email address.", details={"email": ["Enter a valid email address."]}
        )
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed(
            "Enter a valid email address.", details={"email": ["Enter a valid email address."]}
        ) from None
    return email


def _locked(conversation: Conversation) -> Conversation:
    """The conversation's row, locked until the surrounding transaction ends."""
    return (
        Conversation.objects.for_organization(conversation.organization_id)
        .select_for_update()
        .get(pk=conversation.pk)
    )


def _copy(*, source: Conversation, target: Conversation, fields: list[str]) -> None:
    for name in fields:
        if name in ("assigned_to", "resolved_by"):
            name += "_id"  # the id: no extra query
        setattr(target, name, getattr(source, name))


def _event_data(conversation: Conversation, **extra) -> dict:
    return {
        "conversation_id": str(conversation.pk),
        "kind": conversation.kind,
        "assistant_id": str(conversation.assistant_id),
        "handoff_status": conversation.handoff_status,
        **extra,
    }


def handoff_request(
    *, conversation: Conversation, trigger: str = Trigger.ASKED, reason: str = "", email: str = ""
) -> tuple[Conversation, bool]:
    """Asks for a person: `bot`/`resolved` → `waiting`. Returns (conversation, whether it
    changed). Already `waiting` or `human`: nothing changes and nothing is emitted, except
    that a newly given email address is kept (the visitor may add it afterwards). Without
    one, a verified visitor's proven address (`Conversation.verified_email`) is used."""
    email = handoff_email_clean(email=email)
    reason = (reason or "").strip()[:REASON_MAX_CHARS]
    fields = [
        "handoff_status",
        "handoff_trigger",
        "handoff_reason",
        "handoff_requested_at",
        "first_human_reply_at",
        "assigned_to",
        "handoff_email",
    ]
    with transaction.atomic():
        row = _locked(conversation)
        if row.handoff_status in (Status.WAITING, Status.HUMAN):
            if email and email != row.handoff_email:
                row.handoff_email = email
                row.save(update_fields=["handoff_email", "updated_at"])
            _copy(source=row, target=conversation, fields=fields)
            return conversation, False
        row.handoff_status = Status.WAITING
        row.handoff_trigger = trigger
        row.handoff_reason = reason
        row.handoff_requested_at = timezone.now()
        row.first_human_reply_at = None
        row.assigned_to = None
        if email:
            row.handoff_email = email
        elif not row.handoff_email:
            # A verified visitor is not asked again: their proven address is the one.
            row.handoff_email = row.verified_email
        row.save(update_fields=[*fields, "updated_at"])
        organization_services.event_emit(
            organization=conversation.organization,
            type="handoff.requested",
            data=_event_data(row, trigger=trigger, has_email=bool(row.handoff_email)),
        )
        live.conversation_event_publish(conversation_id=row.pk, kind="status")
        notifications.handoff_notify_enqueue(conversation=row)
    _copy(source=row, target=conversation, fields=fields)
    return conversation, True


def handoff_take_over(*, conversation: Conversation, user) -> Conversation:
    """An operator takes over: the bot stays quiet; the conversation is theirs."""
    with transaction.atomic():
        row = _locked(conversation)
        row.handoff_status = Status.HUMAN
        row.assigned_to = user
        row.save(update_fields=["handoff_status", "assigned_to", "updated_at"])
        live.conversation_event_publish(conversation_id=row.pk, kind="status")
    _copy(source=row, target=conversation, fields=["handoff_status", "assigned_to"])
    return conversation


def handoff_hand_back(*, conversation: Conversation) -> Conversation:
    """Back to the assistant; nobody is assigned any more."""
    with transaction.atomic():
        row = _locked(conversation)
        row.handoff_status = Status.BOT
        row.assigned_to = None
        row.save(update_fields=["handoff_status", "assigned_to", "updated_at"])
        live.conversation_event_publish(conversation_id=row.pk, kind="status")
    _copy(source=row, target=conversation, fields=["handoff_status", "assigned_to"])
    return conversation


def desk_state(conversation: Conversation) -> tuple:
    """What the desk's actions change (status, who works it, how often resolved): equal before
    and after an action that changed nothing (resolving a resolved conversation, reopening an
    open one), which is then not audited."""
    return (conversation.handoff_status, conversation.assigned_to_id, conversation.resolution_count)


def conversation_resolve(*, conversation: Conversation, user=None) -> Conversation:
    """Done: opens a new rating window (one CSAT per resolution). Resolving a resolved
    conversation changes nothing."""
    fields = ["handoff_status", "resolved_at", "resolved_by", "resolution_count"]
    with transaction.atomic():
        row = _locked(conversation)
        if row.handoff_status == Status.RESOLVED:
            _copy(source=row, target=conversation, fields=fields)
            return conversation
        row.handoff_status = Status.RESOLVED
        row.resolved_at = timezone.now()
        row.resolved_by = user
        row.resolution_count += 1
        row.save(update_fields=[*fields, "updated_at"])
        organization_services.event_emit(
            organization=conversation.organization,
            type="conversation.resolved",
            data=_event_data(
                row,
                resolution=row.resolution_count,
                resolved_by=str(user.pk) if user is not None else None,
            ),
        )
        live.conversation_event_publish(conversation_id=row.pk, kind="status")
    _copy(source=row, target=conversation, fields=fields)
    return conversation


def conversation_assign(*, conversation: Conversation, assignee) -> Conversation:
    """Who works this conversation (None: nobody); its status does not change."""
    with transaction.atomic():
        row = _locked(conversation)
        row.assigned_to = assignee
        row.save(update_fields=["assigned_to", "updated_at"])
    conversation.assigned_to = assignee
    return conversation


def conversation_reopen(*, conversation: Conversation) -> Conversation:
    """An operator reopens a resolved conversation: it goes back to the waiting queue."""
    if conversation.handoff_status != Status.RESOLVED:
        return conversation
    conversation, _ = handoff_request(conversation=conversation, trigger=Trigger.REOPENED)
    return conversation


def operator_reply_record(*, conversation: Conversation) -> None:
    """An operator replied: remember the first reply after the latest handoff request
    (the overview's "time to first human reply")."""
    if conversation.handoff_requested_at is None or conversation.first_human_reply_at is not None:
        return
    now = timezone.now()
    updated = (
        Conversation.objects.for_organization(conversation.organization_id)
        .filter(pk=conversation.pk, first_human_reply_at__isnull=True)
        .update(first_human_reply_at=now)
    )
    if updated:
        conversation.first_human_reply_at = now


def unanswered_streak_check(*, conversation: Conversation, answer: Message | None = None) -> bool:
    """After an answer: hand over when the assistant's last N answers in a row (since the
    latest handoff) found nothing in the knowledge base. Returns whether it handed over.

    `answer`: the one just stored. When it answered (and is not a reply to small talk, which
    neither counts nor breaks a streak), it is among the last N and breaks any streak: no
    query (most turns)."""
    limit = conversation.assistant.handoff_after_unanswered
    if not limit or conversation.handoff_status != Status.BOT:
        return False
    if (
        answer is not None
        and answer.answered
        and answer.role == Message.Role.ASSISTANT
        and not (answer.metadata or {}).get("small_talk")
    ):
        return False
    # Replies to small talk ("thanks!") are not answers to questions: they neither count nor break.
    answers = (
        Message.objects.for_organization(conversation.organization_id)
        .filter(conversation=conversation, role__in=[Message.Role.ASSISTANT, Message.Role.OPERATOR])
        .exclude(metadata__has_key="small_talk")
    )
    if conversation.handoff_requested_at is not None:
        answers = answers.filter(created_at__gt=conversation.handoff_requested_at)
    latest = list(
        answers.exclude(status=Message.Status.FAILED)
        .order_by("-created_at", "-id")
        .values_list("role", "answered")[:limit]
    )
    if len(latest) < limit or any(role != Message.Role.ASSISTANT or answered for role, answered in latest):
        return False
    _, changed = handoff_request(conversation=conversation, trigger=Trigger.UNANSWERED)
    return changed


def thumbs_down_check(*, message: Message) -> bool:
    """A 👎 on an answer asks for a person when the assistant is set to offer one."""
    conversation = message.conversation
    if message.feedback != -1 or message.role != Message.Role.ASSISTANT:
        return False
    if not conversation.assistant.handoff_on_thumbs_down or conversation.handoff_status != Status.BOT:
        return False
    _, changed = handoff_request(conversation=conversation, trigger=Trigger.THUMBS_DOWN)
    return changed


def _score_clean(score) -> int:
    if isinstance(score, bool) or not isinstance(score, (int, str)):
        raise ValidationFailed(
            "score must be a whole number from 1 to 5.", details={"score": ["Must be 1-5."]}
        )
    try:
        value = int(score)
    except ValueError:
        value = 0
    if str(value) != str(score).strip() or not 1 <= value <= 5:
        raise ValidationFailed(
            "score must be a whole number from 1 to 5.", details={"score": ["Must be 1-5."]}
        )
    return value


def csat_create(*, conversation: Conversation, score, comment: str = "") -> CsatRating:
    """The visitor's rating of the latest resolution: only when resolved, once each."""
    value = _score_clean(score)
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX_CHARS:
        raise ValidationFailed(
            f"The comment is longer than {COMMENT_MAX_CHARS} characters.",
            details={"comment": [f"Ensure this field has no more than {COMMENT_MAX_CHARS} characters."]},
        )
    try:
        with transaction.atomic():
            row = _locked(conversation)
            if row.handoff_status != Status.RESOLVED:
                raise Conflict("Only a resolved conversation can be rated.")
            rating = CsatRating.objects.create(
                organization_id=row.organization_id,
                conversation=row,
                resolution=row.resolution_count,
                score=value,
                comment=comment,
                resolved_by_id=row.resolved_by_id,
            )
            organization_services.event_emit(
                organization=conversation.organization,
                type="csat.created",
                data=_event_data(
                    row,
                    csat_id=str(rating.pk),
                    score=value,
                    resolution=row.resolution_count,
                    has_comment=bool(comment),
                ),
            )
    except IntegrityError:
        raise Conflict("This resolution has already been rated.") from None
    return rating
