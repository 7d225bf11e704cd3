"""Liveness and readiness probes (no authentication, no rate limit)."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET


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
    from supportai.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@require_GET
def readyz(request):
    checks = {}
    for name, check in (("database", _check_database), ("cache", _check_cache), ("broker", _check_broker)):
        try:
            check()
            checks[name] = "ok"
        except Exception as error:  # a probe reports, it does not crash
            checks[name] = f"unavailable: {error.__class__.__name__}"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    if settings.DEBUG:
        body["broker"] = settings.CELERY_BROKER_URL.split("://", 1)[0]
    return JsonResponse(body, status=200 if ready else 503)
