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
