"""A verified visitor's proven address is their handoff email: the widget does not ask them for
it outside business hours, and an operator's reply after they left is emailed there. Only a
proof signed with the organization's identity secret counts; anonymous visitors still type it.

Found on a support-desk walk: a visitor signed in on the customer's site (identity token with
`email`) was asked for an address again, and the reply email went nowhere without one."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from chat import services
from chat.models import Conversation
from chat.services import notifications
from chat.tests.conftest import widget_client as anonymous_widget_client
from organizations import services as organization_services
from organizations.identity import identity_secret_rotate
from widget.tests.test_verified_visitors import mint, user_hash, user_token, widget_client

pytestmark = pytest.mark.django_db

ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@pytest.fixture
def secret(tenant):
    return identity_secret_rotate(organization=tenant.organization)[1]


@pytest.fixture
def team_away(tenant):
    """Closed today and tomorrow (holidays), whatever the time the test runs."""
    today = timezone.now().date()
    organization_services.business_hours_set(
        organization=tenant.organization,
        timezone_name="UTC",
        hours={day: [["09:00", "17:00"]] for day in ALL_DAYS},
        holidays=[str(today), str(today + dt.timedelta(days=1))],
    )


def _verified_session(tenant, widget, token_body: dict):
    response = mint({"client_id": tenant.client_id, **token_body})
    assert response.status_code == 200, response.content
    client = widget_client(response.json()["token"])
    created = client.post("/api/v1/sessions", {"assistant_id": str(widget.assistant_id)}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["data"]["visitor_verified"] is True
    return client, created.json()["data"]["id"]


def _stored(tenant, pk) -> Conversation:
    return (
        Conversation.objects.for_organization(tenant.organization).select_related("organization").get(pk=pk)
    )


def test_a_verified_visitor_is_not_asked_for_an_email(tenant, widget, secret, team_away, offline):
    client, session_id = _verified_session(
        tenant, widget, {"user_token": user_token(secret, email="ada@example.com", name="Ada")}
    )
    response = client.post(f"/api/v1/sessions/{session_id}/handoff", {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()["data"]
    # The widget asks for an address when the team is away and the session has none.
    assert body["team_available"] is False
    assert body["handoff_email"] == "ada@example.com"
    assert _stored(tenant, session_id).handoff_email == "ada@example.com"
    # Reading the session back (what the widget does when handed over without asking) says so too.
    assert client.get(f"/api/v1/sessions/{session_id}").json()["data"]["handoff_email"] == "ada@example.com"


def test_an_address_the_visitor_types_still_wins(tenant, widget, secret, offline):
    client, session_id = _verified_session(
        tenant, widget, {"user_token": user_token(secret, email="ada@example.com")}
    )
    response = client.post(
        f"/api/v1/sessions/{session_id}/handoff", {"email": "ada.home@example.org"}, format="json"
    )
    assert response.json()["data"]["handoff_email"] == "ada.home@example.org"


def test_automatic_handoffs_use_the_verified_address(tenant, widget, secret, offline):
    client, session_id = _verified_session(
        tenant, widget, {"user_token": user_token(secret, email="ada@example.com")}
    )
    response = client.post(
        f"/api/v1/sessions/{session_id}/messages",
        {"content": "Can I talk to a real person please"},
        format="json",
    )
    assert response.status_code == 201 and response.json()["data"]["role"] == "user"
    stored = _stored(tenant, session_id)
    assert stored.handoff_status == "waiting" and stored.handoff_email == "ada@example.com"


def test_unverified_claims_are_never_used(tenant, widget, secret, team_away, offline):
    # An anonymous visitor who claims an email in the session's metadata: still asked.
    anonymous = anonymous_widget_client(organization=tenant.organization, widget=widget, visitor_id="v_anon")
    session_id = anonymous.post(
        "/api/v1/sessions", {"metadata": {"email": "victim@example.com"}}, format="json"
    ).json()["data"]["id"]
    response = anonymous.post(f"/api/v1/sessions/{session_id}/handoff", {}, format="json")
    assert response.json()["data"]["team_available"] is False
    assert response.json()["data"]["handoff_email"] == ""
    # A user_id claimed without a proof links no customer context: no address either.
    claimed = widget_client(mint({"client_id": tenant.client_id, "user_id": "cust-42"}).json()["token"])
    created = claimed.post("/api/v1/sessions", {"assistant_id": str(widget.assistant_id)}, format="json")
    assert created.status_code == 201 and created.json()["data"]["visitor_verified"] is False
    handed = claimed.post(f"/api/v1/sessions/{created.json()['data']['id']}/handoff", {}, format="json")
    assert handed.json()["data"]["handoff_email"] == ""


def test_a_verified_visitor_without_an_email_claim_is_still_asked(tenant, widget, secret, offline):
    client, session_id = _verified_session(
        tenant, widget, {"user_id": "cust-7", "user_hash": user_hash(secret, "cust-7")}
    )
    response = client.post(f"/api/v1/sessions/{session_id}/handoff", {}, format="json")
    assert response.json()["data"]["handoff_email"] == ""


def test_an_invalid_email_claim_is_not_used(tenant, widget, secret, offline):
    client, session_id = _verified_session(
        tenant, widget, {"user_token": user_token(secret, email="not an address\r\nBcc: x@example.com")}
    )
    response = client.post(f"/api/v1/sessions/{session_id}/handoff", {}, format="json")
    assert response.status_code == 200 and response.json()["data"]["handoff_email"] == ""


def test_the_reply_after_they_left_is_emailed_to_the_verified_address(
    tenant, widget, secret, offline, smtp_sink, django_capture_on_commit_callbacks
):
    client, session_id = _verified_session(
        tenant, widget, {"user_token": user_token(secret, email="ada@example.com")}
    )
    # The operator takes over without any handoff request (so no address was ever given).
    assert client.get(f"/api/v1/sessions/{session_id}/messages").status_code == 200
    Conversation.objects.for_organization(tenant.organization).filter(pk=session_id).update(
        visitor_seen_at=timezone.now() - dt.timedelta(minutes=11)
    )
    gone = _stored(tenant, session_id)
    assert gone.handoff_email == ""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reply = services.operator_reply_post(
            conversation=gone, user=tenant.owner, content="Your refund is done."
        )
    assert any("visitor_reply_mail_enqueue" in callback.__qualname__ for callback in callbacks)
    assert notifications.visitor_reply_mail(message_id=str(reply.pk)) == 1
    (message,) = smtp_sink.wait_for(1)
    assert message["To"] == "ada@example.com" and "Your refund is done." in message.get_content()
