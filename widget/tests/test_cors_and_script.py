import gzip

import pytest
from django.test import Client

from widget.services import widget_update
from widget.tokens import widget_token_issue

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example.com"
EVIL = "https://evil.example"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/auth/widget-token",
        "/api/v1/sessions/",
        "/api/v1/sessions/6f1c2a9e-0b7d-4c52-9a1e-3d4f5a6b7c8d/messages",
        "/api/v1/widgets/{id}/config",
    ],
)
def test_preflight_is_answered_for_widget_paths(widget, path):
    response = Client().options(
        path.format(id=widget.id),
        HTTP_ORIGIN=SHOP,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert "Authorization" in response["Access-Control-Allow-Headers"]
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response
    assert "Origin" in response["Vary"]


@pytest.mark.parametrize(
    "path", ["/api/v1/widgets/", "/api/v1/api-keys", "/api/v1/organization", "/api/widget/config"]
)
def test_management_and_server_side_paths_have_no_cors(tenant, path):
    preflight = Client().options(path, HTTP_ORIGIN=EVIL, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert "Access-Control-Allow-Origin" not in preflight
    actual = tenant.client().get(path, HTTP_ORIGIN=EVIL)
    assert "Access-Control-Allow-Origin" not in actual
    assert "Access-Control-Allow-Credentials" not in actual


def test_a_path_no_view_answers_has_no_cors():
    """CORS is declared on views; a path that resolves to none (here: an id that is not a
    UUID) gets the ordinary enveloped 404, with no CORS headers."""
    response = Client().options(
        "/api/v1/sessions/abc/messages", HTTP_ORIGIN=SHOP, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert response.status_code == 404
    assert "Access-Control-Allow-Origin" not in response


def _api_views(patterns=None, prefix=""):
    from django.urls import URLPattern, URLResolver, get_resolver

    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from _api_views(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and hasattr(entry.callback, "cls"):
            yield prefix + str(entry.pattern), entry.callback.cls


def test_cors_is_declared_on_exactly_the_views_a_visitor_browser_calls():
    """A view that accepts a widget token is called from a customer's site, so it declares
    visitor CORS; no other view declares anything but the token mint. A misspelt
    declaration (e.g. in chat, which writes the value out) fails here, not in a browser."""
    from widget.middleware import CORS_WIDGET_TOKEN_MINT, CORS_WIDGET_VISITOR, view_cors

    declared = {}
    for route, view_class in _api_views():
        cors = view_cors(view_class)  # raises ImproperlyConfigured on an unknown value
        if getattr(view_class, "allow_widget_token", False):
            assert cors == CORS_WIDGET_VISITOR, route
        if cors is not None:
            declared[route] = cors
    assert {route for route, cors in declared.items() if cors == CORS_WIDGET_TOKEN_MINT} == {
        "api/v1/auth/widget-token/",
        "api/v1/auth/widget-token",
    }
    visitor = {route for route, cors in declared.items() if cors == CORS_WIDGET_VISITOR}
    assert "api/v1/sessions/<uuid:pk>/messages" in visitor
    assert "api/v1/widgets/<uuid:pk>/config" in visitor
    assert all(route.startswith(("api/v1/sessions", "api/v1/widgets/<uuid:pk>/config")) for route in visitor)


def test_mint_reflects_only_allowed_origins(tenant, widget):
    body = {"client_id": tenant.client_id, "config_id": str(widget.id)}
    open_response = Client().post(
        "/api/v1/auth/widget-token", body, content_type="application/json", HTTP_ORIGIN=EVIL
    )
    assert open_response.status_code == 200  # no allowed domains: any site
    assert open_response["Access-Control-Allow-Origin"] == EVIL
    widget_update(widget=widget, allowed_domains=[SHOP])
    allowed = Client().post(
        "/api/v1/auth/widget-token", body, content_type="application/json", HTTP_ORIGIN=SHOP
    )
    assert allowed.status_code == 200 and allowed["Access-Control-Allow-Origin"] == SHOP
    refused = Client().post(
        "/api/v1/auth/widget-token", body, content_type="application/json", HTTP_ORIGIN=EVIL
    )
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused
    for response in (open_response, allowed, refused):
        assert "Access-Control-Allow-Credentials" not in response


def test_widget_token_calls_reflect_the_token_origin_only(tenant, widget):
    token, _ = widget_token_issue(organization_id=tenant.organization.id, widget_id=widget.id, origin=SHOP)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    ok = client.get(f"/api/v1/widgets/{widget.id}/config", HTTP_ORIGIN=SHOP)
    assert ok.status_code == 200 and ok["Access-Control-Allow-Origin"] == SHOP
    assert "X-RateLimit-Remaining" in ok["Access-Control-Expose-Headers"]
    foreign = client.get(f"/api/v1/widgets/{widget.id}/config", HTTP_ORIGIN=EVIL)
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign


def test_tokens_minted_without_origin_follow_the_widget_allow_list(tenant, widget):
    token, _ = widget_token_issue(organization_id=tenant.organization.id, widget_id=widget.id)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert (
        client.get(f"/api/v1/widgets/{widget.id}/config", HTTP_ORIGIN=EVIL)["Access-Control-Allow-Origin"]
        == EVIL
    )
    widget_update(widget=widget, allowed_domains=[SHOP])
    assert "Access-Control-Allow-Origin" not in client.get(
        f"/api/v1/widgets/{widget.id}/config", HTTP_ORIGIN=EVIL
    )
    assert (
        client.get(f"/api/v1/widgets/{widget.id}/config", HTTP_ORIGIN=SHOP)["Access-Control-Allow-Origin"]
        == SHOP
    )


def test_expired_token_401_is_readable_so_the_widget_can_refresh(widget):
    response = Client(HTTP_AUTHORIZATION="Bearer eyJhbGciOiJIUzI1NiJ9.e30.x").get(
        f"/api/v1/widgets/{widget.id}/config", HTTP_ORIGIN=SHOP
    )
    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert "Access-Control-Allow-Credentials" not in response


def test_widget_js_is_served_compressed_cacheable_and_revalidated():
    client = Client()
    plain = client.get("/widget.js")
    assert plain.status_code == 200
    assert plain["Content-Type"] == "text/javascript; charset=utf-8"
    assert b"attachShadow" in plain.content
    assert "max-age=" in plain["Cache-Control"] and "public" in plain["Cache-Control"]
    assert plain["Access-Control-Allow-Origin"] == "*"
    assert plain["Cross-Origin-Resource-Policy"] == "cross-origin"
    etag = plain["ETag"]
    zipped = client.get("/widget.js", HTTP_ACCEPT_ENCODING="gzip, br")
    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == plain.content
    # The size budget: 24 KiB gzipped since the widget speaks five languages (was 20 KiB).
    assert len(zipped.content) <= 24 * 1024
    assert "Accept-Encoding" in zipped["Vary"]
    not_modified = client.get("/widget.js", HTTP_IF_NONE_MATCH=etag)
    assert not_modified.status_code == 304 and not not_modified.content
    assert client.post("/widget.js").status_code == 405
