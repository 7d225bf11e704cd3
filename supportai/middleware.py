from __future__ import annotations

import json
import logging
import time

from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError, connections
from django.http import HttpRequest, HttpResponse

from core import timing
from core.api.envelope import error_response, is_api_path
from core.api.parsers import query_problem

logger = logging.getLogger(__name__)

_DEFAULT_DETAIL = {
    400: "Bad request.",
    401: "Authentication required - credentials were not provided.",
    403: "Permission denied.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    415: "Unsupported media type.",
    429: "Too many requests.",
    500: "Internal server error.",
    502: "Bad gateway.",
    503: "Service temporarily unavailable.",
}


class ServerTimingMiddleware:
    """Adds `Server-Timing` (db, embed, retrieve, llm, app, and cpu: the request thread's own
    CPU time, which the machine's load changes far less than the wall-clock phases) to every
    response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = timing.start()
        started = time.perf_counter()
        cpu_started = time.thread_time()
        try:
            with connections["default"].execute_wrapper(timing.database_wrapper):
                response = self.get_response(request)
        finally:
            phases = timing.stop(token)
        if not response.streaming:
            phases["cpu"] = time.thread_time() - cpu_started
            response["Server-Timing"] = timing.header_value(phases, time.perf_counter() - started)
        return response


class QueryStringGuardMiddleware:
    """The query-string half of the input guard (bodies: core.api.parsers): a NUL or
    a lone surrogate in any parameter is a 400 before any view runs, on the API (error
    shape) and on the dashboard (its 400 page), instead of a DataError from a filter."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.META.get("QUERY_STRING"):
            problem = query_problem(request.GET)
            if problem:
                if is_api_path(request.path):
                    return error_response(400, f"Invalid query string - {problem}")
                from core.api.exceptions import handler400

                return handler400(request)
        return self.get_response(request)


class ApiErrorMiddleware:
    """Under /api/, no error ever leaves as an HTML page or a stack trace.

    DRF views already answer in the error shape (core.api.exceptions); this catches
    what happens outside them: Django's own 404/405, oversized bodies, and exceptions
    raised before or after a view runs.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not is_api_path(request.path) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        status = response.status_code
        replacement = error_response(status, _DEFAULT_DETAIL.get(status, "Request failed."))
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                replacement[header] = response[header]
        return replacement

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not is_api_path(request.path):
            return None
        if isinstance(exception, RequestDataTooBig):
            return error_response(413, "Request body too large.")
        if isinstance(exception, json.JSONDecodeError):
            return error_response(400, "Malformed JSON.")
        if isinstance(exception, OperationalError):
            response = error_response(503, "Service temporarily unavailable - the database is unreachable.")
            response["Retry-After"] = "5"
            return response
        logger.exception("unhandled error on %s", request.path)
        return error_response(500, "Internal server error.")


class RateLimitHeadersMiddleware:
    """Every /api/ response carries the rate-limit headers of the budget it counted against.

    API views set that budget (`request.rate_limit_state`, core.api.ratelimit). A
    response no view counted (an unknown /api/ URL, the schema, a CORS preflight) shows the
    client IP's unauthenticated budget; it is counted, except for preflights, which browsers
    send on their own for every widget call and which carry no credential.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not is_api_path(request.path) or "X-RateLimit-Limit" in response:
            return response
        state = getattr(request, "rate_limit_state", None)
        if state is None:
            state = self._unauthenticated_state(request)
        if state is not None:
            for header, value in state.headers().items():
                response[header] = value
        return response

    def _unauthenticated_state(self, request: HttpRequest):
        from core.api.ratelimit import budgets_hit, budgets_read
        from core.cache_guard import CacheUnavailable, cache_call
        from organizations.budgets import client_ip, unauthenticated_budget

        budget = unauthenticated_budget(ip=client_ip(request))
        try:
            if request.method == "OPTIONS":
                _budget, used, reset = cache_call(lambda: budgets_read(budgets=[budget]))[0]
                return budget.state_from(used=used, reset=reset)
            return cache_call(lambda: budgets_hit(budgets=[budget])).state
        except CacheUnavailable:
            return None
