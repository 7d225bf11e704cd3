"""Seed 003 sessions: API key and widget-token flows, visitor isolation, polling, feedback."""

import uuid

import pytest

from chat.models import Conversation, Message
from chat.tests.conftest import widget_client

pytestmark = pytest.mark.django_db


def _session(api, assistant, **extra):
    body = {
        "assistant_id": str(assistant.id),
        "visitor_id": "visitor-123",
        "locale": "en",
        "metadata": {"source": "website", "page": "/contact"},
    } | extra
    response = api.post("/api/v1/sessions/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["data"]


def test_seed_curl_session_flow_with_api_key(tenant, assistant, faq, offline):
    api = tenant.client()
    session = _session(api, assistant)
    assert session["visitor_id"] == "visitor-123" and session["metadata"]["page"] == "/contact"
    assert session["assistant_id"] == str(assistant.id)
    response = api.post(
        f"/api/v1/sessions/{session['id']}/messages",
        {"content": "Hello, I need help with my order", "metadata": {"user_type": "customer"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "success" and body["status_code"] == 201
    data = body["data"]
    assert data["role"] == "assistant" and data["content"]
    assert {"id", "role", "content", "sources", "created_at", "in_reply_to"} <= set(data)
    question = Message.objects.for_organization(tenant.organization).get(role="user")
    assert data["in_reply_to"] == str(question.id)
    assert question.metadata == {"user_type": "customer"}
    assert api.get(f"/api/v1/sessions/{session['id']}").json()["data"]["id"] == session["id"]


def test_answer_from_faq_has_sources(tenant, assistant, faq, offline):
    api = tenant.client()
    session = _session(api, assistant)
    data = api.post(
        f"/api/v1/sessions/{session['id']}/messages/",
        {"content": "How can I reset my password?"},
        format="json",
    ).json()["data"]
    assert data["content"] == 'Go to Settings > Security and click "Reset Password".'
    source = data["sources"][0]
    assert source["type"] == "qa" and source["title"] and "snippet" in source and "score" in source
    assert source["source_id"] == str(faq[1].id)


def test_seed_js_session_flow_with_a_widget_token(tenant, assistant, widget, faq, offline):
    client = widget_client(organization=tenant.organization, widget=widget)
    created = client.post(
        "/api/v1/sessions/",
        {
            "assistant_id": str(assistant.id),
            "visitor_id": "visitor-1700000000000",
            "metadata": {"source": "support_widget"},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    session = created.json()
    result = client.post(
        f"/api/v1/sessions/{session['data']['id']}/messages",
        {"content": "I need help with my order", "metadata": {"user_type": "customer"}},
        format="json",
    )
    assert result.status_code == 201, result.content
    assert result.json()["data"]["role"] == "assistant"
    stored = Conversation.objects.for_organization(tenant.organization).get()
    assert stored.widget_id == widget.id
    assert stored.metadata["client_visitor_id"] == "visitor-1700000000000"
    assert stored.visitor_id != "visitor-1700000000000"  # the token's visitor, not the page's claim
    listed = client.get(f"/api/v1/sessions/{stored.id}/messages").json()["data"]
    assert [m["role"] for m in listed["results"]] == ["user", "assistant"]


def test_seed_minimal_session_create_with_token(tenant, assistant):
    client = widget_client(organization=tenant.organization)
    response = client.post("/api/v1/sessions", {"assistant_id": str(assistant.id)}, format="json")
    assert response.status_code == 201, response.content


def test_another_visitors_session_is_404(tenant, assistant, widget, offline):
    owner = widget_client(organization=tenant.organization, widget=widget, visitor_id="v_owner")
    session = _session(owner, assistant)
    other_visitor = widget_client(organization=tenant.organization, widget=widget, visitor_id="v_other")
    url = f"/api/v1/sessions/{session['id']}"
    assert other_visitor.get(url).status_code == 404
    assert other_visitor.get(url + "/messages").status_code == 404
    assert other_visitor.post(url + "/messages", {"content": "hi"}, format="json").status_code == 404
    assert not Message.objects.for_organization(tenant.organization).exists()


def test_a_token_cannot_read_an_api_key_session(tenant, assistant, offline):
    session = _session(tenant.client(), assistant)
    visitor = widget_client(organization=tenant.organization, visitor_id="visitor-123x")
    assert visitor.get(f"/api/v1/sessions/{session['id']}").status_code == 404


def test_widget_token_for_another_assistant_is_refused(tenant, widget):
    from assistants.models import Assistant

    other = Assistant.objects.create(organization=tenant.organization, name="Other")
    client = widget_client(organization=tenant.organization, widget=widget)
    response = client.post("/api/v1/sessions/", {"assistant_id": str(other.id)}, format="json")
    assert response.status_code == 403
    assert not Conversation.objects.for_organization(tenant.organization).exists()


def test_widget_tokens_cannot_reach_conversations_or_list_sessions(tenant, assistant, widget):
    client = widget_client(organization=tenant.organization, widget=widget)
    assert client.get("/api/v1/sessions/").status_code == 403
    assert client.get("/api/v1/conversations/").status_code == 403
    body = {"assistant_id": str(assistant.id), "customer_id": "c1"}
    assert client.post("/api/v1/conversations/", body, format="json").status_code == 403


def test_validation_failures(tenant, assistant, offline):
    api = tenant.client()
    assert api.post("/api/v1/sessions/", {}, format="json").status_code == 400
    assert api.post("/api/v1/sessions/", {"assistant_id": "not-a-uuid"}, format="json").status_code == 400
    missing = api.post("/api/v1/sessions/", {"assistant_id": str(uuid.uuid4())}, format="json")
    assert missing.status_code == 404
    bad_metadata = api.post(
        "/api/v1/sessions/", {"assistant_id": str(assistant.id), "metadata": ["x"]}, format="json"
    )
    assert bad_metadata.status_code == 400
    session = _session(api, assistant)
    url = f"/api/v1/sessions/{session['id']}/messages"
    assert api.post(url, {}, format="json").status_code == 400
    assert api.post(url, {"content": "   "}, format="json").status_code == 400
    assert api.post(url, {"content": "x" * 9000}, format="json").status_code == 400
    assert api.post(url, "not json", content_type="application/json").status_code == 400
    assert not Message.objects.for_organization(tenant.organization).exists()


def test_inactive_assistant_cannot_start_sessions(tenant, assistant):
    assistant.is_active = False
    assistant.save()
    response = tenant.client().post("/api/v1/sessions/", {"assistant_id": str(assistant.id)}, format="json")
    assert response.status_code == 400


def test_cross_tenant_session_access_is_404_and_changes_nothing(tenant, other_tenant, assistant, offline):
    session = _session(tenant.client(), assistant)
    intruder = other_tenant.client()
    url = f"/api/v1/sessions/{session['id']}"
    assert intruder.get(url).status_code == 404
    assert intruder.get(url + "/messages").status_code == 404
    assert intruder.post(url + "/messages", {"content": "hi"}, format="json").status_code == 404
    assert (
        intruder.post("/api/v1/sessions/", {"assistant_id": str(assistant.id)}, format="json").status_code
        == 404
    )
    other_token = widget_client(organization=other_tenant.organization)
    assert other_token.get(url).status_code == 404
    assert not Message.objects.unscoped().exists()
    assert Conversation.objects.unscoped().count() == 1
    answer = tenant.client().post(url + "/messages", {"content": "hello"}, format="json").json()["data"]
    feedback_url = f"{url}/messages/{answer['id']}/feedback"
    assert intruder.post(feedback_url, {"rating": "down"}, format="json").status_code == 404
    assert other_token.post(feedback_url, {"rating": "down"}, format="json").status_code == 404
    assert Message.objects.unscoped().get(pk=answer["id"]).feedback is None


def test_messages_are_paginated_and_after_returns_only_newer(tenant, assistant, offline):
    assistant.handoff_after_unanswered = 0  # three unanswered questions in a row: no handoff here
    assistant.save()
    api = tenant.client()
    session = _session(api, assistant)
    url = f"/api/v1/sessions/{session['id']}/messages"
    for number in range(3):
        api.post(url, {"content": f"question number {number}"}, format="json")
    page = api.get(url + "?page_size=4").json()["data"]
    assert page["count"] == 6 and len(page["results"]) == 4 and page["next"]
    assert [m["content"] for m in page["results"][::2]] == ["question number 0", "question number 1"]
    everything = api.get(url + "?page_size=100").json()["data"]["results"]
    newer = api.get(url + f"?after={everything[3]['id']}").json()["data"]["results"]
    assert [m["id"] for m in newer] == [m["id"] for m in everything[4:]]
    assert api.get(url + "?after=nope").status_code == 400
    assert api.get(url + f"?after={uuid.uuid4()}").status_code == 404


def test_feedback_with_widget_token_and_api_key(tenant, assistant, widget, faq, offline):
    client = widget_client(organization=tenant.organization, widget=widget)
    session = _session(client, assistant)
    answer = client.post(
        f"/api/v1/sessions/{session['id']}/messages",
        {"content": "What is your refund policy?"},
        format="json",
    ).json()["data"]
    url = f"/api/v1/sessions/{session['id']}/messages/{answer['id']}/feedback"
    response = client.post(url, {"rating": "up"}, format="json")
    assert response.status_code == 200 and response.json()["data"]["feedback"] == "up"
    assert Message.objects.for_organization(tenant.organization).get(pk=answer["id"]).feedback == 1
    assert tenant.client().post(url, {"rating": "down"}, format="json").json()["data"]["feedback"] == "down"
    assert client.post(url, {"rating": "meh"}, format="json").status_code == 400
    question_id = answer["in_reply_to"]
    question_url = f"/api/v1/sessions/{session['id']}/messages/{question_id}/feedback"
    assert client.post(question_url, {"rating": "up"}, format="json").status_code == 400
    stranger = widget_client(organization=tenant.organization, widget=widget, visitor_id="v_stranger")
    assert stranger.post(url, {"rating": "up"}, format="json").status_code == 404
    assert Message.objects.for_organization(tenant.organization).get(pk=answer["id"]).feedback == -1


def test_seed_js_session_flow_with_the_api_key_as_bearer(tenant, assistant, faq, offline):
    """The seed's JS functions, given the API secret instead of a widget token."""
    api = tenant.client(bearer=True)
    session = api.post(
        "/api/v1/sessions/",
        {
            "assistant_id": str(assistant.id),
            "visitor_id": "visitor-1700000000000",
            "metadata": {"source": "support_widget"},
        },
        format="json",
    ).json()
    assert session["data"]["visitor_id"] == "visitor-1700000000000"
    result = api.post(
        f"/api/v1/sessions/{session['data']['id']}/messages",
        {"content": "I need help with my order", "metadata": {"user_type": "customer"}},
        format="json",
    ).json()
    assert result["status"] == "success" and result["data"]["role"] == "assistant"
    minimal = api.post("/api/v1/sessions", {"assistant_id": str(assistant.id)}, format="json")
    assert minimal.status_code == 201
