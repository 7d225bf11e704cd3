"""Verified visitors: the identity secret, proofs on POST auth/widget-token (user_hash or
user_token), linking to the customer's context, history across devices, and every bad proof."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
from datetime import timedelta

import jwt
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from assistants.models import UserContext
from chat.models import Conversation
from organizations.identity import identity_secret_rotate, identity_secrets_usable
from organizations.models import AuditEvent, IdentitySecret
from testkit.fixtures import member_add
from widget.services import widget_update
from widget.tests.conftest import assert_error
from widget.tokens import widget_token_decode

pytestmark = pytest.mark.django_db

URL = "/api/v1/auth/widget-token"


def user_hash(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def user_token(secret: str, **claims) -> str:
    payload = {"sub": "cust-42", "exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def mint(body, **headers):
    return APIClient().post(URL, body, format="json", **headers)


def widget_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def secret(tenant):
    return identity_secret_rotate(organization=tenant.organization)[1]


def test_command_prints_a_secret_once_and_stores_it_only_encrypted(tenant):
    out = io.StringIO()
    call_command("rotate_identity_secret", "--org", tenant.organization.slug, "--json", stdout=out)
    plain = json.loads(out.getvalue())["identity_secret"]
    assert plain.startswith("ids_") and len(plain) > 40
    row = IdentitySecret.objects.for_organization(tenant.organization).get()
    assert plain not in row.secret_encrypted and row.hint == plain[-4:]
    found = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json')"
        )
        for table, column in cursor.fetchall():
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s', [f"%{plain[8:30]}%"]
            )
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    assert found == []
    assert identity_secrets_usable(organization=tenant.organization) == [plain]


def test_a_secret_encrypted_under_another_secret_key_is_unusable_not_a_crash(tenant, secret, settings):
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert identity_secrets_usable(organization=tenant.organization) == []
    settings.SECRET_KEY_FALLBACKS = ["rotated-away"]
    assert identity_secrets_usable(organization=tenant.organization) == []


def test_secret_key_fallbacks_still_decrypt(tenant, secret, settings):
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-" + "y" * 40
    settings.SECRET_KEY_FALLBACKS = [old]
    assert identity_secrets_usable(organization=tenant.organization) == [secret]


def test_valid_hash_makes_the_visitor_that_customer(tenant, widget, secret):
    response = mint(
        {"client_id": tenant.client_id, "user_id": "cust-42", "user_hash": user_hash(secret, "cust-42")}
    )
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"token", "expires_in", "token_type"}
    claims = widget_token_decode(response.json()["token"])
    assert claims["uid"] == "cust-42" and claims["vis"].startswith("u_") and "cust-42" not in claims["vis"]
    client = widget_client(response.json()["token"])
    created = client.post("/api/v1/sessions", {"assistant_id": str(widget.assistant_id)}, format="json")
    assert created.status_code == 201, created.content
    data = created.json()["data"]
    assert data["customer_id"] == "cust-42" and data["visitor_verified"] is True
    session = Conversation.objects.for_organization(tenant.organization).get(pk=data["id"])
    assert session.user_context.user_reference == "cust-42"


def test_history_follows_the_customer_across_devices_and_only_theirs(tenant, widget, secret):
    def device(user_id):
        token = mint(
            {"client_id": tenant.client_id, "user_id": user_id, "user_hash": user_hash(secret, user_id)}
        )
        return widget_client(token.json()["token"])

    laptop, phone, someone_else = device("cust-42"), device("cust-42"), device("cust-7")
    first = laptop.post("/api/v1/sessions", {"assistant_id": str(widget.assistant_id)}, format="json").json()
    someone_else.post("/api/v1/sessions", {"assistant_id": str(widget.assistant_id)}, format="json")
    # An anonymous session and an API-created session with the same visitor id claim are not theirs.
    anonymous = widget_client(mint({"client_id": tenant.client_id}).json()["token"])
    anonymous.post("/api/v1/sessions", {"assistant_id": str(widget.assistant_id)}, format="json")
    tenant.client().post(
        "/api/v1/sessions",
        {"assistant_id": str(widget.assistant_id), "visitor_id": first["data"]["visitor_id"]},
        format="json",
    )
    listing = phone.get("/api/v1/sessions")
    assert listing.status_code == 200, listing.content
    assert [row["id"] for row in listing.json()["data"]["results"]] == [first["data"]["id"]]
    assert phone.get(f"/api/v1/sessions/{first['data']['id']}").status_code == 200
    assert_error(someone_else.get(f"/api/v1/sessions/{first['data']['id']}"), 404)
    # An anonymous token still may not list sessions at all.
    assert_error(anonymous.get("/api/v1/sessions"), 403)


def test_jwt_proof_links_and_merges_traits(tenant, widget, secret):
    UserContext.objects.create(
        organization=tenant.organization, user_reference="cust-42", traits={"plan": "free", "x": 1}
    )
    token = user_token(secret, email="ada@example.com", name="Ada", traits={"plan": "pro"})
    response = mint({"client_id": tenant.client_id, "user_token": token})
    assert response.status_code == 200, response.content
    assert widget_token_decode(response.json()["token"])["uid"] == "cust-42"
    context = UserContext.objects.for_organization(tenant.organization).get(user_reference="cust-42")
    assert context.traits == {"plan": "pro", "x": 1, "email": "ada@example.com", "name": "Ada"}


def _forged(secret, other_secret):
    now = int(time.time())
    return {
        "forged hash": {"user_id": "cust-42", "user_hash": "0" * 64},
        "upper-case hash": {"user_id": "cust-42", "user_hash": user_hash(secret, "cust-42").upper()},
        "hash of another user": {"user_id": "cust-42", "user_hash": user_hash(secret, "cust-7")},
        "hash under other org's secret": {
            "user_id": "cust-42",
            "user_hash": user_hash(other_secret, "cust-42"),
        },
        "alg none": {"user_token": jwt.encode({"sub": "cust-42", "exp": now + 600}, None, algorithm="none")},
        "expired": {"user_token": user_token(secret, exp=now - 600)},
        "exp more than 24 h ahead": {"user_token": user_token(secret, exp=now + 25 * 3600)},
        "no exp": {"user_token": jwt.encode({"sub": "cust-42"}, secret, algorithm="HS256")},
        "wrong secret": {"user_token": user_token("not-the-secret")},
        "other org's secret": {"user_token": user_token(other_secret)},
        "HS512": {"user_token": jwt.encode({"sub": "c", "exp": now + 600}, secret, algorithm="HS512")},
        "garbage token": {"user_token": "not.a.jwt"},
        "traits not an object": {"user_token": user_token(secret, traits=["a"])},
    }


def test_every_bad_proof_is_401_and_links_nothing(tenant, other_tenant, widget, secret):
    other_secret = identity_secret_rotate(organization=other_tenant.organization)[1]
    for name, proof in _forged(secret, other_secret).items():
        response = mint({"client_id": tenant.client_id, **proof})
        body = assert_error(response, 401)
        assert "identity" in body["detail"], name
    assert not UserContext.objects.for_organization(tenant.organization).exists()


def test_a_proof_without_any_secret_set_is_401(tenant, widget):
    assert_error(mint({"client_id": tenant.client_id, "user_id": "c", "user_hash": "a" * 64}), 401)


@pytest.mark.parametrize(
    "body",
    [
        {"user_hash": "a" * 64},  # no user_id
        {"user_id": "", "user_hash": "a" * 64},
        {"user_id": "x" * 256, "user_hash": "a" * 64},
        {"user_id": "c", "user_hash": "a" * 64, "user_token": "x.y.z"},
    ],
)
def test_malformed_proof_requests_are_400(tenant, widget, secret, body):
    assert_error(mint({"client_id": tenant.client_id, **body}), 400)


def test_rotation_keeps_the_old_secret_for_the_grace_period(tenant, widget, secret):
    new = identity_secret_rotate(organization=tenant.organization)[1]
    for current in (secret, new):
        assert (
            mint(
                {"client_id": tenant.client_id, "user_id": "c", "user_hash": user_hash(current, "c")}
            ).status_code
            == 200
        )
    IdentitySecret.objects.for_organization(tenant.organization).filter(expires_at__isnull=False).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert_error(
        mint({"client_id": tenant.client_id, "user_id": "c", "user_hash": user_hash(secret, "c")}), 401
    )
    assert (
        mint({"client_id": tenant.client_id, "user_id": "c", "user_hash": user_hash(new, "c")}).status_code
        == 200
    )


def test_require_verified_visitors_refuses_tokens_without_proof(tenant, widget, secret):
    widget_update(widget=widget, require_verified_visitors=True)
    assert_error(mint({"client_id": tenant.client_id, "config_id": str(widget.id)}), 403)
    # Leaving out config_id does not get around it.
    assert_error(mint({"client_id": tenant.client_id}), 403)
    assert_error(mint({"client_id": tenant.client_id, "config_id": str(widget.id), "user_id": "c"}), 403)
    proof = {"user_id": "c", "user_hash": user_hash(secret, "c")}
    assert mint({"client_id": tenant.client_id, "config_id": str(widget.id), **proof}).status_code == 200
    # Settable through the API as well, with validation.
    patched = tenant.client().patch(
        f"/api/v1/widgets/{widget.id}", {"require_verified_visitors": False}, format="json"
    )
    assert patched.status_code == 200 and patched.json()["data"]["require_verified_visitors"] is False
    assert_error(
        tenant.client().patch(
            f"/api/v1/widgets/{widget.id}", {"require_verified_visitors": "x"}, format="json"
        ),
        400,
    )


def test_claimed_user_id_without_proof_is_unverified_metadata_only(tenant, widget, secret):
    response = mint({"client_id": tenant.client_id, "user_id": "cust-42"})
    claims = widget_token_decode(response.json()["token"])
    assert "uid" not in claims and claims["vis"].startswith("v_")
    client = widget_client(response.json()["token"])
    data = client.post("/api/v1/sessions", {"assistant_id": str(widget.assistant_id)}, format="json").json()[
        "data"
    ]
    assert data["customer_id"] == "" and data["visitor_verified"] is False
    assert data["metadata"]["unverified_user_id"] == "cust-42"
    assert not UserContext.objects.for_organization(tenant.organization).exists()
    assert_error(client.get("/api/v1/sessions"), 403)


def test_a_verified_token_does_not_make_a_later_anonymous_mint_that_customer(tenant, widget, secret):
    verified = mint(
        {"client_id": tenant.client_id, "user_id": "c", "user_hash": user_hash(secret, "c")}
    ).json()["token"]
    later = mint({"client_id": tenant.client_id, "visitor_token": verified}).json()["token"]
    assert widget_token_decode(later)["vis"] != widget_token_decode(verified)["vis"]
    assert "uid" not in widget_token_decode(later)


def test_visitor_ids_differ_between_organizations(tenant, other_tenant, secret):
    other_secret = identity_secret_rotate(organization=other_tenant.organization)[1]
    ours = mint({"client_id": tenant.client_id, "user_id": "c", "user_hash": user_hash(secret, "c")})
    theirs = mint(
        {"client_id": other_tenant.client_id, "user_id": "c", "user_hash": user_hash(other_secret, "c")}
    )
    assert (
        widget_token_decode(ours.json()["token"])["vis"] != widget_token_decode(theirs.json()["token"])["vis"]
    )


def test_a_leaked_previous_secret_can_be_ended_at_once(tenant, widget, secret):
    """Found by the security pass: after a rotation the old secret stayed accepted for the whole
    grace period (24 h), so a leaked one could keep proving any customer's identity. The owner
    can now end it at once (Settings › Security, or the command's --end-previous)."""
    client = Client()
    client.force_login(tenant.owner)
    client.post("/settings/security/")
    old_proof = {"client_id": tenant.client_id, "user_id": "c", "user_hash": user_hash(secret, "c")}
    assert mint(old_proof).status_code == 200  # the grace period
    page = client.get("/settings/security/").content.decode()
    assert "Stop accepting the previous secret now" in page
    response = client.post("/settings/security/", {"action": "end-previous"})
    assert response.status_code == 302
    assert_error(mint(old_proof), 401)
    [current] = identity_secrets_usable(organization=tenant.organization)
    assert (
        mint(
            {"client_id": tenant.client_id, "user_id": "c", "user_hash": user_hash(current, "c")}
        ).status_code
        == 200
    )
    assert "Stop accepting" not in client.get("/settings/security/").content.decode()
    assert (
        AuditEvent.objects.for_organization(tenant.organization)
        .filter(action="identity_secret.previous_ended", actor=tenant.owner.email, changes={"ended": 1})
        .exists()
    )
    # The command does the same in one step.
    out = io.StringIO()
    call_command(
        "rotate_identity_secret", "--org", tenant.organization.slug, "--end-previous", "--json", stdout=out
    )
    newest = json.loads(out.getvalue())["identity_secret"]
    assert identity_secrets_usable(organization=tenant.organization) == [newest]


def test_security_page_shows_the_secret_once_and_only_to_managers(tenant, secret):
    client = Client()
    client.force_login(tenant.owner)
    page = client.get("/settings/security/")
    assert page.status_code == 200 and secret not in page.content.decode()
    assert f"ids_…{secret[-4:]}" in page.content.decode()
    rotated = client.post("/settings/security/")
    assert rotated.status_code == 200 and rotated["Cache-Control"] == "no-store"
    new_secret = identity_secrets_usable(organization=tenant.organization)[0]
    assert new_secret in rotated.content.decode() and new_secret != secret
    again = client.get("/settings/security/").content.decode()
    assert new_secret not in again and "still accepted until" in again


def test_agents_cannot_see_or_rotate_the_identity_secret(tenant, secret):
    agent = member_add(tenant, role="agent")
    client = Client()
    client.force_login(agent)
    assert client.get("/settings/security/").status_code in (403, 404)
    assert client.post("/settings/security/").status_code in (403, 404)
    assert identity_secrets_usable(organization=tenant.organization) == [secret]


def test_inbox_shows_the_verified_badge(tenant, widget, secret):
    token = mint(
        {"client_id": tenant.client_id, "user_id": "cust-42", "user_hash": user_hash(secret, "cust-42")}
    )
    session = (
        widget_client(token.json()["token"])
        .post("/api/v1/sessions", {"assistant_id": str(widget.assistant_id)}, format="json")
        .json()["data"]
    )
    client = Client()
    client.force_login(tenant.owner)
    page = client.get(f"/inbox/{session['id']}/")
    assert page.status_code == 200
    assert 'data-testid="verified-badge"' in page.content.decode()
    assert 'data-testid="verified-customer"' in page.content.decode()


def test_requiring_verified_visitors_ends_the_anonymous_tokens_already_issued(
    tenant, widget, secret, owner_client
):
    """The requirement was read only at mint: an anonymous visitor's token kept chatting for
    the rest of its hour after the owner switched "Require verified visitors" on. Now every
    call reads the widget's setting as it is, as it reads its on/off switch and allowed
    domains; a verified visitor and the dashboard's own preview keep working."""
    from django.urls import reverse

    anonymous = widget_client(
        mint({"client_id": tenant.client_id, "config_id": str(widget.id)}).json()["token"]
    )
    without_widget = widget_client(mint({"client_id": tenant.client_id}).json()["token"])
    proof = {"user_id": "c", "user_hash": user_hash(secret, "c")}
    verified = widget_client(
        mint({"client_id": tenant.client_id, "config_id": str(widget.id), **proof}).json()["token"]
    )
    preview = widget_client(owner_client.get(reverse("widget-preview", args=[widget.pk])).context["token"])
    config = f"/api/v1/widgets/{widget.id}/config"
    dashboard = {"HTTP_ORIGIN": "http://testserver"}  # the preview's token is bound to the dashboard
    assert anonymous.get(config).status_code == 200
    by_assistant = {"assistant_id": str(widget.assistant_id)}
    assert without_widget.post("/api/v1/sessions", by_assistant, format="json").status_code == 201

    widget_update(widget=widget, require_verified_visitors=True)
    for refused in (
        anonymous.get(config),
        anonymous.post("/api/v1/sessions", {}, format="json"),
        without_widget.post("/api/v1/sessions", by_assistant, format="json"),
    ):
        assert "only serves verified visitors" in assert_error(refused, 403)["detail"]
    assert Conversation.objects.for_organization(tenant.organization).count() == 1
    assert verified.get(config).status_code == 200
    assert verified.post("/api/v1/sessions", {}, format="json").status_code == 201
    assert preview.get(config, **dashboard).status_code == 200
    assert preview.post("/api/v1/sessions", {}, format="json", **dashboard).status_code == 201

    widget_update(widget=widget, require_verified_visitors=False)
    assert anonymous.get(config).status_code == 200
