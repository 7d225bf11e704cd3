"""SPEC's error shape, built in one place, and the one map from a domain error's `code`
to its HTTP status. The exception handler (core.api.exceptions), the middleware's early
refusals and a stream's error event all answer through here."""

from __future__ import annotations

import math
from typing import Any

from django.http import JsonResponse

from core.errors import ApplicationError


def error_body(status_code: int, detail: str, data: Any = None) -> dict:
    return {"status": "error", "status_code": status_code, "detail": detail, "data": data}


def error_response(status_code: int, detail: str, data: Any = None) -> JsonResponse:
    return JsonResponse(error_body(status_code, detail, data), status=status_code)


def is_api_path(path: str) -> bool:
    """`/api` itself and everything under `/api/` (not `/apix`), in any case: `/API/v1/…` is
    no URL of ours, but a client that typed it is an API client and gets its 404 (and every
    other error) in the error shape, counted against the unauthenticated budget, not as the
    dashboard's HTML page. Nor is `//api/…` (a base URL with a trailing slash joined to a path
    with a leading one), and it is answered the same way."""
    path = "/" + path.lower().lstrip("/")
    return path == "/api" or path.startswith("/api/")


# The one map from a domain error's machine `code` to its HTTP status. A subclass with its
# own code and no entry here inherits the status of the nearest ancestor's code (e.g.
# `fetch_timeout` → `upstream_timeout` → 504); anything else is 400.
STATUS_BY_CODE: dict[str, int] = {
    "invalid": 400,
    "unauthenticated": 401,
    "invalid_client": 401,
    "invalid_identity": 401,
    "permission_denied": 403,
    "identity_required": 403,
    "origin_not_allowed": 403,
    "not_found": 404,
    "conflict": 409,
    "payload_too_large": 413,
    "budget_exhausted": 429,
    "too_many_concurrent": 429,
    "upstream_error": 502,
    "unavailable": 503,
    "upstream_timeout": 504,
}
_RETRY_AFTER_STATUSES = (429, 503)


def error_status(error: ApplicationError) -> int:
    if error.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[error.code]
    for cls in type(error).__mro__:
        code = cls.__dict__.get("code")
        if code in STATUS_BY_CODE:
            return STATUS_BY_CODE[code]
    return 400


def application_error_parts(error: ApplicationError) -> tuple[int, dict, dict[str, str]]:
    """(status, SPEC error body, headers) for a domain error — every surface that answers
    one (the exception handler, an SSE stream's error event) builds it here."""
    status_code = error_status(error)
    headers = {}
    if status_code in _RETRY_AFTER_STATUSES:
        # Tell clients when to come back (the provider's own hint when there is one).
        hint = error.details.get("retry_after") if isinstance(error.details, dict) else None
        try:
            seconds = max(1, math.ceil(float(hint))) if hint is not None else 5
        except (TypeError, ValueError):
            seconds = 5
        headers["Retry-After"] = str(seconds)
    return status_code, error_body(status_code, error.message, error.details), headers
