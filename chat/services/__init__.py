"""Writes of the chat app. Import from here: `from chat import services`."""

from chat.services.conversations import (
    conversation_create,
    conversation_typing_signal,
    conversation_user_context,
    session_create,
    visitor_seen,
    widget_conversation_get_or_create,
)
from chat.services.handoff import (
    conversation_assign,
    conversation_reopen,
    conversation_resolve,
    csat_create,
    desk_state,
    handoff_hand_back,
    handoff_request,
    handoff_take_over,
)
from chat.services.messages import (
    conversation_note_add,
    message_feedback_set,
    operator_reply_post,
    saved_reply_create,
    saved_reply_delete,
    saved_reply_expand,
    saved_reply_render,
)
from chat.services.reply import (
    company_rules_from_payload,
    message_post,
    message_post_stream,
    reply_generate,
)

__all__ = [
    "company_rules_from_payload",
    "conversation_assign",
    "conversation_create",
    "conversation_user_context",
    "conversation_note_add",
    "conversation_reopen",
    "conversation_resolve",
    "csat_create",
    "conversation_typing_signal",
    "desk_state",
    "handoff_hand_back",
    "handoff_request",
    "handoff_take_over",
    "message_feedback_set",
    "message_post",
    "message_post_stream",
    "operator_reply_post",
    "reply_generate",
    "saved_reply_create",
    "saved_reply_delete",
    "saved_reply_expand",
    "saved_reply_render",
    "session_create",
    "visitor_seen",
    "widget_conversation_get_or_create",
]
