"""Rate limits: fixed-window counters (supportai.rate_counters) turned into decisions and
into the `X-RateLimit-*` / `RateLimit` / `RateLimit-Policy` headers.

The counters are exact under concurrency on both stores (Redis with `REDIS_URL`, an
`INSERT … ON CONFLICT … RETURNING` counter in Postgres without it), so N concurrent
requests never let more than the limit through.

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

from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from supportai.cache_guard import CacheUnavailable, cache_call
from supportai.rate_counters import window_counts_increment, window_counts_read


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

    def peek(self, *, key: str, window: int) -> tuple[int, int]:
        """(count, seconds left) of `key`'s current window, without counting."""
        now = time.time()
        with self._lock:
            started, count = self._windows.get(key, (now, 0))
        if now - started >= window:
            return 0, window
        return count, max(1, int(started + window - now))


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


def rate_limit_hit(
    *, request=None, group: str, key: str, limit: int, window: int
) -> tuple[bool, RateLimitState]:
    """Count one request against `group`/`key`'s window; returns (allowed, state).

    Raises the store's own errors (RedisError, DatabaseError): callers wrap it in
    `cache_call` to degrade. `request` is accepted for older callers and not used.
    """
    counted = window_counts_increment(buckets=[(f"{group}:{key}", window)])[f"{group}:{key}"]
    state = RateLimitState(
        policy=group, limit=limit, remaining=max(0, limit - counted.count), reset=counted.reset, window=window
    )
    return counted.count <= limit, state


def rate_limit_peek(*, request=None, group: str, key: str, limit: int, window: int) -> RateLimitState:
    counted = window_counts_read(buckets=[(f"{group}:{key}", window)])[f"{group}:{key}"]
    return RateLimitState(
        policy=group, limit=limit, remaining=max(0, limit - counted.count), reset=counted.reset, window=window
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
