from __future__ import annotations

from chat.models import Conversation, ConversationNote, Message
from chat.services.conversations import conversation_touch
from chat.services.handoff import handoff_take_over, operator_reply_record, thumbs_down_check
from supportai.api.errors import ValidationFailed

RATINGS = {"up": 1, "down": -1, "none": 0, 1: 1, -1: -1, 0: 0}


def operator_reply_post(*, conversation: Conversation, user, content: str) -> Message:
    """A human agent's reply. Replying takes the conversation over from the bot."""
    content = (content or "").strip()
    if not content:
        raise ValidationFailed("The reply is empty.", data={"content": ["This field may not be blank."]})
    if conversation.handoff_status != Conversation.HandoffStatus.HUMAN or conversation.assigned_to_id is None:
        handoff_take_over(conversation=conversation, user=conversation.assigned_to or user)
    message = Message.objects.create(
        organization_id=conversation.organization_id,
        conversation=conversation,
        role=Message.Role.OPERATOR,
        content=content,
        author=user,
        answered=True,
    )
    conversation_touch(conversation=conversation)
    operator_reply_record(conversation=conversation)
    return message


def message_feedback_set(*, message: Message, rating) -> Message:
    """A visitor's thumbs up (1) / down (-1) on an answer; 0 or None clears it."""
    if message.role == Message.Role.USER:
        raise ValidationFailed("Only answers can be rated.", data={"rating": ["Only answers can be rated."]})
    if rating is None:
        value = None
    elif isinstance(rating, str) and rating.lower() in RATINGS:
        value = RATINGS[rating.lower()]
    elif isinstance(rating, int) and not isinstance(rating, bool) and rating in RATINGS:
        value = RATINGS[rating]
    else:
        raise ValidationFailed(
            "rating must be 'up' or 'down'.", data={"rating": ["Must be 'up', 'down', 1, -1 or 0."]}
        )
    message.feedback = None if value == 0 else value
    message.save(update_fields=["feedback"])
    thumbs_down_check(message=message)
    return message


NOTE_MAX_CHARS = 4000


def conversation_note_add(*, conversation: Conversation, user, body: str) -> ConversationNote:
    """A private note for the team; the visitor never sees it."""
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("The note is empty.", data={"body": ["This field may not be blank."]})
    if len(body) > NOTE_MAX_CHARS:
        raise ValidationFailed(
            f"The note is longer than {NOTE_MAX_CHARS} characters.",
            data={"body": [f"Ensure this field has no more than {NOTE_MAX_CHARS} characters."]},
        )
    return ConversationNote.objects.create(
        organization_id=conversation.organization_id, conversation=conversation, author=user, body=body
    )
