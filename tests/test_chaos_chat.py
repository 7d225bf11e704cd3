"""R10, R11, R13 end to end: gunicorn (as `make run` starts it) in front of a real
OpenAI-compatible server on loopback that fails on cue — 500s, 429 with Retry-After, a hang,
a stream dropped mid-answer — plus the same Idempotency-Key five times at once and an SSE
client that walks away. In every case the user's message is kept, at most one assistant
message exists, the client gets the error shape (502/503/504), and retries are bounded."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from testkit import processes
from testkit.fixtures import tenant_create
from testkit.llm_server import LoopbackLLM
from tests.conftest import ProcessGroup, assert_error_shape

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

LLM_TIMEOUT = 4
LLM_MAX_RETRIES = 2


def _warm(url: str) -> None:
    """One answered turn before the tests: the web process's first LLM call pays litellm's
    import and set-up (seconds on a loaded machine), which would eat the tests' short
    LLM_TIMEOUT deadline and leave no time for the retries they count."""
    tenant = tenant_create(f"Chaos Chat warm-up {time.monotonic_ns()}", rate_limit_per_hour=100_000)
    headers = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
    assistant = requests.post(f"{url}/api/v1/assistants", json={"name": "Warm"}, headers=headers, timeout=60)
    session = requests.post(
        f"{url}/api/v1/sessions",
        json={"assistant_id": assistant.json()["data"]["id"]},
        headers=headers,
        timeout=60,
    )
    for _ in range(3):  # the deadline may still pass under load; an answer means it is warm
        answered = requests.post(
            f"{url}/api/v1/sessions/{session.json()['data']['id']}/messages",
            json={"content": "hello, is this thing on?"},
            headers=headers,
            timeout=120,
        )
        if answered.status_code in (200, 201):
            return


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    """One loopback LLM and one gunicorn (1 worker × 8 threads) for the module; each test
    makes its own organization, so tests share nothing but the processes."""
    from django.db import connection

    llm = LoopbackLLM().start()
    group = ProcessGroup(tmp_path_factory.mktemp("chat-stack"))
    env = processes.base_env(
        DATABASE_URL=processes.database_url_for(connection.settings_dict),
        LLM_MODEL="openai/loopback-model",
        LLM_API_BASE=llm.api_base,
        LLM_API_KEY="sk-loopback-not-a-real-key-0000",
        LLM_TIMEOUT=str(LLM_TIMEOUT),
        LLM_MAX_RETRIES=str(LLM_MAX_RETRIES),
        LOG_LEVEL="INFO",
    )
    _web, url = group.gunicorn(env=env, workers=1)
    with django_db_blocker.unblock():
        _warm(url)
    yield {"llm": llm, "url": url, "group": group}
    group.stop_all()
    llm.stop()
    log = group.log("web").read_text()
    assert "sk-loopback-not-a-real-key-0000" not in log


@pytest.fixture
def chat(stack):
    llm: LoopbackLLM = stack["llm"]
    llm.script.clear()
    llm.release.set()  # free anything a previous test left hanging
    llm.release.clear()
    llm.hanging.clear()
    tenant = tenant_create(f"Chaos Chat {time.monotonic_ns()}", rate_limit_per_hour=100_000)
    headers = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
    url = stack["url"]
    assistant = requests.post(f"{url}/api/v1/assistants", json={"name": "Chaos"}, headers=headers, timeout=30)
    assert assistant.status_code == 201, assistant.text
    session = requests.post(
        f"{url}/api/v1/sessions",
        json={"assistant_id": assistant.json()["data"]["id"]},
        headers=headers,
        timeout=30,
    )
    assert session.status_code == 201, session.text
    session_id = session.json()["data"]["id"]
    before = len(llm.requests)

    def post(content: str, **extra_headers):
        return requests.post(
            f"{url}/api/v1/sessions/{session_id}/messages",
            json={"content": content},
            headers={**headers, **extra_headers},
            timeout=60,
        )

    def messages() -> list[dict]:
        response = requests.get(
            f"{url}/api/v1/sessions/{session_id}/messages?page_size=100", headers=headers, timeout=30
        )
        assert response.status_code == 200
        return response.json()["data"]["results"]

    def llm_calls() -> int:
        return len(llm.requests) - before

    return {
        "llm": llm,
        "url": url,
        "headers": headers,
        "session_id": session_id,
        "post": post,
        "messages": messages,
        "llm_calls": llm_calls,
    }


def _roles(messages: list[dict]) -> list[str]:
    return [message["role"] for message in messages]


def test_server_errors_are_retried_then_answered(chat):
    chat["llm"].then(kind="status", code=500).then(kind="status", code=502)
    response = chat["post"]("What are your opening hours?")
    assert response.status_code == 201, response.text
    assert response.json()["data"]["role"] == "assistant"
    assert chat["llm_calls"]() == 3
    assert _roles(chat["messages"]()) == ["user", "assistant"]


def test_a_provider_that_keeps_failing_gives_502_and_keeps_the_question(chat):
    for _ in range(5):
        chat["llm"].then(kind="status", code=500)
    response = chat["post"]("Is anyone there?")
    body = assert_error_shape(response, 502)
    assert chat["llm_calls"]() == 1 + LLM_MAX_RETRIES  # bounded
    stored = chat["messages"]()
    assert _roles(stored) == ["user"] and stored[0]["content"] == "Is anyone there?"
    assert body["data"]["message_id"] == stored[0]["id"]
    chat["llm"].script.clear()
    # The client retries later: a fresh attempt is answered; still exactly one answer.
    retried = chat["post"]("Is anyone there?")
    assert retried.status_code == 201
    assert _roles(chat["messages"]()).count("assistant") == 1


def test_429_with_retry_after_is_honoured_then_answered(chat):
    chat["llm"].then(kind="status", code=429, retry_after=1)
    started = time.monotonic()
    response = chat["post"]("Do you ship abroad?")
    assert response.status_code == 201, response.text
    assert time.monotonic() - started >= 1.0  # waited as told
    assert chat["llm_calls"]() == 2


def test_a_persistent_429_is_a_503_with_retry_after_and_no_answer(chat):
    for _ in range(5):
        chat["llm"].then(kind="status", code=429, retry_after=1)
    response = chat["post"]("Busy?")
    body = assert_error_shape(response, 503)
    assert int(response.headers["Retry-After"]) >= 1
    assert body["data"]["message_id"]
    assert chat["llm_calls"]() <= 1 + LLM_MAX_RETRIES
    assert _roles(chat["messages"]()) == ["user"]


def test_a_hanging_provider_is_cut_at_the_timeout_with_504(chat):
    chat["llm"].then(kind="hang", seconds=60)
    started = time.monotonic()
    response = chat["post"]("Hello?")
    elapsed = time.monotonic() - started
    chat["llm"].release.set()
    assert_error_shape(response, 504)
    assert elapsed < LLM_TIMEOUT + 5, elapsed  # not the 60 s the server would hang
    assert _roles(chat["messages"]()) == ["user"]


def test_a_stream_dropped_mid_answer_is_an_error_event_and_no_fake_answer(chat):
    chat["llm"].then(kind="drop", after=2, content="This answer will be cut off long before it ends, sadly.")
    response = requests.post(
        f"{chat['url']}/api/v1/sessions/{chat['session_id']}/messages",
        json={"content": "Tell me everything"},
        headers={**chat["headers"], "Accept": "text/event-stream"},
        stream=True,
        timeout=60,
    )
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    events = [line for line in response.iter_lines(decode_unicode=True) if line.startswith("event:")]
    assert events[-1] == "event: error", events
    stored = chat["messages"]()
    assert stored[0]["role"] == "user" and stored[0]["content"] == "Tell me everything"
    answers = [message for message in stored if message["role"] == "assistant"]
    assert len(answers) <= 1
    assert all(message.get("status") != "complete" for message in answers)


def test_the_same_idempotency_key_five_times_at_once_is_one_message_and_one_llm_call(chat):
    chat["llm"].then(kind="ok", delay=0.05, content="We are open nine to five, Monday to Friday.")
    key = f"idem-{time.monotonic_ns()}"
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(
            pool.map(lambda _: chat["post"]("Opening hours?", **{"Idempotency-Key": key}), range(5))
        )
    assert [response.status_code for response in responses] == [201] * 5, [r.text for r in responses]
    bodies = {json.dumps(response.json()["data"], sort_keys=True) for response in responses}
    assert len(bodies) == 1  # five identical answers
    assert chat["llm_calls"]() == 1
    assert _roles(chat["messages"]()) == ["user", "assistant"]
    conflict = chat["post"]("A different question", **{"Idempotency-Key": key})
    assert_error_shape(conflict, 409)


def test_an_sse_client_that_disconnects_cancels_the_upstream_call(chat):
    llm: LoopbackLLM = chat["llm"]
    llm.then(kind="ok", delay=0.15, content="word " * 400)  # ~250 chunks, ~40 s if read to the end
    disconnected_before = llm.client_disconnected
    target = urlsplit(chat["url"])
    body = json.dumps({"content": "Write me a long story"}).encode()
    request = (
        f"POST /api/v1/sessions/{chat['session_id']}/messages HTTP/1.1\r\n"
        f"Host: {target.hostname}:{target.port}\r\n"
        f"X-API-Key: {chat['headers']['X-API-Key']}\r\nX-API-Secret: {chat['headers']['X-API-Secret']}\r\n"
        "Accept: text/event-stream\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    client = socket.create_connection((target.hostname, target.port), timeout=30)
    client.sendall(request)
    received = b""
    while received.count(b"event: token") < 5:
        chunk = client.recv(4096)
        assert chunk, received
        received += chunk
    client.close()  # the visitor closed the tab
    closed_at = time.monotonic()
    deadline = closed_at + 10
    while llm.client_disconnected == disconnected_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert llm.client_disconnected > disconnected_before, "the upstream stream was never closed"
    assert time.monotonic() - closed_at < 5
    sent = llm.chunks_sent
    time.sleep(1)
    assert llm.chunks_sent == sent  # nothing more is generated for nobody
    stored = chat["messages"]()
    assert stored[0]["role"] == "user"
    answers = [message for message in stored if message["role"] == "assistant"]
    assert len(answers) == 1 and answers[0]["status"] == "truncated"
