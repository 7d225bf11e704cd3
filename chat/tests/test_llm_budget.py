"""The per-organization daily LLM token budget (security test plan row 22, OWASP LLM10),
end to end through the API against the loopback LLM server: usage is metered from real
calls, and once the budget is used up no call reaches the provider."""

from datetime import timedelta

import pytest
from django.urls import reverse

from chat import services
from chat.models import Message
from chat.tests.conftest import stream_abandon, widget_client
from organizations import selectors as organization_selectors
from organizations.models import LLMUsageDay
from organizations.services import llm_usage_record

pytestmark = pytest.mark.django_db

EXHAUSTED = "This organization's daily AI budget is used up; it resets at 00:00 UTC."


def _url(session):
    return f"/api/v1/sessions/{session.id}/messages"


def _today(organization) -> LLMUsageDay | None:
    return (
        LLMUsageDay.objects.for_organization(organization)
        .filter(day=organization_selectors.utc_today())
        .first()
    )


def _budget(organization, tokens):
    organization.llm_daily_token_budget = tokens
    organization.save(update_fields=["llm_daily_token_budget"])


def _use_up(organization):
    """Today's meter at exactly the budget (as a real call would have left it)."""
    llm_usage_record(
        organization=organization, prompt_tokens=organization.llm_daily_token_budget, completion_tokens=0
    )


def _assert_budget_429(response):
    assert response.status_code == 429
    body = response.json()
    assert body["status"] == "error" and body["status_code"] == 429
    assert body["detail"] == EXHAUSTED
    retry_after = int(response["Retry-After"])
    assert abs(retry_after - organization_selectors.seconds_until_utc_midnight()) <= 2
    assert 1 <= retry_after <= 86_400
    return body


def test_usage_is_recorded_from_a_real_call(tenant, session, faq, llm, llm_server):
    data = tenant.client().post(_url(session), {"content": "Do you ship internationally?"}, format="json")
    assert data.status_code == 201
    answer = Message.objects.for_organization(tenant.organization).get(pk=data.json()["data"]["id"])
    usage = _today(tenant.organization)
    assert usage.calls == 1 and len(llm_server.requests) == 1
    assert usage.prompt_tokens == answer.prompt_tokens > 0
    assert usage.completion_tokens == answer.completion_tokens > 0


def test_streamed_answers_are_metered_too(tenant, session, faq, llm, llm_server):
    response = tenant.client().post(
        _url(session),
        {"content": "Do you ship internationally?"},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    assert b"event: done" in b"".join(response.streaming_content)
    answer = Message.objects.for_organization(tenant.organization).get(role="assistant")
    usage = _today(tenant.organization)
    assert usage.calls == 1
    assert usage.prompt_tokens == answer.prompt_tokens > 0
    assert usage.completion_tokens == answer.completion_tokens > 0


def test_two_calls_add_up(tenant, session, faq, llm, llm_server):
    api = tenant.client()
    api.post(_url(session), {"content": "Do you ship internationally?"}, format="json")
    api.post(_url(session), {"content": "What is your refund policy?"}, format="json")
    answers = Message.objects.for_organization(tenant.organization).filter(role="assistant")
    usage = _today(tenant.organization)
    assert usage.calls == 2
    assert usage.total_tokens == sum(a.prompt_tokens + a.completion_tokens for a in answers)


def test_at_budget_the_next_request_is_429_and_the_provider_is_not_called(
    tenant, session, faq, llm, llm_server
):
    api = tenant.client()
    assert (
        api.post(_url(session), {"content": "Do you ship internationally?"}, format="json").status_code == 201
    )
    _budget(tenant.organization, _today(tenant.organization).total_tokens)  # exactly used up
    calls_before = len(llm_server.requests)

    response = api.post(_url(session), {"content": "And to Canada?"}, format="json")

    body = _assert_budget_429(response)
    assert len(llm_server.requests) == calls_before
    question = Message.objects.for_organization(tenant.organization).get(content="And to Canada?")
    assert question.role == "user" and question.status == "failed"  # kept, as for upstream failures
    assert body["data"]["message_id"] == str(question.pk)
    assert not Message.objects.for_organization(tenant.organization).filter(in_reply_to=question).exists()
    assert _today(tenant.organization).calls == 1


def test_budget_zero_refuses_every_llm_call(tenant, session, llm, llm_server):
    _budget(tenant.organization, 0)
    _assert_budget_429(tenant.client().post(_url(session), {"content": "Hello?"}, format="json"))
    assert llm_server.requests == []
    assert _today(tenant.organization) is None


def test_streaming_over_budget_is_a_json_429_before_any_stream(tenant, session, llm, llm_server):
    _budget(tenant.organization, 0)
    response = tenant.client().post(
        _url(session), {"content": "Hello?"}, format="json", HTTP_ACCEPT="text/event-stream"
    )
    _assert_budget_429(response)
    assert response["Content-Type"].startswith("application/json")
    assert llm_server.requests == []


def test_widget_token_visitor_cannot_spend_past_the_budget(tenant, assistant, widget, llm, llm_server):
    """Row 22: a public client id → widget token → messages; over budget nothing reaches the LLM."""
    _budget(tenant.organization, 0)
    client = widget_client(organization=tenant.organization, widget=widget, visitor_id="visitor-1")
    session_id = client.post("/api/v1/sessions", {}, format="json").json()["data"]["id"]
    url = f"/api/v1/sessions/{session_id}/messages"
    _assert_budget_429(client.post(url, {"content": "Hi"}, format="json"))
    _assert_budget_429(client.post(url, {"content": "Hi"}, format="json", HTTP_ACCEPT="text/event-stream"))
    assert llm_server.requests == []


def test_widget_chat_api_over_budget_is_429_in_the_error_shape(tenant, widget, llm, llm_server):
    _budget(tenant.organization, 0)
    response = tenant.client(bearer=True).post(
        "/api/widget/chat", {"message": "Hello?", "widgetId": str(widget.id)}, format="json"
    )
    _assert_budget_429(response)
    assert llm_server.requests == []
    assert list(Message.objects.for_organization(tenant.organization).values_list("role", flat=True)) == [
        "user"
    ]


def test_another_organization_is_unaffected(tenant, other_tenant, session, llm, llm_server):
    from assistants.models import Assistant

    _budget(tenant.organization, 0)
    _assert_budget_429(tenant.client().post(_url(session), {"content": "Hello?"}, format="json"))
    other_assistant = Assistant.objects.create(organization=other_tenant.organization, name="Globex bot")
    other_session = services.session_create(organization=other_tenant.organization, assistant=other_assistant)
    response = other_tenant.client().post(_url(other_session), {"content": "Hello?"}, format="json")
    assert response.status_code == 201
    assert len(llm_server.requests) == 1
    assert _today(other_tenant.organization).calls == 1
    assert _today(tenant.organization) is None


def test_offline_answerer_is_not_limited_and_costs_nothing(tenant, session, faq, offline):
    _budget(tenant.organization, 0)
    response = tenant.client().post(_url(session), {"content": "What is your refund policy?"}, format="json")
    assert response.status_code == 201
    assert "30 days" in response.json()["data"]["content"]
    assert _today(tenant.organization) is None


def test_unlimited_budget_never_refuses(tenant, session, llm, llm_server):
    _budget(tenant.organization, None)
    llm_usage_record(organization=tenant.organization, prompt_tokens=10**12, completion_tokens=0)
    assert tenant.client().post(_url(session), {"content": "Hello?"}, format="json").status_code == 201
    assert len(llm_server.requests) == 1


def test_the_next_utc_day_starts_a_fresh_budget(tenant, session, llm, llm_server):
    _budget(tenant.organization, 1_000)
    _use_up(tenant.organization)
    api = tenant.client()
    _assert_budget_429(
        api.post(_url(session), {"content": "Hello?"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    )
    yesterday = organization_selectors.utc_today() - timedelta(days=1)
    LLMUsageDay.objects.for_organization(tenant.organization).update(day=yesterday)  # midnight passed

    retry = api.post(_url(session), {"content": "Hello?"}, format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert retry.status_code == 201  # the stored question is answered, not stored twice
    roles = list(Message.objects.for_organization(tenant.organization).values_list("role", flat=True))
    assert sorted(roles) == ["assistant", "user"]
    assert len(llm_server.requests) == 1
    days = dict(LLMUsageDay.objects.for_organization(tenant.organization).values_list("day", "calls"))
    assert days[yesterday] == 1 and days[organization_selectors.utc_today()] == 1


@pytest.mark.django_db(transaction=True)  # closing a response ends the request (and its connection)
def test_a_stream_cut_short_by_the_client_is_metered_by_estimate(tenant, session, llm, llm_server):
    llm_server.then(content="word " * 300, delay=0.005)
    stream_abandon(tenant.client(), _url(session))
    usage = _today(tenant.organization)
    assert usage is not None and usage.calls == 1 and usage.completion_tokens > 0


def test_the_playground_shows_the_budget_error(tenant, assistant, llm, llm_server, owner_client):
    _budget(tenant.organization, 0)
    response = owner_client.post(
        reverse("assistant-playground", kwargs={"pk": assistant.pk}),
        {"content": "Hello?"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "daily AI budget is used up" in response.content.decode()
    assert llm_server.requests == []
