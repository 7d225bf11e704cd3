"""Attack rows 26–28, 30: cross-tenant reads and writes on every object endpoint.

A walker reads the OpenAPI schema, and for every operation whose path names an object
(`{id}`, `{message_id}`) it sends organization B's credentials with organization A's real
ids: every method must answer 404 — the same body as for an id that does not exist — and
A's objects must be unchanged afterwards. A new object endpoint that the walker cannot fill
fails the test, so coverage grows with the API. Creates that reference another
organization's objects (assistant_id, user_context_id, widgetId) are refused too, and list
endpoints never show A's ids to B."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from chat.models import Message
from testkit.fixtures import objects_of_every_kind
from tests.conftest import assert_error_shape
from widget.tokens import widget_token_issue

pytestmark = pytest.mark.django_db

WRITE_BODY = {
    "name": "pwned",
    "title": "pwned",
    "description": "pwned",
    "content": "pwned",
    "traits": {"pwned": True},
    "rating": "down",
    "is_active": False,
    "greeting": "pwned",
}


def _data(response) -> dict:
    assert response.status_code in (200, 201, 202), (response.status_code, response.content[:500])
    return response.json()["data"]


@pytest.fixture
def victim(tenant, site, settings, tmp_path):
    """Organization A with one of every object the API exposes."""
    settings.MEDIA_ROOT = tmp_path / "media"
    api = tenant.client()

    def post(path: str, body: dict, file=None) -> dict:
        if file is None:
            return _data(api.post(f"/api/v1/{path}", body, format="json"))
        return _data(
            api.post(f"/api/v1/{path}", {**body, "file": SimpleUploadedFile(*file)}, format="multipart")
        )

    site.page("/a-policy", b"<html><body><p>A's page</p></body></html>")
    objects = objects_of_every_kind(
        post, marker="secret of A", customer_id="cust-a", url=site.url("/a-policy")
    )
    deliveries = _data(api.get(f"/api/v1/webhooks/{objects['ids']['webhooks']}/deliveries"))["results"]
    return {"tenant": tenant, "client": api, "deliveries": {"webhooks": deliveries[0]["id"]}, **objects}


def _snapshot(victim) -> dict:
    api = victim["client"]
    snapshot = {}
    for kind, object_id in victim["ids"].items():
        response = api.get(f"/api/v1/{kind}/{object_id}")
        snapshot[kind] = _data(response)
    for kind in ("sessions", "conversations"):
        snapshot[f"{kind}-messages"] = _data(api.get(f"/api/v1/{kind}/{victim['ids'][kind]}/messages"))
    for kind, action_id in victim["actions"].items():
        snapshot[f"{kind}-actions"] = _data(
            api.get(f"/api/v1/{kind}/{victim['ids'][kind]}/actions/{action_id}")
        )
    snapshot["message-count"] = Message.objects.for_organization(victim["tenant"].organization).count()
    return snapshot


def _object_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, method.upper())
        for path, operations in schema["paths"].items()
        for method in operations
        if "{" in path and method in {"get", "put", "patch", "delete", "post"}
    ]


def _fill(path: str, victim) -> str:
    match = re.match(r"^/api/v1/(?P<kind>[a-z\-/]+?)/\{id\}", path)
    if not match or match["kind"] not in victim["ids"]:
        raise AssertionError(
            f"the tenancy walker does not know how to fill {path}: add its object to `victim`"
        )
    kind = match["kind"]
    filled = path.replace("{id}", victim["ids"][kind])
    if "{message_id}" in filled:
        filled = filled.replace("{message_id}", victim["messages"][kind])
    if "{action_id}" in filled:
        filled = filled.replace("{action_id}", victim["actions"][kind])
    if "{delivery_id}" in filled:
        filled = filled.replace("{delivery_id}", victim["deliveries"][kind])
    assert "{" not in filled, f"unknown path parameter in {path}"
    return filled


def test_every_object_endpoint_answers_404_to_another_organization(victim, other_tenant):
    before = _snapshot(victim)
    attacker = other_tenant.client()
    operations = _object_operations()
    assert len(operations) >= 15
    missing_body = None
    for path, method in operations:
        url = _fill(path, victim)
        response = attacker.generic(method, url, data=json.dumps(WRITE_BODY), content_type="application/json")
        body = assert_error_shape(response, 404)
        # Indistinguishable from an id that does not exist.
        unknown = attacker.generic(
            method,
            re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", str(uuid.uuid4()), url),
            data=json.dumps(WRITE_BODY),
            content_type="application/json",
        )
        missing_body = assert_error_shape(unknown, 404)
        assert body == missing_body, (method, path, body, missing_body)
    assert _snapshot(victim) == before


def test_a_parent_of_ours_with_a_child_of_theirs_is_404(victim, other_tenant, site):
    """Nested paths: B's own assistant, conversation, session or webhook with A's action,
    message or delivery id in the same URL — the child is looked up under the parent (and the
    organization), never by its id alone."""
    attacker = other_tenant.client()

    def post(path: str, body: dict, file=None) -> dict:
        return _data(attacker.post(f"/api/v1/{path}", body, format="json"))

    own = {
        "assistants": post("assistants", {"name": "B bot"})["id"],
        "webhooks": post("webhooks", {"url": site.url("/b-hook"), "events": ["message.created"]})["id"],
    }
    own["sessions"] = post("sessions", {"assistant_id": own["assistants"], "visitor_id": "v_b"})["id"]
    own["conversations"] = post("conversations", {"assistant_id": own["assistants"]})["id"]
    before = _snapshot(victim)
    nested = [(path, method) for path, method in _object_operations() if path.count("{") == 2]
    assert len(nested) >= 8
    for path, method in nested:
        kind = re.match(r"^/api/v1/(?P<kind>[a-z\-/]+?)/\{id\}", path)["kind"]
        url = _fill(path, victim).replace(victim["ids"][kind], own[kind], 1)
        response = attacker.generic(method, url, data=json.dumps(WRITE_BODY), content_type="application/json")
        assert_error_shape(response, 404)
    assert _snapshot(victim) == before


def test_creates_cannot_reference_another_organizations_objects(victim, other_tenant):
    before = _snapshot(victim)
    attacker = other_tenant.client()
    ids = victim["ids"]
    attempts = [
        ("/api/v1/sessions", {"assistant_id": ids["assistants"]}),
        ("/api/v1/conversations", {"assistant_id": ids["assistants"]}),
        ("/api/v1/widgets", {"assistant_id": ids["assistants"]}),
    ]
    own_assistant = _data(attacker.post("/api/v1/assistants", {"name": "B bot"}, format="json"))
    attempts.append(
        ("/api/v1/conversations", {"assistant_id": own_assistant["id"], "user_context_id": ids["contexts"]})
    )
    for url, body in attempts:
        response = attacker.post(url, body, format="json")
        assert response.status_code in (400, 404), (url, response.status_code, response.content[:300])
        assert_error_shape(response, response.status_code)
    for path, body in (
        ("/api/widget/chat", {"message": "hi", "widgetId": ids["widgets"]}),
        (f"/api/widget/config?widgetId={ids['widgets']}", None),
    ):
        response = attacker.post(path, body, format="json") if body else attacker.get(path)
        assert_error_shape(response, 404)
    assert _snapshot(victim) == before


def test_lists_and_filters_never_show_another_organizations_rows(victim, other_tenant):
    attacker = other_tenant.client()
    secrets = set(victim["ids"].values()) | set(victim["messages"].values())
    for path in (
        "/api/v1/assistants",
        "/api/v1/contexts",
        "/api/v1/widgets",
        "/api/v1/sessions",
        "/api/v1/conversations",
        "/api/v1/conversations?customer_id=cust-a",
        "/api/v1/api-keys",
        "/api/v1/knowledge/qa",
        "/api/v1/knowledge/urls",
        "/api/v1/knowledge/files",
        "/api/v1/knowledge/search?q=refund+policy",
    ):
        response = attacker.get(path)
        assert response.status_code == 200, (path, response.content[:300])
        text = response.content.decode()
        assert not any(secret in text for secret in secrets), path
        assert "secret of A" not in text and "cust-a" not in text


def test_a_visitor_cannot_reach_another_visitors_session(victim):
    """Row 27: two widget visitors of the same organization."""
    tenant = victim["tenant"]
    organization_id = tenant.organization.id
    token_x, _ = widget_token_issue(organization_id=organization_id, visitor_id="v_x")
    token_y, _ = widget_token_issue(organization_id=organization_id, visitor_id="v_y")
    visitor_x, visitor_y = APIClient(), APIClient()
    visitor_x.credentials(HTTP_AUTHORIZATION=f"Bearer {token_x}")
    visitor_y.credentials(HTTP_AUTHORIZATION=f"Bearer {token_y}")
    session = _data(
        visitor_x.post("/api/v1/sessions", {"assistant_id": victim["ids"]["assistants"]}, format="json")
    )
    question = _data(
        visitor_x.post(
            f"/api/v1/sessions/{session['id']}/messages", {"content": "x's question"}, format="json"
        )
    )
    count = Message.objects.for_organization(tenant.organization).count()
    base = f"/api/v1/sessions/{session['id']}"
    assert_error_shape(visitor_y.get(base), 404)
    assert_error_shape(visitor_y.get(f"{base}/messages"), 404)
    assert_error_shape(visitor_y.get(f"{base}/events"), 404)
    for path, body in (
        ("messages", {"content": "y"}),
        ("handoff", {"reason": "y", "email": "y@example.com"}),
        ("csat", {"score": 1}),
        (f"messages/{question['id']}/feedback", {"rating": "down"}),
    ):
        assert_error_shape(visitor_y.post(f"{base}/{path}", body, format="json"), 404)
    assert _data(visitor_x.get(base))["handoff_status"] == "bot"
    # The API-key session of the operator's server is not the visitor's either.
    assert_error_shape(visitor_x.get(f"/api/v1/sessions/{victim['ids']['sessions']}"), 404)
    assert Message.objects.for_organization(tenant.organization).count() == count
    # Management endpoints stay closed to visitors.
    for path in ("/api/v1/assistants", "/api/v1/contexts", "/api/v1/api-keys", "/api/v1/conversations"):
        assert_error_shape(visitor_x.get(path), 403)


# --- the dashboard: the same walk over its URL patterns -------------------------------------
# Dashboard URLs whose object is public by design (the widget's own iframe page, like
# widget.js) or named by an emailed token rather than an id.
DASHBOARD_PUBLIC = {"widget-frame", "signup-verify", "password-reset-confirm", "invitation"}
DASHBOARD_WRITE = {
    "name": "pwned",
    "title": "pwned",
    "role": "agent",
    "content": "pwned",
    "body": "pwned",
    "label": "pwned",
    "base_url": "",
    "url": "https://pwned.example/",
    "assignee": "me",
    "greeting": "pwned",
}


def _dashboard_object_patterns() -> list[tuple[str, str, list[str]]]:
    """(name, route, parameter names) of every dashboard URL that names an object."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield pattern.name, prefix + str(pattern.pattern), list(pattern.pattern.converters)

    return [
        (name, route, params)
        for name, route, params in walk(get_resolver().url_patterns)
        if params and not route.startswith("api/")
    ]


def test_every_dashboard_object_url_answers_404_to_another_organization(victim, other_tenant):
    """B's owner, signed in, with A's ids in every dashboard URL that names an object: GET and
    POST answer 404 (or 405 where the route has no such method, whatever the id), and nothing
    of A's changes. A new dashboard URL with an id the walk cannot fill fails the test."""
    from django.test import Client
    from django.urls import reverse

    from assistants import llm_models
    from assistants.models import ModelConnection
    from chat.models import Conversation
    from organizations.models import ApiKey, Membership

    organization = victim["tenant"].organization
    ids = victim["ids"]
    connection = llm_models.connection_create(
        organization=organization, provider="openai", model="gpt-4o-mini", api_key="sk-a-own-key-123456"
    )
    membership = Membership.objects.for_organization(organization).get()
    values = {
        "settings-api-key-revoke": {"pk": ids["api-keys"]},
        "settings-member-role": {"pk": membership.pk},
        "settings-member-remove": {"pk": membership.pk},
        "assistant-edit": {"pk": ids["assistants"]},
        "assistant-delete": {"pk": ids["assistants"]},
        "assistant-action-create": {"pk": ids["assistants"]},
        "assistant-action-edit": {"pk": ids["assistants"], "action_id": victim["actions"]["assistants"]},
        "assistant-action-delete": {"pk": ids["assistants"], "action_id": victim["actions"]["assistants"]},
        "assistant-playground": {"pk": ids["assistants"]},
        "assistant-playground-reset": {"pk": ids["assistants"]},
        "settings-ai-model-edit": {"pk": connection.pk},
        "settings-ai-model-delete": {"pk": connection.pk},
        "settings-ai-model-test": {"pk": connection.pk},
        "knowledge-source": {"pk": ids["knowledge/files"]},
        "knowledge-source-row": {"pk": ids["knowledge/files"]},
        "knowledge-source-retry": {"pk": ids["knowledge/files"]},
        "knowledge-source-delete": {"pk": ids["knowledge/urls"]},
        "widget-configure": {"pk": ids["widgets"]},
        "widget-preview": {"pk": ids["widgets"]},
        "widget-client-key": {"pk": ids["widgets"]},
        "widget-delete": {"pk": ids["widgets"]},
        "settings-webhook-detail": {"pk": ids["webhooks"]},
        "settings-webhook-resend": {"pk": ids["webhooks"], "delivery_id": victim["deliveries"]["webhooks"]},
    }
    inbox = {"pk": ids["conversations"]}
    for name in (
        "inbox-conversation",
        "inbox-transcript",
        "inbox-reply",
        "inbox-typing",
        "inbox-assign",
        "inbox-note",
    ):
        values[name] = inbox
    actions = [{**inbox, "action": action} for action in ("take-over", "hand-back", "resolve", "reopen")]

    def state():
        return (
            _snapshot(victim),
            list(ApiKey.objects.for_organization(organization).values_list("pk", "revoked_at")),
            list(Membership.objects.for_organization(organization).values_list("pk", "role")),
            list(
                ModelConnection.objects.for_organization(organization).values_list("pk", "label", "base_url")
            ),
            list(
                Conversation.objects.for_organization(organization).values_list(
                    "pk", "handoff_status", "assigned_to_id", "resolution_count"
                )
            ),
        )

    before = state()
    attacker = Client()
    attacker.force_login(other_tenant.owner)
    walked = 0
    for name, route, _params in _dashboard_object_patterns():
        if name in DASHBOARD_PUBLIC:
            continue
        assert name in values or name == "inbox-action", (
            f"the dashboard tenancy walk does not know how to fill {route} ({name}): add it"
        )
        for kwargs in actions if name == "inbox-action" else [values[name]]:
            url = reverse(name, kwargs=kwargs)
            for method in ("get", "post"):
                response = getattr(attacker, method)(url, DASHBOARD_WRITE if method == "post" else None)
                assert response.status_code in (404, 405), (method, url, response.status_code)
                walked += 1
    assert walked >= 60
    assert state() == before


def _api_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, method.upper())
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "put", "patch", "delete", "post"}
    ]


def test_a_visitors_widget_token_reaches_no_operation_beyond_its_own_sessions(victim):
    """Rows 24 and 27 as a walk over the schema: a genuine widget token of A (its widget, its
    key) on every operation. One that does not take widget tokens answers 403 (the desk,
    privacy, audit, webhooks, keys, knowledge… and every operation added later); one that
    does, naming A's API-key session (another visitor's), answers 404; nothing of A changes."""
    from django.urls import resolve

    from organizations.models import ApiKey
    from organizations.permissions import widget_token_accepted

    tenant = victim["tenant"]
    before = _snapshot(victim)
    token, _ = widget_token_issue(
        organization_id=tenant.organization.pk,
        widget_id=victim["ids"]["widgets"],
        visitor_id="v_intruder",
        api_key_id=ApiKey.objects.for_organization(tenant.organization).get(client_id=tenant.client_id).pk,
    )
    visitor = APIClient()
    visitor.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    # Public by design: the mint, and the seed-000 widget configuration by widgetId.
    unguarded = {"/api/v1/auth/widget-token/", "/api/widget/config/"}
    walked, accepted = 0, set()
    for path, method in _api_operations():
        if path in unguarded:
            continue
        url = _fill(path, victim) if "{" in path else path
        if url.endswith("/events/"):
            continue  # the live stream: its 404 is asserted by chat/tests/test_live.py
        view = resolve(url).func.cls
        response = visitor.generic(method, url, data=json.dumps(WRITE_BODY), content_type="application/json")
        if widget_token_accepted(view, method):
            accepted.add(f"{method} {path}")
            if path == "/api/v1/widgets/{id}/config/":
                assert response.status_code == 200  # its own widget's public configuration
            elif "{id}" in path:
                assert_error_shape(response, 404)  # A's session, but not this visitor's
            elif path == "/api/v1/sessions/" and method == "GET":
                assert_error_shape(response, 403)  # an anonymous visitor lists nothing
        else:
            assert_error_shape(response, 403)
        walked += 1
    assert walked >= 60
    # What a visitor may do, all of it: a new entry here is a decision, not an accident.
    assert accepted == {
        "GET /api/v1/sessions/",
        "POST /api/v1/sessions/",
        "GET /api/v1/sessions/{id}/",
        "POST /api/v1/sessions/{id}/csat/",
        "POST /api/v1/sessions/{id}/handoff/",
        "GET /api/v1/sessions/{id}/messages/",
        "POST /api/v1/sessions/{id}/messages/",
        "POST /api/v1/sessions/{id}/messages/{message_id}/feedback/",
        "GET /api/v1/widgets/{id}/config/",
    }
    assert _snapshot(victim) == before
