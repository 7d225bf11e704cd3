"""Privacy: DELETE sessions/conversations, POST privacy/erase, GET privacy/export, retention."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from assistants.models import UserContext
from chat.models import Conversation, Message
from chat.services.conversations import message_store
from chat.services.privacy import retention_sweep, retention_sweep_all
from organizations.identity import identity_secret_rotate
from organizations.models import LLMUsageDay
from organizations.services import api_key_create
from testkit.fixtures import member_add
from tests.conftest import assert_error_shape

pytestmark = pytest.mark.django_db


def _columns_holding(needle: str) -> list[str]:
    """Every text/JSON column of every table that holds `needle` (the API-key secret test's way)."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json')"
        )
        for table, column in cursor.fetchall():
            cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s', [f"%{needle}%"])
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    return found


def _plant(tenant, assistant, *, marker: str, customer_id: str) -> dict:
    """A customer with everything that can hold their data: a context (traits, email), an
    API conversation (title, metadata, messages with metadata, feedback) and a verified widget
    session with messages."""
    api = tenant.client()
    context = api.post(
        "/api/v1/contexts",
        {"user_reference": customer_id, "traits": {"email": f"{marker}@example.com", "note": marker}},
        format="json",
    )
    assert context.status_code == 201, context.content
    conversation = api.post(
        "/api/v1/conversations",
        {
            "assistant_id": str(assistant.id),
            "customer_id": customer_id,
            "title": f"About {marker}",
            "metadata": {"note": marker},
        },
        format="json",
    ).json()["data"]
    posted = api.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        {"content": f"My order {marker} never arrived", "metadata": {"ref": marker}},
        format="json",
    )
    assert posted.status_code == 201, posted.content
    answer = posted.json()["data"]
    rated = api.post(
        f"/api/v1/conversations/{conversation['id']}/messages/{answer['id']}/feedback",
        {"rating": "down"},
        format="json",
    )
    assert rated.status_code == 200, rated.content
    # Per-message usage figures, as an LLM call would record them.
    Message.objects.for_organization(tenant.organization).filter(pk=answer["id"]).update(
        model=f"model-{marker}", prompt_tokens=11, completion_tokens=7
    )
    secret = identity_secret_rotate(organization=tenant.organization)[1]
    user_hash = hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()
    token = APIClient().post(
        "/api/v1/auth/widget-token",
        {"client_id": tenant.client_id, "user_id": customer_id, "user_hash": user_hash},
        format="json",
    )
    visitor = APIClient()
    visitor.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['token']}")
    session = visitor.post("/api/v1/sessions", {"assistant_id": str(assistant.id)}, format="json").json()[
        "data"
    ]
    sent = visitor.post(
        f"/api/v1/sessions/{session['id']}/messages", {"content": f"Widget question {marker}"}, format="json"
    )
    assert sent.status_code == 201, sent.content
    # The support desk: a handoff with the visitor's email, then a CSAT comment after resolution.
    handoff = visitor.post(
        f"/api/v1/sessions/{session['id']}/handoff", {"email": f"{marker}@handoff.example"}, format="json"
    )
    assert handoff.status_code == 200, handoff.content
    from chat.services import handoff as handoff_services

    handoff_services.conversation_resolve(
        conversation=Conversation.objects.for_organization(tenant.organization).get(pk=session["id"])
    )
    csat = visitor.post(
        f"/api/v1/sessions/{session['id']}/csat", {"score": 2, "comment": f"Slow, {marker}"}, format="json"
    )
    assert csat.status_code == 201, csat.content
    return {"conversation": conversation, "session": session}


def test_erase_by_customer_id_leaves_no_row_holding_the_identifier_or_the_text(tenant, assistant, offline):
    marker = f"mk{uuid.uuid4().hex[:12]}"
    customer_id = f"cust-{marker}"
    planted = _plant(tenant, assistant, marker=marker, customer_id=customer_id)
    # Someone else's data stays.
    other = _plant(tenant, assistant, marker="keepme" + uuid.uuid4().hex[:6], customer_id="cust-other")
    usage_before = list(
        LLMUsageDay.objects.for_organization(tenant.organization).values_list("calls", "prompt_tokens")
    )
    assert _columns_holding(marker), "the marker was planted"

    response = tenant.client().post("/api/v1/privacy/erase", {"customer_id": customer_id}, format="json")
    assert response.status_code == 200, response.content
    counts = response.json()["data"]
    assert counts["conversations"] == 1 and counts["sessions"] == 1 and counts["contexts"] == 1
    assert counts["messages"] >= 4 and counts["feedback"] == 1 and counts["csat"] == 1

    assert _columns_holding(marker) == []
    assert _columns_holding(customer_id) == []
    # The inbox search and the analytics overview know nothing of them either.
    client = Client()
    client.force_login(tenant.owner)
    inbox = client.get(f"/inbox/?q={marker}").content.decode()
    assert planted["conversation"]["id"] not in inbox and planted["session"]["id"] not in inbox
    assert "No conversations" in inbox or "no conversations" in inbox.lower()
    assert marker not in client.get("/").content.decode()
    # Aggregate counters keep their numbers; other customers keep everything.
    usage_after = list(
        LLMUsageDay.objects.for_organization(tenant.organization).values_list("calls", "prompt_tokens")
    )
    assert usage_after == usage_before
    assert tenant.client().get(f"/api/v1/conversations/{other['conversation']['id']}").status_code == 200
    assert (
        UserContext.objects.for_organization(tenant.organization).filter(user_reference="cust-other").exists()
    )


def test_erase_by_visitor_id_and_by_email(tenant, assistant, offline):
    marker = f"mk{uuid.uuid4().hex[:12]}"
    planted = _plant(tenant, assistant, marker=marker, customer_id=f"cust-{marker}")
    by_visitor = tenant.client().post(
        "/api/v1/privacy/erase", {"visitor_id": planted["session"]["visitor_id"]}, format="json"
    )
    assert by_visitor.status_code == 200
    assert by_visitor.json()["data"]["sessions"] == 1 and by_visitor.json()["data"]["conversations"] == 0
    assert by_visitor.json()["data"]["contexts"] == 0
    assert (
        not Conversation.objects.for_organization(tenant.organization)
        .filter(pk=planted["session"]["id"])
        .exists()
    )
    by_email = tenant.client().post(
        "/api/v1/privacy/erase", {"email": f"{marker.upper()}@EXAMPLE.com"}, format="json"
    )
    assert by_email.status_code == 200, by_email.content
    assert by_email.json()["data"]["contexts"] == 1 and by_email.json()["data"]["conversations"] == 1
    assert _columns_holding(marker) == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"customer_id": "a", "email": "b@example.com"},
        {"customer_id": "a", "visitor_id": "b"},
        {"customer_id": "   "},
        {"customer_id": "x" * 300},
        {"customer_id": ["a"]},
    ],
)
def test_erase_needs_exactly_one_identifier(tenant, body):
    assert_error_shape(tenant.client().post("/api/v1/privacy/erase", body, format="json"), 400)


def test_erase_of_nothing_is_200_with_zero_counts(tenant):
    response = tenant.client().post("/api/v1/privacy/erase", {"customer_id": "nobody"}, format="json")
    assert response.status_code == 200
    assert set(response.json()["data"].values()) == {0}


def test_erase_in_another_organization_touches_nothing_here(tenant, other_tenant, assistant, offline):
    marker = f"mk{uuid.uuid4().hex[:12]}"
    planted = _plant(tenant, assistant, marker=marker, customer_id=f"cust-{marker}")
    response = other_tenant.client().post(
        "/api/v1/privacy/erase", {"customer_id": f"cust-{marker}"}, format="json"
    )
    assert response.status_code == 200 and set(response.json()["data"].values()) == {0}
    assert tenant.client().get(f"/api/v1/conversations/{planted['conversation']['id']}").status_code == 200
    export = other_tenant.client().get(f"/api/v1/privacy/export?customer_id=cust-{marker}").json()["data"]
    assert export["sessions"] == [] and export["conversations"] == [] and export["contexts"] == []


def test_widget_tokens_and_agents_keys_may_not_erase_or_export(tenant, assistant, offline):
    token = (
        APIClient().post("/api/v1/auth/widget-token", {"client_id": tenant.client_id}, format="json").json()
    )
    visitor = APIClient()
    visitor.credentials(HTTP_AUTHORIZATION=f"Bearer {token['token']}")
    assert_error_shape(visitor.post("/api/v1/privacy/erase", {"customer_id": "c"}, format="json"), 403)
    assert_error_shape(visitor.get("/api/v1/privacy/export?customer_id=c"), 403)
    agent = member_add(tenant, role="agent")
    _key, secret = api_key_create(organization=tenant.organization, name="agent's", created_by=agent)
    agent_client = APIClient()
    agent_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert_error_shape(agent_client.post("/api/v1/privacy/erase", {"customer_id": "c"}, format="json"), 403)
    assert_error_shape(agent_client.get("/api/v1/privacy/export?customer_id=c"), 403)
    admin = member_add(tenant, role="admin")
    _key, admin_secret = api_key_create(organization=tenant.organization, name="admin's", created_by=admin)
    admin_client = APIClient()
    admin_client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_secret}")
    assert admin_client.post("/api/v1/privacy/erase", {"customer_id": "c"}, format="json").status_code == 200


def test_export_is_one_document_of_everything_held(tenant, assistant, offline):
    marker = f"mk{uuid.uuid4().hex[:12]}"
    planted = _plant(tenant, assistant, marker=marker, customer_id=f"cust-{marker}")
    response = tenant.client().get(f"/api/v1/privacy/export?customer_id=cust-{marker}")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    data = response.json()["data"]
    assert data["subject"] == {"customer_id": f"cust-{marker}"}
    assert [context["user_reference"] for context in data["contexts"]] == [f"cust-{marker}"]
    assert [thread["id"] for thread in data["conversations"]] == [planted["conversation"]["id"]]
    assert [thread["id"] for thread in data["sessions"]] == [planted["session"]["id"]]
    contents = [
        m["content"] for thread in data["conversations"] + data["sessions"] for m in thread["messages"]
    ]
    assert f"My order {marker} never arrived" in contents and f"Widget question {marker}" in contents
    assert [item["rating"] for item in data["feedback"]] == ["down"]
    assert_error_shape(tenant.client().get("/api/v1/privacy/export"), 400)
    assert_error_shape(tenant.client().get("/api/v1/privacy/export?customer_id=a&email=b"), 400)


def test_delete_session_and_conversation(tenant, other_tenant, assistant, offline):
    marker = f"mk{uuid.uuid4().hex[:12]}"
    planted = _plant(tenant, assistant, marker=marker, customer_id=f"cust-{marker}")
    session_url = f"/api/v1/sessions/{planted['session']['id']}"
    conversation_url = f"/api/v1/conversations/{planted['conversation']['id']}"
    # Another organization's key: 404, and nothing changed.
    assert_error_shape(other_tenant.client().delete(session_url), 404)
    assert_error_shape(other_tenant.client().delete(conversation_url), 404)
    assert tenant.client().get(session_url).status_code == 200
    # A session is not a conversation (and the reverse).
    assert_error_shape(tenant.client().delete(f"/api/v1/sessions/{planted['conversation']['id']}"), 404)
    assert_error_shape(tenant.client().delete(f"/api/v1/sessions/{uuid.uuid4()}/"), 404)
    deleted = tenant.client().delete(session_url)
    assert deleted.status_code == 204 and deleted.content == b""
    assert tenant.client().delete(conversation_url + "/").status_code == 204
    assert_error_shape(tenant.client().get(session_url), 404)
    assert (
        not Message.objects.for_organization(tenant.organization)
        .filter(conversation_id__in=[planted["session"]["id"], planted["conversation"]["id"]])
        .exists()
    )


def test_a_widget_token_cannot_delete_even_its_own_session(tenant, assistant):
    token = (
        APIClient().post("/api/v1/auth/widget-token", {"client_id": tenant.client_id}, format="json").json()
    )
    visitor = APIClient()
    visitor.credentials(HTTP_AUTHORIZATION=f"Bearer {token['token']}")
    session = visitor.post("/api/v1/sessions", {"assistant_id": str(assistant.id)}, format="json").json()[
        "data"
    ]
    assert_error_shape(visitor.delete(f"/api/v1/sessions/{session['id']}"), 403)
    assert visitor.get(f"/api/v1/sessions/{session['id']}").status_code == 200


def _conversation_aged(tenant, assistant, *, days: float | None, with_messages: bool = True):
    conversation = Conversation.objects.create(organization=tenant.organization, assistant=assistant)
    if with_messages:
        message_store(
            message=Message(
                organization=tenant.organization, conversation=conversation, role="user", content="hi"
            )
        )
    if days is not None:
        moment = timezone.now() - timedelta(days=days)
        Conversation.objects.for_organization(tenant.organization).filter(pk=conversation.pk).update(
            last_message_at=moment if with_messages else None, created_at=moment
        )
    return conversation


def test_retention_deletes_only_conversations_older_than_the_policy(tenant, other_tenant, assistant):
    old = _conversation_aged(tenant, assistant, days=31)
    old_without_messages = _conversation_aged(tenant, assistant, days=40, with_messages=False)
    recent = _conversation_aged(tenant, assistant, days=29)
    fresh = _conversation_aged(tenant, assistant, days=None)
    other_assistant = other_tenant.organization and assistant.__class__.objects.create(
        organization=other_tenant.organization, name="Theirs"
    )
    theirs_old = _conversation_aged(other_tenant, other_assistant, days=400)  # no retention set there
    assert retention_sweep_all() == {}  # nobody has a policy yet
    tenant.organization.retention_days = 30
    tenant.organization.save(update_fields=["retention_days"])
    assert retention_sweep_all() == {str(tenant.organization.pk): 2}
    left = set(Conversation.objects.for_organization(tenant.organization).values_list("pk", flat=True))
    assert left == {recent.pk, fresh.pk}
    assert old.pk not in left and old_without_messages.pk not in left
    assert Conversation.objects.for_organization(other_tenant.organization).filter(pk=theirs_old.pk).exists()
    assert retention_sweep_all() == {}  # idempotent


def test_retention_works_in_batches(tenant, assistant):
    for _ in range(7):
        _conversation_aged(tenant, assistant, days=10)
    tenant.organization.retention_days = 1
    with connection.execute_wrapper(_count_deletes := _DeleteCounter()):
        assert retention_sweep(organization=tenant.organization, batch_size=3) == 7
    assert _count_deletes.conversation_deletes == 3  # 3 + 3 + 1
    assert not Conversation.objects.for_organization(tenant.organization).exists()


class _DeleteCounter:
    def __init__(self):
        self.conversation_deletes = 0

    def __call__(self, execute, sql, params, many, context):
        if sql.startswith('DELETE FROM "chat_conversation"'):
            self.conversation_deletes += 1
        return execute(sql, params, many, context)


def test_dashboard_privacy_page_sets_the_policy_exports_and_erases(tenant, assistant, offline):
    marker = f"mk{uuid.uuid4().hex[:12]}"
    _plant(tenant, assistant, marker=marker, customer_id=f"cust-{marker}")
    client = Client()
    client.force_login(tenant.owner)
    page = client.get("/settings/privacy/").content.decode()
    assert "kept until you delete or erase them" in page and "deleted once parsed" in page
    saved = client.post(
        "/settings/privacy/", {"action": "policy", "retention_days": "30", "keep_original_files": "on"}
    )
    assert saved.status_code == 302
    tenant.organization.refresh_from_db()
    assert tenant.organization.retention_days == 30 and tenant.organization.keep_original_files is True
    assert "deleted 30 days after their last message" in client.get("/settings/privacy/").content.decode()
    refused = client.post("/settings/privacy/", {"action": "policy", "retention_days": "0"})
    assert refused.status_code == 200
    tenant.organization.refresh_from_db()
    assert tenant.organization.retention_days == 30
    export = client.post(
        "/settings/privacy/", {"action": "export", "kind": "customer_id", "value": f"cust-{marker}"}
    )
    assert export.status_code == 200 and export["Content-Type"] == "application/json"
    assert f"My order {marker} never arrived" in export.content.decode()
    erased = client.post(
        "/settings/privacy/",
        {"action": "erase", "kind": "customer_id", "value": f"cust-{marker}"},
        follow=True,
    )
    assert "Erased: 1 sessions, 1 conversations, 4 messages" in erased.content.decode()
    assert _columns_holding(marker) == []


def test_agents_cannot_open_the_privacy_page_or_erase(tenant, assistant, offline):
    marker = f"mk{uuid.uuid4().hex[:12]}"
    _plant(tenant, assistant, marker=marker, customer_id=f"cust-{marker}")
    client = Client()
    client.force_login(member_add(tenant, role="agent"))
    assert client.get("/settings/privacy/").status_code == 403
    refused = client.post(
        "/settings/privacy/", {"action": "erase", "kind": "customer_id", "value": f"cust-{marker}"}
    )
    assert refused.status_code == 403
    assert _columns_holding(marker)


def test_erase_removes_only_that_visitors_own_rate_counters(tenant, assistant):
    from core.rate_counters import stored_key
    from supportai.models import RateCounter

    org = tenant.organization.pk
    keys = [f"visitor:{org}:v_abc", f"visitor-messages:{org}:v_abc", f"visitor:{org}:v_abcdef", f"org:{org}"]
    for key in keys:
        RateCounter.objects.create(key=stored_key(key), window_end=2**40, count=5)
    Conversation.objects.create(organization=tenant.organization, assistant=assistant, visitor_id="v_abc")
    response = tenant.client().post("/api/v1/privacy/erase", {"visitor_id": "v_abc"}, format="json")
    assert response.json()["data"]["rate_counters"] == 2
    assert set(RateCounter.objects.values_list("key", flat=True)) == {
        stored_key(f"visitor:{org}:v_abcdef"),
        stored_key(f"org:{org}"),
    }
    # A one-character "identifier" resets nobody's limits.
    tenant.client().post("/api/v1/privacy/erase", {"visitor_id": "v"}, format="json")
    assert RateCounter.objects.count() == 2
