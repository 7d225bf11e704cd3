"""The errors services raise. The API layer turns each into SPEC's error envelope."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    status_code = 400
    code = "invalid"
    default_detail = "The request could not be processed."

    def __init__(self, detail: str | None = None, *, data: Any = None):
        self.detail = detail or self.default_detail
        self.data = data
        super().__init__(self.detail)


class ValidationFailed(ApplicationError):
    status_code = 400
    code = "invalid"


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"
    default_detail = "Not found."


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(ApplicationError):
    status_code = 413
    code = "payload_too_large"
    default_detail = "Request body too large."


class BudgetExhausted(ApplicationError):
    """A spending limit is used up: nothing was done; `data["retry_after"]` says when to retry."""

    status_code = 429
    code = "budget_exhausted"
    default_detail = "The budget for this operation is used up."


class TooManyConcurrent(ApplicationError):
    """The organization already has as many of these requests running as it may have at once.

    Nothing was started; `data["retry_after"]` says when to try again.
    """

    status_code = 429
    code = "too_many_concurrent"
    default_detail = "Too many of these requests are running at once for this organization."


class UpstreamError(ApplicationError):
    """An outside service (LLM provider, web site) failed; nothing of ours is lost."""

    status_code = 502
    code = "upstream_error"
    default_detail = "The upstream service failed."


class UpstreamTimeout(UpstreamError):
    status_code = 504
    code = "upstream_timeout"
    default_detail = "The upstream service timed out."


class ServiceUnavailable(ApplicationError):
    status_code = 503
    code = "unavailable"
    default_detail = "Service temporarily unavailable."
