"""`/api/v1/webhooks/…`: CRUD with an owner's/admin's key, the secret shown once, bad inputs,
SSRF refusals at save time (fake resolver), and other organizations' ids → 404."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from core import crypto
from organizations.models import AuditEvent
from organizations.services import api_key_create, event_emit
from testkit.fixtures import member_add
from webhooks import services
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://hooks.customer-crm.com/supportai"


@pytest.fixture(autouse=True)
def _public_dns(fake_dns):
    return fake_dns({"hooks.customer-crm.com": ["93.184.216.34"], "internal.customer-crm.com": ["10.1.2.3"]})


def _create(api, **overrides):
    body = {"url": PUBLIC_URL, "events": ["message.created", "handoff.requested"], "description": "CRM"}
    body.update(overrides)
    return api.post("/api/v1/webhooks", body, format="json")


def test_create_returns_the_secret_once_and_stores_it_encrypted(api, tenant):
    response = _create(api)
    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"  # no cache may keep the one copy
    data = response.json()["data"]
    secret = data["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert data["events"] == ["handoff.requested", "message.created"]
    assert data["is_active"] is True and data["secret_hint"] == secret[-4:]
    endpoint = Endpoint.objects.for_organization(tenant.organization).get(pk=data["id"])
    assert secret not in endpoint.secret_encrypted
    assert crypto.decrypt(endpoint.secret_encrypted, purpose=services.SECRET_PURPOSE) == secret
    # A token for another purpose never decrypts as this one.
    assert crypto.decrypt(endpoint.secret_encrypted, purpose="something else") is None
    # Never again: not in get, list, patch, nor in the audit log.
    for later in (
        api.get(f"/api/v1/webhooks/{endpoint.pk}"),
        api.get("/api/v1/webhooks"),
        api.patch(f"/api/v1/webhooks/{endpoint.pk}", {"description": "x"}, format="json"),
    ):
        assert later.status_code == 200
        assert secret not in later.content.decode() and '"secret"' not in later.content.decode()
    audit = AuditEvent.objects.for_organization(tenant.organization).filter(action__startswith="webhook.")
    assert {event.action for event in audit} == {"webhook.created", "webhook.updated"}
    assert all(secret not in str(event.changes) for event in audit)


def test_rotate_returns_a_new_secret_once(api, tenant):
    created = _create(api).json()["data"]
    rotated = api.post(f"/api/v1/webhooks/{created['id']}/rotate-secret")
    assert rotated.status_code == 200 and rotated["Cache-Control"] == "no-store"
    new_secret = rotated.json()["data"]["secret"]
    assert new_secret != created["secret"] and new_secret.startswith("whsec_")
    endpoint = Endpoint.objects.for_organization(tenant.organization).get(pk=created["id"])
    assert crypto.decrypt(endpoint.secret_encrypted, purpose=services.SECRET_PURPOSE) == new_secret
    assert new_secret not in api.get(f"/api/v1/webhooks/{created['id']}").content.decode()


def test_list_get_patch_delete(api, tenant):
    created = _create(api).json()["data"]
    listed = api.get("/api/v1/webhooks/").json()["data"]
    assert listed["count"] == 1 and listed["results"][0]["id"] == created["id"]
    patched = api.patch(
        f"/api/v1/webhooks/{created['id']}",
        {"events": ["csat.created"], "is_active": False, "description": "paused"},
        format="json",
    ).json()["data"]
    assert (patched["events"], patched["is_active"], patched["description"]) == (
        ["csat.created"],
        False,
        "paused",
    )
    assert api.delete(f"/api/v1/webhooks/{created['id']}").status_code == 200
    assert api.get(f"/api/v1/webhooks/{created['id']}").status_code == 404
    assert not Endpoint.objects.for_organization(tenant.organization).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": ""}, "url"),
        ({"url": "ftp://hooks.customer-crm.com/x"}, "url"),
        ({"url": "http://127.0.0.1/hook"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "url"),
        ({"url": "http://[::ffff:10.0.0.1]/"}, "url"),
        ({"url": "https://internal.customer-crm.com/hook"}, "url"),  # resolves to 10.1.2.3
        ({"url": "https://hooks.customer-crm.com:8443/x"}, "url"),  # not 80/443, not allow-listed
        ({"url": 12}, "url"),
        ({"events": []}, "events"),
        ({"events": "message.created"}, "events"),
        ({"events": ["message.created", "message.deleted"]}, "events"),
        ({"events": [{"x": 1}]}, "events"),
        ({"description": "x" * 501}, "description"),
        ({"description": 5}, "description"),
    ],
)
def test_create_refuses_bad_input(api, tenant, body, field):
    response = _create(api, **body)
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["status"] == "error" and field in payload["data"]
    assert not Endpoint.objects.for_organization(tenant.organization).exists()


def test_create_names_every_bad_field_at_once_and_takes_is_active_as_a_boolean_only(api, tenant):
    both = _create(api, url="http://10.0.0.1/hook", events=["nope"])
    assert both.status_code == 400 and set(both.json()["data"]) == {"url", "events"}  # was url alone
    # A string or a number was taken as "active" (`"false"` made an active endpoint); PATCH refused it.
    for value in ("false", 0, None):
        refused = _create(api, is_active=value)
        assert refused.status_code == 400 and refused.json()["data"] == {"is_active": ["Must be a boolean."]}
    assert not Endpoint.objects.for_organization(tenant.organization).exists()
    assert _create(api, is_active=False).json()["data"]["is_active"] is False


def test_bad_json_and_non_object_bodies(api):
    assert api.post("/api/v1/webhooks", "[1, 2]", content_type="application/json").status_code == 400
    broken = api.post("/api/v1/webhooks", "{not json", content_type="application/json")
    assert broken.status_code == 400 and broken.json()["status"] == "error"
    assert api.patch(f"/api/v1/webhooks/{uuid.uuid4()}", {}, format="json").status_code == 404
    assert api.get("/api/v1/webhooks/not-a-uuid").status_code == 404


def test_patch_refuses_bad_input_and_changes_nothing(api, tenant):
    created = _create(api).json()["data"]
    for body in ({"url": "http://10.0.0.1/"}, {"events": ["nope"]}, {"is_active": "yes"}):
        response = api.patch(f"/api/v1/webhooks/{created['id']}", body, format="json")
        assert response.status_code == 400, body
    endpoint = Endpoint.objects.for_organization(tenant.organization).get(pk=created["id"])
    assert (endpoint.url, endpoint.is_active) == (PUBLIC_URL, True)


def test_save_time_check_resolves_the_name_now(api, fake_dns):
    # The same name, now resolving to the metadata address: refused.
    fake_dns({"hooks.customer-crm.com": ["169.254.169.254"]})
    response = _create(api)
    assert response.status_code == 400 and "url" in response.json()["data"]


def test_endpoint_limit(api, settings):
    settings.WEBHOOK_MAX_ENDPOINTS = 2
    assert _create(api).status_code == 201
    assert _create(api).status_code == 201
    assert _create(api).status_code == 400


def test_other_organizations_see_404_and_change_nothing(api, other_api, tenant, other_tenant):
    created = _create(api).json()["data"]
    event_emit(organization=tenant.organization, type="message.created", data={"conversation_id": "c1"})
    delivery = Delivery.objects.for_organization(tenant.organization).get()
    base = f"/api/v1/webhooks/{created['id']}"
    assert other_api.get(base).status_code == 404
    assert other_api.patch(base, {"is_active": False}, format="json").status_code == 404
    assert other_api.delete(base).status_code == 404
    assert other_api.post(base + "/rotate-secret").status_code == 404
    assert other_api.get(base + "/deliveries").status_code == 404
    assert other_api.get(f"{base}/deliveries/{delivery.pk}").status_code == 404
    assert other_api.post(f"{base}/deliveries/{delivery.pk}/resend").status_code == 404
    assert other_api.get("/api/v1/webhooks").json()["data"]["count"] == 0
    endpoint = Endpoint.objects.for_organization(tenant.organization).get()
    assert endpoint.is_active and endpoint.secret_hint == created["secret"][-4:]
    assert Delivery.objects.for_organization(tenant.organization).count() == 1
    # Another organization's delivery id under our own endpoint: 404 too.
    other_endpoint, _ = services.endpoint_create(
        organization=other_tenant.organization, url=PUBLIC_URL, events=["message.created"]
    )
    event_emit(organization=other_tenant.organization, type="message.created", data={})
    foreign = Delivery.objects.for_organization(other_tenant.organization).get()
    assert api.get(f"{base}/deliveries/{foreign.pk}").status_code == 404
    assert api.get(f"/api/v1/webhooks/{other_endpoint.pk}/deliveries").status_code == 404


def test_only_owner_or_admin_keys_manage_webhooks(tenant):
    agent = member_add(tenant, role="agent")
    _key, secret = api_key_create(organization=tenant.organization, name="agent key", created_by=agent)
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.post("/api/v1/webhooks", {"url": PUBLIC_URL, "events": ["csat.created"]}, format="json")
    assert response.status_code == 403 and response.json()["status"] == "error"
    assert client.get("/api/v1/webhooks").status_code == 403
    assert not Endpoint.objects.for_organization(tenant.organization).exists()
    unauthenticated = APIClient().get("/api/v1/webhooks")
    assert unauthenticated.status_code == 401


def test_widget_tokens_cannot_manage_webhooks(tenant):
    from rest_framework.test import APIClient

    minted = APIClient().post("/api/v1/auth/widget-token", {"client_id": tenant.client_id}, format="json")
    token = minted.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/webhooks").status_code == 403


def test_deliveries_list_paginates_and_filters(api, tenant):
    created = _create(api).json()["data"]
    for number in range(3):
        event_emit(
            organization=tenant.organization, type="message.created", data={"conversation_id": f"c{number}"}
        )
    Delivery.objects.for_organization(tenant.organization).filter(ordering_key="conversation:c0").update(
        status=Delivery.Status.DELIVERED
    )
    base = f"/api/v1/webhooks/{created['id']}/deliveries"
    page = api.get(base + "?page_size=2").json()["data"]
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    rest = api.get(page["next"]).json()["data"]
    assert len(rest["results"]) == 1
    first = page["results"][0]
    assert set(first) >= {
        "id",
        "event_id",
        "event_type",
        "status",
        "attempts",
        "response_status",
        "duration_ms",
    }
    assert api.get(base + "?status=delivered").json()["data"]["count"] == 1
    assert api.get(base + "?status=pending").json()["data"]["count"] == 2
    assert api.get(base + "?status=bogus").status_code == 400
    bad_cursor = api.get(base + "?cursor=zzz")  # not one of ours: a bad parameter, not a missing list
    assert bad_cursor.status_code == 400 and "cursor" in bad_cursor.json()["data"]
    detail = api.get(f"{base}/{first['id']}").json()["data"]
    assert detail["attempt_log"] == []


def test_resend_creates_a_new_delivery_of_the_same_event(api, tenant):
    created = _create(api).json()["data"]
    event_emit(organization=tenant.organization, type="message.created", data={"conversation_id": "c"})
    original = Delivery.objects.for_organization(tenant.organization).get()
    response = api.post(f"/api/v1/webhooks/{created['id']}/deliveries/{original.pk}/resend")
    assert response.status_code == 202
    data = response.json()["data"]
    assert data["id"] != str(original.pk) and data["event_id"] == str(original.event_id)
    assert data["resend_of"] == str(original.pk) and data["status"] == "pending"
    api.patch(f"/api/v1/webhooks/{created['id']}", {"is_active": False}, format="json")
    refused = api.post(f"/api/v1/webhooks/{created['id']}/deliveries/{original.pk}/resend")
    assert refused.status_code == 400


def test_enabling_a_disabled_endpoint_and_resending_are_in_the_audit_log_as_the_key(api, tenant):
    created = _create(api).json()["data"]
    base = f"/api/v1/webhooks/{created['id']}"
    event_emit(organization=tenant.organization, type="message.created", data={"conversation_id": "c"})
    original = Delivery.objects.for_organization(tenant.organization).get()
    audit = AuditEvent.objects.for_organization(tenant.organization)

    resent = api.post(f"{base}/deliveries/{original.pk}/resend").json()["data"]
    [event] = audit.filter(action="webhook.delivery_resent")
    assert (event.actor, event.actor_type) == ("api_key:test key", "api_key")
    assert (event.target_type, event.target_id) == ("endpoint", created["id"])
    assert event.changes == {
        "delivery_id": str(original.pk),
        "resend_id": resent["id"],
        "event_id": str(original.event_id),
        "event_type": "message.created",
    }

    # Disabled by the worker after failures, then enabled again with a PATCH.
    disabled_at = timezone.now()
    Endpoint.objects.unscoped().filter(pk=created["id"]).update(
        is_active=False,
        disabled_at=disabled_at,
        disabled_reason="Disabled after 20 failed deliveries in a row.",
    )
    assert api.post(f"{base}/deliveries/{original.pk}/resend").status_code == 400
    assert audit.filter(action="webhook.delivery_resent").count() == 1  # a refused resend is not one
    assert api.patch(base, {"is_active": True}, format="json").status_code == 200
    [enabled] = audit.filter(action="webhook.enabled")
    assert (enabled.actor, enabled.target_id) == ("api_key:test key", created["id"])
    assert enabled.changes == {
        "is_active": True,
        "disabled_at": disabled_at.isoformat(),
        "disabled_reason": "Disabled after 20 failed deliveries in a row.",
    }
    # An active endpoint saved as active, or paused, is an update only.
    api.patch(base, {"is_active": True, "description": "again"}, format="json")
    api.patch(base, {"is_active": False}, format="json")
    assert audit.filter(action="webhook.enabled").count() == 1
    assert audit.filter(action="webhook.updated").count() == 3
    assert all(created["secret"] not in str(row.changes) for row in audit)
