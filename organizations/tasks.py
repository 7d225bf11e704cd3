"""Organization tasks: thin, on the `default` queue.

`llm_budget_alert_mail_task` tells an organization's owners and admins that it has crossed
80% or 100% of its daily LLM token budget. The crossing itself is recorded once per day in
the database (`LLMUsageDay.alerted_percent`), so at most two alerts are enqueued per
organization and day; a redelivered task may send its email twice, never a third alert.
"""

from __future__ import annotations

from core.mail_tasks import mail_task
from organizations import budget_alerts, services

MAIL_RETRIES = 5


@mail_task(
    name="organizations.tasks.llm_budget_alert_mail",
    what="budget alert email",
    retries=MAIL_RETRIES,
    backoff=60,
    backoff_max=3600,
)
def llm_budget_alert_mail_task(organization_id: str, percent: int, total: int, budget: int) -> int:
    return services.llm_budget_alert_mail(
        organization_id=organization_id, percent=percent, total=total, budget=budget
    )


@mail_task(
    name="organizations.tasks.budget_alert_mail",
    what="rate budget alert email",
    retries=MAIL_RETRIES,
    backoff=60,
    backoff_max=3600,
)
def budget_alert_mail_task(alert_id: str) -> int:
    return budget_alerts.budget_alert_mail(alert_id=alert_id)
