"""Ingestion tasks: thin. They take ids, call one service, and set the retry policy.

All run on the `ingestion` queue (CELERY_TASK_ROUTES), acknowledge late and are
redelivered if the worker dies mid-task (task_reject_on_worker_lost); the services make
a second run harmless. Transient failures retry with exponential backoff; permanent ones
fail the source at once.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from knowledge import services
from knowledge.services import TransientIngestionError

logger = logging.getLogger(__name__)

INGEST_SOFT_LIMIT = 600
INGEST_HARD_LIMIT = 660
MAX_RETRIES = 4


@shared_task(
    bind=True,
    name="knowledge.tasks.source_ingest",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=INGEST_SOFT_LIMIT,
    time_limit=INGEST_HARD_LIMIT,
)
def source_ingest_task(self, source_id: str) -> str:
    try:
        return services.source_ingest(source_id=source_id)
    except TransientIngestionError as error:
        if self.request.retries >= self.max_retries:
            services.source_fail(
                source_id=source_id, error=f"{error} (gave up after {self.max_retries} retries)"
            )
            return "failed"
        countdown = min(300, 5 * 2**self.request.retries)
        logger.info("source %s: transient failure, retry in %s s: %s", source_id, countdown, error)
        raise self.retry(exc=error, countdown=countdown) from error
    except SoftTimeLimitExceeded:
        services.source_fail(
            source_id=source_id, error=f"Ingestion took longer than the {INGEST_SOFT_LIMIT} s limit."
        )
        return "failed"


@shared_task(
    bind=True,
    name="knowledge.tasks.source_sync",
    acks_late=True,
    max_retries=2,
    soft_time_limit=INGEST_SOFT_LIMIT,
    time_limit=INGEST_HARD_LIMIT,
)
def source_sync_task(self, source_id: str) -> str:
    try:
        return services.source_sync(source_id=source_id)
    except SoftTimeLimitExceeded:
        return "failed"


@shared_task(
    bind=True,
    name="knowledge.tasks.source_reparse",
    acks_late=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=INGEST_SOFT_LIMIT,
    time_limit=INGEST_HARD_LIMIT,
)
def source_reparse_task(self, source_id: str) -> str:
    """`manage.py knowledge_reparse`: cut a source again with the current parser. A failure
    keeps its chunks; the command's next run tries again."""
    try:
        return services.source_reparse(source_id=source_id)
    except TransientIngestionError as error:
        if self.request.retries >= self.max_retries:
            return "failed"
        raise self.retry(exc=error, countdown=min(300, 5 * 2**self.request.retries)) from error
    except SoftTimeLimitExceeded:
        return "failed"


@shared_task(name="knowledge.tasks.sources_sync_due", acks_late=True, soft_time_limit=110, time_limit=120)
def sources_sync_due_task() -> int:
    """Beat: enqueue a re-sync of every URL source whose interval has passed."""
    due = services.sources_due_for_sync()
    for source_id in due:
        source_sync_task.delay(str(source_id))
    return len(due)


@shared_task(
    name="knowledge.tasks.sources_requeue_stuck", acks_late=True, soft_time_limit=110, time_limit=120
)
def sources_requeue_stuck_task() -> int:
    """Beat: re-enqueue sources left pending/processing (a lost broker message, a dead worker)."""
    stuck = services.sources_stuck()
    for source_id in stuck:
        source_ingest_task.delay(str(source_id))
    return len(stuck)


@shared_task(name="knowledge.tasks.chunks_reembed", acks_late=True, soft_time_limit=540, time_limit=600)
def chunks_reembed_task() -> int:
    """Beat: give chunks their organization's embedder's vectors (after a model change or a
    provider outage), and re-drive embedder switches whose task was lost (a dead worker, the
    broker down when the switch was asked for)."""
    from organizations.models import Organization

    for organization_id in Organization.objects.exclude(knowledge_embedder_next="").values_list(
        "pk", flat=True
    ):
        embedder_switch_task.delay(str(organization_id))
    try:
        return services.chunks_reembed(limit=5000)
    except SoftTimeLimitExceeded:
        return 0


@shared_task(name="knowledge.tasks.embedder_switch", acks_late=True, soft_time_limit=540, time_limit=600)
def embedder_switch_task(organization_id: str) -> str:
    """Re-embeds an organization's knowledge with the embedder it switches to, a bounded part
    per run (the next run is enqueued), and swaps the vectors in when all are ready."""
    try:
        outcome = services.embedder_switch_run(organization_id=organization_id)
    except SoftTimeLimitExceeded:
        outcome = "more"  # what was staged is kept; the next run goes on from there
    if outcome == "more":
        embedder_switch_task.delay(organization_id)
    return outcome


@shared_task(
    name="knowledge.tasks.lexical_statistics_check", acks_late=True, soft_time_limit=540, time_limit=600
)
def lexical_statistics_check_task() -> int:
    """Beat: repair BM25 term statistics that drifted (cascaded deletes bypass the bookkeeping)."""
    from organizations.models import Organization

    repaired = 0
    for organization in Organization.objects.all().iterator():
        repaired += services.lexical_statistics_rebuild(organization=organization)
    return repaired
