"""The chat turn's compiled lookups read what the ORM would have read (issue 14): the session
lookup runs SQL compiled once (core.compiled) and a message is represented by one shared
serializer per shape; neither may change a field, a relation, a tenant boundary or an error."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assistants.models import UserContext
from chat import selectors, services
from chat.models import Conversation, Message
from chat.serializers import MessageSerializer, VisitorMessageSerializer, message_data
from core.errors import NotFound

pytestmark = pytest.mark.django_db


def _orm(conversation_id) -> Conversation:
    return (
        Conversation.all_organizations.select_related("organization", "assistant", "user_context")
        .filter(pk=conversation_id)
        .get()
    )


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_the_session_lookup_builds_what_the_orm_builds(tenant, assistant):
    context = UserContext.objects.create(
        organization=tenant.organization, user_reference="cust-1", traits={"plan": "gold", "n": 2}
    )
    session = services.session_create(
        organization=tenant.organization,
        assistant=assistant,
        visitor_id="v1",
        metadata={"page": "/pricing", "nested": {"a": [1, 2]}},
    )
    Conversation.objects.for_organization(tenant.organization).filter(pk=session.pk).update(
        user_context=context
    )
    expected = _orm(session.pk)
    for kind, visitor in [(None, None), ("session", None), ("session", "v1"), (None, "v1")]:
        with CaptureQueriesContext(connection) as captured:
            found = selectors.conversation_get(
                organization=tenant.organization,
                conversation_id=str(session.pk),
                kind=kind,
                visitor_id=visitor,
            )
            assert found.assistant.name == "Acme Helper"
            assert found.user_context.traits == {"plan": "gold", "n": 2}
            assert found.organization is tenant.organization  # the caller's: not read again
        assert len(captured.captured_queries) == 1
        assert _fields(found) == _fields(expected)
        assert _fields(found.assistant) == _fields(expected.assistant)
        assert _fields(found.user_context) == _fields(expected.user_context)
        assert found.metadata == {"page": "/pricing", "nested": {"a": [1, 2]}}  # JSON decoded
        assert found.created_at.tzinfo is not None
        assert found._state.adding is False and found._state.db == "default"
    found.locale = "fr"
    found.save(update_fields=["locale"])  # a normal, saveable instance
    assert _orm(session.pk).locale == "fr"


def test_the_session_lookup_keeps_every_boundary(tenant, other_tenant, assistant):
    session = services.session_create(organization=tenant.organization, assistant=assistant, visitor_id="v1")
    refused = [
        {"organization": other_tenant.organization},  # another organization's session
        {"organization": tenant.organization, "kind": "conversation"},
        {"organization": tenant.organization, "visitor_id": "someone-else"},
        {"organization": tenant.organization, "visitor_id": ""},
    ]
    for arguments in refused:
        with pytest.raises(NotFound):
            selectors.conversation_get(conversation_id=session.pk, **arguments)
    with pytest.raises(NotFound):
        selectors.conversation_get(organization=tenant.organization, conversation_id=uuid.uuid4())
    with pytest.raises(ValidationError):  # as the ORM's lookup refuses it
        selectors.conversation_get(organization=tenant.organization, conversation_id="not-a-uuid")
    # An organization given by its id: the relation is loaded on use, as the ORM does.
    found = selectors.conversation_get(organization=tenant.organization.pk, conversation_id=session.pk)
    assert found.organization == tenant.organization


def test_a_message_is_represented_as_its_serializer_does(tenant, session):
    message = services.message_post(conversation=session, content="How do I reset my password?")
    message.tool_calls = [{"name": "lookup", "status": "ok"}]
    message.feedback = -1
    for serializer_class in (MessageSerializer, VisitorMessageSerializer):
        assert message_data(message, serializer_class) == serializer_class(message).data
    assert "tool_calls" not in message_data(message, VisitorMessageSerializer)
    assert message_data(message)["feedback"] == "down"
    question = Message.objects.for_organization(tenant.organization).get(pk=message.in_reply_to_id)
    assert message_data(question) == MessageSerializer(question).data


def test_a_stored_message_is_the_row_its_instance_says(tenant, session):
    """message_store's INSERT is compiled once: every field still goes in as save() would write
    it (JSON, defaults, the auto_now_add stamp set on the instance), the number from the
    conversation's UPDATE."""
    from chat.services.conversations import message_store

    first = message_store(
        message=Message(
            organization_id=tenant.organization.pk,
            conversation=session,
            role=Message.Role.USER,
            content="Hello",
            metadata={"page": "/cart", "items": [1, {"sku": "A-1"}]},
            idempotency_key="k1",
        )
    )
    second = message_store(
        message=Message(
            organization_id=tenant.organization.pk,
            conversation=session,
            role=Message.Role.ASSISTANT,
            content="Hi!",
            in_reply_to=first,
            sources=[{"title": "FAQ", "number": 1}],
            tool_calls=[{"name": "lookup"}],
            cost=0.000123,
            prompt_tokens=7,
        )
    )
    for stored in (first, second):
        assert stored.created_at is not None and stored._state.adding is False
        read = Message.objects.for_organization(tenant.organization).get(pk=stored.pk)
        assert _fields(read) == _fields(stored) | {"cost": read.cost}
    assert (first.seq, second.seq) == (1, 2)
    assert float(second.cost) == 0.000123


def test_the_history_read_with_the_question_is_the_one_read_alone(tenant, session, settings):
    """A new question's history comes back from the statement storing it; a stored question
    (a retry) reads it on its own: the same exchanges either way, failed answers left out,
    an operator's reply marked, at most CHAT_HISTORY_TURNS exchanges, oldest first."""
    from chat.services import reply
    from chat.services.conversations import message_store

    settings.CHAT_HISTORY_TURNS = 2

    def store(role, content, status=Message.Status.COMPLETE):
        return message_store(
            message=Message(
                organization_id=tenant.organization.pk,
                conversation=session,
                role=role,
                content=content,
                status=status,
            )
        )

    first = reply._question_insert(
        Message(
            organization_id=tenant.organization.pk, conversation=session, role=Message.Role.USER, content="1?"
        )
    )
    assert reply._history(session, first) == ((), "")
    store(Message.Role.ASSISTANT, "First answer")
    store(Message.Role.USER, "Second?")
    store(Message.Role.ASSISTANT, "Broken", status=Message.Status.FAILED)
    store(Message.Role.OPERATOR, "A person here")
    store(Message.Role.USER, "Third?")
    question = reply._question_insert(
        Message(
            organization_id=tenant.organization.pk,
            conversation=session,
            role=Message.Role.USER,
            content="Now?",
        )
    )
    assert "_history_pairs" in question.__dict__
    prefetched = reply._history(session, question)
    assert "_history_pairs" not in question.__dict__  # taken once: a retry reads again
    assert reply._history(session, question) == prefetched
    history, previous_question = prefetched
    assert [(m.role, m.content) for m in history] == [
        ("assistant", "First answer"),
        ("user", "Second?"),
        ("assistant", "(human agent) A person here"),
        ("user", "Third?"),
    ]
    assert previous_question == "Third?"
