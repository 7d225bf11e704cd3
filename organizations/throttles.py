"""Throttles for the account forms: sign-in (per account and per client IP), password reset
and sign-up (per address and per IP).

Counters are the platform's exact fixed-window counters (`core.api.ratelimit` on
`core.rate_counters`: Redis, or Postgres without it); when the store is down they fall
back to the per-process window, like API keys do, so an outage of Redis does not lock everyone out (nor open the
door: each process still counts).

Sign-in counts failures only. An account's counter is keyed by the address *and* a digest
of its current password hash, so choosing a new password (the emailed unlock path) starts a
fresh counter; an address with no account gets a counter all the same, so a locked-out
answer says nothing about whether the account exists.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django_ratelimit.core import _split_rate

from core.api.ratelimit import RateLimitState, local_limiter, rate_limit_hit, rate_limit_peek
from core.cache_guard import CacheUnavailable, cache_call
from organizations.budgets import client_ip


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    state: RateLimitState

    @property
    def retry_after(self) -> int:
        return self.state.reset

    @property
    def minutes(self) -> int:
        return max(1, -(-self.state.reset // 60))

    @property
    def wait_text(self) -> str:
        return "1 minute" if self.minutes == 1 else f"{self.minutes} minutes"


def _hit(*, request, group: str, key: str, rate: str) -> Verdict:
    limit, window = _split_rate(rate)
    try:
        allowed, state = cache_call(
            lambda: rate_limit_hit(request=request, group=group, key=key, limit=limit, window=window)
        )
    except CacheUnavailable:
        allowed, count, reset = local_limiter.hit(key=f"{group}:{key}", limit=limit, window=window)
        state = RateLimitState(
            policy=group, limit=limit, remaining=max(0, limit - count), reset=reset, window=window
        )
    return Verdict(allowed=allowed, state=state)


def _peek(*, request, group: str, key: str, rate: str) -> Verdict:
    limit, window = _split_rate(rate)
    try:
        state = cache_call(
            lambda: rate_limit_peek(request=request, group=group, key=key, limit=limit, window=window)
        )
    except CacheUnavailable:
        count, reset = local_limiter.peek(key=f"{group}:{key}", window=window)
        state = RateLimitState(
            policy=group, limit=limit, remaining=max(0, limit - count), reset=reset, window=window
        )
    return Verdict(allowed=state.remaining > 0, state=state)


def _account_key(email: str) -> str:
    user = get_user_model().objects.filter(username=email).only("password").first()
    fingerprint = hashlib.sha256((user.password if user else "").encode()).hexdigest()[:16]
    return f"{email}:{fingerprint}"


# --- Sign-in ---------------------------------------------------------------------------------


def login_check(*, request, email: str) -> Verdict | None:
    """Before checking a password: the verdict that refuses this attempt, or None."""
    for group, key, rate in (
        ("login-ip", client_ip(request), settings.AUTH_LOGIN_RATE_PER_IP),
        ("login-account", _account_key(email), settings.AUTH_LOGIN_RATE_PER_ACCOUNT),
    ):
        verdict = _peek(request=request, group=group, key=key, rate=rate)
        if not verdict.allowed:
            return verdict
    return None


def login_failed(*, request, email: str) -> tuple[Verdict, bool]:
    """Count a wrong password; returns the account's verdict and whether this very failure
    locked the account (so the owner is emailed once per lock, not once per attempt)."""
    _hit(request=request, group="login-ip", key=client_ip(request), rate=settings.AUTH_LOGIN_RATE_PER_IP)
    account = _hit(
        request=request,
        group="login-account",
        key=_account_key(email),
        rate=settings.AUTH_LOGIN_RATE_PER_ACCOUNT,
    )
    return account, account.state.remaining == 0 and account.allowed


def ip_state(*, request, group: str, rate: str) -> RateLimitState:
    """The client IP's bucket in `group`, for the rate-limit headers of a form page."""
    return _peek(request=request, group=group, key=client_ip(request), rate=rate).state


# --- Password reset and sign-up ----------------------------------------------------------------


def form_ip_hit(*, request, group: str, rate: str) -> Verdict:
    return _hit(request=request, group=group, key=client_ip(request), rate=rate)


def address_mail_hit(*, request, group: str, email: str) -> bool:
    """One more email to `email` from `group`; False once the address has had its share (the
    page answers the same either way, so the limit reveals nothing about the address)."""
    return _hit(request=request, group=group, key=email, rate=settings.AUTH_MAIL_RATE_PER_ADDRESS).allowed
