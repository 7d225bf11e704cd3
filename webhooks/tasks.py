"""Webhook tasks (queue `default`): thin; each calls one service."""

from __future__ import annotations

from celery import shared_task

from core.mail_tasks import mail_task
from webhooks import services


@shared_task(
    name="webhooks.tasks.delivery_send",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=60,
    time_limit=90,
)
def delivery_send_task(delivery_id: str) -> str:
    """One attempt at one delivery; the service schedules the retries itself (a countdown,
    or the sweep), so this task never retries."""
    return services.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.tasks.deliveries_sweep", soft_time_limit=60, time_limit=90)
def deliveries_sweep_task() -> int:
    return services.deliveries_sweep()


@mail_task(
    name="webhooks.tasks.endpoint_disabled_mail",
    what="webhook endpoint disabled email",
    retries=6,
    backoff=15,
    backoff_max=1800,
)
def endpoint_disabled_mail_task(endpoint_id: str) -> int:
    return services.endpoint_disabled_mail(endpoint_id=endpoint_id)
