"""Settings › Webhooks: owners/admins create (secret shown once), edit, rotate, delete, read
the delivery log and resend; agents get 403; another organization's ids 404."""

from __future__ import annotations

import pytest

from organizations.models import AuditEvent
from organizations.services import event_emit
from webhooks import services
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db

URL = "https://hooks.customer-crm.com/in"


@pytest.fixture(autouse=True)
def _public_dns(fake_dns):
    return fake_dns({"hooks.customer-crm.com": ["93.184.216.34"]})


def test_create_shows_the_secret_once(owner_client, tenant):
    page = owner_client.get("/settings/webhooks/")
    assert page.status_code == 200 and b"No webhook endpoints yet" in page.content
    response = owner_client.post(
        "/settings/webhooks/",
        {"url": URL, "events": ["message.created", "csat.created"], "is_active": "on", "request_token": "t1"},
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    endpoint = Endpoint.objects.for_organization(tenant.organization).get()
    secret = response.context["new_secret"]
    assert secret.startswith("whsec_") and secret.encode() in response.content
    assert endpoint.events == ["csat.created", "message.created"] and endpoint.created_by == tenant.owner
    again = owner_client.get("/settings/webhooks/")
    assert secret.encode() not in again.content and URL.encode() in again.content
    replay = owner_client.post(
        "/settings/webhooks/", {"url": URL, "events": ["message.created"], "request_token": "t1"}
    )
    assert replay.status_code == 302 and Endpoint.objects.for_organization(tenant.organization).count() == 1
    detail = owner_client.get(f"/settings/webhooks/{endpoint.pk}/")
    assert detail.status_code == 200 and secret.encode() not in detail.content


def test_the_events_checkboxes_are_one_group_named_by_a_legend(owner_client):
    """Walking the dashboard: the events' checkboxes were laid out as one checkbox, the list
    first and its "Events" label after it, beside it, with "This field is required" there."""
    page = owner_client.get("/settings/webhooks/").content.decode()
    assert '<fieldset class="fieldset"><legend>Events</legend>' in page
    assert 'field--check">' not in page.split('id="id_url"')[1].split("Description")[0]
    assert '<label for="id_events">Events</label>' not in page


def test_create_refuses_internal_urls_and_unknown_events(owner_client, tenant):
    response = owner_client.post(
        "/settings/webhooks/", {"url": "http://169.254.169.254/", "events": ["csat.created"]}
    )
    assert response.status_code == 200 and response.context["form"].errors["url"]
    response = owner_client.post("/settings/webhooks/", {"url": URL, "events": ["nope"]})
    assert response.status_code == 200 and response.context["form"].errors["events"]
    assert not Endpoint.objects.for_organization(tenant.organization).exists()


def test_edit_rotate_delete(owner_client, tenant):
    endpoint, secret = services.endpoint_create(
        organization=tenant.organization, url=URL, events=["csat.created"]
    )
    page = f"/settings/webhooks/{endpoint.pk}/"
    saved = owner_client.post(
        page, {"action": "save", "url": URL, "events": ["message.created"], "description": "d"}
    )
    assert saved.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.events == ["message.created"] and not endpoint.is_active and endpoint.description == "d"
    rotated = owner_client.post(page, {"action": "rotate"})
    new_secret = rotated.context["new_secret"]
    assert new_secret != secret and new_secret.encode() in rotated.content
    assert rotated["Cache-Control"] == "no-store"
    assert owner_client.post(page, {"action": "delete"}).status_code == 302
    assert not Endpoint.objects.for_organization(tenant.organization).exists()


def test_delivery_log_and_resend(owner_client, tenant):
    endpoint, _ = services.endpoint_create(organization=tenant.organization, url=URL, events=["csat.created"])
    event_emit(
        organization=tenant.organization, type="csat.created", data={"conversation_id": "c", "score": 4}
    )
    delivery = Delivery.objects.for_organization(tenant.organization).get()
    Delivery.objects.unscoped().filter(pk=delivery.pk).update(
        status="failed",
        attempts=3,
        response_status=500,
        response_excerpt="boom <b>",
        error="HTTP 500",
        duration_ms=12,
    )
    page = owner_client.get(f"/settings/webhooks/{endpoint.pk}/")
    body = page.content.decode()
    assert "csat.created" in body and "HTTP 500" in body and "12 ms" in body and str(delivery.pk) in body
    assert "boom &lt;b&gt;" in body  # the receiver's answer is escaped
    assert (
        owner_client.get(f"/settings/webhooks/{endpoint.pk}/?status=delivered")
        .context["page_obj"]
        .paginator.count
        == 0
    )
    resent = owner_client.post(f"/settings/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/resend/")
    assert resent.status_code == 302
    copy = Delivery.objects.for_organization(tenant.organization).get(resend_of=delivery)
    assert copy.status == "pending" and copy.event_id == delivery.event_id
    [audited] = AuditEvent.objects.for_organization(tenant.organization).filter(
        action="webhook.delivery_resent"
    )
    assert (audited.actor, audited.actor_type) == (tenant.owner.email, "user")
    assert (audited.target_id, audited.changes["resend_id"]) == (str(endpoint.pk), str(copy.pk))


def test_enabling_an_endpoint_disabled_after_failures_is_audited_as_the_operator(owner_client, tenant):
    endpoint, _ = services.endpoint_create(organization=tenant.organization, url=URL, events=["csat.created"])
    Endpoint.objects.unscoped().filter(pk=endpoint.pk).update(
        is_active=False, disabled_reason="Disabled after 20 failed deliveries in a row."
    )
    form = {"action": "save", "url": URL, "events": ["csat.created"], "description": ""}
    assert owner_client.post(f"/settings/webhooks/{endpoint.pk}/", form).status_code == 302  # still off
    assert not AuditEvent.objects.for_organization(tenant.organization).filter(action="webhook.enabled")
    saved = owner_client.post(f"/settings/webhooks/{endpoint.pk}/", {**form, "is_active": "on"})
    assert saved.status_code == 302
    [audited] = AuditEvent.objects.for_organization(tenant.organization).filter(action="webhook.enabled")
    assert (audited.actor, audited.actor_type, audited.target_id) == (
        tenant.owner.email,
        "user",
        str(endpoint.pk),
    )
    assert audited.changes["disabled_reason"] == "Disabled after 20 failed deliveries in a row."


def test_agents_are_refused_and_other_organizations_get_404(agent_client, foreign_client, tenant):
    endpoint, _ = services.endpoint_create(organization=tenant.organization, url=URL, events=["csat.created"])
    event_emit(organization=tenant.organization, type="csat.created", data={})
    delivery = Delivery.objects.for_organization(tenant.organization).get()
    assert agent_client.get("/settings/webhooks/").status_code == 403
    assert (
        agent_client.post("/settings/webhooks/", {"url": URL, "events": ["csat.created"]}).status_code == 403
    )
    for client in (foreign_client,):
        assert client.get(f"/settings/webhooks/{endpoint.pk}/").status_code == 404
        assert client.post(f"/settings/webhooks/{endpoint.pk}/", {"action": "delete"}).status_code == 404
        assert client.post(f"/settings/webhooks/{endpoint.pk}/", {"action": "rotate"}).status_code == 404
        assert (
            client.post(f"/settings/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/resend/").status_code
            == 404
        )
    assert (
        Endpoint.objects.for_organization(tenant.organization)
        .filter(secret_hint=endpoint.secret_hint)
        .exists()
    )
    assert Delivery.objects.for_organization(tenant.organization).count() == 1


def test_a_url_that_carries_a_token_stays_out_of_the_audit_log(api, owner_client, tenant):
    """Many receivers' URLs are their credential (Slack's and Discord's webhook URLs, a catch
    hook's path, a ?token=); the append-only audit log kept each one whole, for good, even after
    the endpoint was changed or deleted because it leaked. It keeps the origin now."""
    tokens = ["T0KEN-PATH-1", "t0ken-query-2", "T0KEN-DASH-3", "t0ken-dash-4"]
    created = api.post(
        "/api/v1/webhooks",
        {"url": f"https://hooks.customer-crm.com/services/{tokens[0]}", "events": ["csat.created"]},
        format="json",
    ).json()["data"]
    api.patch(
        f"/api/v1/webhooks/{created['id']}",
        {"url": f"https://hooks.customer-crm.com/in?token={tokens[1]}"},
        format="json",
    )
    api.delete(f"/api/v1/webhooks/{created['id']}")
    owner_client.post(
        "/settings/webhooks/",
        {"url": f"https://hooks.customer-crm.com/{tokens[2]}", "events": ["csat.created"], "is_active": "on"},
    )
    endpoint = Endpoint.objects.for_organization(tenant.organization).get()
    page = f"/settings/webhooks/{endpoint.pk}/"
    owner_client.post(
        page,
        {"action": "save", "url": f"https://hooks.customer-crm.com/{tokens[3]}", "events": ["csat.created"]},
    )
    owner_client.post(page, {"action": "delete"})
    events = AuditEvent.objects.for_organization(tenant.organization).filter(action__startswith="webhook.")
    assert sorted(events.values_list("action", flat=True)) == [
        "webhook.created",
        "webhook.created",
        "webhook.deleted",
        "webhook.deleted",
        "webhook.updated",
        "webhook.updated",
    ]
    assert {event.changes["url"] for event in events} == {"https://hooks.customer-crm.com/…"}
    assert not any(token in str(event.changes) for event in events for token in tokens)
    # A bare origin is kept as it is.
    assert services.endpoint_audit_changes({"url": "https://hooks.customer-crm.com"}) == {
        "url": "https://hooks.customer-crm.com/"
    }
