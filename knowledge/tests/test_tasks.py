"""The retry policy of the ingestion task (run in-process with `apply`; the worker-process
behaviour is in test_worker.py)."""

from __future__ import annotations

import pytest

from knowledge import services
from knowledge.models import KnowledgeSource
from knowledge.tasks import MAX_RETRIES, source_ingest_task
from testkit.sites import html_page

pytestmark = [pytest.mark.django_db, pytest.mark.without_redis]


def _source(tenant, site, path):
    return services.url_source_create(organization=tenant.organization, url=site.url(path))


def test_transient_failures_are_retried_then_fail_with_a_reason(tenant, site):
    site.page("/busy", b"try later", status=503)
    source = _source(tenant, site, "/busy")
    source_ingest_task.apply(args=[str(source.pk)])
    source.refresh_from_db()
    # Retried with backoff (in-process `apply` runs the retries at once), then failed with the reason.
    assert site.requests.count("/busy") == MAX_RETRIES + 1
    assert source.status == "failed"
    assert "HTTP 503" in source.error and f"gave up after {MAX_RETRIES} retries" in source.error
    assert source.attempts == 0  # retried attempts ended normally; none counts as a killed worker


def test_permanent_failures_are_not_retried(tenant, site):
    source = _source(tenant, site, "/missing")
    source_ingest_task.apply(args=[str(source.pk)])
    source.refresh_from_db()
    assert site.requests.count("/missing") == 1
    assert source.status == "failed" and "HTTP 404" in source.error


def test_a_transient_failure_that_recovers_ends_ready(tenant, site):
    calls = {"count": 0}
    page = html_page("Recovered", "<p>Back online now.</p>")

    def flaky(request):
        calls["count"] += 1
        status, body = (503, b"busy") if calls["count"] == 1 else (200, page)
        request.send_response(status)
        request.send_header("Content-Type", "text/html")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    site.route("/flaky", flaky)
    source = _source(tenant, site, "/flaky")
    source_ingest_task.apply(args=[str(source.pk)])
    source.refresh_from_db()
    assert source.status == "ready" and calls["count"] == 2


def test_a_deleted_source_is_skipped(tenant, site):
    source = _source(tenant, site, "/gone")
    source_id = str(source.pk)
    services.source_delete(source=source)
    assert source_ingest_task.apply(args=[source_id]).get() == "skipped"
    assert not KnowledgeSource.objects.for_organization(tenant.organization).exists()


def test_sources_lost_are_those_a_dead_worker_had_claimed_before_it_died(tenant):
    from datetime import timedelta

    from django.utils import timezone

    died_at = timezone.now()

    def make(status, started):
        return KnowledgeSource.objects.create(
            organization=tenant.organization,
            kind="url",
            url="https://example.com/",
            status=status,
            processing_started_at=started,
        )

    lost = make("processing", died_at - timedelta(seconds=5))
    after_restart = make("processing", died_at + timedelta(seconds=5))  # the new worker's
    make("pending", None)
    make("ready", died_at - timedelta(seconds=50))
    make("failed", died_at - timedelta(seconds=50))
    assert services.sources_lost(started_before=died_at) == [lost.pk]
    assert after_restart.pk not in services.sources_lost(started_before=died_at)
