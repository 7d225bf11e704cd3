"""The worker heartbeat: proof, for `/readyz`, that a worker consumes from the broker the web
tier publishes to (beat sends one every 30 s; `/readyz` sends one when the last is old)."""

from __future__ import annotations

import time

from celery import shared_task

HEARTBEAT_KEY = "supportai:worker-heartbeat"


@shared_task(
    bind=True, name="supportai.tasks.worker_heartbeat", ignore_result=True, soft_time_limit=20, time_limit=30
)
def worker_heartbeat_task(self, sent_at: float | None = None) -> None:
    from django.core.cache import cache

    cache.set(
        HEARTBEAT_KEY,
        {"consumed_at": time.time(), "sent_at": sent_at, "worker": self.request.hostname or ""},
        timeout=24 * 3600,
    )
