"""A probe task for the chaos suite, loaded by the test's worker with `--include`."""

from __future__ import annotations

import os

import redis
from celery import shared_task

PROBE_QUEUE = "proof-chaos"


@shared_task(queue=PROBE_QUEUE)
def chaos_probe(organization_id: str, marker: str) -> None:
    """Record whether the row the task was enqueued for exists when the worker runs it."""
    from organizations.models import Organization

    found = Organization.objects.filter(pk=organization_id).exists()
    redis.Redis.from_url(os.environ["REDIS_URL"]).set(
        f"chaos-probe:{marker}", "found" if found else "missing"
    )
