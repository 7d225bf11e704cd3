from __future__ import annotations

import datetime as dt
from contextlib import nullcontext

from django.db import IntegrityError, connections, router, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from assistants.models import Assistant, UserContext
from assistants.services import user_context_merge
from chat import live
from chat.models import Conversation, Message
from core.compiled import CompiledInsert
from core.errors import NotFound, ValidationFailed
from organizations.models import Event
from organizations.services import event_build, event_emit, event_fold


def _assistant_check(*, organization, assistant: Assistant) -> None:
    if assistant.organization_id != organization.pk:
        raise NotFound("Assistant not found.")
    if not assistant.is_active:
        raise ValidationFailed(
            "This assistant is not active.", details={"assistant_id": ["Assistant is inactive."]}
        )


def is_playground(conversation: Conversation) -> bool:
    """A conversation the dashboard's playground opened: an operator's test, not a visitor."""
    return (conversation.metadata or {}).get("source") == "playground"


def _created(**fields) -> Conversation:
    """Insert a conversation and its `conversation.created` event, together."""
    with transaction.atomic(savepoint=False):
        conversation = Conversation.objects.create(**fields)
        data = {
            "conversation_id": str(conversation.pk),
            "kind": conversation.kind,
            "assistant_id": str(conversation.assistant_id),
            "widget_id": str(conversation.widget_id) if conversation.widget_id else None,
            "visitor_verified": conversation.visitor_verified,
        }
        if is_playground(conversation):
            data["playground"] = True  # recorded, not sent to webhooks
        event_emit(organization=conversation.organization_id, type="conversation.created", data=data)
    return conversation


def session_create(
    *,
    organization,
    assistant: Assistant,
    visitor_id: str = "",
    locale: str = "",
    metadata: dict | None = None,
    widget=None,
    verified_user_id: str | None = None,
) -> Conversation:
    """A visitor's session: anonymous, or with `verified_user_id` a customer whose identity
    the organization's server proved, linked to that customer's context (created if absent)."""
    _assistant_check(organization=organization, assistant=assistant)
    user_context = None
    if verified_user_id:
        user_context = user_context_merge(organization=organization, user_reference=verified_user_id)
    return _created(
        organization=organization,
        assistant=assistant,
        kind=Conversation.Kind.SESSION,
        customer_id=verified_user_id or "",
        user_context=user_context,
        visitor_verified=bool(verified_user_id),
        visitor_id=visitor_id or "",
        locale=locale or assistant.language or "",
        metadata=metadata or {},
        widget=widget,
    )


def conversation_create(
    *,
    organization,
    assistant: Assistant,
    customer_id: str = "",
    user_context: UserContext | None = None,
    title: str = "",
    locale: str = "",
    metadata: dict | None = None,
) -> Conversation:
    """A known customer's persistent conversation; its user context personalises answers.
    Without `user_context`, the organization's context for `customer_id` is the one, if any
    (created later, it is linked before the next answer: `conversation_user_context`)."""
    _assistant_check(organization=organization, assistant=assistant)
    if user_context is not None and user_context.organization_id != organization.pk:
        raise NotFound("User context not found.")
    if user_context is None and customer_id:
        user_context = (
            UserContext.objects.for_organization(organization).filter(user_reference=customer_id).first()
        )
    return _created(
        organization=organization,
        assistant=assistant,
        kind=Conversation.Kind.CONVERSATION,
        customer_id=customer_id or "",
        user_context=user_context,
        title=title or "",
        locale=locale or assistant.language or "",
        metadata=metadata or {},
    )


def conversation_user_context(*, conversation: Conversation) -> UserContext | None:
    """The customer's context: the one the conversation is linked to or, for a conversation
    that names a `customer_id` and has none, the organization's context with that
    `user_reference`, linked now (the API reference creates the conversation first and the
    context after it). One indexed read per answer while the customer has no context."""
    if conversation.user_context_id:
        return conversation.user_context
    if not conversation.customer_id:
        return None
    context = (
        UserContext.objects.for_organization(conversation.organization_id)
        .filter(user_reference=conversation.customer_id)
        .first()
    )
    if context is not None:
        Conversation.objects.for_organization(conversation.organization_id).filter(
            pk=conversation.pk, user_context__isnull=True
        ).update(user_context=context)
        conversation.user_context = context
    return context


def widget_conversation_get_or_create(*, organization, widget, session_id: str = "") -> Conversation:
    """The widget chat API's `sessionId`: the same id on the same widget continues the same history."""
    if widget.organization_id != organization.pk:
        raise NotFound("Widget not found.")
    scoped = Conversation.objects.for_organization(organization)
    if session_id:
        existing = (
            scoped.filter(widget=widget, external_session_id=session_id).select_related("assistant").first()
        )
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            return _created(
                organization=organization,
                assistant=widget.assistant,
                kind=Conversation.Kind.SESSION,
                visitor_id=session_id,
                external_session_id=session_id,
                widget=widget,
                locale=widget.assistant.language or "",
            )
    except IntegrityError:  # the same sessionId arrived twice at once
        return scoped.select_related("assistant").get(widget=widget, external_session_id=session_id)


SEEN_WRITE_EVERY = dt.timedelta(seconds=60)


def visitor_seen(*, conversation: Conversation) -> None:
    """The visitor's widget is here (it opened the live stream, read or wrote): remembered
    at most once a minute, so an operator's reply to a visitor who left can go by email."""
    now = timezone.now()
    seen = conversation.visitor_seen_at
    if seen is not None and now - seen < SEEN_WRITE_EVERY:
        return
    Conversation.objects.for_organization(conversation.organization_id).filter(pk=conversation.pk).update(
        visitor_seen_at=now
    )
    conversation.visitor_seen_at = now


def conversation_typing_signal(*, conversation: Conversation) -> None:
    """An operator is typing a reply: the visitor's open panel shows it for a few seconds."""
    live.conversation_event_publish(conversation_id=conversation.pk, kind="typing")


# The two rows every stored message inserts, compiled once (the insert compiler's SQL for
# them was a fifth of storing a message's Python). A message's number is the one the
# conversation's UPDATE in the same statement hands out (no row: the conversation is gone,
# and the NOT NULL column refuses the insert).
_MESSAGE_INSERT = CompiledInsert(
    Message, expressions={"seq": RawSQL("(SELECT seq FROM touched)", ())}, returning=("seq",)
)
_EVENT_INSERT = CompiledInsert(Event)


def message_store(*, message: Message) -> Message:
    """Insert a new message, bump its conversation and wake its live streams (see
    `_message_insert`)."""
    return _message_insert(message, read=None)[0]


def message_store_reading(*, message: Message, read) -> tuple[Message, object]:
    """`message_store`, and the value of a read-only SQL expression evaluated by the same
    statement: `read(message)` (called once the message has its `created_at`) returns the
    expression and its parameters. It sees the database as it was before this message was
    stored (the statement's snapshot). A chat turn reads its history this way."""
    return _message_insert(message, read=read)


def _message_insert(message: Message, *, read) -> tuple[Message, object]:
    """Insert a new message, bump its conversation's `last_message_at`/`updated_at` and wake
    the conversation's live streams — in one statement, so one round trip and one commit
    (a chat turn stores two messages; as three autocommitted statements each, the commits
    and round trips were a measurable share of a turn's database time under load).

    The conversation update and the `message.created` event row are data-modifying CTEs:
    Postgres runs them to completion with the INSERT, so all of them (and the NOTIFY in its
    RETURNING, delivered at commit) succeed or fail together — a duplicate Idempotency-Key's
    IntegrityError leaves the conversation untouched and records no event. The event's
    webhook deliveries are one more CTE (organizations.services.event_fold): the whole write
    is one autocommitted statement, no BEGIN/COMMIT round trips around it (it was four
    statements a message: BEGIN, this, the deliveries, COMMIT).

    The same UPDATE numbers the message (`Message.seq` = the conversation's `message_seq` + 1):
    the row lock it takes is held until commit, so a second writer of the conversation gets
    the next number only after the first one committed (or rolled back, leaving a gap) — the
    numbers follow commit order, which is what the live stream and `?after=` resume from.
    """
    if not message._state.adding:
        raise ValueError("message_store only inserts new messages")
    using = router.db_for_write(Message, instance=message)
    # as_sql() runs the fields' pre_save: created_at (auto_now_add) is set on `message` here.
    insert_sql, insert_params = _MESSAGE_INSERT.as_sql(message, using=using)
    # Its `message.created` event (ids and facts, no text) is inserted by the same statement.
    data = {
        "conversation_id": str(message.conversation_id),
        "message_id": str(message.pk),
        "role": message.role,
        "in_reply_to": str(message.in_reply_to_id) if message.in_reply_to_id else None,
    }
    if is_playground(message.conversation):
        data["playground"] = True  # recorded, not sent to webhooks
    event = event_build(organization=message.organization_id, type="message.created", data=data)
    event_sql, event_params = _EVENT_INSERT.as_sql(event, using=using)
    # The event's subscribers' rows (webhook deliveries) go into the same statement, their ids
    # come back with the message's number.
    fold = event_fold(event=event)
    notify, notify_params = live.event_notify_sql(conversation_id=message.conversation_id, kind="message")
    conversation_table = connections[using].ops.quote_name(Conversation._meta.db_table)
    touched = message.created_at
    writes = "".join(f", {name} AS ({sql})" for name, sql, _params in fold.ctes)
    returning = "".join(f", {expression}" for expression in fold.returning)
    read_params = []
    if read is not None:
        read_sql, read_params = read(message)
        returning += f", {read_sql}"
    # Quoted identifiers and Django-compiled SQL only; every value is a parameter.
    statement = (
        f"WITH touched AS (UPDATE {conversation_table} SET last_message_at = %s, updated_at = %s, "  # noqa: S608
        f"message_seq = message_seq + 1 WHERE organization_id = %s AND id = %s "
        f"RETURNING message_seq AS seq, {notify}), emitted AS ({event_sql}){writes} {insert_sql}{returning}"
    )
    params = [touched, touched, message.organization_id, message.conversation_id, *notify_params]
    params += event_params
    for _name, _sql, write_params in fold.ctes:
        params += write_params
    # One statement commits the message, its event and the event's webhook deliveries together:
    # no transaction of its own (and no savepoint inside a caller's) unless a subscriber writes
    # in a statement of its own.
    atomic = transaction.atomic(using=using, savepoint=False) if fold.needs_transaction else nullcontext()
    with atomic:
        with connections[using].cursor() as cursor:
            cursor.execute(statement, [*params, *insert_params, *read_params])
            message.seq, *arrays = cursor.fetchone()
        message._state.adding = False
        message._state.db = using
        event._state.adding = False
        event._state.db = using
        fold.published(arrays[: len(fold.returning)])
    conversation = message.conversation
    conversation.last_message_at = touched
    conversation.updated_at = touched
    conversation.message_seq = message.seq
    return message, (arrays[-1] if read is not None else None)
