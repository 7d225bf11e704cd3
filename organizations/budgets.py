"""Which budgets a request counts against: server-side API traffic and visitor traffic are
limited separately, so an organization's visitors never use up its API keys' budget and one
abusive visitor never takes the chat away from the others.

| who | budget (policy name) | default | refused with |
|---|---|---|---|
| API key (any of the organization's) | `org`: the organization's requests per hour | `rate_limit_per_hour` (1000) | 429 |
| widget token, any request | `visitor`: that visitor's requests | `WIDGET_RATE_PER_VISITOR` 120/m | 429 |
| widget token, sending a message | `visitor-messages`: that visitor's messages | `WIDGET_MESSAGE_RATE_PER_VISITOR` 10/m | 429 "busy" |
| | `ip-messages`: messages from one IP to the organization | `WIDGET_MESSAGE_RATE_PER_IP` 30/m | 429 "busy" |
| | `widget-messages`: one widget's messages, all visitors | `WIDGET_MESSAGE_RATE_PER_WIDGET` 30000/h | 429 "busy" |
| no valid credential (401, 403 at authentication, unknown /api/ URLs) | `ip`: per client IP | `RATELIMIT_UNAUTHENTICATED_PER_IP` 300/h | 429 |
| token mints (widget/api.py) | `widget-token-ip`, `widget-token-client` | 60/h, 6000/h | 429 |

A message send is counted in two stages: the visitor's and the IP's budgets first, and the
widget's only if those allowed it, so one visitor's flood stays in its own budgets. Widget
config and `/widget.js` count against no shared budget: loading the widget is never what
gets refused; only one visitor's own flood (over 120 requests a minute) is.
The `org`, `widget-messages` and `widget-token-client` budgets are the owner's: 80 % and
100 % are reported (dashboard banner, email) once per window.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.conf import settings
from django.utils import timezone

from core.api.ratelimit import Budget, budgets_read, rate_parse
from core.cache_guard import CacheUnavailable, cache_call
from organizations.credentials import Credential
from organizations.models import BudgetAlert, Organization

logger = logging.getLogger(__name__)

API_WINDOW = 3600
BUSY = "This chat is busy right now"


_warned_meta_keys: set[tuple[str, str]] = set()


def _address(value) -> str | None:
    """The address as the limits key it (django-ratelimit's masks: an IPv6 client by its /64,
    which one host can fill), or None when `value` is not one IP address."""
    if not isinstance(value, str):
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if address.version == 6:
        mask = getattr(settings, "RATELIMIT_IPV6_MASK", 64)
    else:
        mask = getattr(settings, "RATELIMIT_IPV4_MASK", 32)
    return str(ipaddress.ip_network(f"{address}/{mask}", strict=False).network_address)


def client_ip(request) -> str:
    """The client address every per-IP limit, the live-stream cap and the audit log use:
    behind a proxy, the header named by RATELIMIT_IP_META_KEY (one the proxy overwrites;
    never a client-supplied X-Forwarded-For), else REMOTE_ADDR.

    A request without that header, or with a value that is not one IP address (a proxy that
    does not set it, a health check reaching the app directly, a chain like `a, b`), is keyed
    by its REMOTE_ADDR instead, with one warning per process naming the header (never its
    value); this never fails a request. No usable address at all is "unknown"."""
    request = getattr(request, "_request", request)
    meta_key = settings.RATELIMIT_IP_META_KEY
    if meta_key:
        value = request.META.get(meta_key)
        address = _address(value)
        if address is not None:
            return address
        reason = "is missing" if not value else "is not one IP address"
        if (meta_key, reason) not in _warned_meta_keys:
            _warned_meta_keys.add((meta_key, reason))
            logger.warning(
                "RATELIMIT_IP_META_KEY: the request header %s %s; using REMOTE_ADDR for the "
                "per-address limits (check that the proxy in front sets it). Logged once per process.",
                meta_key,
                reason,
            )
    return _address(request.META.get("REMOTE_ADDR")) or "unknown"


def organization_api_budget(*, organization: Organization) -> Budget:
    return Budget(
        policy="org",
        key=str(organization.pk),
        limit=organization.rate_limit_per_hour,
        window=API_WINDOW,
        organization_id=str(organization.pk),
        refusal="Rate limit exceeded - this organization's API budget is used up",
    )


def widget_messages_budget(*, organization: Organization, widget_id) -> Budget:
    limit, window = rate_parse(settings.WIDGET_MESSAGE_RATE_PER_WIDGET)
    return Budget(
        policy="widget-messages",
        key=str(widget_id) if widget_id else f"org-{organization.pk}",
        limit=limit,
        window=window,
        organization_id=str(organization.pk),
        refusal=BUSY,
    )


def widget_token_client_budget(*, organization_id, client_id: str) -> Budget:
    limit, window = rate_parse(settings.WIDGET_TOKEN_RATE_PER_CLIENT)
    return Budget(
        policy="widget-token-client",
        key=client_id,
        limit=limit,
        window=window,
        organization_id=str(organization_id) if organization_id else None,
        refusal="Too many widget token requests for this client id",
    )


def widget_token_ip_budget(*, ip: str) -> Budget:
    limit, window = rate_parse(settings.WIDGET_TOKEN_RATE_PER_IP)
    return Budget(
        policy="widget-token-ip",
        key=ip,
        limit=limit,
        window=window,
        refusal="Too many widget token requests from this address",
    )


def unauthenticated_budget(*, ip: str) -> Budget:
    limit, window = rate_parse(settings.RATELIMIT_UNAUTHENTICATED_PER_IP)
    return Budget(
        policy="ip", key=ip, limit=limit, window=window, refusal="Too many unauthenticated requests"
    )


def request_budgets(*, request, view, credential: Credential | None) -> list[list[Budget]]:
    """The stages of budgets this request counts against (see the module's table)."""
    if credential is None:
        return [[unauthenticated_budget(ip=client_ip(request))]]
    organization = credential.organization
    if not credential.is_widget:
        return [[organization_api_budget(organization=organization)]]
    limit, window = rate_parse(settings.WIDGET_RATE_PER_VISITOR)
    visitor = Budget(
        policy="visitor",
        key=f"{organization.pk}:{credential.visitor_id}",
        limit=limit,
        window=window,
        refusal="Too many requests from this visitor",
    )
    if request.method not in getattr(view, "visitor_message_methods", ()):
        return [[visitor]]
    limit, window = rate_parse(settings.WIDGET_MESSAGE_RATE_PER_VISITOR)
    visitor_messages = Budget(
        policy="visitor-messages",
        key=f"{organization.pk}:{credential.visitor_id}",
        limit=limit,
        window=window,
        refusal="You are sending messages very fast",
    )
    limit, window = rate_parse(settings.WIDGET_MESSAGE_RATE_PER_IP)
    ip_messages = Budget(
        policy="ip-messages",
        key=f"{organization.pk}:{client_ip(request)}",
        limit=limit,
        window=window,
        refusal=BUSY,
    )
    return [
        [visitor, visitor_messages, ip_messages],
        [widget_messages_budget(organization=organization, widget_id=credential.widget_id)],
    ]


# --- reads for the owner: Settings › Usage and the overview banner ---------------------------


@dataclass(frozen=True)
class BudgetUsage:
    policy: str
    label: str
    used: int  # requests let through this window (at most the limit)
    refused: int  # requests counted over the limit (answered 429)
    limit: int
    window: str  # "hour", "minute", "day"
    reset_seconds: int

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.used / self.limit)) if self.limit else 100

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def reset_minutes(self) -> int:
        return max(1, round(self.reset_seconds / 60))


def budget_usage_list(*, organization: Organization) -> list[BudgetUsage]:
    """Every budget the owner is told about, with its use in the current window (counts
    nothing). Without a working counter store the list is empty (the page says so)."""
    from organizations.budget_alerts import budget_label, window_name
    from organizations.models import ApiKey

    widget_model = apps.get_model("widget", "Widget")  # by name: widget sits above us
    owned = [organization_api_budget(organization=organization)]
    owned += [
        widget_messages_budget(organization=organization, widget_id=widget_id)
        for widget_id in widget_model.objects.for_organization(organization)
        .order_by("created_at")
        .values_list("pk", flat=True)
    ]
    owned += [
        widget_token_client_budget(organization_id=organization.pk, client_id=client_id)
        for client_id in ApiKey.objects.for_organization(organization)
        .filter(revoked_at__isnull=True)
        .order_by("created_at")
        .values_list("client_id", flat=True)
    ]
    try:
        rows = cache_call(lambda: budgets_read(budgets=owned))
    except CacheUnavailable:
        return []
    return [
        BudgetUsage(
            policy=budget.policy,
            label=budget_label(organization=organization, policy=budget.policy, key=budget.key),
            used=min(used, budget.limit),
            refused=max(0, used - budget.limit),
            limit=budget.limit,
            window=window_name(budget.window),
            reset_seconds=reset,
        )
        for budget, used, reset in rows
    ]


@dataclass(frozen=True)
class BudgetBanner:
    label: str
    percent: int
    used: int
    limit: int
    window: str
    resets_at: datetime


def budget_banner_list(*, organization: Organization) -> list[BudgetBanner]:
    """The owner's budgets at or over 80 % in their current window (one indexed query):
    for each, the highest threshold crossed."""
    from organizations.budget_alerts import budget_label, window_name

    highest: dict[tuple[str, str], BudgetAlert] = {}
    for alert in BudgetAlert.objects.for_organization(organization).filter(window_end__gt=timezone.now()):
        current = highest.get((alert.policy, alert.key))
        if current is None or alert.percent > current.percent:
            highest[(alert.policy, alert.key)] = alert
    return [
        BudgetBanner(
            label=budget_label(organization=organization, policy=alert.policy, key=alert.key),
            percent=alert.percent,
            used=alert.used,
            limit=alert.limit,
            window=window_name(alert.window_seconds),
            resets_at=alert.window_end,
        )
        for alert in sorted(highest.values(), key=lambda alert: (-alert.percent, alert.policy, alert.key))
    ]


VISITOR_POLICIES = ("visitor", "visitor-messages")


def visitor_counter_keys(*, organization_id, visitor_id: str) -> list[str]:
    """The counter keys of one visitor's own budgets (privacy erasure removes them)."""
    return [
        Budget(policy=policy, key=f"{organization_id}:{visitor_id}", limit=1, window=1).counter_key
        for policy in VISITOR_POLICIES
    ]
