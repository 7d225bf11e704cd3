"""Per-organization rate limits on the shared cache, built on django-ratelimit's core.

`django_ratelimit.core.get_usage` counts with `cache.add` + `cache.incr`; on Redis both
are atomic, so N concurrent requests never let more than the limit through. The window is
one hour per organization (all of its credentials share it) and its size is the
organization's `rate_limit_per_hour`.

When the shared cache is down (documented in docs/security.md):
- API keys (authenticated, secret-bearing): fail OPEN to a per-process limiter with the
  same limit, so an outage of Redis does not become an outage of the API. While degraded,
  an organization can get up to (number of web processes) × its limit.
- Widget tokens (minted without a secret from a public client id): fail CLOSED with 503
  and `Retry-After`, so a Redis outage cannot be used to drain an organization's LLM budget.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django_ratelimit.core import get_usage
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from supportai.cache_guard import CacheUnavailable, cache_call


class RateLimiterUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "Service temporarily unavailable - rate limiting is unavailable, retry shortly."
    default_code = "unavailable"
    wait = 5  # DRF's handler turns `wait` into a Retry-After header


class LocalWindowLimiter:
    """A fixed-window counter in this process's memory (the degraded mode)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, *, key: str, limit: int, window: int) -> tuple[bool, int, int]:
        now = time.time()
        with self._lock:
            started, count = self._windows.get(key, (now, 0))
            if now - started >= window:
                started, count = now, 0
            count += 1
            self._windows[key] = (started, count)
            if len(self._windows) > 10_000:  # bounded memory: drop expired windows
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < window}
        return count <= limit, count, max(1, int(started + window - now))


local_limiter = LocalWindowLimiter()


@dataclass(frozen=True)
class RateLimitState:
    policy: str
    limit: int
    remaining: int
    reset: int
    window: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
            "RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.window}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset}',
        }


def rate_limit_hit(*, request, group: str, key: str, limit: int, window: int) -> tuple[bool, RateLimitState]:
    """Count one request against `key`'s window; returns (allowed, state)."""
    usage = get_usage(
        request,
        group=group,
        key=lambda _group, _request: key,
        rate=(limit, window),
        increment=True,
    )
    if usage is None or (usage["limit"] == 0 and usage["time_left"] == -1):
        # django-ratelimit's sentinel for "the cache gave no count" (it would answer 429 to
        # every caller): hand the decision to the documented degraded mode instead.
        raise CacheUnavailable("rate-limit cache returned no count")
    count = usage["count"]
    reset = max(1, int(usage["time_left"]))
    state = RateLimitState(
        policy=group, limit=limit, remaining=max(0, limit - count), reset=reset, window=window
    )
    return not usage["should_limit"], state


def rate_limit_peek(*, request, group: str, key: str, limit: int, window: int) -> RateLimitState:
    usage = get_usage(
        request, group=group, key=lambda _group, _request: key, rate=(limit, window), increment=False
    )
    return RateLimitState(
        policy=group,
        limit=limit,
        remaining=max(0, limit - usage["count"]),
        reset=max(1, int(usage["time_left"])),
        window=window,
    )


class OrganizationRateThrottle(BaseThrottle):
    """All credentials of one organization share one hourly bucket."""

    group = "org"
    window = 3600

    def allow_request(self, request, view) -> bool:
        credential = request.auth
        if credential is None:
            return True
        organization = credential.organization
        limit = organization.rate_limit_per_hour
        try:
            allowed, state = cache_call(
                lambda: rate_limit_hit(
                    request=request,
                    group=self.group,
                    key=str(organization.pk),
                    limit=limit,
                    window=self.window,
                )
            )
        except CacheUnavailable:
            if credential.is_widget:
                raise RateLimiterUnavailable() from None
            allowed, count, reset = local_limiter.hit(
                key=str(organization.pk), limit=limit, window=self.window
            )
            state = RateLimitState(
                policy=self.group,
                limit=limit,
                remaining=max(0, limit - count),
                reset=reset,
                window=self.window,
            )
        request.rate_limit_state = state
        self.state = state
        return allowed

    def wait(self) -> float:
        return self.state.reset
