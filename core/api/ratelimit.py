"""Rate limits and budgets: fixed-window counters (core.rate_counters) turned into
decisions and into the `X-RateLimit-*` / `RateLimit` / `RateLimit-Policy` headers.

The counters are exact under concurrency on both stores (Redis with `REDIS_URL`, an
`INSERT … ON CONFLICT … RETURNING` counter in Postgres without it), so N concurrent
requests never let more than the limit through. Which budgets a request counts against is
decided by `organizations.budgets` (API keys, visitors, unauthenticated callers); this
module counts, decides, and reports the budget that request counted against.

When the counter store is down (documented in docs/security.md):
- API keys (authenticated, secret-bearing) and unauthenticated callers: fail OPEN to a
  per-process limiter with the same limits, so an outage of Redis does not become an
  outage of the API. While degraded, a budget can get up to (web processes) × its limit.
- Widget tokens (minted without a secret from a public client id): fail CLOSED with 503
  and `Retry-After`, so an outage cannot be used to drain an organization's LLM budget.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import DatabaseError
from django.dispatch import Signal
from rest_framework import exceptions

from core.cache_guard import CacheUnavailable, cache_call
from core.rate_counters import WindowCount, window_counts_increment, window_counts_read

logger = logging.getLogger(__name__)

ALERT_PERCENTS = (80, 100)
# Sent once per organization budget and threshold crossing (the counters are atomic, so one
# request sees it) with organization_id, policy, key, percent, used, limit, window and
# window_end; `organizations.budget_alerts` records it and mails the owners.
budget_threshold_crossed = Signal()
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class RateLimiterUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "Service temporarily unavailable - rate limiting is unavailable, retry shortly."
    default_code = "unavailable"
    wait = 5  # DRF's handler turns `wait` into a Retry-After header


class BudgetExhausted(exceptions.APIException):
    """429 in the error shape; DRF's handler turns `wait` into `Retry-After`."""

    status_code = 429
    default_code = "throttled"

    def __init__(self, *, detail: str, wait: int) -> None:
        super().__init__(detail=detail)
        self.wait = wait


def rate_parse(rate: str) -> tuple[int, int]:
    """`"120/m"` → (120, 60); also `/s`, `/h`, `/d` and `"5/10m"` (5 per 10 minutes)."""
    try:
        count, _, period = str(rate).strip().partition("/")
        multiple = int(period[:-1]) if len(period) > 1 else 1
        limit, window = int(count), multiple * _UNITS[period[-1].lower()]
    except (ValueError, KeyError, IndexError):
        raise ValueError(f"not a rate like 120/m: {rate!r}") from None
    if limit < 0 or window < 1:
        raise ValueError(f"not a rate like 120/m: {rate!r}")
    return limit, window


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


@dataclass(frozen=True)
class Budget:
    """One bucket a request counts against.

    `policy` names it in `RateLimit-Policy` (and in the 429's detail); `key` tells buckets
    of one policy apart. Budgets with an `organization_id` are the owner's (API requests,
    a widget's messages, a client id's token mints): crossing 80 % and 100 % of them is
    recorded once per window, which shows a dashboard banner and emails owners and admins.
    """

    policy: str
    key: str
    limit: int
    window: int
    organization_id: str | None = None
    refusal: str = "Rate limit exceeded"

    @property
    def counter_key(self) -> str:
        return f"{self.policy}:{self.key}"

    def state(self, counted: WindowCount) -> RateLimitState:
        return self.state_from(used=counted.count, reset=counted.reset)

    def state_from(self, *, used: int, reset: int) -> RateLimitState:
        return RateLimitState(
            policy=self.policy,
            limit=self.limit,
            remaining=max(0, self.limit - used),
            reset=reset,
            window=self.window,
        )

    def refusal_detail(self, reset: int) -> str:
        return f"{self.refusal} - try again in {reset} s."


@dataclass(frozen=True)
class BudgetOutcome:
    refused: Budget | None
    state: RateLimitState  # the budget to show: the one that refused, else the tightest
    counts: dict[str, WindowCount]  # counter_key → its current window (this request counted)


def _tightest(states: list[RateLimitState]) -> RateLimitState:
    return min(states, key=lambda state: (state.remaining / state.limit) if state.limit else 0)


def budgets_hit(*, budgets: Sequence[Budget]) -> BudgetOutcome:
    """Count one request against every budget (one round trip); raises the store's errors."""
    counts = window_counts_increment(buckets=[(budget.counter_key, budget.window) for budget in budgets])
    refused = None
    states = []
    for budget in budgets:
        counted = counts[budget.counter_key]
        states.append(budget.state(counted))
        if refused is None and counted.count > budget.limit:
            refused = budget
        if budget.organization_id is not None:
            _alert_on_crossing(budget=budget, counted=counted)
    shown = refused.state(counts[refused.counter_key]) if refused is not None else _tightest(states)
    return BudgetOutcome(refused=refused, state=shown, counts=counts)


def _alert_on_crossing(*, budget: Budget, counted: WindowCount) -> None:
    """The counters are atomic, so exactly one request sees each threshold's count."""
    for percent in ALERT_PERCENTS:
        if budget.limit and counted.count == max(1, math.ceil(budget.limit * percent / 100)):
            try:
                budget_threshold_crossed.send(
                    sender=Budget,
                    organization_id=budget.organization_id,
                    policy=budget.policy,
                    key=budget.key,
                    percent=percent,
                    used=counted.count,
                    limit=budget.limit,
                    window=budget.window,
                    window_end=counted.window_end,
                )
            except DatabaseError:  # telling the owner must never fail the request itself
                logger.exception("could not record a budget alert for %s", budget.counter_key)


def budgets_read(*, budgets: Sequence[Budget]) -> list[tuple[Budget, int, int]]:
    """(budget, used, seconds to reset) for each budget, counting nothing."""
    counts = window_counts_read(buckets=[(budget.counter_key, budget.window) for budget in budgets])
    return [
        (budget, counts[budget.counter_key].count, counts[budget.counter_key].reset) for budget in budgets
    ]


def budgets_enforce(*, request, stages: Sequence[Sequence[Budget]], fail_closed: bool) -> RateLimitState:
    """Count `request` stage by stage (narrow budgets first: a stage runs only if the one
    before it allowed the request, so a visitor refused by their own budget never touches
    the widget's); sets `request.rate_limit_state` and raises BudgetExhausted on refusal."""
    outcome = None
    states = []
    try:
        for stage in stages:
            outcome = cache_call(lambda stage=stage: budgets_hit(budgets=stage))
            states.append(outcome.state)
            if outcome.refused is not None:
                break
    except CacheUnavailable:
        if fail_closed:
            raise RateLimiterUnavailable() from None
        outcome, states = _degraded(stages), []
    state = outcome.state if outcome.refused is not None else _tightest([*states, outcome.state])
    rate_limit_state_set(request, state)
    if outcome.refused is not None:
        raise BudgetExhausted(detail=outcome.refused.refusal_detail(state.reset), wait=state.reset)
    return state


def _degraded(stages: Sequence[Sequence[Budget]]) -> BudgetOutcome:
    states = []
    for stage in stages:
        for budget in stage:
            allowed, count, reset = local_limiter.hit(
                key=budget.counter_key, limit=budget.limit, window=budget.window
            )
            state = RateLimitState(
                policy=budget.policy,
                limit=budget.limit,
                remaining=max(0, budget.limit - count),
                reset=reset,
                window=budget.window,
            )
            if not allowed:
                return BudgetOutcome(refused=budget, state=state, counts={})
            states.append(state)
    return BudgetOutcome(refused=None, state=_tightest(states), counts={})


def rate_limit_state_set(request, state: RateLimitState) -> None:
    """Remember the budget shown for this request, on the Django request (so middleware
    sees it too) whether given a DRF Request or a Django HttpRequest."""
    getattr(request, "_request", request).rate_limit_state = state


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
