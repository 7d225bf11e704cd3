"""A privacy erase ends the erased person's widget tokens on their next request: the token of
a verified customer erased by customer id or email, an anonymous visitor erased by visitor id,
and any token of theirs presented to renew. Tokens minted afterwards, other visitors' tokens
and other organizations are untouched."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta

import jwt
import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from assistants.models import UserContext
from chat.models import Conversation, ErasedVisitor
from chat.services.privacy import erased_visitors_purge
from organizations.identity import identity_secret_rotate
from widget.tests.conftest import assert_error
from widget.tokens import widget_token_decode

pytestmark = pytest.mark.django_db

URL = "/api/v1/auth/widget-token"


def mint(body) -> str:
    response = APIClient().post(URL, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["token"]


def visitor(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def user_hash(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def erase(tenant, **subject) -> dict:
    response = tenant.client().post("/api/v1/privacy/erase", subject, format="json")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def session_start(client: APIClient, assistant) -> str:
    response = client.post("/api/v1/sessions", {"assistant_id": str(assistant.pk)}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["data"]["id"]


@pytest.fixture
def secret(tenant):
    return identity_secret_rotate(organization=tenant.organization)[1]


def _next_second() -> None:
    """Tokens carry `iat` in whole seconds, and one minted in the second of an erase counts as
    issued before it: a token meant to come after an erase is minted a second later."""
    time.sleep(1.05)


def test_a_verified_customers_token_stops_on_its_next_request_once_they_are_erased(tenant, assistant, secret):
    proof = {"client_id": tenant.client_id, "user_id": "cust-42", "user_hash": user_hash(secret, "cust-42")}
    customer = visitor(mint(proof))
    bystander = visitor(mint({"client_id": tenant.client_id}))
    session_id = session_start(customer, assistant)
    bystanders_session = session_start(bystander, assistant)
    assert customer.get("/api/v1/sessions").json()["data"]["count"] == 1

    assert erase(tenant, customer_id="cust-42")["sessions"] == 1

    # Before: the same token listed and re-created the customer (a session, a context).
    assert_error(customer.get("/api/v1/sessions"), 401)
    assert_error(customer.get(f"/api/v1/sessions/{session_id}/messages"), 401)
    assert_error(customer.post("/api/v1/sessions", {"assistant_id": str(assistant.pk)}, format="json"), 401)
    assert_error(customer.get(f"/api/v1/sessions/{session_id}/events"), 401)
    assert (
        not UserContext.objects.for_organization(tenant.organization)
        .filter(user_reference="cust-42")
        .exists()
    )
    assert (
        not Conversation.objects.for_organization(tenant.organization).filter(customer_id="cust-42").exists()
    )
    # Another visitor of the same widget is not touched.
    assert bystander.get(f"/api/v1/sessions/{bystanders_session}").status_code == 200

    # The customer signing in again (a fresh proof, after the erase) starts with nothing.
    _next_second()
    again = visitor(mint(proof))
    assert again.get("/api/v1/sessions").json()["data"]["count"] == 0
    assert session_start(again, assistant)


def test_erasing_by_email_stops_the_token_of_the_customer_it_named(tenant, assistant, secret):
    token = jwt.encode(
        {"sub": "cust-7", "email": "Ana@Example.com", "exp": int(time.time()) + 600},
        secret,
        algorithm="HS256",
    )
    customer = visitor(mint({"client_id": tenant.client_id, "user_token": token}))
    session_start(customer, assistant)
    assert erase(tenant, email="ana@example.com")["contexts"] == 1
    assert_error(customer.get("/api/v1/sessions"), 401)


def test_an_anonymous_visitors_token_stops_and_cannot_renew_into_the_erased_visitor(tenant, assistant):
    old_token = mint({"client_id": tenant.client_id})
    visitor_id = widget_token_decode(old_token)["vis"]
    anonymous = visitor(old_token)
    session_id = session_start(anonymous, assistant)

    assert erase(tenant, visitor_id=visitor_id)["sessions"] == 1

    assert_error(anonymous.get(f"/api/v1/sessions/{session_id}"), 401)
    assert_error(anonymous.post("/api/v1/sessions", {"assistant_id": str(assistant.pk)}, format="json"), 401)
    # The widget mints anew with its previous token: a fresh visitor, not the erased one.
    renewed = mint({"client_id": tenant.client_id, "visitor_token": old_token})
    assert widget_token_decode(renewed)["vis"] != visitor_id
    assert visitor(renewed).get(f"/api/v1/sessions/{session_id}").status_code == 404


def test_an_erase_in_another_organization_stops_no_token_here(tenant, other_tenant, assistant, secret):
    proof = {"client_id": tenant.client_id, "user_id": "cust-42", "user_hash": user_hash(secret, "cust-42")}
    customer = visitor(mint(proof))
    anonymous_token = mint({"client_id": tenant.client_id})
    session_id = session_start(visitor(anonymous_token), assistant)

    erase(other_tenant, customer_id="cust-42")
    erase(other_tenant, visitor_id=widget_token_decode(anonymous_token)["vis"])

    assert customer.get("/api/v1/sessions").status_code == 200
    assert visitor(anonymous_token).get(f"/api/v1/sessions/{session_id}").status_code == 200


def test_the_erasure_record_names_nobody_and_is_purged_once_no_token_can_outlive_it(
    tenant, assistant, secret
):
    customer = visitor(
        mint(
            {
                "client_id": tenant.client_id,
                "user_id": "cust-9f3a",
                "user_hash": user_hash(secret, "cust-9f3a"),
            }
        )
    )
    session_start(customer, assistant)
    erase(tenant, customer_id="cust-9f3a")
    rows = ErasedVisitor.objects.for_organization(tenant.organization)
    assert rows.count() == 2  # the customer and their visitor id, as keyed hashes
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM chat_erasedvisitor WHERE digest LIKE %s", ["%cust-9f3a%"])
        assert cursor.fetchone()[0] == 0

    assert erased_visitors_purge() == 0
    later = timezone.now() + timedelta(days=9)  # past 1 h of lifetime + 7 days of renewal + a day
    assert erased_visitors_purge(now=later) == 2
    assert not rows.exists()
