"""The errors services raise: a human message, a machine `code`, optional `details`.

They know nothing of HTTP. The API layer maps each `code` to a status and SPEC's error
envelope (`core/api/errors.py`); the dashboard turns them into form errors
(`core/dashboard.py`); management commands into `CommandError`.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    code = "invalid"
    default_message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None, details: Any = None):
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        self.details = details
        super().__init__(self.message)


class ValidationFailed(ApplicationError):
    """Input is wrong; `details` maps field names to lists of messages when there are fields."""

    code = "invalid"


class NotFound(ApplicationError):
    code = "not_found"
    default_message = "Not found."


class Conflict(ApplicationError):
    code = "conflict"


class PayloadTooLarge(ApplicationError):
    code = "payload_too_large"
    default_message = "Request body too large."


class BudgetExhausted(ApplicationError):
    """A spending limit is used up: nothing was done; `details["retry_after"]` says when to retry."""

    code = "budget_exhausted"
    default_message = "The budget for this operation is used up."


class TooManyConcurrent(ApplicationError):
    """The organization already has as many of these requests running as it may have at once.

    Nothing was started; `details["retry_after"]` says when to try again.
    """

    code = "too_many_concurrent"
    default_message = "Too many of these requests are running at once for this organization."


class UpstreamError(ApplicationError):
    """An outside service (LLM provider, web site) failed; nothing of ours is lost."""

    code = "upstream_error"
    default_message = "The upstream service failed."


class UpstreamTimeout(UpstreamError):
    code = "upstream_timeout"
    default_message = "The upstream service timed out."


class ServiceUnavailable(ApplicationError):
    code = "unavailable"
    default_message = "Service temporarily unavailable."


class AuthenticationFailed(ApplicationError):
    """The caller's credential (client id, identity proof, …) is missing, unknown or invalid."""

    code = "unauthenticated"
    default_message = "Authentication required."


class PermissionDenied(ApplicationError):
    """The caller is known but may not do this."""

    code = "permission_denied"
    default_message = "Permission denied."
