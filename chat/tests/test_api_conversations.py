"""Seed 003 conversations: persistent customers, user contexts personalising answers."""

import uuid

import pytest

from assistants.models import UserContext
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db


def test_seed_js_personalized_chat_flow(tenant, assistant, faq, llm, llm_server):
    api = tenant.client()
    created = api.post(
        "/api/v1/contexts/",
        {
            "user_reference": "user-123",
            "traits": {
                "name": "Alice",
                "purchase_history": ["laptop-1", "mouse-2"],
                "preferences": {"category": "electronics"},
            },
        },
        format="json",
    )
    assert created.status_code == 201
    conversation = api.post(
        "/api/v1/conversations/",
        {
            "assistant_id": str(assistant.id),
            "customer_id": "user-123",
            "user_context_id": "user-123",
            "title": "Product Recommendations",
            "metadata": {"source": "product_page"},
        },
        format="json",
    )
    assert conversation.status_code == 201, conversation.content
    data = conversation.json()["data"]
    assert data["user_context_id"] == created.json()["data"]["id"]
    result = api.post(
        f"/api/v1/conversations/{data['id']}/messages",
        {"content": "What laptop do you recommend?", "metadata": {"context": "product_inquiry"}},
        format="json",
    )
    assert result.status_code == 201, result.content
    assert result.json()["data"]["role"] == "assistant"
    system = llm_server.system_prompt()
    assert '"name": "Alice"' in system and "laptop-1" in system and "electronics" in system
    assert "<user_profile>" in system


def test_seed_curl_conversation_flow(tenant, assistant, offline):
    api = tenant.client()
    response = api.post(
        "/api/v1/conversations/",
        {
            "assistant_id": str(assistant.id),
            "customer_id": "user-456",
            "title": "Order Support",
            "locale": "en",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    conversation = response.json()["data"]
    assert conversation["title"] == "Order Support" and conversation["customer_id"] == "user-456"
    reply = api.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        {"content": "Can you help me track my order?", "metadata": {"order_id": "12345"}},
        format="json",
    )
    assert reply.status_code == 201
    assert api.get(f"/api/v1/conversations/{conversation['id']}").json()["data"]["id"] == conversation["id"]
    transcript = api.get(f"/api/v1/conversations/{conversation['id']}/messages").json()["data"]
    assert transcript["count"] == 2


def test_a_customers_context_reaches_their_conversation_in_either_order(
    tenant, other_tenant, assistant, llm, llm_server
):
    """Seed 003's curl examples create the conversation (customer_id "user-456") first and the
    context (user_reference "user-456") after it: the next answer is personalised all the same,
    and a conversation created once the context exists is linked at once. Another
    organization's context for the same reference is never used."""
    api = tenant.client()
    other_tenant.client().post(
        "/api/v1/contexts/", {"user_reference": "user-456", "traits": {"name": "Mallory"}}, format="json"
    )
    created = api.post(
        "/api/v1/conversations/",
        {"assistant_id": str(assistant.id), "customer_id": "user-456", "title": "Order Support"},
        format="json",
    ).json()["data"]
    assert created["user_context_id"] is None
    first = api.post(
        f"/api/v1/conversations/{created['id']}/messages", {"content": "Can you help me?"}, format="json"
    )
    assert first.status_code == 201
    assert (
        "<user_profile>\n" not in llm_server.system_prompt() and "Mallory" not in llm_server.system_prompt()
    )
    context = api.post(
        "/api/v1/contexts/",
        {"user_reference": "user-456", "traits": {"name": "John Doe", "subscription_tier": "premium"}},
        format="json",
    ).json()["data"]
    second = api.post(
        f"/api/v1/conversations/{created['id']}/messages", {"content": "Track my order?"}, format="json"
    )
    assert second.status_code == 201
    system = llm_server.system_prompt()
    assert '"name": "John Doe"' in system and "premium" in system and "Mallory" not in system
    assert (
        api.get(f"/api/v1/conversations/{created['id']}").json()["data"]["user_context_id"] == context["id"]
    )
    later = api.post(
        "/api/v1/conversations/",
        {"assistant_id": str(assistant.id), "customer_id": "user-456"},
        format="json",
    ).json()["data"]
    assert later["user_context_id"] == context["id"]


def test_user_context_by_uuid_and_unknown_reference(tenant, assistant):
    api = tenant.client()
    context = UserContext.objects.create(organization=tenant.organization, user_reference="u-9", traits={})
    ok = api.post(
        "/api/v1/conversations/",
        {"assistant_id": str(assistant.id), "user_context_id": str(context.id)},
        format="json",
    )
    assert ok.status_code == 201 and ok.json()["data"]["user_context_id"] == str(context.id)
    missing = api.post(
        "/api/v1/conversations/",
        {"assistant_id": str(assistant.id), "user_context_id": "nobody"},
        format="json",
    )
    assert missing.status_code == 400 and "user_context_id" in missing.json()["data"]


def test_another_orgs_context_cannot_be_attached(tenant, other_tenant, assistant):
    theirs = UserContext.objects.create(
        organization=other_tenant.organization, user_reference="secret", traits={"x": 1}
    )
    for reference in (str(theirs.id), "secret"):
        response = tenant.client().post(
            "/api/v1/conversations/",
            {"assistant_id": str(assistant.id), "user_context_id": reference},
            format="json",
        )
        assert response.status_code == 400
    assert not Conversation.objects.unscoped().exists()


def test_list_filters_by_customer_id(tenant, assistant):
    api = tenant.client()
    for customer in ("a", "a", "b"):
        api.post(
            "/api/v1/conversations/",
            {"assistant_id": str(assistant.id), "customer_id": customer},
            format="json",
        )
    api.post("/api/v1/sessions/", {"assistant_id": str(assistant.id)}, format="json")
    assert api.get("/api/v1/conversations/").json()["data"]["count"] == 3
    assert api.get("/api/v1/conversations?customer_id=a").json()["data"]["count"] == 2


def test_validation_failures(tenant, assistant):
    api = tenant.client()
    assert api.post("/api/v1/conversations/", {"customer_id": "x"}, format="json").status_code == 400
    assert (
        api.post("/api/v1/conversations/", {"assistant_id": str(uuid.uuid4())}, format="json").status_code
        == 404
    )
    assert not Conversation.objects.for_organization(tenant.organization).exists()


def test_sessions_and_conversations_do_not_mix(tenant, assistant, offline):
    api = tenant.client()
    session = api.post("/api/v1/sessions/", {"assistant_id": str(assistant.id)}, format="json").json()["data"]
    assert api.get(f"/api/v1/conversations/{session['id']}").status_code == 404
    assert (
        api.post(
            f"/api/v1/conversations/{session['id']}/messages", {"content": "x"}, format="json"
        ).status_code
        == 404
    )


def test_cross_tenant_is_404_and_changes_nothing(tenant, other_tenant, assistant, offline):
    api = tenant.client()
    conversation = api.post(
        "/api/v1/conversations/", {"assistant_id": str(assistant.id), "customer_id": "c"}, format="json"
    ).json()["data"]
    api.post(f"/api/v1/conversations/{conversation['id']}/messages", {"content": "hello"}, format="json")
    intruder = other_tenant.client()
    url = f"/api/v1/conversations/{conversation['id']}"
    assert intruder.get(url).status_code == 404
    assert intruder.get(url + "/messages").status_code == 404
    assert intruder.post(url + "/messages", {"content": "hi"}, format="json").status_code == 404
    answer = Message.objects.for_organization(tenant.organization).get(role="assistant")
    assert (
        intruder.post(f"{url}/messages/{answer.id}/feedback", {"rating": "down"}, format="json").status_code
        == 404
    )
    assert intruder.get("/api/v1/conversations/").json()["data"]["count"] == 0
    assert intruder.get("/api/v1/conversations?customer_id=c").json()["data"]["count"] == 0
    assert Message.objects.unscoped().count() == 2
    answer.refresh_from_db()
    assert answer.feedback is None
