"""Attack rows 19–22 and 43: the public client_id and its unauthenticated token endpoint.

The Origin allow-list stops browsers only (curl can send any Origin), so what makes the
public client_id safe is server-side: short tokens bound to their Origin and visitor,
checked on every call; per-client_id and per-IP mint limits that a forged
X-Forwarded-For does not dodge; and failing closed when the limiter cannot count."""

from __future__ import annotations

import uuid

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from core.cache_guard import cache_circuit_reset
from tests.conftest import assert_error_shape
from widget.services import widget_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/auth/widget-token"
SHOP = "https://shop.example.com"


@pytest.fixture
def locked_widget(tenant):
    return widget_create(organization=tenant.organization, allowed_domains=[SHOP], title="Shop")


def _mint(body, **headers):
    return APIClient().post(URL, body, format="json", **headers)


def test_mint_checks_origin_and_fails_closed(tenant, locked_widget):
    body = {"client_id": tenant.client_id, "config_id": str(locked_widget.id)}
    assert _mint(body, HTTP_ORIGIN=SHOP).status_code == 200
    for headers in (
        {"HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_ORIGIN": "https://shop.example.com.evil.example"},
        {"HTTP_ORIGIN": "http://shop.example.com"},  # scheme matters
        {"HTTP_ORIGIN": "null"},  # sandboxed iframe / file://
        {},  # no Origin at all (curl)
        {"HTTP_ORIGIN": SHOP, "HTTP_REFERER": "https://evil.example/page"},  # inconsistent pair
    ):
        response = _mint(body, **headers)
        assert_error_shape(response, 403)
        assert "token" not in response.json()
    # Without config_id the organization's widgets' domains apply: still refused.
    assert_error_shape(_mint({"client_id": tenant.client_id}, HTTP_ORIGIN="https://evil.example"), 403)


def test_a_token_works_only_from_its_origin_on_every_widget_call(tenant, locked_widget):
    token = _mint(
        {"client_id": tenant.client_id, "config_id": str(locked_widget.id)}, HTTP_ORIGIN=SHOP
    ).json()["token"]
    visitor = APIClient()
    visitor.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    session = visitor.post("/api/v1/sessions", {}, format="json", HTTP_ORIGIN=SHOP)
    assert session.status_code == 201, session.content
    session_id = session.json()["data"]["id"]
    calls = [
        ("post", "/api/v1/sessions", {}),
        ("get", f"/api/v1/sessions/{session_id}", None),
        ("get", f"/api/v1/sessions/{session_id}/messages", None),
        ("post", f"/api/v1/sessions/{session_id}/messages", {"content": "hi"}),
        ("get", f"/api/v1/widgets/{locked_widget.id}/config", None),
        ("get", "/api/v1/sessions", None),
        ("get", f"/api/v1/sessions/{session_id}/events", None),
        ("post", f"/api/v1/sessions/{session_id}/handoff", {"reason": "hi"}),
        ("post", f"/api/v1/sessions/{session_id}/csat", {"score": 5}),
        ("post", f"/api/v1/sessions/{session_id}/messages/{uuid.uuid4()}/feedback", {"rating": "up"}),
    ]
    for method, path, body in calls:
        for headers in ({"HTTP_ORIGIN": "https://evil.example"}, {}):
            response = (
                getattr(visitor, method)(path, body, format="json", **headers)
                if body is not None
                else getattr(visitor, method)(path, **headers)
            )
            assert_error_shape(response, 403)
    assert visitor.get(f"/api/v1/sessions/{session_id}", HTTP_ORIGIN=SHOP).status_code == 200


def test_a_site_taken_off_the_allowed_domains_loses_its_tokens_at_once(tenant, locked_widget, settings):
    """The allow-list was read only when a token was minted: a site removed from it (a
    compromised shop, a domain sold) kept working for the rest of its tokens' hour, and a token
    minted before the widget had any allowed domain worked from anywhere. Now every call reads
    the widget's list as it is, like its on/off switch; our own origin (the dashboard's preview)
    stays allowed."""
    from widget.services import widget_update
    from widget.tokens import widget_token_issue

    blog = "https://blog.example.com"
    widget_update(widget=locked_widget, allowed_domains=[SHOP, blog])
    body = {"client_id": tenant.client_id, "config_id": str(locked_widget.id)}
    shop_visitor, blog_visitor = APIClient(), APIClient()
    shop_visitor.credentials(HTTP_AUTHORIZATION=f"Bearer {_mint(body, HTTP_ORIGIN=SHOP).json()['token']}")
    blog_visitor.credentials(HTTP_AUTHORIZATION=f"Bearer {_mint(body, HTTP_ORIGIN=blog).json()['token']}")
    open_widget = widget_create(organization=tenant.organization, title="Open")
    anywhere = APIClient()  # minted while the widget allowed any site: no origin in the token
    anywhere.credentials(
        HTTP_AUTHORIZATION=f"Bearer {_mint({**body, 'config_id': str(open_widget.id)}).json()['token']}"
    )
    preview_token, _ = widget_token_issue(
        organization_id=tenant.organization.pk,
        widget_id=locked_widget.pk,
        visitor_id="preview_x",
        origin=settings.SITE_URL,
    )
    preview = APIClient()
    preview.credentials(HTTP_AUTHORIZATION=f"Bearer {preview_token}")
    config = f"/api/v1/widgets/{locked_widget.id}/config"
    assert shop_visitor.get(config, HTTP_ORIGIN=SHOP).status_code == 200
    assert anywhere.get(f"/api/v1/widgets/{open_widget.id}/config").status_code == 200

    widget_update(widget=locked_widget, allowed_domains=[SHOP])
    widget_update(widget=open_widget, allowed_domains=[SHOP])
    assert_error_shape(blog_visitor.get(config, HTTP_ORIGIN=blog), 403)
    assert_error_shape(blog_visitor.post("/api/v1/sessions", {}, format="json", HTTP_ORIGIN=blog), 403)
    assert_error_shape(anywhere.get(f"/api/v1/widgets/{open_widget.id}/config"), 403)
    assert_error_shape(
        anywhere.get(f"/api/v1/widgets/{open_widget.id}/config", HTTP_ORIGIN="https://evil.example"), 403
    )
    assert anywhere.get(f"/api/v1/widgets/{open_widget.id}/config", HTTP_ORIGIN=SHOP).status_code == 200
    assert shop_visitor.get(config, HTTP_ORIGIN=SHOP).status_code == 200
    assert preview.get(config, HTTP_ORIGIN=settings.SITE_URL).status_code == 200


@override_settings(WIDGET_TOKEN_RATE_PER_IP="3/h", WIDGET_TOKEN_RATE_PER_CLIENT="1000/h")
def test_per_ip_mint_limit_ignores_forged_forwarded_for(tenant):
    statuses = []
    for index in range(5):
        response = _mint(
            {"client_id": tenant.client_id},
            HTTP_X_FORWARDED_FOR=f"203.0.113.{index}",
            HTTP_X_REAL_IP=f"198.51.100.{index}",
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429, 429]
    limited = _mint({"client_id": tenant.client_id})
    body = assert_error_shape(limited, 429)
    assert int(limited["Retry-After"]) > 0 and "token" not in body


@override_settings(WIDGET_TOKEN_RATE_PER_IP="1000/h", WIDGET_TOKEN_RATE_PER_CLIENT="4/h")
def test_per_client_id_mint_limit_holds_across_many_ips(tenant, other_tenant):
    statuses = [
        _mint({"client_id": tenant.client_id}, REMOTE_ADDR=f"192.0.2.{index}").status_code
        for index in range(6)
    ]
    assert statuses == [200, 200, 200, 200, 429, 429]
    # Another organization's public client id has its own bucket.
    assert _mint({"client_id": other_tenant.client_id}, REMOTE_ADDR="192.0.2.99").status_code == 200


@override_settings(WIDGET_TOKEN_RATE_PER_IP="1000/h", WIDGET_TOKEN_RATE_PER_CLIENT="4/h")
def test_mint_and_api_limits_count_every_spelling_of_the_url_and_the_client_id_together(tenant):
    """The trailing-slash and bare forms of a URL are both served (SPEC), and a client_id is
    read with its surrounding spaces cut off: none of these spellings is a fresh bucket."""
    spellings = [
        (URL, tenant.client_id),
        (URL + "/", tenant.client_id),
        (URL, f"  {tenant.client_id}\t"),
        (URL + "/", f"{tenant.client_id} "),
        (URL + "/", tenant.client_id),
        (URL, f" {tenant.client_id}"),
    ]
    statuses = [
        APIClient()
        .post(url, {"client_id": client_id}, format="json", REMOTE_ADDR=f"192.0.2.{index}")
        .status_code
        for index, (url, client_id) in enumerate(spellings)
    ]
    assert statuses == [200, 200, 200, 200, 429, 429]
    tenant.organization.rate_limit_per_hour = 4
    tenant.organization.save()
    api = tenant.client()
    paths = ["/api/v1/organization", "/api/v1/organization/", "/api/v1/assistants", "/api/v1/assistants/"]
    assert [api.get(path).status_code for path in paths] == [200, 200, 200, 200]
    for path in [*paths, "/api/v1/audit-events/", "/api/v1/sessions/"]:
        assert_error_shape(api.get(path), 429)


def test_visitor_traffic_has_its_own_budget_and_never_touches_the_api_keys(tenant, settings):
    """A visitor's calls draw from that visitor's budget, never from the organization's API
    budget: a public client id cannot take the organization's server integration down."""
    settings.WIDGET_RATE_PER_VISITOR = "3/m"
    open_widget = widget_create(organization=tenant.organization, title="Open")
    tenant.organization.rate_limit_per_hour = 3
    tenant.organization.save()
    token = _mint({"client_id": tenant.client_id, "config_id": str(open_widget.id)}).json()["token"]
    visitor = APIClient()
    visitor.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    responses = [visitor.post("/api/v1/sessions", {}, format="json") for _ in range(4)]
    assert [response.status_code for response in responses] == [201, 201, 201, 429]
    assert_error_shape(responses[-1], 429)
    assert responses[-1]["RateLimit-Policy"] == '"visitor";q=3;w=60'
    api = tenant.client().get("/api/v1/organization")
    assert api.status_code == 200 and api["X-RateLimit-Remaining"] == "2"  # untouched before this call


def test_mint_fails_closed_when_the_limiter_cache_is_down(tenant, procs):
    from testkit import processes

    redis_process, port = procs.redis()
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    with override_settings(CACHES=caches):
        cache_circuit_reset()
        try:
            assert _mint({"client_id": tenant.client_id}).status_code == 200
            processes.process_stop(redis_process)
            refused = _mint({"client_id": tenant.client_id})
            body = assert_error_shape(refused, 503)
            assert refused["Retry-After"] == "5" and "token" not in body
        finally:
            cache_circuit_reset()
