"""Services: telling an organization's owners that one of its rate budgets is running out.

`budget_alert_record` is called by the request whose count reaches 80 % or 100 % of an
owner's budget (through core.api.ratelimit's `budget_threshold_crossed` signal, connected
in `OrganizationsConfig.ready`); it stores one BudgetAlert per budget, threshold and window (the dashboard overview's banner reads them) and enqueues one email to the
owners and admins, sent by the worker (`organizations.tasks.budget_alert_mail`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from organizations.models import BudgetAlert, Organization
from organizations.selectors import admin_mail_recipients

logger = logging.getLogger(__name__)

WINDOW_NAMES = {60: "minute", 3600: "hour", 86400: "day"}


def budget_label(*, organization: Organization, policy: str, key: str) -> str:
    """What the owner calls this budget."""
    if policy == "org":
        return "API requests (all API keys)"
    if policy == "widget-messages":
        from django.apps import apps

        widget_model = apps.get_model("widget", "Widget")  # by name: widget sits above us
        title = (
            widget_model.objects.for_organization(organization)
            .filter(pk=key)
            .values_list("title", flat=True)
            .first()
            if not key.startswith("org-")
            else None
        )
        return (
            f"Visitor messages, widget “{title}”" if title else "Visitor messages (tokens without a widget)"
        )
    if policy == "widget-token-client":
        return f"New visitor tokens, client id {key}"
    return policy


def window_name(seconds: int) -> str:
    return WINDOW_NAMES.get(seconds, f"{seconds} s")


def budget_threshold_crossed_receive(sender, **crossing) -> None:
    """`core.api.ratelimit.budget_threshold_crossed` → `budget_alert_record`."""
    crossing.pop("signal", None)
    budget_alert_record(**crossing)


def budget_alert_record(
    *,
    organization_id: str,
    policy: str,
    key: str,
    percent: int,
    used: int,
    limit: int,
    window: int,
    window_end: int,
) -> BudgetAlert | None:
    """Store the crossing once; the first time, enqueue the email. Returns the new alert."""
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return None
    try:
        with transaction.atomic():
            alert = BudgetAlert.objects.for_organization(organization).create(
                organization=organization,
                policy=policy,
                key=key,
                percent=percent,
                used=used,
                limit=limit,
                window_seconds=window,
                window_end=datetime.fromtimestamp(window_end, tz=UTC),
            )
    except IntegrityError:  # another process recorded this crossing first
        return None
    logger.warning(
        "budget alert: organization %s (%s) used %s%% of %s:%s (%s of %s per %s)",
        organization.slug,
        organization.pk,
        percent,
        policy,
        key,
        used,
        limit,
        window_name(window),
    )

    def enqueue() -> None:
        from organizations.tasks import budget_alert_mail_task

        try:
            budget_alert_mail_task.delay(str(alert.pk))
        except Exception as error:  # broker down: the banner and the warning still tell
            logger.warning("could not enqueue the budget alert email (%s)", error.__class__.__name__)

    transaction.on_commit(enqueue)
    return alert


def budget_alert_mail(*, alert_id: str) -> int:
    """Email the alert to the organization's owners and admins, once; returns how many."""
    from django.core.mail import send_mail

    alert = BudgetAlert.objects.unscoped().select_related("organization").filter(pk=alert_id).first()
    if alert is None or alert.emailed_at is not None:  # gone, or a redelivered task
        return 0
    organization = alert.organization
    recipients = admin_mail_recipients(organization=organization)
    if not recipients:
        return 0
    label = budget_label(organization=organization, policy=alert.policy, key=alert.key)
    resets = timezone.localtime(alert.window_end, UTC).strftime("%H:%M UTC")
    consequence = (
        f"Until {resets} further requests counted against it get HTTP 429 with Retry-After."
        if alert.percent >= 100
        else f"At 100% further requests get HTTP 429 until the window ends ({resets})."
    )
    body = (
        f"{organization.name} has used {alert.percent}% of a budget: {label} — "
        f"{alert.used:,} of {alert.limit:,} per {window_name(alert.window_seconds)}.\n\n"
        f"{consequence}\n\nUsage per budget is on the dashboard under Settings > Usage.\n"
    )
    send_mail(
        # One line whatever the name holds (a line break in a subject is a header injection).
        subject=f"{' '.join(organization.name.split())}: {alert.percent}% of a rate budget used",
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
    BudgetAlert.objects.for_organization(organization).filter(pk=alert.pk).update(emailed_at=timezone.now())
    return len(recipients)
