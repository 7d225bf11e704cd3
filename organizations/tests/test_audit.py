"""The audit log: what is recorded (and never), who may read it, and that nothing can change it."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.test import APIClient

from assistants.models import Assistant
from chat import services as chat_services
from organizations.audit import AuditActor, audit_record, audit_request
from organizations.models import AuditEvent, Membership, Organization
from organizations.services import api_key_create
from testkit.fixtures import member_add
from tests.conftest import assert_error_shape

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit-events"


def actions(organization) -> list[str]:
    return list(
        AuditEvent.objects.for_organization(organization)
        .order_by("created_at")
        .values_list("action", flat=True)
    )


def test_events_cannot_be_updated_or_deleted_by_the_model_the_queryset_or_sql(tenant):
    event = audit_record(organization=tenant.organization, action="test.happened", actor=AuditActor(name="x"))
    event.action = "test.changed"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.for_organization(tenant.organization).update(action="rewritten")
    with pytest.raises(PermissionError):
        AuditEvent.objects.for_organization(tenant.organization).delete()
    # The database trigger holds even against raw SQL (a shell, another program).
    for statement in (
        "UPDATE organizations_auditevent SET action = 'rewritten'",
        "DELETE FROM organizations_auditevent",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert actions(tenant.organization) == ["test.happened"]


def test_api_key_lifecycle_is_recorded_without_the_secret(tenant):
    created = tenant.client().post(
        "/api/v1/api-keys", {"name": "Backend"}, format="json", HTTP_USER_AGENT="curl/8"
    )
    secret = created.json()["data"]["client_secret"]
    tenant.client().delete(f"/api/v1/api-keys/{created.json()['data']['id']}")
    events = list(AuditEvent.objects.for_organization(tenant.organization).order_by("created_at"))
    assert [event.action for event in events] == ["api_key.created", "api_key.revoked"]
    first = events[0]
    assert first.actor == "api_key:test key" and first.actor_type == "api_key"
    assert first.ip == "127.0.0.1" and first.user_agent == "curl/8"
    assert first.target_type == "apikey" and first.target_id == created.json()["data"]["id"]
    assert first.changes["name"] == "Backend"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM organizations_auditevent WHERE changes::text LIKE %s", [f"%{secret[-16:]}%"]
        )
        assert cursor.fetchone()[0] == 0


def test_keys_and_widgets_made_by_the_operator_commands_are_recorded_without_the_secret(tenant):
    """The README's first steps (`create_api_key`, `create_widget`) left no trace in the log,
    although the same actions through the API and the dashboard are recorded."""
    out = io.StringIO()
    call_command(
        "create_api_key", "--org", tenant.organization.slug, "--name", "server", "--json", stdout=out
    )
    secret = json.loads(out.getvalue())["client_secret"]
    call_command("create_widget", "--org", tenant.organization.slug, "--json", stdout=io.StringIO())
    events = list(AuditEvent.objects.for_organization(tenant.organization).order_by("created_at"))
    assert [(event.action, event.actor, event.actor_type) for event in events] == [
        ("api_key.created", "manage.py create_api_key", "system"),
        ("widget.created", "manage.py create_widget", "system"),
    ]
    assert events[0].changes["name"] == "server" and events[0].target_type == "apikey"
    assert events[1].target_type == "widget" and events[1].target_id
    assert secret not in json.dumps([event.changes for event in events])

    # An organization without a key gets one from create_widget: that key is recorded too.
    bare = Organization.objects.create(name="Bare", slug="bare")
    call_command("create_widget", "--org", "bare", "--json", stdout=io.StringIO())
    assert actions(bare) == ["api_key.created", "widget.created"]


def test_sign_in_success_failure_and_password_reset_are_recorded(tenant):
    client = Client()
    client.post(
        reverse("login"), {"username": tenant.owner.email, "password": "wrong"}, HTTP_USER_AGENT="ua-test"
    )
    client.post(reverse("login"), {"username": tenant.owner.email, "password": "correct-horse-battery"})
    client.post(
        reverse("login"), {"username": "nobody@example.com", "password": "x"}
    )  # no organization's business
    assert actions(tenant.organization) == ["auth.sign_in_failed", "auth.signed_in"]
    failed = AuditEvent.objects.for_organization(tenant.organization).get(action="auth.sign_in_failed")
    assert failed.actor == tenant.owner.email and failed.user_agent == "ua-test"
    assert "wrong" not in str(failed.changes)
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    tenant.owner.refresh_from_db()  # signing in changed last_login, which reset tokens depend on
    uid = urlsafe_base64_encode(force_bytes(tenant.owner.pk))
    token = default_token_generator.make_token(tenant.owner)
    reset = Client()
    page = reset.get(reverse("password-reset-confirm", args=[uid, token]), follow=True)
    reset.post(
        page.redirect_chain[-1][0],
        {"new_password1": "another-horse-battery", "new_password2": "another-horse-battery"},
    )
    assert actions(tenant.organization)[-1] == "auth.password_reset"


def test_dashboard_actions_are_recorded(tenant, owner_client):
    owner_client.post("/settings/security/")
    owner_client.post("/settings/api-keys/", {"name": "Dash key"})
    agent = member_add(tenant, role="agent", email="agent@acme.example")
    membership = Membership.objects.for_organization(tenant.organization).get(user=agent)
    owner_client.post(f"/settings/members/{membership.pk}/role/", {"role": "admin"})
    owner_client.post("/settings/members/", {"email": "new@acme.example", "role": "agent"})
    owner_client.post(f"/settings/members/{membership.pk}/remove/")
    owner_client.post("/settings/privacy/", {"action": "policy", "retention_days": "90"})
    assistant = Assistant.objects.create(organization=tenant.organization, name="A")
    conversation = chat_services.session_create(organization=tenant.organization, assistant=assistant)
    owner_client.post(f"/inbox/{conversation.pk}/take-over/")
    assert actions(tenant.organization) == [
        "identity_secret.rotated",
        "api_key.created",
        "member.role_changed",
        "member.invited",
        "member.removed",
        "settings.updated",
        "conversation.taken_over",
    ]
    role_change = AuditEvent.objects.for_organization(tenant.organization).get(action="member.role_changed")
    assert role_change.changes == {"email": "agent@acme.example", "role": ["agent", "admin"]}
    assert role_change.actor == tenant.owner.email and role_change.actor_type == "user"
    settings_change = AuditEvent.objects.for_organization(tenant.organization).get(action="settings.updated")
    assert settings_change.changes == {"retention_days": [None, 90]}


def test_api_resource_changes_are_recorded_with_a_short_diff(tenant):
    api = tenant.client()
    assistant = api.post("/api/v1/assistants", {"name": "Helper"}, format="json").json()["data"]
    api.patch(f"/api/v1/assistants/{assistant['id']}", {"tone": "casual", "name": "Helper"}, format="json")
    widget = api.post("/api/v1/widgets", {"assistant_id": assistant["id"]}, format="json").json()["data"]
    api.patch(f"/api/v1/widgets/{widget['id']}", {"title": "New"}, format="json")
    api.delete(f"/api/v1/widgets/{widget['id']}")
    api.post(
        "/api/v1/knowledge/qa", {"question": "Secret question?", "answer": "Hidden answer"}, format="json"
    )
    api.delete(f"/api/v1/assistants/{assistant['id']}")
    assert actions(tenant.organization) == [
        "assistant.created",
        "assistant.updated",
        "widget.created",
        "widget.updated",
        "widget.deleted",
        "knowledge.created",
        "assistant.deleted",
    ]
    events = {event.action: event for event in AuditEvent.objects.for_organization(tenant.organization)}
    assert events["assistant.updated"].changes == {"tone": ["professional", "casual"]}
    assert events["widget.updated"].changes == {"title": ["Support", "New"]}
    assert "Hidden answer" not in str(events["knowledge.created"].changes)


def test_audit_events_api_filters_pages_and_is_for_admin_keys_only(tenant, other_tenant):
    for number in range(5):
        audit_record(
            organization=tenant.organization, action="api_key.created", actor=AuditActor(name=f"a{number}@x")
        )
    audit_record(organization=tenant.organization, action="member.removed", actor=AuditActor(name="boss@x"))
    audit_record(
        organization=other_tenant.organization, action="api_key.created", actor=AuditActor(name="theirs@x")
    )
    everything = tenant.client().get(URL)
    assert everything.status_code == 200, everything.content
    data = everything.json()["data"]
    assert data["count"] == 6 and all(row["actor"] != "theirs@x" for row in data["results"])
    assert set(data["results"][0]) == {
        "id",
        "action",
        "actor",
        "actor_type",
        "ip",
        "user_agent",
        "target_type",
        "target_id",
        "changes",
        "created_at",
    }
    assert [
        row["action"] for row in tenant.client().get(URL + "?action=member.removed").json()["data"]["results"]
    ] == ["member.removed"]
    assert tenant.client().get(URL + "?action=api_key").json()["data"]["count"] == 5
    assert tenant.client().get(URL + "?actor=boss").json()["data"]["count"] == 1
    assert tenant.client().get(URL + "?since=2999-01-01").json()["data"]["count"] == 0
    assert_error_shape(tenant.client().get(URL + "?since=yesterday"), 400)
    # Cursor pagination walks all six, newest first, without repeats.
    seen, url = [], URL + "?page_size=4"
    while url:
        page = tenant.client().get(url).json()["data"]
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 6
    # Agents' keys and widget tokens: 403; writing is not a method at all.
    agent = member_add(tenant, role="agent")
    _key, secret = api_key_create(organization=tenant.organization, name="agent's", created_by=agent)
    agent_api = APIClient()
    agent_api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert_error_shape(agent_api.get(URL), 403)
    token = (
        APIClient().post("/api/v1/auth/widget-token", {"client_id": tenant.client_id}, format="json").json()
    )
    visitor = APIClient()
    visitor.credentials(HTTP_AUTHORIZATION=f"Bearer {token['token']}")
    assert_error_shape(visitor.get(URL), 403)
    event_id = data["results"][0]["id"]
    for method in ("post", "put", "patch", "delete"):
        assert_error_shape(getattr(tenant.client(), method)(URL, {}, format="json"), 405)
    assert_error_shape(tenant.client().delete(f"{URL}/{event_id}"), 404)
    assert AuditEvent.objects.for_organization(tenant.organization).count() == 6


def test_a_since_with_an_unencoded_plus_and_a_foreign_cursor_are_read_or_named(tenant):
    """Two things a developer types by hand: `since=…T08:00:00+01:00` without encoding the "+"
    (it arrives as a space, and was a 400), and a cursor that is not one of ours (was a 404
    "Not found.", as if the endpoint were gone)."""
    audit_record(organization=tenant.organization, action="api_key.created", actor=AuditActor(name="a@x"))
    api = tenant.client()
    assert api.get(URL + "?since=2000-01-01T08:00:00+01:00").json()["data"]["count"] == 1
    assert api.get(URL + "?since=2999-01-01T08:00:00+01:00").json()["data"]["count"] == 0
    assert (
        api.get(URL + "?since=2000-01-01 08:00").json()["data"]["count"] == 1
    )  # a space separator stays one
    body = assert_error_shape(api.get(URL + "?cursor=garbage"), 400)
    assert "cursor" in body["data"]


@pytest.mark.parametrize(
    "since",
    [
        "9999-99-99",
        "2026-02-30",
        "2026-01-01T25:00:00",
        "2026-01-01T00:00:00+99:00",
    ],
)
def test_a_since_shaped_like_a_date_that_is_none_is_a_400(tenant, since):
    """Well formed but impossible (month 99, the 30th of February, 25 o'clock, an offset of 99
    hours): Django's parsers raise ValueError for these instead of answering None, and the
    audit log answered 500."""
    body = assert_error_shape(tenant.client().get(URL, {"since": since}), 400)
    assert "since" in body["data"]


def test_dashboard_audit_log_filters_exports_csv_and_is_for_managers(tenant, owner_client):
    audit_record(
        organization=tenant.organization, action="api_key.created", actor=AuditActor(name="=cmd|x@evil")
    )
    audit_record(
        organization=tenant.organization, action="member.removed", actor=AuditActor(name="boss@acme.example")
    )
    page = owner_client.get("/settings/audit-log/?action=member.removed").content.decode()
    assert "boss@acme.example" in page and "=cmd|x@evil" not in page
    csv_response = owner_client.get("/settings/audit-log/?format=csv")
    assert csv_response["Content-Type"].startswith("text/csv")
    body = csv_response.content.decode()
    assert "member.removed" in body and "'=cmd|x@evil" in body  # formula-safe cell
    filtered = owner_client.get("/settings/audit-log/?format=csv&actor=boss").content.decode()
    assert "api_key.created" not in filtered
    agent = member_add(tenant, role="agent")
    agent_client = Client()
    agent_client.force_login(agent)
    assert agent_client.get("/settings/audit-log/").status_code == 403
    assert agent_client.get("/settings/audit-log/?format=csv").status_code == 403


def test_erasure_scrubs_personal_data_from_events_and_records_itself_without_it(tenant, owner_client):
    email = f"p{uuid.uuid4().hex[:8]}@example.com"
    audit_record(
        organization=tenant.organization,
        action="member.invited",
        actor=AuditActor(name="boss@x"),
        changes={"email": email},
    )
    tenant.client().post(
        "/api/v1/contexts", {"user_reference": "c-1", "traits": {"email": email}}, format="json"
    )
    response = tenant.client().post("/api/v1/privacy/erase", {"email": email}, format="json")
    assert response.json()["data"]["audit_events"] == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM organizations_auditevent WHERE changes::text ILIKE %s OR actor ILIKE %s",
            [f"%{email}%", f"%{email}%"],
        )
        assert cursor.fetchone()[0] == 0
    erased = AuditEvent.objects.for_organization(tenant.organization).get(action="privacy.erased")
    assert erased.changes["by"] == "email" and erased.changes["contexts"] == 1
    assert AuditEvent.objects.for_organization(tenant.organization).get(action="member.invited").changes == {
        "erased": True
    }
    tenant.client().get(f"/api/v1/privacy/export?email={email}")
    assert actions(tenant.organization)[-1] == "privacy.exported"


def test_erasure_cannot_be_used_to_blank_the_log(tenant):
    """Found by the security pass: scrubbing matched substrings, so erasing the customer id
    "e" (or "@", "a") blanked the actor, target and diff of nearly every event: an admin key
    could wipe the append-only log. Only whole values are named now; API keys, the system and
    current members stay attributed; an erased address inside longer text still goes."""
    member = member_add(tenant, role="admin", email="dana@acme.example")  # a user
    audit_record(
        organization=tenant.organization,
        action="api_key.created",
        actor=AuditActor(name="api_key:deploy", kind="api_key"),
        target_type="apikey",
        target_id="2d8c3a57-6c2e-4b83-9a37-6ee2a35f4f3e",
        changes={"name": "deploy key", "client_id": "ci_abc"},
    )
    audit_record(
        organization=tenant.organization,
        action="member.role_changed",
        actor=AuditActor(name=member.email, kind="user", user_agent="Mozilla/5.0 (X11; Linux x86_64)"),
        changes={"role": ["agent", "admin"], "note": "asked by ada@customer.example today"},
    )
    before = list(
        AuditEvent.objects.for_organization(tenant.organization).values_list("actor", "target_id", "changes")
    )
    api = tenant.client()
    for value in ("e", "a", "@", ".", "deploy", "api_key:deploy", "dana", member.email):
        response = api.post("/api/v1/privacy/erase", {"customer_id": value}, format="json")
        assert response.status_code == 200 and response.json()["data"]["audit_events"] == 0, value
    kept = AuditEvent.objects.for_organization(tenant.organization).exclude(action="privacy.erased")
    assert list(kept.values_list("actor", "target_id", "changes")) == before
    # A real subject's address, inside a longer note, is still erased (its event's diff goes).
    response = api.post("/api/v1/privacy/erase", {"email": "ADA@customer.example"}, format="json")
    assert response.json()["data"]["audit_events"] == 1
    event = kept.get(action="member.role_changed")
    assert event.changes == {"erased": True} and event.actor == member.email


def test_dashboard_audit_log_says_when_a_date_filter_is_not_a_date(tenant, owner_client):
    """A hand-edited URL with a malformed date lists and exports nothing, and says why; the log
    is not shown (or exported) whole as if the filter had applied."""
    audit_record(
        organization=tenant.organization, action="member.removed", actor=AuditActor(name="boss@acme")
    )
    for query in ("date_from=yesterday", "date_to=2026-02-30", "actor=boss&date_from=06/12/2026"):
        page = owner_client.get(f"/settings/audit-log/?{query}")
        assert page.status_code == 200 and list(page.context["page_obj"]) == []
        body = page.content.decode()
        assert "enter a date as YYYY-MM-DD" in body and "Filters not applied" in body
        assert "boss@acme" not in body.split('data-testid="audit-filters"', 1)[1]
        export = owner_client.get(f"/settings/audit-log/?format=csv&{query}")
        assert export.status_code == 400 and "boss@acme" not in export.content.decode()
    fine = owner_client.get("/settings/audit-log/?date_from=2000-01-01")
    assert [event.action for event in fine.context["page_obj"]] == ["member.removed"]


def test_audit_request_is_the_one_way_from_a_request_to_an_event(tenant):
    """The API's and the dashboard's `audit()` both call `audit_request`: the actor from the
    request, the target from the object (or an explicit `target_type`)."""
    request = RequestFactory().post("/settings/", HTTP_USER_AGENT="pytest-agent", REMOTE_ADDR="203.0.113.9")
    request.user = tenant.owner
    assistant = Assistant.objects.create(organization=tenant.organization, name="A")
    event = audit_request(
        request=request,
        organization=tenant.organization,
        action="assistant.updated",
        target=assistant,
        changes={"name": ["B", "A"], "api_token": "tok-123"},
    )
    assert (event.actor, event.actor_type, event.user_agent) == (tenant.owner.email, "user", "pytest-agent")
    assert (event.target_type, event.target_id) == ("assistant", str(assistant.pk))
    assert event.changes == {"name": ["B", "A"], "api_token": "[redacted]"}
    named = audit_request(
        request=request,
        organization=tenant.organization,
        action="settings.updated",
        target_type="organization",
    )
    assert (named.target_type, named.target_id) == ("organization", "")


def test_dashboard_resource_changes_are_recorded_like_the_apis(tenant, owner_client):
    """The dashboard made, changed and deleted assistants, widgets, knowledge, the widget key and
    business hours without a trace in the log, while the same actions through the API were
    recorded (docs/security.md promised both)."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from knowledge.models import KnowledgeSource
    from organizations.models import ApiKey
    from widget.models import Widget

    persona = {
        "name": "Helper",
        "tone": "friendly",
        "language": "en",
        "temperature": "0.3",
        "is_active": "on",
    }
    owner_client.post(reverse("assistant-create"), persona)
    assistant = Assistant.objects.for_organization(tenant.organization).get(name="Helper")
    owner_client.post(reverse("assistant-edit", args=[assistant.pk]), {**persona, "tone": "casual"})
    owner_client.post(reverse("widgets"), {"assistant": str(assistant.pk), "title": "Support"})
    widget = Widget.objects.for_organization(tenant.organization).get()
    form = {
        "assistant": str(assistant.pk),
        "title": "Support",
        "launcher_label": "Chat",
        "primary_color": "#ff6600",
        "position": "bottom-right",
        "allowed_domains": "shop.example",
        "human_handoff": "after_answer",
        "is_active": "on",
    }
    saved = owner_client.post(reverse("widget-configure", args=[widget.pk]), form)
    assert saved.status_code == 302, saved.content.decode()[-3000:]
    # The tenant's key is the widget-facing one: revoked, the page makes the widget a key.
    ApiKey.objects.for_organization(tenant.organization).update(revoked_at=timezone.now())
    owner_client.post(reverse("widget-client-key", args=[widget.pk]))
    owner_client.post(
        reverse("knowledge-qa-create"), {"question": "Secret question?", "answer": "Hidden answer"}
    )
    qa = KnowledgeSource.objects.for_organization(tenant.organization).get(kind="qa")
    owner_client.post(
        reverse("knowledge-source", args=[qa.pk]),
        {"question": "Secret question?", "answer": "Another hidden answer", "tags": "billing"},
    )
    owner_client.post(
        reverse("knowledge-files"), {"files": [SimpleUploadedFile("terms.txt", b"Returns within 30 days.\n")]}
    )
    owner_client.post(reverse("knowledge-source-delete", args=[qa.pk]))
    owner_client.post(reverse("settings-business-hours"), {"timezone": "Europe/Paris", "mon": "09:00-17:00"})
    owner_client.post(reverse("widget-delete", args=[widget.pk]))
    owner_client.post(reverse("assistant-delete", args=[assistant.pk]))
    assert actions(tenant.organization) == [
        "assistant.created",
        "assistant.updated",
        "widget.created",
        "widget.updated",
        "api_key.created",
        "knowledge.created",
        "knowledge.updated",
        "knowledge.created",
        "knowledge.deleted",
        "settings.updated",
        "widget.deleted",
        "assistant.deleted",
    ]
    events = {event.action: event for event in AuditEvent.objects.for_organization(tenant.organization)}
    assert all(event.actor == tenant.owner.email for event in events.values())
    assert events["assistant.updated"].changes == {"tone": ["friendly", "casual"]}
    assert events["widget.updated"].changes["allowed_domains"] == [[], ["https://shop.example"]]
    assert events["api_key.created"].changes["name"] == "Widget"
    assert events["knowledge.updated"].changes == {
        "kind": "qa",
        "answer": "[redacted]",
        "tags": [[], ["billing"]],
    }
    assert "hidden answer" not in json.dumps([event.changes for event in events.values()]).lower()
    assert events["settings.updated"].changes["business_timezone"][1] == "Europe/Paris"
    # Saving what is already there records nothing new.
    owner_client.post(reverse("settings-business-hours"), {"timezone": "Europe/Paris", "mon": "09:00-17:00"})
    assert actions(tenant.organization).count("settings.updated") == 1


def test_deleting_a_session_a_conversation_or_a_customer_context_is_recorded_without_naming_them(tenant):
    """Deleting customer data over the API is in the log (a context's deletion was not, while a
    session's and a conversation's were), by id only: the customer id is not repeated there."""
    api = tenant.client()
    assistant = api.post("/api/v1/assistants", {"name": "Helper"}, format="json").json()["data"]
    context = api.post(
        "/api/v1/contexts", {"user_reference": "cust-77", "traits": {"plan": "gold"}}, format="json"
    ).json()["data"]
    session = api.post("/api/v1/sessions", {"assistant_id": assistant["id"]}, format="json").json()["data"]
    conversation = api.post(
        "/api/v1/conversations", {"assistant_id": assistant["id"], "customer_id": "cust-77"}, format="json"
    ).json()["data"]
    for path in (
        f"/api/v1/contexts/{context['id']}",
        f"/api/v1/sessions/{session['id']}",
        f"/api/v1/conversations/{conversation['id']}",
    ):
        assert api.delete(path).status_code in (200, 204)
    deleted = AuditEvent.objects.for_organization(tenant.organization).filter(action__endswith=".deleted")
    assert sorted(deleted.values_list("action", "changes")) == [
        ("context.deleted", {"id": context["id"]}),
        ("conversation.deleted", {"id": conversation["id"]}),
        ("session.deleted", {"id": session["id"]}),
    ]
    assert "cust-77" not in json.dumps(list(deleted.values_list("changes", flat=True)))
