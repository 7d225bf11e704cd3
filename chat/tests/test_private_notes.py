"""Private notes: the team sees them in the inbox; no visitor-facing response ever carries one
(session and conversation reads, transcripts, the seed-000 reply; the live stream serves
the same transcript rows)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from chat import selectors, services
from chat.models import ConversationNote
from chat.tests.conftest import widget_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

SECRET_NOTE = "NOTE-7f3a: customer is on the refund watch list"


def test_the_team_adds_and_reads_notes(
    owner_client, agent_client, foreign_client, tenant, assistant, offline
):
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    url = reverse("inbox-note", args=[session.pk])
    assert agent_client.post(url, {"body": SECRET_NOTE}).status_code == 302
    page = owner_client.get(reverse("inbox-conversation", args=[session.pk])).content.decode()
    assert SECRET_NOTE in page and 'data-testid="private-notes"' in page
    owner_client.post(url, {"body": "   "})  # empty: refused
    assert foreign_client.post(url, {"body": "from elsewhere"}).status_code == 404
    assert list(
        ConversationNote.objects.for_organization(tenant.organization).values_list("body", flat=True)
    ) == [SECRET_NOTE]


def test_no_visitor_response_carries_a_note(tenant, assistant, widget, faq, offline):
    visitor = widget_client(organization=tenant.organization, widget=widget, visitor_id="v_note")
    session_id = visitor.post("/api/v1/sessions", {}, format="json").json()["data"]["id"]
    base = f"/api/v1/sessions/{session_id}"
    answer = visitor.post(base + "/messages", {"content": "How do I reset my password?"}, format="json")
    session = selectors.conversation_get(organization=tenant.organization, conversation_id=session_id)
    services.conversation_note_add(conversation=session, user=tenant.owner, body=SECRET_NOTE)
    services.operator_reply_post(conversation=session, user=tenant.owner, content="Hello from the team")

    responses = [
        answer,
        visitor.get(base),
        visitor.get(base + "/messages"),
        visitor.post(base + "/messages", {"content": "Thanks!"}, format="json"),
        visitor.post(base + "/handoff", {}, format="json"),
        tenant.client().get(base + "/messages"),
    ]
    for response in responses:
        assert response.status_code in (200, 201), response.content
        assert SECRET_NOTE.encode() not in response.content
    # The live event stream reads the same transcript (chat.live reads Message rows only).
    assert ConversationNote not in {type(item) for item in selectors.message_list(conversation=session)}

    conversation = services.conversation_create(organization=tenant.organization, assistant=assistant)
    services.conversation_note_add(conversation=conversation, user=tenant.owner, body=SECRET_NOTE)
    api = tenant.client()
    for response in (
        api.get(f"/api/v1/conversations/{conversation.pk}"),
        api.get(f"/api/v1/conversations/{conversation.pk}/messages"),
        api.post(f"/api/v1/conversations/{conversation.pk}/messages", {"content": "Hi"}, format="json"),
    ):
        assert response.status_code in (200, 201) and SECRET_NOTE.encode() not in response.content
    seed = api.post(
        "/api/widget/chat",
        {"message": "How do I reset my password?", "widgetId": str(widget.pk), "sessionId": "s-1"},
        format="json",
    )
    assert seed.status_code == 200 and SECRET_NOTE.encode() not in seed.content
