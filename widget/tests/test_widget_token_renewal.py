"""Renewing an anonymous visitor's identity with their previous widget token: what it is for
(their conversations across page loads and days away) and what a copy of an old token no
longer gets (the security plan's rows 21-24, and docs/widget.md "Returning visitors")."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from organizations.models import ApiKey
from organizations.services import api_key_create, api_key_revoke
from widget.services import widget_create, widget_update
from widget.tests.conftest import assert_error
from widget.tokens import widget_token_decode

pytestmark = pytest.mark.django_db

URL = "/api/v1/auth/widget-token"
SHOP = "https://shop.example.com"


def mint(body, **headers):
    return APIClient().post(URL, body, format="json", **headers)


def token_of(response) -> str:
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"token", "expires_in", "token_type"}  # seed 003's shape
    return response.json()["token"]


def visitor(token: str) -> str:
    return widget_token_decode(token)["vis"]


def renew(tenant, previous, *, origin=SHOP, **body):
    return token_of(
        mint({"client_id": tenant.client_id, "visitor_token": previous, **body}, HTTP_ORIGIN=origin)
    )


def as_visitor(token: str, origin: str = SHOP) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ORIGIN=origin)
    return client


def test_the_widget_keeps_its_visitor_and_their_session_across_renewals(tenant, widget):
    first = token_of(mint({"client_id": tenant.client_id, "config_id": str(widget.pk)}, HTTP_ORIGIN=SHOP))
    session = as_visitor(first).post(
        "/api/v1/sessions", {"assistant_id": str(widget.assistant_id)}, format="json"
    )
    assert session.status_code == 201, session.content
    session_id = session.json()["data"]["id"]
    second = renew(tenant, first, config_id=str(widget.pk))
    third = renew(tenant, second, config_id=str(widget.pk))
    assert visitor(first) == visitor(second) == visitor(third)
    assert as_visitor(third).get(f"/api/v1/sessions/{session_id}").status_code == 200


def test_a_token_renews_once_so_a_copy_of_an_old_one_gets_a_stranger(tenant, widget, settings):
    settings.WIDGET_VISITOR_RENEWAL_GRACE = timedelta(0)
    first = token_of(mint({"client_id": tenant.client_id}, HTTP_ORIGIN=SHOP))
    session_id = (
        as_visitor(first)
        .post("/api/v1/sessions", {"assistant_id": str(widget.assistant_id)}, format="json")
        .json()["data"]["id"]
    )
    legit = renew(tenant, first)
    assert visitor(legit) == visitor(first)
    replayed = renew(tenant, first)  # a copy from a log or a shared HAR file
    assert visitor(replayed) != visitor(first)
    assert_error(as_visitor(replayed).get(f"/api/v1/sessions/{session_id}"), 404)
    assert renew(tenant, "garbage") and visitor(renew(tenant, legit)) == visitor(first)  # the chain goes on


def test_two_tabs_renewing_the_same_token_at_once_stay_one_visitor(tenant, widget, settings):
    settings.WIDGET_VISITOR_RENEWAL_GRACE = timedelta(seconds=60)
    first = token_of(mint({"client_id": tenant.client_id}, HTTP_ORIGIN=SHOP))
    assert visitor(renew(tenant, first)) == visitor(renew(tenant, first)) == visitor(first)


def test_a_refused_renewal_does_not_use_the_token_up(tenant, widget, settings):
    settings.WIDGET_VISITOR_RENEWAL_GRACE = timedelta(0)
    first = token_of(mint({"client_id": tenant.client_id}, HTTP_ORIGIN=SHOP))
    assert visitor(renew(tenant, first, origin="https://evil.example")) != visitor(first)
    assert visitor(renew(tenant, first, config_id=str(widget.pk))) != visitor(first)
    assert visitor(renew(tenant, first)) == visitor(first)


def test_only_the_same_widget_renews(tenant, widget, assistant):
    other = widget_create(organization=tenant.organization, assistant_id=assistant.id, title="Other shop")
    first = token_of(mint({"client_id": tenant.client_id, "config_id": str(widget.pk)}, HTTP_ORIGIN=SHOP))
    assert visitor(renew(tenant, first, config_id=str(other.pk))) != visitor(first)
    assert visitor(renew(tenant, first)) != visitor(first)  # without a widget
    assert visitor(renew(tenant, first, config_id=str(widget.pk))) == visitor(first)


def test_a_switched_off_widget_renews_nothing(tenant, widget):
    first = token_of(mint({"client_id": tenant.client_id, "config_id": str(widget.pk)}, HTTP_ORIGIN=SHOP))
    widget_update(widget=widget, is_active=False)
    refused = mint(
        {"client_id": tenant.client_id, "config_id": str(widget.pk), "visitor_token": first}, HTTP_ORIGIN=SHOP
    )
    assert_error(refused, 403)
    assert "token" not in refused.json()


def test_only_the_same_client_id_renews_and_a_revoked_keys_tokens_stay_ended(tenant, widget):
    first = token_of(mint({"client_id": tenant.client_id}, HTTP_ORIGIN=SHOP))
    second_key, _secret = api_key_create(organization=tenant.organization, name="second")
    with_second = token_of(
        mint({"client_id": second_key.client_id, "visitor_token": first}, HTTP_ORIGIN=SHOP)
    )
    assert visitor(with_second) != visitor(first)
    api_key_revoke(
        api_key=ApiKey.objects.for_organization(tenant.organization).get(client_id=tenant.client_id)
    )
    assert_error(mint({"client_id": tenant.client_id, "visitor_token": first}, HTTP_ORIGIN=SHOP), 401)
    # The organization's new key does not bring the revoked key's visitors back.
    again = token_of(mint({"client_id": second_key.client_id, "visitor_token": first}, HTTP_ORIGIN=SHOP))
    assert visitor(again) != visitor(first)


def test_another_organizations_token_is_never_renewed(tenant, other_tenant, widget, other_widget):
    theirs = token_of(mint({"client_id": other_tenant.client_id}, HTTP_ORIGIN=SHOP))
    assert visitor(renew(tenant, theirs)) != visitor(theirs)
    # …and still renews with its own organization (the cross-tenant try did not use it up).
    assert visitor(
        token_of(mint({"client_id": other_tenant.client_id, "visitor_token": theirs}, HTTP_ORIGIN=SHOP))
    ) == visitor(theirs)


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("not.a.jwt", 200),
        ("", 400),
        (None, 200),
        (12345, 200),
        ("x" * 5000, 400),
        ({"vis": "v_1"}, 400),
        ([], 400),
    ],
)
def test_bad_previous_tokens_are_a_fresh_visitor_or_a_400(tenant, widget, value, status):
    response = mint({"client_id": tenant.client_id, "visitor_token": value}, HTTP_ORIGIN=SHOP)
    if status == 200:
        assert widget_token_decode(token_of(response))["vis"].startswith("v_")
    else:
        body = assert_error(response, 400)
        assert "visitor_token" in body["data"] and "token" not in body
