"""CORS for the few views a visitor's browser calls from a customer's site.

A view takes part by saying so on its class: `cors = CORS_WIDGET_VISITOR` (a view that
accepts the visitor's widget token: the sessions API, a widget's public config) or
`cors = CORS_WIDGET_TOKEN_MINT` (the widget-token mint). The values are plain strings so
that apps below `widget` (chat's sessions API) can declare them without importing it.
Every other view (management API, the widget chat API for servers, dashboard) sends no CORS
headers at all, so a foreign page can never read it. No response ever carries
`Access-Control-Allow-Credentials`: the widget authenticates with a bearer token, never
with cookies.

- Preflight (`OPTIONS` + `Access-Control-Request-Method`) is answered for any well-formed
  origin: it carries no credentials and no body, so it cannot tell which organization is
  asking; it grants nothing by itself.
- Actual responses reflect the Origin only when that origin is allowed: for the mint, when
  the view issued a token (it checked the widget's allowed domains) or failed for a reason
  other than the origin; for widget-token calls, when the token was minted for that origin
  (or, for tokens minted without one, when the widget allows it). A 401 is also readable,
  so an open widget can tell that its token expired and fetch a new one.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils.cache import patch_vary_headers

from organizations.credentials import Credential
from widget.origins import origin_from_header

CORS_WIDGET_VISITOR = "widget-visitor"
CORS_WIDGET_TOKEN_MINT = "widget-token-mint"

ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Accept, Idempotency-Key, Last-Event-ID"
EXPOSE_HEADERS = (
    "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, RateLimit, RateLimit-Policy"
)
PREFLIGHT_MAX_AGE = "600"


def _mint_readable(request: HttpRequest, response: HttpResponse, origin: str) -> bool:
    return response.status_code != 403


def _visitor_readable(request: HttpRequest, response: HttpResponse, origin: str) -> bool:
    from widget.selectors import widget_origin_allowed

    credential = getattr(request, "auth", None)
    if isinstance(credential, Credential) and credential.is_widget:
        claims = credential.claims or {}
        if claims.get("origin"):
            return claims["origin"] == origin
        return widget_origin_allowed(
            organization=credential.organization, widget_id=credential.widget_id, origin=origin
        )
    return response.status_code == 401


# What each declaration means: is this response readable by a page on `origin`?
CORS_POLICIES = {
    CORS_WIDGET_VISITOR: _visitor_readable,
    CORS_WIDGET_TOKEN_MINT: _mint_readable,
}


def view_cors(view) -> str | None:
    """The CORS declaration of a view function (DRF's `cls`, Django's `view_class`), if any."""
    view_class = getattr(view, "cls", None) or getattr(view, "view_class", None) or view
    declared = getattr(view_class, "cors", None)
    if declared is not None and declared not in CORS_POLICIES:
        raise ImproperlyConfigured(
            f"{view_class.__name__}.cors = {declared!r}: not one of {sorted(CORS_POLICIES)}"
        )
    return declared


def _request_cors(request: HttpRequest) -> str | None:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    return view_cors(match.func)


class WidgetCorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw_origin = request.headers.get("Origin")
        if not raw_origin:
            return self.get_response(request)
        declared = _request_cors(request)
        if declared is None:
            return self.get_response(request)
        origin = origin_from_header(raw_origin)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = HttpResponse(status=204)
            if origin is not None:
                response["Access-Control-Allow-Origin"] = raw_origin
                response["Access-Control-Allow-Methods"] = ALLOW_METHODS
                response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
                response["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
            patch_vary_headers(response, ["Origin"])
            return response
        response = self.get_response(request)
        patch_vary_headers(response, ["Origin"])
        if origin is not None and CORS_POLICIES[declared](request, response, origin):
            response["Access-Control-Allow-Origin"] = raw_origin
            response["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response
