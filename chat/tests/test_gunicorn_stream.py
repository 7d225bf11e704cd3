"""Streaming (SSE) behind gunicorn's gthread workers, exactly as `make run` serves it."""

import json
import time

import pytest
import requests
from django.db import connection

from testkit import processes

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


def _read_events(response):
    events, event, arrived = [], None, []
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            events.append((event, json.loads(line[6:])))
            arrived.append(time.monotonic())
    return events, arrived


@pytest.fixture
def server_env(llm_server):
    return processes.base_env(
        DATABASE_URL=processes.database_url_for(connection.settings_dict),
        LLM_MODEL="openai/loopback-model",
        LLM_API_BASE=llm_server.api_base,
        LLM_API_KEY="sk-loopback",
        LOG_LEVEL="WARNING",
    )


def test_sse_streams_through_gunicorn_gthread(tenant, assistant, faq, llm_server, server_env):
    llm_server.then(
        content="We ship to over 40 countries, delivery takes 5-10 business days. [1]", delay=0.15
    )
    process, base_url = processes.gunicorn_start(env=server_env, workers=1, threads=4)
    try:
        headers = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
        session = requests.post(
            f"{base_url}/api/v1/sessions",
            json={"assistant_id": str(assistant.id)},
            headers=headers,
            timeout=30,
        ).json()["data"]
        started = time.monotonic()
        with requests.post(
            f"{base_url}/api/v1/sessions/{session['id']}/messages",
            json={"content": "Do you ship internationally?"},
            headers=headers | {"Accept": "text/event-stream"},
            stream=True,
            timeout=60,
        ) as response:
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            events, arrived = _read_events(response)
        tokens = [data["content"] for kind, data in events if kind == "token"]
        assert len(tokens) >= 5
        kind, done = events[-1]
        assert kind == "done" and done["role"] == "assistant" and done["content"] == "".join(tokens).strip()
        assert done["sources"] and done["sources"][0]["type"] == "qa"
        # Tokens arrived as they were generated, not all at once at the end.
        assert arrived[-1] - arrived[0] > 0.5
        assert arrived[0] - started < arrived[-1] - started
        transcript = requests.get(
            f"{base_url}/api/v1/sessions/{session['id']}/messages", headers=headers, timeout=30
        ).json()["data"]
        assert [m["role"] for m in transcript["results"]] == ["user", "assistant"]
    finally:
        processes.process_stop(process)
