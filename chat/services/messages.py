from __future__ import annotations

import re

from django.db import IntegrityError, transaction

from chat.models import Conversation, ConversationNote, Message, SavedReply
from chat.services import notifications
from chat.services.conversations import conversation_user_context, message_store
from chat.services.handoff import handoff_take_over, operator_reply_record, thumbs_down_check
from core.errors import Conflict, ValidationFailed
from organizations.services import event_emit

RATINGS = {"up": 1, "down": -1, "none": 0, 1: 1, -1: -1, 0: 0}


@transaction.atomic
def operator_reply_post(*, conversation: Conversation, user, content: str) -> Message:
    """A human agent's reply. Replying takes the conversation over from the bot; the take-over
    and the stored reply go together or not at all."""
    content = (content or "").strip()
    if not content:
        raise ValidationFailed("The reply is empty.", details={"content": ["This field may not be blank."]})
    if conversation.handoff_status != Conversation.HandoffStatus.HUMAN or conversation.assigned_to_id is None:
        handoff_take_over(conversation=conversation, user=conversation.assigned_to or user)
    message = message_store(
        message=Message(
            organization_id=conversation.organization_id,
            conversation=conversation,
            role=Message.Role.OPERATOR,
            content=content,
            author=user,
            answered=True,
        )
    )
    operator_reply_record(conversation=conversation)
    notifications.visitor_reply_mail_enqueue(conversation=conversation, message=message)
    return message


def message_feedback_set(*, message: Message, rating) -> Message:
    """A visitor's thumbs up (1) / down (-1) on an answer; 0 or None clears it."""
    if message.role == Message.Role.USER:
        raise ValidationFailed(
            "Only answers can be rated.", details={"rating": ["Only answers can be rated."]}
        )
    if rating is None:
        value = None
    elif isinstance(rating, str) and rating.lower() in RATINGS:
        value = RATINGS[rating.lower()]
    elif isinstance(rating, int) and not isinstance(rating, bool) and rating in RATINGS:
        value = RATINGS[rating]
    else:
        raise ValidationFailed(
            "rating must be 'up' or 'down'.", details={"rating": ["Must be 'up', 'down', 1, -1 or 0."]}
        )
    message.feedback = None if value == 0 else value
    with transaction.atomic():
        message.save(update_fields=["feedback"])
        if message.feedback is not None:
            event_emit(
                organization=message.organization_id,
                type="feedback.created",
                data={
                    "conversation_id": str(message.conversation_id),
                    "message_id": str(message.pk),
                    "rating": "up" if message.feedback > 0 else "down",
                },
            )
    thumbs_down_check(message=message)
    return message


NOTE_MAX_CHARS = 4000


def conversation_note_add(*, conversation: Conversation, user, body: str) -> ConversationNote:
    """A private note for the team; the visitor never sees it."""
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("The note is empty.", details={"body": ["This field may not be blank."]})
    if len(body) > NOTE_MAX_CHARS:
        raise ValidationFailed(
            f"The note is longer than {NOTE_MAX_CHARS} characters.",
            details={"body": [f"Ensure this field has no more than {NOTE_MAX_CHARS} characters."]},
        )
    return ConversationNote.objects.create(
        organization_id=conversation.organization_id, conversation=conversation, author=user, body=body
    )


_SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_PLACEHOLDER = re.compile(r"\{\{\s*visitor\.([A-Za-z0-9_]{1,64})\s*\}\}")


def saved_reply_create(*, organization, title: str, shortcut: str, body: str) -> SavedReply:
    title, shortcut, body = (
        (title or "").strip(),
        (shortcut or "").strip().lstrip("/").lower(),
        (body or "").strip(),
    )
    errors = {}
    if not title or len(title) > 100:
        errors["title"] = ["Give it a title of up to 100 characters."]
    if not _SHORTCUT.match(shortcut):
        errors["shortcut"] = ["Use 1-40 lower-case letters, digits, '-' or '_'."]
    if not body or len(body) > NOTE_MAX_CHARS:
        errors["body"] = [f"Write the reply (up to {NOTE_MAX_CHARS} characters)."]
    if errors:
        raise ValidationFailed("The saved reply is not valid.", details=errors)
    try:
        with transaction.atomic():
            return SavedReply.objects.create(
                organization=organization, title=title, shortcut=shortcut, body=body
            )
    except IntegrityError:
        raise Conflict(
            f"/{shortcut} is already taken.", details={"shortcut": [f"/{shortcut} is already taken."]}
        ) from None


def saved_reply_delete(*, saved_reply: SavedReply) -> None:
    saved_reply.delete()


def saved_reply_render(*, body: str, conversation: Conversation) -> str:
    """Fills `{{visitor.<trait>}}` from the conversation's context traits (and `name` from its
    metadata when the traits have none); an unknown trait becomes empty text."""
    context = conversation_user_context(conversation=conversation)
    traits = context.traits if context is not None else {}
    traits = traits if isinstance(traits, dict) else {}
    metadata = conversation.metadata or {}

    def fill(match: re.Match) -> str:
        key = match.group(1)
        value = traits.get(key, metadata.get(key) if key == "name" else None)
        return "" if value is None or isinstance(value, (dict, list)) else str(value)

    return _PLACEHOLDER.sub(fill, body)


def saved_reply_expand(*, conversation: Conversation, content: str) -> str:
    """A reply that is just `/shortcut` becomes that saved reply, filled for this visitor."""
    stripped = (content or "").strip()
    if not stripped.startswith("/") or not _SHORTCUT.match(stripped[1:]):
        return content
    saved = (
        SavedReply.objects.for_organization(conversation.organization_id)
        .filter(shortcut=stripped[1:])
        .first()
    )
    return saved_reply_render(body=saved.body, conversation=conversation) if saved else content
