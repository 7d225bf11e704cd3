from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import BooleanField, Case, Exists, OuterRef, QuerySet, Value, When

from organizations.models import ApiKey, Invitation, LLMUsageDay, Membership, Organization


def organization_get_by_slug(*, slug: str) -> Organization | None:
    return Organization.objects.filter(slug=slug).first()


def api_key_list(*, organization: Organization) -> QuerySet[ApiKey]:
    """The organization's keys, newest first, each with who made it (`created_by`) and
    `creator_is_member`: whether that person still belongs to the organization (None for a key
    made by an operator command). A key whose maker left keeps working only if an admin chose
    to keep it when they left (`membership_remove`); the list says so either way."""
    return (
        ApiKey.objects.for_organization(organization)
        .select_related("created_by")
        .annotate(
            creator_is_member=Case(
                When(created_by__isnull=True, created_by_email="", then=Value(None)),
                When(created_by__isnull=True, then=Value(False)),  # their account was deleted
                default=Exists(
                    Membership.objects.unscoped().filter(
                        organization_id=OuterRef("organization_id"), user_id=OuterRef("created_by_id")
                    )
                ),
                output_field=BooleanField(null=True),
            )
        )
        .order_by("-created_at")
    )


def api_key_creator_is_member(*, api_key: ApiKey) -> bool | None:
    """`creator_is_member` for one key read without `api_key_list`'s annotation."""
    if api_key.created_by_id is None:
        return False if api_key.created_by_email else None
    return (
        Membership.objects.for_organization(api_key.organization_id)
        .filter(user_id=api_key.created_by_id)
        .exists()
    )


def api_key_list_made_by(*, organization: Organization, user) -> QuerySet[ApiKey]:
    """The active keys `user` made in `organization` (in the dashboard, or through a key of
    theirs): what ends, unless an admin keeps it, when they leave or lose the right to make keys."""
    return (
        ApiKey.objects.for_organization(organization)
        .filter(created_by=user, revoked_at__isnull=True)
        .order_by("created_at")
    )


def invitation_list_sent_by(*, organization: Organization, user) -> QuerySet[Invitation]:
    """The open invitations `user` sent for `organization`."""
    return Invitation.objects.for_organization(organization).filter(
        invited_by=user, accepted_at__isnull=True, declined_at__isnull=True
    )


def api_key_is_active(*, api_key_id) -> bool:
    """Whether the key is still accepted (one indexed query): asked again by what outlives the
    request that authenticated it."""
    return ApiKey.objects.unscoped().filter(pk=api_key_id, revoked_at__isnull=True).exists()


def api_key_widget_facing(*, organization: Organization) -> ApiKey | None:
    """The key whose client_id a widget embeds (the oldest active one)."""
    return (
        ApiKey.objects.for_organization(organization)
        .filter(revoked_at__isnull=True)
        .order_by("created_at")
        .first()
    )


def api_key_organization_id_by_client_id(*, client_id: str) -> str | None:
    """The organization id of an active key with this public client_id (one indexed query),
    or None: what a public endpoint may learn from a client_id before doing any work."""
    if not client_id:
        return None
    found = (
        ApiKey.objects.unscoped()
        .filter(client_id=client_id, revoked_at__isnull=True)
        .values_list("organization_id", flat=True)
        .first()
    )
    return str(found) if found else None


def membership_list_for_user(*, user) -> QuerySet[Membership]:
    return Membership.objects.unscoped().filter(user=user).select_related("organization")


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.for_organization(organization).select_related("user").order_by("user__email")


def admin_mail_recipients(*, organization: Organization) -> list[str]:
    """Addresses of the active owners and admins: who is told about budgets and alerts."""
    return sorted(
        set(
            Membership.objects.for_organization(organization)
            .filter(role__in=[Membership.Role.OWNER, Membership.Role.ADMIN], user__is_active=True)
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    )


def handoff_mail_recipients(*, organization: Organization) -> list[str]:
    """Addresses of the active members who asked to be emailed when a visitor waits."""
    return list(
        Membership.objects.for_organization(organization)
        .filter(notify_handoff_email=True, user__is_active=True)
        .exclude(user__email="")
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )


# --- the daily LLM budget ------------------------------------------------------------------


def utc_today(*, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(UTC).date()


def seconds_until_utc_midnight(*, now: datetime | None = None) -> int:
    """Whole seconds until the next 00:00 UTC (at least 1), when daily budgets reset."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return max(1, int((midnight - now).total_seconds() + 0.999))


@dataclass(frozen=True)
class LLMBudgetStatus:
    budget: int | None  # tokens per UTC day; None = unlimited
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    resets_in: int  # seconds until 00:00 UTC

    @property
    def used(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def exhausted(self) -> bool:
        return self.budget is not None and self.used >= self.budget

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else max(0, self.budget - self.used)

    @property
    def percent(self) -> int:
        if self.budget is None:
            return 0
        if self.budget == 0:
            return 100
        return min(100, self.used * 100 // self.budget)


def llm_budget_status(*, organization: Organization) -> LLMBudgetStatus:
    """Today's (UTC) LLM usage against the organization's daily token budget."""
    usage = (
        LLMUsageDay.objects.for_organization(organization)
        .filter(day=utc_today())
        .values("prompt_tokens", "completion_tokens", "cost")
        .first()
    ) or {"prompt_tokens": 0, "completion_tokens": 0, "cost": Decimal(0)}
    return LLMBudgetStatus(
        budget=organization.llm_daily_token_budget,
        prompt_tokens=usage["prompt_tokens"],
        completion_tokens=usage["completion_tokens"],
        cost=usage["cost"],
        resets_in=seconds_until_utc_midnight(),
    )


def invitation_list_open(*, organization: Organization):
    """Invitations of `organization` still waiting for an answer (expired ones included, marked
    by the template from `sent_at`)."""
    return (
        Invitation.objects.for_organization(organization)
        .filter(accepted_at__isnull=True, declined_at__isnull=True)
        .select_related("invited_by")
    )


# --- business hours --------------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessHoursStatus:
    open: bool
    next_open: datetime | None = None  # when closed: the next opening (aware, in the org's zone)


def business_hours_status(*, organization: Organization, now: datetime | None = None) -> BusinessHoursStatus:
    """Is the team at work now (by the organization's business hours), and if not, when
    does it open next? No hours set = always open."""
    from zoneinfo import ZoneInfo

    hours = organization.business_hours or {}
    if not any(hours.values()):
        return BusinessHoursStatus(open=True)
    zone = ZoneInfo(organization.business_timezone or "UTC")
    local = (now or datetime.now(UTC)).astimezone(zone)
    holidays = set(organization.business_holidays or [])
    weekdays = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    for offset in range(0, 15):
        day = (local + timedelta(days=offset)).date()
        if day.isoformat() in holidays:
            continue
        for start, end in sorted(hours.get(weekdays[day.weekday()], [])):
            opens = datetime.combine(day, time.fromisoformat(start), tzinfo=zone)
            closes = (
                datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
                if end == "24:00"
                else datetime.combine(day, time.fromisoformat(end), tzinfo=zone)
            )
            if offset == 0 and opens <= local < closes:
                return BusinessHoursStatus(open=True)
            if opens > local:
                return BusinessHoursStatus(open=False, next_open=opens)
    return BusinessHoursStatus(open=False)


def api_key_may_administer(*, api_key: ApiKey) -> bool:
    """Whether a key may do what only owners and admins may (privacy erasure and export, the
    audit log): a key made by an operator command (no creator) or by someone who is an owner
    or admin of its organization now — not one made by a member since demoted or removed, nor
    by one whose account was deleted since (`created_by` is then null, `created_by_email` not)."""
    if api_key.created_by_id is None:
        return not api_key.created_by_email
    return (
        Membership.objects.for_organization(api_key.organization_id)
        .filter(user_id=api_key.created_by_id, role__in=[Membership.Role.OWNER, Membership.Role.ADMIN])
        .exists()
    )


def user_get_by_email(*, email: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username=email.strip().lower()).first()
