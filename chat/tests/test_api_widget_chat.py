"""The widget chat API: POST /api/widget/chat with a bearer API key."""

import re

import pytest
from rest_framework.test import APIClient

from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db

URL = "/api/widget/chat"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

FULL_BODY = {
    "message": "What are your business hours?",
    "widgetId": "YOUR_WIDGET_ID",
    "sessionId": "user_session_123",
    "context": {
        "rules": {
            "companyName": "Acme Inc.",
            "companyDescription": "A software company specializing in AI tools.",
            "policies": [
                {
                    "title": "Business Hours",
                    "content": "Our business hours are 9am-5pm EST, Monday through Friday.",
                }
            ],
            "tone": "friendly",
        },
        "scrapedData": "Acme Inc. provides cutting-edge AI solutions for businesses.",
    },
}


def _body(widget, **overrides):
    body = dict(FULL_BODY, widgetId=str(widget.id))
    body.update(overrides)
    return body


def test_seed_curl_example_answers_from_knowledge(tenant, widget, faq, offline):
    response = tenant.client(bearer=True).post(
        URL,
        {
            "message": "What are your business hours?",
            "widgetId": str(widget.id),
            "sessionId": "user_session_123",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"id", "message", "timestamp"}
    assert re.fullmatch(r"resp_\d{13}", body["id"])
    assert TIMESTAMP.match(body["timestamp"])
    assert body["message"] == "We are open Monday to Friday, 9 AM to 6 PM EST."


def test_policy_context_answers_business_hours_offline(tenant, widget, offline):
    response = tenant.client(bearer=True).post(URL, _body(widget), format="json")
    assert response.status_code == 200, response.content
    assert "9am-5pm" in response.json()["message"]
    answer = Message.objects.for_organization(tenant.organization).get(role="assistant")
    assert answer.answered and answer.sources[0]["type"] == "policy"
    assert answer.sources[0]["title"] == "Business Hours"


def test_same_session_id_continues_the_same_conversation(tenant, widget, offline):
    api = tenant.client(bearer=True)
    api.post(URL, _body(widget), format="json")
    api.post(URL, _body(widget, message="Thanks! And what does Acme do?"), format="json")
    api.post(URL, _body(widget, sessionId="someone-else"), format="json")
    conversations = Conversation.objects.for_organization(tenant.organization)
    assert conversations.count() == 2
    mine = conversations.get(external_session_id="user_session_123")
    assert list(mine.messages.values_list("role", flat=True)) == ["user", "assistant", "user", "assistant"]
    assert mine.widget_id == widget.id and mine.assistant_id == widget.assistant_id


def test_later_turns_reuse_the_context_sent_earlier(tenant, widget, offline):
    api = tenant.client(bearer=True)
    api.post(URL, _body(widget, message="hello"), format="json")
    response = api.post(
        URL,
        {
            "message": "When are you open? business hours",
            "widgetId": str(widget.id),
            "sessionId": "user_session_123",
        },
        format="json",
    )
    assert "9am-5pm" in response.json()["message"]


def test_unrelated_question_says_it_does_not_know_and_offers_a_human(tenant, widget, offline):
    response = tenant.client(bearer=True).post(
        URL, _body(widget, message="Can I bring my pet iguana to the quantum physics lecture?"), format="json"
    )
    message = response.json()["message"].lower()
    assert "don't have information" in message and "human" in message
    answer = Message.objects.for_organization(tenant.organization).get(role="assistant")
    assert answer.answered is False and answer.sources == []


@pytest.mark.parametrize("missing", ["message", "widgetId"])
def test_missing_required_parameters_is_400(tenant, widget, missing):
    body = _body(widget)
    body.pop(missing)
    response = tenant.client(bearer=True).post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["status"] == "error" and missing in response.json()["data"]
    assert not Message.objects.for_organization(tenant.organization).exists()


def test_blank_message_is_400(tenant, widget):
    response = tenant.client(bearer=True).post(URL, _body(widget, message="   "), format="json")
    assert response.status_code == 400


def test_bad_key_is_401(tenant, widget):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer sk_not_a_real_key")
    response = client.post(URL, _body(widget), format="json")
    assert response.status_code == 401 and response.json()["status"] == "error"
    assert APIClient().post(URL, _body(widget), format="json").status_code == 401


@pytest.mark.parametrize("widget_id", ["YOUR_WIDGET_ID", "00000000-0000-0000-0000-000000000000", "1"])
def test_unknown_widget_is_404(tenant, widget_id):
    response = tenant.client(bearer=True).post(URL, dict(FULL_BODY, widgetId=widget_id), format="json")
    assert response.status_code == 404 and response.json()["status"] == "error"


def test_another_orgs_widget_is_404_and_nothing_is_stored(tenant, other_tenant, widget):
    response = other_tenant.client(bearer=True).post(URL, _body(widget), format="json")
    assert response.status_code == 404
    assert not Conversation.objects.unscoped().exists()


def test_widget_tokens_cannot_use_the_widget_chat_api(tenant, widget):
    from chat.tests.conftest import widget_client

    client = widget_client(organization=tenant.organization, widget=widget)
    assert client.post(URL, _body(widget), format="json").status_code == 403


def test_no_slash_and_slash_forms(tenant, widget, offline):
    assert tenant.client(bearer=True).post(URL + "/", _body(widget), format="json").status_code == 200


def test_provider_fields_in_the_body_never_reach_litellm(tenant, widget, llm, llm_server):
    from testkit.llm_server import LoopbackLLM

    decoy = LoopbackLLM().start()
    try:
        body = _body(
            widget,
            api_base=decoy.api_base,
            base_url=decoy.api_base,
            api_key="sk-attacker",
            model="openai/attacker-model",
            extra_headers={"X-Evil": "1"},
            mock_response="pwned",
        )
        body["context"] = dict(body["context"], api_base=decoy.api_base, model="openai/attacker-model")
        response = tenant.client(bearer=True).post(URL, body, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["message"] != "pwned"
        assert decoy.requests == []
        sent = llm_server.last_request
        assert sent["model"] == "loopback-model"
        assert "mock_response" not in sent and "extra_headers" not in sent
    finally:
        decoy.stop()


def test_policies_and_scraped_data_reach_the_prompt(tenant, widget, llm, llm_server):
    response = tenant.client(bearer=True).post(URL, _body(widget), format="json")
    assert response.status_code == 200
    system = llm_server.system_prompt()
    assert "Acme Inc." in system and "Tone: friendly" in system
    assert "Our business hours are 9am-5pm EST, Monday through Friday." in system
    assert "cutting-edge AI solutions" in system and "specializing in AI tools" in system
    assert "9am-5pm" in response.json()["message"]


def test_provider_failure_is_502_and_the_question_is_kept(tenant, widget, llm, llm_server, settings):
    settings.LLM_MAX_RETRIES = 0
    llm_server.then(kind="status", code=500)
    response = tenant.client(bearer=True).post(URL, _body(widget), format="json")
    assert response.status_code == 502
    assert response.json()["status"] == "error" and response.json()["status_code"] == 502
    stored = Message.objects.for_organization(tenant.organization)
    assert list(stored.values_list("role", "status")) == [("user", "failed")]
    retry = tenant.client(bearer=True).post(URL, _body(widget), format="json")
    assert retry.status_code == 200


def test_explicit_nulls_in_optional_fields_mean_not_given(tenant, widget, faq, offline):
    client = tenant.client(bearer=True)
    for body in (
        _body(widget, sessionId=None, context=None),
        _body(widget, sessionId=None, context={"rules": None, "scrapedData": None}),
        _body(
            widget,
            sessionId="nulls-1",
            context={
                "rules": {"companyName": None, "companyDescription": None, "policies": None, "tone": None},
                "scrapedData": None,
            },
        ),
    ):
        response = client.post(URL, body, format="json")
        assert response.status_code == 200, (body, response.content)
        assert response.json()["message"]
    # Two bodies without a session id started two conversations; "nulls-1" continues its own.
    client.post(URL, _body(widget, sessionId="nulls-1", context=None), format="json")
    assert Conversation.objects.unscoped().filter(widget=widget, external_session_id="nulls-1").count() == 1
    assert Conversation.objects.unscoped().filter(widget=widget, external_session_id="").count() == 2
    # Required fields still refuse null, in the seed's error shape.
    response = client.post(URL, _body(widget, message=None), format="json")
    assert response.status_code == 400 and "message" in response.content.decode()
