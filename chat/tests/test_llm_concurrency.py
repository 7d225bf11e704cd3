"""The per-organization cap on concurrent LLM turns (issue 13: one tenant's slow provider must
not hold every web thread), end to end through the API against the loopback LLM server made
slow. The turns that hold the slots are real requests on real threads."""

import threading
import time

import pytest
from django.db import connection

from assistants.models import Assistant
from chat import services
from chat.models import Message
from chat.tests.conftest import widget_client

pytestmark = pytest.mark.django_db(transaction=True)


def _url(session) -> str:
    return f"/api/v1/sessions/{session.id}/messages"


def _assert_refused(response, status_code: int = 429) -> dict:
    assert response.status_code == status_code, response.content
    assert response["Content-Type"].startswith("application/json")
    assert int(response["Retry-After"]) >= 1
    body = response.json()
    assert body["status"] == "error" and body["status_code"] == status_code and body["detail"]
    return body


class SlowTurns:
    """`count` chat messages posted on their own threads, each waiting on the slow provider."""

    def __init__(self, tenant, sessions, llm_server, count: int) -> None:
        self.statuses: list[int] = []
        self.threads = [
            threading.Thread(target=self._post, args=(tenant, sessions[index % len(sessions)]), daemon=True)
            for index in range(count)
        ]
        for thread in self.threads:
            thread.start()
        # The first turn of a process loads the embedder and litellm: seconds on a busy host.
        deadline = time.monotonic() + 120
        while len(llm_server.requests) < count:
            assert time.monotonic() < deadline, f"the slow turns never reached the provider: {self.statuses}"
            time.sleep(0.05)

    def _post(self, tenant, session) -> None:
        try:
            response = tenant.client().post(_url(session), {"content": "Where is my parcel?"}, format="json")
            self.statuses.append(response.status_code)
        finally:
            connection.close()

    def finish(self, llm_server) -> list[int]:
        llm_server.release.set()
        for thread in self.threads:
            thread.join(30)
        return self.statuses


@pytest.fixture
def slow_llm(llm, settings):
    settings.LLM_CONCURRENCY_PER_ORG = 2
    settings.LLM_CONCURRENCY_TOTAL = 0
    settings.LLM_TIMEOUT = 30.0
    settings.LLM_MAX_RETRIES = 0
    llm.default_behaviour = {"wait": 25}
    yield llm
    llm.release.set()


def test_a_tenant_over_its_cap_gets_429_and_other_tenants_are_served(
    tenant, other_tenant, assistant, session, slow_llm, widget
):
    other_assistant = Assistant.objects.create(organization=other_tenant.organization, name="Theirs")
    other_session = services.session_create(
        organization=other_tenant.organization, assistant=other_assistant, visitor_id="v9"
    )
    busy = SlowTurns(tenant, [session], slow_llm, count=2)

    # A third turn of the same organization: refused at once, before retrieval and the call.
    sent = len(slow_llm.requests)
    started = time.monotonic()
    body = _assert_refused(tenant.client().post(_url(session), {"content": "And my refund?"}, format="json"))
    assert time.monotonic() - started < 5
    assert "already has 2 answers being written" in body["detail"]
    question = Message.objects.for_organization(tenant.organization).get(pk=body["data"]["message_id"])
    assert question.content == "And my refund?" and question.status == Message.Status.FAILED
    # Streamed: the same JSON error, not an event stream.
    streamed = tenant.client().post(
        _url(session), {"content": "Streamed?"}, format="json", HTTP_ACCEPT="text/event-stream"
    )
    _assert_refused(streamed)
    # The widget chat API counts against the same cap.
    widget_chat = tenant.client(bearer=True).post(
        "/api/widget/chat", {"message": "Hello?", "widgetId": str(widget.id)}, format="json"
    )
    _assert_refused(widget_chat)
    # A widget visitor of the same organization too.
    visitor = widget_client(organization=tenant.organization, widget=widget)
    visitor_session = visitor.post("/api/v1/sessions", {"assistant_id": str(assistant.id)}, format="json")
    assert visitor_session.status_code == 201, visitor_session.content
    _assert_refused(
        visitor.post(
            f"/api/v1/sessions/{visitor_session.json()['data']['id']}/messages",
            {"content": "Hi"},
            format="json",
        )
    )
    assert len(slow_llm.requests) == sent  # none of the refused turns reached the provider

    # Another organization's turn is not affected by org A's cap.
    slow_llm.then(content="Your parcel ships tomorrow.")
    answered = other_tenant.client().post(_url(other_session), {"content": "Parcel?"}, format="json")
    assert answered.status_code == 201, answered.content

    # Once org A's turns finish, its slots are free again; the saved question can be retried.
    assert busy.finish(slow_llm) == [201, 201]
    slow_llm.default_behaviour = {"kind": "ok"}
    again = tenant.client().post(_url(session), {"content": "And my refund?"}, format="json")
    assert again.status_code == 201, again.content


def test_the_overall_cap_answers_503(tenant, other_tenant, session, slow_llm, settings):
    settings.LLM_CONCURRENCY_TOTAL = 2
    other_assistant = Assistant.objects.create(organization=other_tenant.organization, name="Theirs")
    other_session = services.session_create(
        organization=other_tenant.organization, assistant=other_assistant, visitor_id="v9"
    )
    busy = SlowTurns(tenant, [session], slow_llm, count=2)
    body = _assert_refused(
        other_tenant.client().post(_url(other_session), {"content": "Parcel?"}, format="json"), 503
    )
    assert body["detail"] == "The assistant is busy; your message was saved, please retry shortly."
    assert busy.finish(slow_llm) == [201, 201]


def test_the_offline_answerer_is_not_capped(tenant, session, offline, settings, faq):
    settings.LLM_CONCURRENCY_PER_ORG = 1
    statuses: list[int] = []

    def post() -> None:
        try:
            response = tenant.client().post(
                _url(session), {"content": "Do you ship internationally?"}, format="json"
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [201, 201, 201]
