"""One exception handler: every API error, DRF's or ours, leaves in SPEC's error shape."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from core.api.envelope import application_error_parts, error_body, error_response, is_api_path
from core.errors import ApplicationError

logger = logging.getLogger(__name__)

_DETAIL_PREFIX = {
    401: "Authentication required - ",
}


def _flatten_detail(detail) -> str:
    if isinstance(detail, list):
        return " ".join(_flatten_detail(item) for item in detail)
    if isinstance(detail, dict):
        return " ".join(f"{key}: {_flatten_detail(value)}" for key, value in detail.items())
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        set_rollback()
        status_code, body, headers = application_error_parts(exc)
        return Response(body, status=status_code, headers=headers)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body(413, "Request body too large."), status=413)
    if isinstance(exc, SuspiciousOperation):
        return Response(error_body(400, "Bad request."), status=400)
    if isinstance(exc, OperationalError):
        set_rollback()
        logger.warning("database unavailable: %s", exc.__class__.__name__)
        return Response(
            error_body(503, "Service temporarily unavailable - the database is unreachable."),
            status=503,
            headers={"Retry-After": "5"},
        )

    response = drf_exception_handler(exc, context)
    if response is None:
        set_rollback()
        if isinstance(exc, DatabaseError):
            logger.exception("database error")
        else:
            logger.exception("unhandled API error")
        return Response(error_body(500, "Internal server error."), status=500)

    data = None
    if isinstance(exc, exceptions.ValidationError):
        data = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        detail = "Invalid input - " + _flatten_detail(exc.detail)
    elif isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        detail = _DETAIL_PREFIX[401] + _flatten_detail(exc.detail)
        response.status_code = status.HTTP_401_UNAUTHORIZED
    elif isinstance(exc, (Http404, exceptions.NotFound)):
        detail = "Not found."
    elif isinstance(exc, (PermissionDenied, exceptions.PermissionDenied)):
        detail = _flatten_detail(getattr(exc, "detail", "Permission denied."))
    else:
        detail = _flatten_detail(getattr(exc, "detail", str(exc)))
    response.data = error_body(response.status_code, detail, data)
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if is_api_path(request.path):
        return error_response(403, "CSRF verification failed.")
    return render(request, "403_csrf.html", {"reason": reason}, status=403)


def _page_or_json(request, status_code: int, detail: str, template: str) -> HttpResponse:
    if is_api_path(request.path):
        return error_response(status_code, detail)
    return render(request, template, {"detail": detail}, status=status_code)


def handler400(request, exception=None):
    return _page_or_json(request, 400, "Bad request.", "errors/400.html")


def handler403(request, exception=None):
    return _page_or_json(request, 403, "Permission denied.", "errors/403.html")


def handler404(request, exception=None):
    return _page_or_json(request, 404, "Not found.", "errors/404.html")


def handler500(request):
    return _page_or_json(request, 500, "Internal server error.", "errors/500.html")
