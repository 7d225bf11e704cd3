"""How many statements a chat turn and a live-stream reconnect cost (issue 14): counted, so
a change that adds a round trip to the hottest paths shows up here, not only in a benchmark."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import services
from chat.models import Conversation, Message
from chat.tests.conftest import widget_client

pytestmark = pytest.mark.django_db


def _turn(api, session_id: str, content: str):
    response = api.post(f"/api/v1/sessions/{session_id}/messages", {"content": content}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["data"]


@pytest.fixture
def vectors_in_sql(settings):
    """Exact vector search as a statement (`knowledge.vector_cache` off), as a process that
    does not hold the organization's vectors (yet) searches."""
    settings.KNOWLEDGE_VECTOR_CACHE_BYTES = 0


def test_a_chat_turn_is_eight_statements(
    tenant, assistant, faq, offline, vectors_in_sql, django_assert_num_queries
):
    """API key (1), the session (1), the question stored with its conversation bump, live
    notification, `message.created` event, the event's webhook deliveries and the read of
    the history before it (1, no transaction of its own), retrieval (corpus size with the
    query terms' statistics, BM25, vectors, the passages: 4), the answer stored the same
    way (1). The support desk's unanswered-streak check reads nothing after an answer that
    answered. It was 12 with the webhook deliveries, the history and the streak check as
    statements of their own (and a BEGIN/COMMIT around each stored message outside tests),
    14 before the support-desk check was folded in, 10 before webhooks."""
    api = tenant.client()
    session = api.post("/api/v1/sessions/", {"assistant_id": str(assistant.id)}, format="json").json()["data"]
    _turn(api, session["id"], "Hello")  # the key's last-used stamp (once a minute) is written here
    with django_assert_num_queries(8):
        answer = _turn(api, session["id"], "How can I reset my password?")
    assert answer["content"] == 'Go to Settings > Security and click "Reset Password".'
    conversation = Conversation.objects.for_organization(tenant.organization).get(pk=session["id"])
    stored = Message.objects.for_organization(tenant.organization).get(pk=answer["id"])
    assert conversation.last_message_at == stored.created_at == conversation.updated_at
    assert list(
        Message.objects.for_organization(tenant.organization)
        .filter(conversation=conversation)
        .values_list("role", flat=True)
    ) == ["user", "assistant", "user", "assistant"]


def test_a_chat_turn_with_the_organizations_vectors_held_is_seven_statements(
    tenant, assistant, faq, offline, settings, django_assert_num_queries
):
    """The web process holds the organization's vectors (`knowledge.vector_cache`, read by the
    first turn once the knowledge stopped changing): the exact vector search is no statement,
    and whether they are current came with the corpus statistics."""
    from knowledge import vector_cache

    settings.KNOWLEDGE_VECTOR_CACHE_SETTLE_SECONDS = 0.0
    vector_cache.cache.clear()
    api = tenant.client()
    session = api.post("/api/v1/sessions/", {"assistant_id": str(assistant.id)}, format="json").json()["data"]
    _turn(api, session["id"], "Do you ship internationally?")  # reads the vectors
    assert vector_cache.cache.loads == 1
    with django_assert_num_queries(7):
        answer = _turn(api, session["id"], "How can I reset my password?")
    assert answer["content"] == 'Go to Settings > Security and click "Reset Password".'
    assert vector_cache.cache.loads == 1
    vector_cache.cache.clear()


@pytest.mark.parametrize("kind", ["database error", "out of memory"])
def test_a_chat_turn_whose_vector_read_fails_answers_through_the_sql_search(
    tenant, assistant, faq, offline, settings, monkeypatch, kind
):
    """Reading the organization's vectors into the process fails mid-read (a real database
    error on the turn's connection, inside the test's transaction as a turn may be; or the
    allocator giving up): the turn answers as it would with the cache off, and the next turn
    does not pay for another failed read."""
    from knowledge import vector_cache
    from knowledge.tests.test_vector_cache import _failing_read

    settings.KNOWLEDGE_VECTOR_CACHE_SETTLE_SECONDS = 0.0
    vector_cache.cache.clear()
    monkeypatch.setattr(vector_cache, "_matrix", _failing_read(kind))
    api = tenant.client()
    session = api.post("/api/v1/sessions/", {"assistant_id": str(assistant.id)}, format="json").json()["data"]
    answer = _turn(api, session["id"], "How can I reset my password?")
    assert answer["content"] == 'Go to Settings > Security and click "Reset Password".'
    assert vector_cache.cache.failures == 1 and vector_cache.cache.loads == 0
    answer = _turn(api, session["id"], "Do you ship internationally?")
    assert answer["content"] == "Yes, we ship to over 40 countries; delivery takes 5-10 business days."
    assert vector_cache.cache.failures == 1
    vector_cache.cache.clear()


def test_text_around_one_question_costs_no_second_search(
    tenant, assistant, faq, offline, vectors_in_sql, django_assert_num_queries
):
    """A message of two questions is searched part by part (chat.grounding.question_parts); text
    around one question is not a second question. "… password? (ticket 7)" (issue 14's bench
    question) was searched three times: 16 statements instead of 8, twice the turn's CPU."""
    api = tenant.client()
    session = api.post("/api/v1/sessions/", {"assistant_id": str(assistant.id)}, format="json").json()["data"]
    _turn(api, session["id"], "Hello")
    with django_assert_num_queries(8):
        answer = _turn(api, session["id"], "How can I reset my password? (ticket 7)")
    assert answer["content"] == 'Go to Settings > Security and click "Reset Password".'


def test_a_widget_turn_with_its_idempotency_key(tenant, assistant, faq, offline, django_assert_num_queries):
    """The widget sends an Idempotency-Key with every question. A new key: the question is
    stored first (no lookup before it), the answer written under the key's lock (lock, the
    check for an answer stored by a concurrent request with the same key, unlock): 8 + 3,
    and a savepoint around the insert only because the test runs inside a transaction. It
    was one lookup more. A retry with the key stores nothing and returns the same answer."""
    api = tenant.client()
    session = api.post("/api/v1/sessions/", {"assistant_id": str(assistant.id)}, format="json").json()["data"]
    _turn(api, session["id"], "Hello")
    url = f"/api/v1/sessions/{session['id']}/messages"
    body = {"content": "How can I reset my password?"}
    with django_assert_num_queries(11 + 2) as captured:
        first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="q-1")
    assert first.status_code == 201, first.content
    statements = [query["sql"] for query in captured.captured_queries]
    assert len([sql for sql in statements if sql.startswith("SAVEPOINT")]) == 1
    assert not [sql for sql in statements if '"chat_message"."idempotency_key" = ' in sql]
    again = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="q-1")
    assert again.status_code == 201 and again.json()["data"] == first.json()["data"]
    other = api.post(url, {"content": "Something else"}, format="json", HTTP_IDEMPOTENCY_KEY="q-1")
    assert other.status_code == 409
    roles = (
        Message.objects.for_organization(tenant.organization)
        .filter(conversation_id=session["id"])
        .order_by("seq")
        .values_list("seq", "role")
    )
    assert list(roles) == [(1, "user"), (2, "assistant"), (3, "user"), (4, "assistant")]


def test_storing_a_message_bumps_the_conversation_and_notifies_in_one_statement(tenant, assistant, offline):
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    with CaptureQueriesContext(connection) as captured:
        reply = services.operator_reply_post(conversation=session, user=tenant.owner, content="Hi")
    statements = [query["sql"] for query in captured.captured_queries]
    # (Before it: the take-over, with its own status notification and event.) The reply, the
    # bump, the "message" notification, its event and the event's webhook deliveries are one
    # statement; no separate UPDATE, pg_notify or deliveries INSERT for them.
    storing = [
        sql
        for sql in statements
        if (sql.startswith(("INSERT", "WITH")) and "message.created" in sql)
        or (sql.startswith("UPDATE") and "last_message_at" in sql)
        or (sql.startswith("SELECT pg_notify") and ":message" in sql)
    ]
    assert len(storing) == 1, statements
    assert storing[0].startswith('WITH touched AS (UPDATE "chat_conversation"')
    assert "pg_notify" in storing[0] and ":message'" in storing[0]
    assert 'INSERT INTO "organizations_event"' in storing[0]  # message.created, same statement
    assert 'INSERT INTO "webhooks_delivery"' in storing[0]  # its deliveries, same statement
    assert [sql for sql in statements if "message.created" in sql] == storing
    session.refresh_from_db()
    assert session.last_message_at == reply.created_at
    assert Message.objects.for_organization(tenant.organization).get(pk=reply.pk).content == "Hi"


def test_a_duplicate_idempotency_key_leaves_the_conversation_untouched(tenant, assistant, offline):
    from django.db import IntegrityError, transaction

    from chat.services.conversations import message_store

    session = services.session_create(organization=tenant.organization, assistant=assistant)
    first = message_store(
        message=Message(
            organization_id=tenant.organization.pk,
            conversation=session,
            role=Message.Role.USER,
            content="once",
            idempotency_key="k1",
        )
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        message_store(
            message=Message(
                organization_id=tenant.organization.pk,
                conversation=session,
                role=Message.Role.USER,
                content="twice",
                idempotency_key="k1",
            )
        )
    session.refresh_from_db()
    assert session.last_message_at == first.created_at


@pytest.fixture
def short_streams(settings):
    settings.LIVE_STREAM_SECONDS = 1


def _stream_ids(response) -> list[str]:
    text = b"".join(response.streaming_content).decode()
    return [line[4:] for line in text.splitlines() if line.startswith("id: ")]


@pytest.mark.parametrize("credential", ["api_key", "widget_token"])
def test_a_live_stream_reconnect_is_one_query_after_auth(
    tenant, assistant, widget, short_streams, credential, django_assert_num_queries
):
    """The widget's only periodic call: the session row (404 / visitor check, and the first
    status), then the messages after Last-Event-ID in one query (+ the credential's lookup).
    It was five: the status read again and the Last-Event-ID's position in its own query."""
    session = services.session_create(
        organization=tenant.organization, assistant=assistant, visitor_id="v1", widget=widget
    )
    first = services.operator_reply_post(conversation=session, user=tenant.owner, content="Hello")
    second = services.operator_reply_post(conversation=session, user=tenant.owner, content="Still there?")
    client = (
        tenant.client()
        if credential == "api_key"
        else widget_client(organization=tenant.organization, widget=widget, visitor_id="v1")
    )
    url = f"/api/v1/sessions/{session.pk}/events"
    assert _stream_ids(client.get(url)) == [str(first.pk), str(second.pk)]  # warm: hub, last-used
    auth = 1  # the API key with its organization, or the widget token's organization
    with django_assert_num_queries(auth + 2):
        assert _stream_ids(client.get(url, HTTP_LAST_EVENT_ID=str(first.pk))) == [str(second.pk)]
    # An id that is not this conversation's message: the whole transcript, still one query.
    with django_assert_num_queries(auth + 2) as captured:
        response = client.get(url, HTTP_LAST_EVENT_ID=str(session.pk))
        assert _stream_ids(response) == [str(first.pk), str(second.pk)]
    # Reading only: nothing a reconnect does is written where the analytics count.
    assert not [query for query in captured.captured_queries if not query["sql"].startswith("SELECT")]
