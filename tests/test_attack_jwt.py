"""Attack rows 23 and 24: forged and out-of-policy widget tokens (JWT).

A token the server accepts authenticates as a widget credential, which management
endpoints answer with 403; a token it refuses gets 401. So GET /api/v1/organization tells
acceptance (403) from refusal (401) without any test-only view."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.conftest import assert_error_shape
from widget.tokens import widget_token_decode, widget_token_issue

pytestmark = pytest.mark.django_db
URL = "/api/v1/organization"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(organization_id, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "token_type": "widget",
        "org": str(organization_id),
        "vis": "v_attacker",
        "sub": "v_attacker",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 600,
        "aud": settings.WIDGET_TOKEN_AUDIENCE,
        "iss": settings.WIDGET_TOKEN_ISSUER,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _sign(
    claims: dict, *, key: str | None = None, algorithm: str = "HS256", headers: dict | None = None
) -> str:
    return jwt.encode(claims, key or settings.SIMPLE_JWT["SIGNING_KEY"], algorithm=algorithm, headers=headers)


def _call(token: str, **extra):
    return APIClient().get(URL, HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def test_a_genuine_token_is_accepted_as_a_widget_credential(tenant):
    token, expires_in = widget_token_issue(organization_id=tenant.organization.id)
    assert expires_in <= 3600
    assert_error_shape(_call(token), 403)  # recognised, and refused on a management endpoint
    assert_error_shape(_call(_sign(_claims(tenant.organization.id))), 403)  # our own forge kit is faithful


def test_alg_none_is_refused(tenant):
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(tenant.organization.id)).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        assert_error_shape(_call(token), 401)


def test_algorithm_confusion_and_foreign_keys_are_refused(tenant):
    claims = _claims(tenant.organization.id)
    # What an attacker would use as the HMAC secret in the classic RS→HS confusion.
    public_pem = b"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n"
    secret = settings.SIMPLE_JWT["SIGNING_KEY"]
    # HS256 header but signed by hand with the RSA public key as the HMAC secret.
    import hashlib
    import hmac

    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = _b64(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    forged = [
        f"{header}.{payload}.{signature}",
        _sign(claims, algorithm="HS512"),  # the right secret but an algorithm we do not accept
        _sign(claims, algorithm="HS384"),
        _sign(claims, key="not-the-server-secret-" * 3),
    ]
    # RS256 header over an HMAC signature made with our secret (RS/HS swap).
    rs_header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    rs_signature = _b64(hmac.new(secret.encode(), f"{rs_header}.{payload}".encode(), hashlib.sha256).digest())
    forged.append(f"{rs_header}.{payload}.{rs_signature}")
    for token in forged:
        assert_error_shape(_call(token), 401)


def test_header_tricks_do_not_select_keys(tenant):
    claims = _claims(tenant.organization.id)
    wrong = "attacker-controlled-key-" * 3
    for headers in (
        {"kid": "../../../../dev/null"},
        {"kid": "/etc/passwd"},
        {"jku": "http://127.0.0.1:1/jwks.json"},
        {"x5u": "http://127.0.0.1:1/cert.pem"},
        {"jwk": {"kty": "oct", "k": _b64(wrong.encode())}},
    ):
        assert_error_shape(_call(_sign(claims, key=wrong, headers=headers)), 401)
    # An unknown critical extension must be refused even when the signature is ours (RFC 7515 §4.1.11).
    assert_error_shape(_call(_sign(claims, headers={"crit": ["x-attack"], "x-attack": True})), 401)


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": None},  # no expiry
        {"iat": None},
        {"aud": None},
        {"iss": None},
        {"org": None},
        {"vis": None},
        {"token_type": None},
        {"token_type": "access"},  # a different kind of simplejwt token
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) - 60, "iat": int(time.time()) - 700},  # expired
        {"exp": int(time.time()) + 10 * 365 * 86400},  # valid for ten years: over the lifetime policy
        {"iat": int(time.time()) + 86400, "exp": int(time.time()) + 86400 + 600},  # issued in the future
        {"nbf": int(time.time()) + 3600},  # not yet valid
        {"org": str(uuid.uuid4())},  # an organization that does not exist
        {"org": "not-a-uuid"},
    ],
)
def test_out_of_policy_claims_are_refused(tenant, overrides):
    token = _sign(_claims(tenant.organization.id, **overrides))
    assert_error_shape(_call(token), 401)


def test_a_token_for_a_deleted_organization_stops_working(tenant):
    token, _ = widget_token_issue(organization_id=tenant.organization.id)
    tenant.organization.delete()
    assert_error_shape(_call(token), 401)


def test_origin_bound_tokens_are_refused_from_another_origin_or_without_one(tenant):
    """Row 21: a token minted for https://shop.example works only from that Origin."""
    token, _ = widget_token_issue(organization_id=tenant.organization.id, origin="https://shop.example")
    assert_error_shape(_call(token, HTTP_ORIGIN="https://shop.example"), 403)  # accepted; management → 403
    assert widget_token_decode(token)["origin"] == "https://shop.example"
    for origin in (
        "https://evil.example",
        "null",
        "https://shop.example.evil.example",
        "http://shop.example",
    ):
        body = assert_error_shape(_call(token, HTTP_ORIGIN=origin), 403)
        assert "origin" in body["detail"].lower()
    body = assert_error_shape(_call(token), 403)  # no Origin at all: fail closed
    assert "origin" in body["detail"].lower()


def test_tampered_payload_is_refused(tenant, other_tenant):
    token, _ = widget_token_issue(organization_id=tenant.organization.id)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["org"] = str(other_tenant.organization.id)
    assert_error_shape(_call(f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"), 401)
