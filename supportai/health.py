"""Liveness and readiness probes (no authentication, no rate limit)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from supportai.tasks import HEARTBEAT_KEY

# /readyz publishes a heartbeat itself at most this often (beat sends one every 30 s too).
_HEARTBEAT_SEND_INTERVAL = 10.0
_heartbeat_sent_at = 0.0


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    cache.set("readyz-probe", "1", 10)
    if cache.get("readyz-probe") != "1":
        raise RuntimeError("cache did not return what was written")


def _check_broker() -> None:
    """Publish a heartbeat into the broker the workers consume: a real write, not a ping of a
    URL that might be some other installation's."""
    global _heartbeat_sent_at
    from supportai.celery import app
    from supportai.tasks import worker_heartbeat_task

    now = time.time()
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        if now - _heartbeat_sent_at >= _HEARTBEAT_SEND_INTERVAL:
            # A heartbeat nobody consumed for a minute is dropped, so probes against a stopped
            # worker do not pile up messages.
            worker_heartbeat_task.apply_async(
                kwargs={"sent_at": now}, connection=conn, retry=False, expires=60
            )
            _heartbeat_sent_at = now


def _worker_status() -> str:
    max_age = settings.READYZ_WORKER_HEARTBEAT_MAX_AGE
    heartbeat = cache.get(HEARTBEAT_KEY)
    if not heartbeat:
        return f"unavailable: no worker consumed a heartbeat in the last {max_age} s (none yet)"
    age = time.time() - heartbeat["consumed_at"]
    if age > max_age:
        return f"unavailable: no worker consumed a heartbeat in the last {max_age} s (last {age:.0f} s ago)"
    return "ok"


@require_GET
def readyz(request):
    checks = {}
    for name, check in (("database", _check_database), ("cache", _check_cache), ("broker", _check_broker)):
        try:
            check()
            checks[name] = "ok"
        except Exception as error:  # a probe reports, it does not crash
            checks[name] = f"unavailable: {error.__class__.__name__}"
    try:
        checks["worker"] = _worker_status()
    except Exception as error:
        checks["worker"] = f"unavailable: {error.__class__.__name__}"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    if settings.DEBUG:
        body["broker"] = settings.CELERY_BROKER_URL.split("://", 1)[0]
    return JsonResponse(body, status=200 if ready else 503)
