"""Assistant actions answered for real: the loopback LLM (OpenAI-compatible, through litellm)
asks for tool calls, the engine calls a real loopback "orders API" through core.fetcher, and
the answer follows what the API returned."""

from __future__ import annotations

import json
import logging
import time

import pytest
from rest_framework.test import APIClient

from assistants import services as assistant_services
from chat.models import Message
from chat.tests.orders_api import OrdersAPI
from widget.tokens import widget_token_issue

pytestmark = pytest.mark.django_db

SECRET = "sk_orders_live_7f3a9c2e5b1d"
SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "pattern": "^[A-Z]-[0-9]{4}$"}},
    "required": ["order_id"],
    "additionalProperties": False,
}


@pytest.fixture
def orders(settings):
    api = OrdersAPI().start()
    settings.SCRAPE_ALLOWLIST = [api.allow]
    yield api
    api.stop()


@pytest.fixture
def tools_llm(llm, settings):
    settings.LLM_TOOL_CALLING = "on"
    settings.ACTIONS_TIMEOUT = 2.0
    return llm


def _action(assistant, orders, **fields):
    values = {
        "name": "order_lookup",
        "description": "Look up an order's status, carrier and delivery date by its number.",
        "method": "GET",
        "url_template": f"{orders.base}/api/orders/{{order_id}}" if orders else "",
        "parameters": SCHEMA,
        "headers": {"Authorization": f"Bearer {SECRET}"},
    } | fields
    return assistant_services.action_create(
        organization=assistant.organization, assistant=assistant, **values
    )


def _session(api, assistant) -> str:
    response = api.post("/api/v1/sessions", {"assistant_id": str(assistant.pk)}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["data"]["id"]


def _ask(api, session_id, content="Where is my order A-1001?"):
    response = api.post(f"/api/v1/sessions/{session_id}/messages", {"content": content}, format="json")
    assert response.status_code == 201, response.content
    return response


def _tool_messages(request: dict) -> list[dict]:
    return [message for message in request["messages"] if message["role"] == "tool"]


def test_order_lookup_end_to_end(tenant, assistant, orders, tools_llm, caplog):
    caplog.set_level(logging.DEBUG)
    _action(assistant, orders)
    api = tenant.client()
    session_id = _session(api, assistant)
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "A-1001"}}])

    response = _ask(api, session_id)
    answer = response.json()["data"]

    # The orders API got exactly the call the model asked for, with the stored header.
    assert [(r["method"], r["path"]) for r in orders.requests] == [("GET", "/api/orders/A-1001")]
    assert orders.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    assert orders.requests[0]["headers"]["user-agent"] == "SupportAI-Actions/1.0"  # not "knowledge ingestion"
    # The model was offered the action as a function, then read the API's answer.
    first, second = tools_llm.requests
    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "order_lookup",
                "description": "Look up an order's status, carrier and delivery date by its number.",
                "parameters": SCHEMA,
            },
        }
    ]
    assert "look up this customer's own data" in tools_llm.system_prompt(0)
    [tool_message] = _tool_messages(second)
    assert json.loads(tool_message["content"]) == {
        "status": 200,
        "body": {"id": "A-1001", "status": "shipped", "carrier": "DHL", "eta": "2026-12-09"},
    }
    # The answer follows the result, and the call is recorded on it.
    assert answer["role"] == "assistant" and "shipped" in answer["content"] and "DHL" in answer["content"]
    [record] = answer["tool_calls"]
    assert record["name"] == "order_lookup" and record["arguments"] == {"order_id": "A-1001"}
    assert record["status"] == "ok" and record["error"] == "" and 0 <= record["duration_ms"] < 5000
    stored = Message.objects.for_organization(tenant.organization).get(pk=answer["id"])
    assert stored.tool_calls == answer["tool_calls"] and stored.answered
    # The secret went to the orders API only: not to the model, the API output, the logs.
    assert SECRET not in json.dumps(tools_llm.requests)
    assert SECRET not in response.content.decode()
    assert SECRET not in json.dumps(stored.tool_calls)
    assert SECRET not in caplog.text
    listed = api.get(f"/api/v1/sessions/{session_id}/messages").json()["data"]["results"]
    assert listed[-1]["tool_calls"] == answer["tool_calls"]


def test_streamed_answer_with_a_tool_call(tenant, assistant, orders, tools_llm):
    _action(assistant, orders)
    api = tenant.client()
    session_id = _session(api, assistant)
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "B-2002"}}])
    response = api.post(
        f"/api/v1/sessions/{session_id}/messages",
        {"content": "Status of B-2002?"},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    assert response.status_code == 200
    raw = b"".join(response.streaming_content).decode()
    events = [
        (
            block.split("\n")[0].removeprefix("event: "),
            json.loads(block.split("\n", 1)[1].removeprefix("data: ")),
        )
        for block in raw.strip().split("\n\n")
    ]
    tokens = "".join(data["content"] for kind, data in events if kind == "token")
    kind, done = events[-1]
    assert kind == "done" and done["content"] == tokens.strip()
    assert "processing" in done["content"]
    assert [(r["method"], r["path"]) for r in orders.requests] == [("GET", "/api/orders/B-2002")]
    assert done["tool_calls"][0]["status"] == "ok"
    assert done["tool_calls"][0]["arguments"] == {"order_id": "B-2002"}
    assert all(request["stream"] for request in tools_llm.requests) and len(tools_llm.requests) == 2


def test_invalid_arguments_reach_the_model_not_the_endpoint(tenant, assistant, orders, tools_llm):
    _action(assistant, orders)
    api = tenant.client()
    session_id = _session(api, assistant)
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "1001; DROP"}}])
    tools_llm.then(content="Could you give me your order number, like A-1234?")
    answer = _ask(api, session_id, "where's my stuff").json()["data"]
    assert orders.requests == []
    [tool_message] = _tool_messages(tools_llm.requests[1])
    assert "invalid arguments" in tool_message["content"] and "does not match" in tool_message["content"]
    [record] = answer["tool_calls"]
    assert record["status"] == "invalid_arguments" and "order_id" in record["error"]
    assert answer["content"] == "Could you give me your order number, like A-1234?"

    # Not JSON at all, and a function that was never offered: refused the same way.
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": "{order_id: A-1001"}])
    tools_llm.then(tool_calls=[{"name": "refund_everything", "arguments": {}}])
    answer = _ask(api, session_id, "A-1001 please").json()["data"]
    assert [record["status"] for record in answer["tool_calls"]] == ["invalid_arguments", "refused"]
    assert orders.requests == []


@pytest.mark.parametrize("failure", ["500", "404", "timeout"])
def test_endpoint_failure_is_told_to_the_model_and_the_answer_says_so(
    tenant, assistant, orders, tools_llm, failure
):
    _action(assistant, orders)
    api = tenant.client()
    session_id = _session(api, assistant)
    if failure == "500":
        orders.then(status=500, body={"error": "database down"})
    elif failure == "timeout":
        orders.then(wait=5)
    order_id = "C-9999" if failure == "404" else "A-1001"
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": order_id}}])
    started = time.monotonic()
    answer = _ask(api, session_id, f"Where is {order_id}?").json()["data"]
    [record] = answer["tool_calls"]
    if failure == "timeout":
        assert record["status"] == "timeout" and time.monotonic() - started < 4.5
        assert 1500 <= record["duration_ms"] < 4000
    else:
        assert record["status"] == "failed" and record["error"] == f"the service answered HTTP {failure}"
    [tool_message] = _tool_messages(tools_llm.requests[1])
    told = json.loads(tool_message["content"])
    assert told["error"].startswith("The lookup failed") and "human agent" in told["instruction"]
    assert "lookup failed" in answer["content"].lower()


def test_at_most_three_calls_per_answer(tenant, assistant, orders, tools_llm):
    _action(assistant, orders)
    api = tenant.client()
    session_id = _session(api, assistant)
    # One round asking for five calls: three are made, two refused.
    tools_llm.then(
        tool_calls=[{"name": "order_lookup", "arguments": {"order_id": f"A-100{n}"}} for n in range(1, 6)]
    )
    answer = _ask(api, session_id, "All my orders?").json()["data"]
    assert len(orders.requests) == 3
    assert [record["status"] for record in answer["tool_calls"]] == [
        "ok",
        "failed",
        "failed",
        "refused",
        "refused",
    ]
    assert tools_llm.requests[1]["tool_choice"] == "none"

    # A model that keeps calling, one at a time: the fourth request may not call any more,
    # and whatever it still asks for is not run.
    orders.requests.clear()
    before = len(tools_llm.requests)
    for _ in range(4):
        tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "A-1001"}}])
    answer = _ask(api, session_id, "Again").json()["data"]
    requests = tools_llm.requests[before:]
    assert [request["tool_choice"] for request in requests] == ["auto", "auto", "auto", "none"]
    assert len(orders.requests) == 3 and len(answer["tool_calls"]) == 3
    assert answer["content"]  # a text answer even though the last round asked for a call


def _widget_session(tenant, assistant, *, verified_user_id=None) -> tuple[APIClient, str]:
    from widget.models import Widget

    widget = Widget.objects.create(organization=tenant.organization, assistant=assistant, title="Shop")
    token, _ = widget_token_issue(
        organization_id=tenant.organization.id,
        widget_id=widget.id,
        visitor_id="visitor-1",
        verified_user_id=verified_user_id,
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client, _session(client, assistant)


def _offered(request: dict) -> list[str]:
    return [tool["function"]["name"] for tool in request.get("tools") or []]


def test_verified_only_actions_are_not_offered_to_anonymous_visitors(tenant, assistant, orders, tools_llm):
    _action(assistant, orders, requires_verified_visitor=True)
    _action(assistant, orders, name="store_hours", url_template=f"{orders.base}/api/hours", parameters={})
    tools_llm.default_behaviour = {"kind": "ok", "content": "Here you go."}

    anonymous, session_id = _widget_session(tenant, assistant)
    _ask(anonymous, session_id)
    assert _offered(tools_llm.last_request) == ["store_hours"]
    # Even if the model names it anyway, it is not run.
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "A-1001"}}])
    answer = _ask(anonymous, session_id).json()["data"]
    stored = Message.objects.for_organization(tenant.organization).get(pk=answer["id"])
    assert stored.tool_calls[0]["status"] == "refused" and orders.requests == []

    verified, session_id = _widget_session(tenant, assistant, verified_user_id="cust-42")
    _ask(verified, session_id)
    assert _offered(tools_llm.last_request) == ["order_lookup", "store_hours"]

    api_key = tenant.client()
    _ask(api_key, _session(api_key, assistant))
    assert _offered(tools_llm.last_request) == ["order_lookup", "store_hours"]


def test_the_endpoint_is_told_which_verified_customer_asks(tenant, assistant, orders, tools_llm):
    """Found by the security pass: the model chooses the arguments, so a verified customer
    could talk it into looking up another customer's order, and the endpoint could not tell
    who was asking. Every call now carries the conversation and, for a verified visitor, the
    customer id the organization's server proved — set by SupportAI, not the model."""
    _action(assistant, orders, requires_verified_visitor=True)
    verified, session_id = _widget_session(tenant, assistant, verified_user_id="cust-42")
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "A-1001"}}])
    _ask(verified, session_id, "Where is order A-1001 of ceo@other.example?")
    [call] = orders.requests
    assert call["headers"]["x-supportai-verified-user"] == "cust-42"
    assert call["headers"]["x-supportai-conversation"] == session_id
    api_key = tenant.client()
    conversation = _session(api_key, assistant)
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "A-1001"}}])
    _ask(api_key, conversation)
    assert "x-supportai-verified-user" not in orders.requests[-1]["headers"]  # not a proven visitor
    assert orders.requests[-1]["headers"]["x-supportai-conversation"] == conversation
    # An id with characters a header cannot carry arrives percent-encoded (UTF-8).
    odd, odd_session = _widget_session(tenant, assistant, verified_user_id="Zoë 42\r\nX-Admin: 1")
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "A-1001"}}])
    _ask(odd, odd_session)
    assert orders.requests[-1]["headers"]["x-supportai-verified-user"] == "Zo%C3%AB%2042%0D%0AX-Admin:%201"
    assert "x-admin" not in orders.requests[-1]["headers"]
    # An action cannot be configured to send these itself.
    with pytest.raises(Exception, match="set by the server"):
        _action(assistant, orders, name="spoof", headers={"X-SupportAI-Verified-User": "cust-1"})


def test_inactive_actions_and_models_without_tools_offer_nothing(
    tenant, assistant, orders, tools_llm, settings
):
    action = _action(assistant, orders)
    api = tenant.client()
    session_id = _session(api, assistant)
    assistant_services.action_update(action=action, is_active=False)
    _ask(api, session_id)
    assert "tools" not in tools_llm.last_request
    assert "look up this customer's own data" not in tools_llm.system_prompt()

    assistant_services.action_update(action=action, is_active=True)
    settings.LLM_TOOL_CALLING = "auto"  # litellm does not know the loopback model
    _ask(api, session_id)
    assert "tools" not in tools_llm.last_request
    settings.LLM_TOOL_CALLING = "off"
    _ask(api, session_id)
    assert "tools" not in tools_llm.last_request


def test_litellm_says_which_models_support_tools():
    from chat.llm.litellm_provider import LiteLLMProvider

    provider = LiteLLMProvider()
    assert provider.supports_tools("openai/gpt-4o-mini") is True
    assert provider.supports_tools("openai/loopback-model") is False


def test_offline_answerer_never_calls_actions(tenant, assistant, orders, offline, faq, settings):
    settings.LLM_TOOL_CALLING = "on"
    _action(assistant, orders)
    api = tenant.client()
    answer = _ask(api, _session(api, assistant), "Where is my order A-1001?").json()["data"]
    assert answer["tool_calls"] == [] and orders.requests == []


def test_a_private_address_is_refused_at_call_time(tenant, assistant, tools_llm, settings, monkeypatch):
    """DNS changed after the action was saved: the name now resolves to a private address."""
    from core import fetcher

    answers = {"orders.shop-api.com": ["93.184.215.14"]}
    monkeypatch.setattr(fetcher, "resolver", lambda host, port: answers[host])
    connections = []
    monkeypatch.setattr(fetcher, "pool_open", lambda **kwargs: connections.append(kwargs) or 1 / 0)
    _action(assistant, None, url_template="https://orders.shop-api.com/orders/{order_id}")
    answers["orders.shop-api.com"] = ["10.1.2.3"]
    api = tenant.client()
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "A-1001"}}])
    answer = _ask(api, _session(api, assistant)).json()["data"]
    [record] = answer["tool_calls"]
    assert record["status"] == "not_allowed" and "10.1.2.3 is a private address" in record["error"]
    assert connections == []
    assert "lookup failed" in answer["content"].lower()


def test_post_action_sends_the_other_arguments_as_json_and_headers_stay_on_their_origin(
    tenant, assistant, tools_llm, settings
):
    first, other = OrdersAPI().start(), OrdersAPI().start()
    try:
        settings.SCRAPE_ALLOWLIST = [first.allow, other.allow]
        _action(
            assistant,
            first,
            name="order_note",
            method="POST",
            url_template=f"{first.base}/api/orders/{{order_id}}/notes?lang=en",
            parameters={
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "note": {"type": "string"}},
                "required": ["order_id", "note"],
            },
        )
        # The endpoint redirects (307: same method and body) to another origin.
        first.then(status=307, body={}, headers={"Location": f"{other.base}/moved"})
        other.then(status=201, body={"saved": True})
        tools_llm.then(
            tool_calls=[{"name": "order_note", "arguments": {"order_id": "A/1", "note": "Leave at door"}}]
        )
        api = tenant.client()
        answer = _ask(api, _session(api, assistant), "Note for A/1: leave at door").json()["data"]
        assert answer["tool_calls"][0]["status"] == "ok"
        [sent] = first.requests
        assert sent["method"] == "POST" and sent["path"] == "/api/orders/A%2F1/notes?lang=en"
        assert json.loads(sent["body"]) == {"note": "Leave at door"}
        assert sent["headers"]["authorization"] == f"Bearer {SECRET}"
        assert sent["headers"]["content-type"] == "application/json"
        [moved] = other.requests
        assert moved["method"] == "POST" and json.loads(moved["body"]) == {"note": "Leave at door"}
        assert "authorization" not in moved["headers"]
    finally:
        first.stop()
        other.stop()


def test_a_result_echoing_the_header_secret_is_redacted_before_the_model_reads_it(
    tenant, assistant, orders, tools_llm
):
    _action(assistant, orders)
    orders.then(body={"debug": f"you sent Bearer {SECRET}"})
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "A-1001"}}])
    api = tenant.client()
    answer = _ask(api, _session(api, assistant)).json()["data"]
    assert SECRET not in json.dumps(tools_llm.requests) and "[redacted]" in json.dumps(tools_llm.requests)
    assert SECRET not in answer["content"]


def test_a_long_result_is_truncated_and_an_oversized_one_refused(
    tenant, assistant, orders, tools_llm, settings
):
    settings.ACTIONS_RESULT_MAX_CHARS = 500
    settings.ACTIONS_MAX_BYTES = 20_000
    _action(assistant, orders)
    api = tenant.client()
    session_id = _session(api, assistant)
    orders.then(body={"id": "A-1001", "history": ["moved " * 5] * 200})  # ~7 KB
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "A-1001"}}])
    answer = _ask(api, session_id).json()["data"]
    assert answer["tool_calls"][0]["status"] == "ok"
    [tool_message] = _tool_messages(tools_llm.requests[1])
    body = json.loads(tool_message["content"])["body"]
    assert (
        isinstance(body, str) and body.endswith("… (truncated)") and len(body) == 500 + len(" … (truncated)")
    )

    orders.then(body={"blob": "x" * 30_000})  # over ACTIONS_MAX_BYTES
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "A-1001"}}])
    answer = _ask(api, session_id).json()["data"]
    record = answer["tool_calls"][0]
    assert record["status"] == "failed" and "limit" in record["error"]


def test_privacy_export_and_erase_cover_the_calls(tenant, assistant, orders, tools_llm):
    _action(assistant, orders)
    api = tenant.client()
    response = api.post(
        "/api/v1/conversations", {"assistant_id": str(assistant.pk), "customer_id": "cust-77"}, format="json"
    )
    conversation_id = response.json()["data"]["id"]
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "B-2002"}}])
    posted = api.post(
        f"/api/v1/conversations/{conversation_id}/messages", {"content": "B-2002?"}, format="json"
    )
    assert posted.status_code == 201
    exported = api.get("/api/v1/privacy/export?customer_id=cust-77").json()["data"]
    [conversation] = exported["conversations"]
    calls = [message["tool_calls"] for message in conversation["messages"] if "tool_calls" in message]
    assert calls == [[posted.json()["data"]["tool_calls"][0]]]
    assert calls[0][0]["arguments"] == {"order_id": "B-2002"}
    with_calls = Message.objects.for_organization(tenant.organization).filter(
        tool_calls__contains=[{"name": "order_lookup"}]
    )
    assert with_calls.exists()
    erased = api.post("/api/v1/privacy/erase", {"customer_id": "cust-77"}, format="json")
    assert erased.status_code == 200
    assert not with_calls.exists()


def _sse_events(raw: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in raw.decode().strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":")
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_a_visitor_never_reads_tool_calls_an_api_key_does(tenant, assistant, orders, tools_llm, settings):
    """Which actions were called with which arguments (internal data of the organization's
    systems may be in them) is the operator's detail: a widget visitor's token reads every
    message without `tool_calls` — the answer, the transcript, the streamed `done`, the live
    stream, a feedback response — while the organization's API key reads them."""
    settings.LIVE_STREAM_SECONDS = 1
    _action(assistant, orders)
    visitor, session_id = _widget_session(tenant, assistant)
    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "A-1001"}}])
    answer = _ask(visitor, session_id).json()["data"]
    assert "shipped" in answer["content"] and len(orders.requests) == 1  # the action did run
    assert "tool_calls" not in answer

    tools_llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "B-2002"}}])
    streamed = visitor.post(
        f"/api/v1/sessions/{session_id}/messages",
        {"content": "And B-2002?"},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    kind, done = _sse_events(b"".join(streamed.streaming_content))[-1]
    assert kind == "done" and "processing" in done["content"] and "tool_calls" not in done
    assert len(orders.requests) == 2

    listed = visitor.get(f"/api/v1/sessions/{session_id}/messages").json()["data"]["results"]
    live = visitor.get(f"/api/v1/sessions/{session_id}/events", HTTP_ACCEPT="text/event-stream")
    live_messages = [
        data for kind, data in _sse_events(b"".join(live.streaming_content)) if kind == "message"
    ]
    rated = visitor.post(
        f"/api/v1/sessions/{session_id}/messages/{answer['id']}/feedback", {"rating": "up"}, format="json"
    ).json()["data"]
    assert len(listed) == len(live_messages) == 4
    for message in [*listed, *live_messages, rated]:
        assert "tool_calls" not in message and "content" in message

    api_key = tenant.client()
    operator_view = api_key.get(f"/api/v1/sessions/{session_id}/messages").json()["data"]["results"]
    assert [call["arguments"] for message in operator_view for call in message["tool_calls"]] == [
        {"order_id": "A-1001"},
        {"order_id": "B-2002"},
    ]
    live = api_key.get(f"/api/v1/sessions/{session_id}/events", HTTP_ACCEPT="text/event-stream")
    live_messages = [
        data for kind, data in _sse_events(b"".join(live.streaming_content)) if kind == "message"
    ]
    assert live_messages[1]["tool_calls"][0]["arguments"] == {"order_id": "A-1001"}


def _order_note_action(assistant, orders):
    return _action(
        assistant,
        orders,
        name="order_note",
        method="POST",
        url_template=f"{orders.base}/api/orders/{{order_id}}/notes",
        parameters={
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "note": {"type": "string"}},
            "required": ["order_id", "note"],
        },
    )


VISITOR = "visitor-gift-wrap"
NOTE_CALL = {
    "id": "call_note_1",
    "name": "order_note",
    "arguments": {"order_id": "A-1001", "note": "Gift wrap"},
}


@pytest.mark.parametrize("stream", [False, True])
def test_a_retried_turn_never_runs_an_action_twice(tenant, assistant, orders, tools_llm, settings, stream):
    """The model asks for a POST action, the orders API gets it, then the model's next round
    fails (502: the question is kept). The client retries with the same Idempotency-Key: the
    turn resumes with the call and its result already in the model's conversation, and when
    the model (as a scripted one does) asks for the same call id again, its recorded result is
    reused — the orders API still saw one POST. Before, the retry ran the whole turn again."""
    settings.LLM_MAX_RETRIES = 0
    _order_note_action(assistant, orders)
    api = tenant.client()
    created = api.post(
        "/api/v1/sessions", {"assistant_id": str(assistant.pk), "visitor_id": VISITOR}, format="json"
    )
    session_id = created.json()["data"]["id"]
    url = f"/api/v1/sessions/{session_id}/messages"
    body = {"content": "Please gift wrap order A-1001"}
    headers = {"HTTP_IDEMPOTENCY_KEY": "turn-1"} | ({"HTTP_ACCEPT": "text/event-stream"} if stream else {})
    orders.then(status=201, body={"noted": True})
    tools_llm.then(tool_calls=[NOTE_CALL]).then(kind="status", code=500)
    failed = api.post(url, body, format="json", **headers)
    assert failed.status_code == 502, failed.content
    assert [(request["method"], request["path"]) for request in orders.requests] == [
        ("POST", "/api/orders/A-1001/notes")
    ]
    question = Message.objects.for_organization(tenant.organization).get(role="user")
    assert question.status == "failed"
    # What the failed attempt ran is held on the question: a privacy export shows it.
    exported = api.get(f"/api/v1/privacy/export?visitor_id={VISITOR}").json()["data"]
    [held] = [message for message in exported["sessions"][0]["messages"] if message["role"] == "user"]
    assert held["tool_rounds"][0]["calls"][0]["id"] == "call_note_1"

    asked = len(tools_llm.requests)
    tools_llm.then(tool_calls=[NOTE_CALL])  # the same call again: not run, its result reused
    retried = api.post(url, body, format="json", **headers)
    assert retried.status_code in (200, 201), retried.content
    answer = _sse_events(b"".join(retried.streaming_content))[-1][1] if stream else retried.json()["data"]
    assert len(orders.requests) == 1  # one POST in all
    resumed = tools_llm.requests[asked]["messages"]
    assert resumed[-2]["role"] == "assistant" and resumed[-2]["tool_calls"][0]["id"] == "call_note_1"
    assert resumed[-1]["role"] == "tool" and json.loads(resumed[-1]["content"])["status"] == 201
    assert [(record["name"], record["status"]) for record in answer["tool_calls"]] == [("order_note", "ok")]
    assert answer["content"].startswith("Lookup result:")
    question.refresh_from_db()
    assert question.status == "complete" and question.tool_rounds == []  # nothing kept once answered


def test_a_call_whose_outcome_was_never_written_is_not_repeated(
    tenant, assistant, orders, tools_llm, settings
):
    """The process died during the action's request: the call is marked started on the
    question, its outcome never written (here: a real failed turn whose outcome is then taken
    off the row, as a worker killed mid-request leaves it). The retry does not send it again;
    the model is told its result is unknown, and the answer records it as failed."""
    settings.LLM_MAX_RETRIES = 0
    _order_note_action(assistant, orders)
    api = tenant.client()
    url = f"/api/v1/sessions/{_session(api, assistant)}/messages"
    body = {"content": "Please gift wrap order A-1001"}
    orders.then(status=201, body={"noted": True})
    tools_llm.then(tool_calls=[NOTE_CALL]).then(kind="status", code=500)
    assert api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="turn-2").status_code == 502
    questions = Message.objects.for_organization(tenant.organization).filter(role="user")
    [rounds] = questions.values_list("tool_rounds", flat=True)
    rounds[0]["outcomes"]["call_note_1"] = {"started": True}
    questions.update(tool_rounds=rounds)

    asked = len(tools_llm.requests)
    tools_llm.then(tool_calls=[NOTE_CALL])
    answer = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="turn-2").json()["data"]
    assert len(orders.requests) == 1
    told = json.loads(tools_llm.requests[asked]["messages"][-1]["content"])
    assert told["error"].startswith("Unknown: the result of this call was lost")
    [record] = answer["tool_calls"]
    assert record["status"] == "failed" and "lost" in record["error"]
