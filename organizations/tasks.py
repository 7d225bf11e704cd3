"""Organization tasks: thin, on the `default` queue.

`llm_budget_alert_mail_task` tells an organization's owners and admins that it has crossed
80% or 100% of its daily LLM token budget. The crossing itself is recorded once per day in
the database (`LLMUsageDay.alerted_percent`), so at most two alerts are enqueued per
organization and day; a redelivered task may send its email twice, never a third alert.
"""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task

from organizations import budget_alerts, services

logger = logging.getLogger(__name__)

MAIL_RETRIES = 5


@shared_task(
    bind=True,
    name="organizations.tasks.llm_budget_alert_mail",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAIL_RETRIES,
    soft_time_limit=60,
    time_limit=90,
)
def llm_budget_alert_mail_task(self, organization_id: str, percent: int, total: int, budget: int) -> int:
    try:
        return services.llm_budget_alert_mail(
            organization_id=organization_id, percent=percent, total=total, budget=budget
        )
    except (OSError, smtplib.SMTPException) as error:  # the mail server is down or refused: later
        logger.warning("budget alert email not sent (%s); retrying", error.__class__.__name__)
        raise self.retry(exc=error, countdown=min(3600, 60 * 2**self.request.retries)) from error


@shared_task(
    bind=True,
    name="organizations.tasks.budget_alert_mail",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAIL_RETRIES,
    soft_time_limit=60,
    time_limit=90,
)
def budget_alert_mail_task(self, alert_id: str) -> int:
    try:
        return budget_alerts.budget_alert_mail(alert_id=alert_id)
    except (OSError, smtplib.SMTPException) as error:  # the mail server is down or refused: later
        logger.warning("rate budget alert email not sent (%s); retrying", error.__class__.__name__)
        raise self.retry(exc=error, countdown=min(3600, 60 * 2**self.request.retries)) from error
