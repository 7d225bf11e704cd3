"""CORS for the few endpoints a visitor's browser calls from a customer's site.

Only these paths take part: the widget-token mint, the sessions API and a widget's public
config. Everything else (management API, dashboard) sends no CORS headers at all, so a
foreign page can never read it. No response ever carries
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

import re

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from organizations.credentials import Credential
from widget.origins import origin_from_header

_WIDGET_TOKEN = re.compile(r"^/api/v1/auth/widget-token/?$")
_CORS_PATHS = (
    _WIDGET_TOKEN,
    re.compile(r"^/api/v1/sessions(/.*)?$"),
    re.compile(r"^/api/v1/widgets/[0-9a-fA-F-]{36}/config/?$"),
)
ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Accept, Idempotency-Key, Last-Event-ID"
EXPOSE_HEADERS = (
    "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, RateLimit, RateLimit-Policy"
)
PREFLIGHT_MAX_AGE = "600"


def _in_scope(path: str) -> bool:
    return any(pattern.match(path) for pattern in _CORS_PATHS)


def _origin_allowed(request: HttpRequest, response: HttpResponse, origin: str) -> bool:
    from widget.selectors import widget_origin_allowed

    if _WIDGET_TOKEN.match(request.path):
        return response.status_code != 403
    credential = getattr(request, "auth", None)
    if isinstance(credential, Credential) and credential.is_widget:
        claims = credential.claims or {}
        if claims.get("origin"):
            return claims["origin"] == origin
        return widget_origin_allowed(
            organization=credential.organization, widget_id=credential.widget_id, origin=origin
        )
    return response.status_code == 401


class WidgetCorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw_origin = request.headers.get("Origin")
        if not raw_origin or not _in_scope(request.path):
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
        if origin is not None and _origin_allowed(request, response, origin):
            response["Access-Control-Allow-Origin"] = raw_origin
            response["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response
