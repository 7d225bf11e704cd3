import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from organizations.models import ApiKey
from organizations.services import api_key_revoke
from widget.services import widget_create, widget_update
from widget.tests.conftest import assert_error
from widget.tokens import widget_token_decode, widget_token_issue

pytestmark = pytest.mark.django_db

URL = "/api/v1/auth/widget-token"
SHOP = "https://shop.example.com"


def mint(body, **headers):
    return APIClient().post(URL, body, format="json", **headers)


def claims_of(response):
    return widget_token_decode(response.json()["token"])


def test_seed_curl_works_as_is_and_keeps_the_exact_shape(tenant, widget):
    response = mint({"client_id": tenant.client_id})
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"token", "expires_in", "token_type"}
    assert body["token"].startswith("eyJ") and body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    claims = claims_of(response)
    assert claims["org"] == str(tenant.organization.id)
    assert claims["aud"] == "supportai-widget" and claims["iss"] == "supportai"
    assert claims["vis"].startswith("v_") and "origin" not in claims
    assert response["Cache-Control"] == "no-store"
    # Both URL spellings work; each mint is a fresh visitor.
    again = APIClient().post(URL + "/", {"client_id": tenant.client_id}, format="json")
    assert again.status_code == 200 and claims_of(again)["vis"] != claims["vis"]


def test_config_id_and_origin_become_claims(tenant, widget):
    response = mint({"client_id": tenant.client_id, "config_id": str(widget.id)}, HTTP_ORIGIN=SHOP)
    claims = claims_of(response)
    assert claims["wid"] == str(widget.id) and claims["origin"] == SHOP


@pytest.mark.parametrize(
    "body",
    [
        {"client_id": "ci_does_not_exist"},
        {"client_id": ""},
    ],
)
def test_unknown_client_id_is_401_or_400(tenant, body):
    response = mint(body)
    assert response.status_code in (400, 401)
    assert_error(response, response.status_code)


def test_unknown_and_revoked_client_ids_are_401(tenant):
    assert_error(mint({"client_id": "ci_nope"}), 401)
    api_key_revoke(
        api_key=ApiKey.objects.for_organization(tenant.organization).get(client_id=tenant.client_id)
    )
    body = assert_error(mint({"client_id": tenant.client_id}), 401)
    assert body["detail"].startswith("Authentication required - ")


def test_malformed_requests_are_400(tenant, widget):
    assert_error(mint({}), 400)
    assert_error(mint({"client_id": tenant.client_id, "config_id": "not-a-uuid"}), 400)
    assert_error(APIClient().post(URL, "{broken", content_type="application/json"), 400)


def test_config_id_of_another_organization_is_404(tenant, other_widget):
    assert_error(mint({"client_id": tenant.client_id, "config_id": str(other_widget.id)}), 404)


class TestAllowedDomains:
    @pytest.fixture
    def locked(self, widget):
        return widget_update(widget=widget, allowed_domains=[SHOP])

    def test_allowed_origin_gets_a_token(self, tenant, locked):
        assert (
            mint({"client_id": tenant.client_id, "config_id": str(locked.id)}, HTTP_ORIGIN=SHOP).status_code
            == 200
        )
        # Without config_id, the organization's widgets' domains decide.
        assert mint({"client_id": tenant.client_id}, HTTP_ORIGIN=SHOP).status_code == 200

    @pytest.mark.parametrize(
        "headers",
        [
            {"HTTP_ORIGIN": "https://evil.example"},
            {},
            {"HTTP_ORIGIN": "null"},
            {"HTTP_ORIGIN": "https://shop.example.com.evil.example"},
            {"HTTP_ORIGIN": "http://shop.example.com"},
            {"HTTP_ORIGIN": SHOP, "HTTP_REFERER": "https://evil.example/page"},
        ],
    )
    def test_other_missing_or_inconsistent_origins_get_403(self, tenant, locked, headers):
        for body in (
            {"client_id": tenant.client_id, "config_id": str(locked.id)},
            {"client_id": tenant.client_id},
        ):
            response = mint(body, **headers)
            assert "token" not in response.json()
            assert_error(response, 403)

    def test_an_open_widget_does_not_open_a_locked_one(self, tenant, locked, assistant):
        open_widget = widget_create(organization=tenant.organization, assistant_id=assistant.id)
        assert (
            mint(
                {"client_id": tenant.client_id, "config_id": str(open_widget.id)},
                HTTP_ORIGIN="https://any.example",
            ).status_code
            == 200
        )
        assert_error(
            mint(
                {"client_id": tenant.client_id, "config_id": str(locked.id)},
                HTTP_ORIGIN="https://any.example",
            ),
            403,
        )

    def test_wildcard_domains(self, tenant, widget):
        widget_update(widget=widget, allowed_domains=["https://*.example.com"])
        body = {"client_id": tenant.client_id, "config_id": str(widget.id)}
        assert mint(body, HTTP_ORIGIN="https://blog.example.com").status_code == 200
        assert_error(mint(body, HTTP_ORIGIN="https://example.org"), 403)

    def test_switched_off_widget_gets_no_token(self, tenant, widget):
        widget_update(widget=widget, is_active=False)
        assert_error(mint({"client_id": tenant.client_id, "config_id": str(widget.id)}), 403)


def test_rate_limited_per_client_id(tenant, settings):
    settings.WIDGET_TOKEN_RATE_PER_CLIENT = "3/h"
    statuses = [
        mint({"client_id": tenant.client_id}, REMOTE_ADDR=f"198.51.100.{n}").status_code for n in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    limited = mint({"client_id": tenant.client_id}, REMOTE_ADDR="198.51.100.77")
    body = assert_error(limited, 429)
    assert "token" not in body
    assert 0 < int(limited["Retry-After"]) <= 3600
    assert limited["X-RateLimit-Limit"] == "3" and limited["X-RateLimit-Remaining"] == "0"


def test_rate_limited_per_ip_across_client_ids(tenant, other_tenant, settings):
    settings.WIDGET_TOKEN_RATE_PER_IP = "2/h"
    ip = {"REMOTE_ADDR": "203.0.113.5"}
    assert mint({"client_id": tenant.client_id}, **ip).status_code == 200
    assert mint({"client_id": other_tenant.client_id}, **ip).status_code == 200
    assert_error(mint({"client_id": tenant.client_id}, **ip), 429)
    # Unknown client ids count too (no free guessing), and XFF does not reset the bucket.
    assert_error(mint({"client_id": "ci_guess"}, HTTP_X_FORWARDED_FOR="192.0.2.1", **ip), 429)
    assert mint({"client_id": tenant.client_id}, REMOTE_ADDR="203.0.113.6").status_code == 200


def test_returning_visitor_keeps_their_identity(tenant, other_tenant, widget):
    first = mint({"client_id": tenant.client_id}, HTTP_ORIGIN=SHOP).json()["token"]
    visitor = widget_token_decode(first)["vis"]
    again = mint({"client_id": tenant.client_id, "visitor_token": first}, HTTP_ORIGIN=SHOP)
    assert claims_of(again)["vis"] == visitor
    # From another site, or with another organization's client id: a fresh visitor.
    assert (
        claims_of(
            mint({"client_id": tenant.client_id, "visitor_token": first}, HTTP_ORIGIN="https://b.example")
        )["vis"]
        != visitor
    )
    assert (
        claims_of(mint({"client_id": other_tenant.client_id, "visitor_token": first}, HTTP_ORIGIN=SHOP))[
            "vis"
        ]
        != visitor
    )
    # A forged one is ignored.
    header, payload, signature = first.split(".")
    forged = ".".join([header, payload, signature[::-1]])
    assert (
        claims_of(mint({"client_id": tenant.client_id, "visitor_token": forged}, HTTP_ORIGIN=SHOP))["vis"]
        != visitor
    )


def test_an_expired_token_still_identifies_a_visitor_back_within_a_week_but_not_later(
    tenant, widget, settings
):
    now = int(time.time())
    key = ApiKey.objects.for_organization(tenant.organization).get(client_id=tenant.client_id)

    def signed(issued_at, **extra):
        payload = {
            "token_type": "widget",
            "iat": issued_at,
            "exp": issued_at + 3600,
            "jti": f"jti-{issued_at}",
            "aud": "supportai-widget",
            "iss": "supportai",
            "org": str(tenant.organization.id),
            "cid": str(key.pk),
            "vis": "v_returning",
            "sub": "v_returning",
        } | extra
        return jwt.encode(payload, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")

    recent = signed(now - 2 * 86400)
    assert claims_of(mint({"client_id": tenant.client_id, "visitor_token": recent}))["vis"] == "v_returning"
    for days in (8, 40):  # the window is a week (WIDGET_VISITOR_MAX_AGE), no longer 30 days
        old = signed(now - days * 86400)
        assert claims_of(mint({"client_id": tenant.client_id, "visitor_token": old}))["vis"] != "v_returning"
    # Signed correctly but without the claims every minted token has (no key, no id): refused.
    for missing in ("cid", "jti"):
        bare = jwt.decode(signed(now - 86400 - len(missing)), options={"verify_signature": False})
        del bare[missing]
        token = jwt.encode(bare, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
        assert (
            claims_of(mint({"client_id": tenant.client_id, "visitor_token": token}))["vis"] != "v_returning"
        )
    # A longer window is the operator's choice.
    settings.WIDGET_VISITOR_MAX_AGE = timedelta(days=60)
    assert (
        claims_of(mint({"client_id": tenant.client_id, "visitor_token": signed(now - 40 * 86400)}))["vis"]
        == "v_returning"
    )


# --- token forgery and misuse (security plan rows 21, 23, 24) -------------------------------


def b64(data) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def valid_claims(tenant, **overrides):
    now = int(time.time())
    claims = {
        "token_type": "widget",
        "iat": now,
        "exp": now + 3600,
        "jti": "x",
        "aud": "supportai-widget",
        "iss": "supportai",
        "org": str(tenant.organization.id),
        "vis": "v_1",
        "sub": "v_1",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def hs256_with_empty_key(header, claims) -> str:
    signing_input = f"{b64(header)}.{b64(claims)}"
    signature = hmac.new(b"", signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def sign(claims, key=None, headers=None):
    return jwt.encode(claims, key or settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256", headers=headers)


def config_with(token, widget, **headers):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(f"/api/v1/widgets/{widget.id}/config", **headers)


def test_a_well_formed_token_works(tenant, widget):
    assert config_with(sign(valid_claims(tenant)), widget).status_code == 200


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda t: sign(valid_claims(t, exp=int(time.time()) - 60, iat=int(time.time()) - 3660)),
            id="expired",
        ),
        pytest.param(lambda t: sign(valid_claims(t, exp=None)), id="no-exp"),
        pytest.param(lambda t: sign(valid_claims(t, iat=None)), id="no-iat"),
        pytest.param(
            lambda t: sign(valid_claims(t, exp=int(time.time()) + 10 * 365 * 86400)), id="ten-years"
        ),
        pytest.param(lambda t: sign(valid_claims(t, exp=int(time.time()) + 7200)), id="over-policy"),
        pytest.param(lambda t: sign(valid_claims(t, aud="other-audience")), id="wrong-aud"),
        pytest.param(lambda t: sign(valid_claims(t, aud=None)), id="no-aud"),
        pytest.param(lambda t: sign(valid_claims(t, iss="evil")), id="wrong-iss"),
        pytest.param(lambda t: sign(valid_claims(t, nbf=int(time.time()) + 600)), id="nbf-future"),
        pytest.param(lambda t: sign(valid_claims(t, token_type="access")), id="wrong-type"),
        pytest.param(lambda t: sign(valid_claims(t), key="not-the-key-" * 4), id="wrong-key"),
        pytest.param(
            lambda t: b64({"alg": "none", "typ": "JWT"}) + "." + b64(valid_claims(t)) + ".", id="alg-none"
        ),
        pytest.param(
            lambda t: b64({"alg": "None", "typ": "JWT"}) + "." + b64(valid_claims(t)) + ".", id="alg-None"
        ),
        pytest.param(
            lambda t: jwt.encode(valid_claims(t), settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS512"),
            id="hs512",
        ),
        pytest.param(lambda t: sign(valid_claims(t), headers={"crit": ["exp-ext"]}), id="unknown-crit"),
        pytest.param(
            # signed with the contents of /dev/null (empty key), hoping the kid is used to look it up
            lambda t: hs256_with_empty_key(
                {"alg": "HS256", "typ": "JWT", "kid": "../../../../dev/null"}, valid_claims(t)
            ),
            id="kid-path",
        ),
        pytest.param(
            lambda t: sign(valid_claims(t, org="00000000-0000-4000-8000-000000000000")), id="unknown-org"
        ),
        pytest.param(lambda t: sign(valid_claims(t, vis=None)), id="no-visitor"),
    ],
)
def test_forged_expired_or_out_of_policy_tokens_are_401(tenant, widget, make):
    body = assert_error(config_with(make(tenant), widget), 401)
    assert body["detail"].startswith("Authentication required - ")


def test_tampered_payload_is_401(tenant, widget, other_tenant):
    token, _ = widget_token_issue(organization_id=tenant.organization.id)
    header, _payload, signature = token.split(".")
    tampered = ".".join([header, b64(valid_claims(other_tenant)), signature])
    assert_error(config_with(tampered, widget), 401)


def test_token_is_bound_to_its_origin_on_every_call(tenant, widget):
    token, _ = widget_token_issue(organization_id=tenant.organization.id, widget_id=widget.id, origin=SHOP)
    assert config_with(token, widget, HTTP_ORIGIN=SHOP).status_code == 200
    assert config_with(token, widget, HTTP_REFERER=SHOP + "/checkout").status_code == 200  # same-origin GET
    assert_error(config_with(token, widget, HTTP_ORIGIN="https://evil.example"), 403)
    assert_error(config_with(token, widget), 403)  # no Origin, no Referer: fail closed
    assert_error(config_with(token, widget, HTTP_ORIGIN="null"), 403)


def test_lifetime_policy_comes_from_settings(tenant, settings):
    settings.WIDGET_TOKEN_LIFETIME = timedelta(minutes=15)
    response = mint({"client_id": tenant.client_id})
    assert response.json()["expires_in"] == 900
    claims = claims_of(response)
    assert claims["exp"] - claims["iat"] == 900


# --- what a widget token can reach (sessions come from the chat app) ------------------------


def token_client(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_visitors_reach_only_their_own_sessions(tenant, other_tenant, widget, other_widget):
    from chat.models import Message

    visitor_a = token_client(
        mint({"client_id": tenant.client_id, "config_id": str(widget.id)}).json()["token"]
    )
    visitor_b = token_client(
        mint({"client_id": tenant.client_id, "config_id": str(widget.id)}).json()["token"]
    )
    stranger = token_client(mint({"client_id": other_tenant.client_id}).json()["token"])

    session = visitor_a.post("/api/v1/sessions", {"assistant_id": str(widget.assistant_id)}, format="json")
    assert session.status_code == 201, session.content
    session_id = session.json()["data"]["id"]
    answer = visitor_a.post(f"/api/v1/sessions/{session_id}/messages", {"content": "Hello?"}, format="json")
    assert answer.status_code in (201, 202), answer.content
    message_id = answer.json()["data"]["id"]
    assert visitor_a.get(f"/api/v1/sessions/{session_id}/messages").json()["data"]["count"] == 2
    stored = Message.objects.for_organization(tenant.organization).count()

    for other in (visitor_b, stranger):
        assert_error(other.get(f"/api/v1/sessions/{session_id}"), 404)
        assert_error(other.get(f"/api/v1/sessions/{session_id}/messages"), 404)
        assert_error(
            other.post(f"/api/v1/sessions/{session_id}/messages", {"content": "hi"}, format="json"), 404
        )
        assert_error(
            other.post(
                f"/api/v1/sessions/{session_id}/messages/{message_id}/feedback",
                {"rating": "down"},
                format="json",
            ),
            404,
        )
    assert Message.objects.for_organization(tenant.organization).count() == stored
    assert Message.objects.for_organization(tenant.organization).get(pk=message_id).feedback in (None, 0)
    # Another organization's widget config is as unknown as a made-up id.
    assert_error(stranger.get(f"/api/v1/widgets/{widget.id}/config"), 404)
    assert stranger.get(f"/api/v1/widgets/{other_widget.id}/config").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/assistants/",
        "/api/v1/contexts/",
        "/api/v1/conversations/",
        "/api/v1/knowledge/qa/",
        "/api/v1/knowledge/files/",
        "/api/v1/knowledge/urls/",
        "/api/v1/api-keys/",
        "/api/v1/widgets/",
        "/api/v1/organization",
        "/api/v1/sessions/",  # listing sessions is for the organization, not a visitor
    ],
)
def test_widget_tokens_get_403_on_management_endpoints(tenant, path):
    visitor = token_client(mint({"client_id": tenant.client_id}).json()["token"])
    assert_error(visitor.get(path), 403)
    if path != "/api/v1/sessions/":
        assert_error(visitor.post(path, {}, format="json"), 403)


def test_mint_fails_closed_when_the_rate_limit_cache_is_down(tenant, settings):
    """Redis unreachable (a real client against a loopback port nobody listens on)."""
    import socket

    from core.cache_guard import cache_circuit_reset

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{dead_port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    try:
        response = mint({"client_id": tenant.client_id})
        body = assert_error(response, 503)
        assert "token" not in body
        assert int(response["Retry-After"]) > 0
    finally:
        cache_circuit_reset()
