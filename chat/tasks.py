"""Chat tasks: thin, on the `default` queue. They call one service and set the retry policy."""

from __future__ import annotations

from celery import shared_task

from chat.services import notifications
from chat.services.privacy import erased_visitors_purge, retention_sweep_all
from core.mail_tasks import mail_task

MAIL_RETRIES = 6


@mail_task(
    name="chat.tasks.handoff_notify_mail",
    what="handoff email",
    retries=MAIL_RETRIES,
    backoff=15,
    backoff_max=1800,
)
def handoff_notify_mail_task(conversation_id: str, requested_at: str) -> int:
    return notifications.handoff_notify_mail(conversation_id=conversation_id, requested_at=requested_at)


@mail_task(
    name="chat.tasks.visitor_reply_mail",
    what="reply email",
    retries=MAIL_RETRIES,
    backoff=15,
    backoff_max=1800,
)
def visitor_reply_mail_task(message_id: str) -> int:
    return notifications.visitor_reply_mail(message_id=message_id)


@shared_task(name="chat.tasks.retention_sweep", soft_time_limit=3000, time_limit=3300)
def retention_sweep_task() -> dict[str, int]:
    """Daily (beat): delete conversations older than their organization's retention period.
    Idempotent: a second run finds nothing left to delete. Also forgets erasures no token
    issued before them can outlive any more."""
    erased_visitors_purge()
    return retention_sweep_all()
