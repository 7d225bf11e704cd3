"""Chat tasks: thin, on the `default` queue. They call one service and set the retry policy."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task

from chat.services import notifications
from chat.services.privacy import retention_sweep_all

logger = logging.getLogger(__name__)

MAIL_RETRIES = 6


@shared_task(
    bind=True,
    name="chat.tasks.handoff_notify_mail",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAIL_RETRIES,
    soft_time_limit=60,
    time_limit=90,
)
def handoff_notify_mail_task(self, conversation_id: str, requested_at: str) -> int:
    try:
        return notifications.handoff_notify_mail(conversation_id=conversation_id, requested_at=requested_at)
    except (OSError, smtplib.SMTPException) as error:  # the mail server is down or refused: later
        logger.warning("handoff email not sent (%s); retrying", error.__class__.__name__)
        raise self.retry(exc=error, countdown=min(1800, 15 * 2**self.request.retries)) from error


@shared_task(
    bind=True,
    name="chat.tasks.visitor_reply_mail",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAIL_RETRIES,
    soft_time_limit=60,
    time_limit=90,
)
def visitor_reply_mail_task(self, message_id: str) -> int:
    try:
        return notifications.visitor_reply_mail(message_id=message_id)
    except (OSError, smtplib.SMTPException) as error:
        logger.warning("reply email not sent (%s); retrying", error.__class__.__name__)
        raise self.retry(exc=error, countdown=min(1800, 15 * 2**self.request.retries)) from error


@shared_task(name="chat.tasks.retention_sweep", soft_time_limit=3000, time_limit=3300)
def retention_sweep_task() -> dict[str, int]:
    """Daily (beat): delete conversations older than their organization's retention period.
    Idempotent: a second run finds nothing left to delete."""
    return retention_sweep_all()
