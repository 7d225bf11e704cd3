"""Ingestion workers under load, for the scale-out and memory benches (no `main()`).

Documents are plain-text files created through `knowledge.services.file_source_create`
(stored, then enqueued on commit exactly as the API does); real Celery workers on the
`ingestion` queue parse, chunk, embed (the local embedder) and index them."""

from __future__ import annotations

import time

from bench.common import ROOT, log_path
from testkit import processes

PARAGRAPH = (
    "Customers can return any unused item within thirty days of delivery for a full refund. "
    "Open the order, choose the items and print the prepaid label; refunds reach the original "
    "payment method within five business days of the parcel's arrival at our warehouse. "
)


def _available() -> bool:
    return (ROOT / "knowledge" / "tasks.py").exists()


def _organization():
    from bench.knowledge_base import _django

    _django()
    from organizations.services import organization_create

    return organization_create(name=f"Bench ingestion {time.time_ns()}", rate_limit_per_hour=1_000_000_000)


def _enqueue(organization, count: int, tag: str) -> list[str]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from knowledge.services import file_source_create

    ids = []
    for index in range(count):
        text = "\n\n".join(f"Section {part} of {tag}-{index}. " + PARAGRAPH * 3 for part in range(8))
        upload = SimpleUploadedFile(f"{tag}-{index}.txt", text.encode(), content_type="text/plain")
        source = file_source_create(
            organization=organization, title=f"{tag} {index}", file_type="text", uploaded_file=upload
        )
        ids.append(str(source.pk))
    return ids


def _wait(ids: list[str], timeout: float) -> tuple[float, dict]:
    from knowledge.models import KnowledgeSource

    started = time.monotonic()
    statuses: dict = {}
    while time.monotonic() - started < timeout:
        rows = list(KnowledgeSource.objects.unscoped().filter(pk__in=ids).values_list("status", flat=True))
        statuses = {status: rows.count(status) for status in set(rows)}
        if statuses.get("ready", 0) + statuses.get("failed", 0) == len(ids):
            return time.monotonic() - started, statuses
        time.sleep(0.25)
    raise TimeoutError(f"ingestion did not finish in {timeout:.0f}s: {statuses}")


class PrivateBroker:
    """A redis-server of its own for the ingestion bench: no other worker on the machine
    (tests, teammates) can take its messages, and it takes none of theirs."""

    def __enter__(self):
        from supportai.celery import app

        self.process, port = processes.redis_server_start()
        self.url = f"redis://127.0.0.1:{port}/0"
        self.previous = app.conf.broker_url
        self._reset(app)
        app.conf.broker_url = self.url
        return self

    @staticmethod
    def _reset(app) -> None:
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None

    def __exit__(self, *exc) -> None:
        from supportai.celery import app

        self._reset(app)
        app.conf.broker_url = self.previous
        processes.process_stop(self.process)


def _workers(env: dict, count: int) -> list:
    started = []
    for index in range(count):
        log = log_path(f"ingestion-worker-{count}-{index}")
        started.append(
            processes.celery_worker_start(env=env, queues="ingestion", concurrency=1, log_path=log)
        )
        processes.celery_worker_wait_ready(log, timeout=120)
    return started


def _drain_rates(*, env: dict, enqueue, items: int) -> dict:
    """Items per second for one worker and for two to drain `enqueue(items, tag)`, each run
    after a warm-up batch (every worker loads its embedder), on a private broker."""
    rates = {}
    broker = PrivateBroker().__enter__()
    try:
        for count in (1, 2):
            workers = _workers(dict(env, REDIS_URL=broker.url), count)
            try:
                _wait(enqueue(count * 2, f"warm{count}"), timeout=600)
                seconds, statuses = _wait(enqueue(items, f"batch{count}"), timeout=900)
            finally:
                for worker in workers:
                    processes.process_stop(worker)
            rates[count] = (round(items / seconds, 2), statuses)
    finally:
        broker.__exit__(None, None, None)
    return rates


def _scale_figures(prefix: str, unit: str, rates: dict) -> dict:
    result = {}
    for count, (rate, statuses) in rates.items():
        result[f"{prefix}_{count}_worker_{unit}_per_s"] = rate
        result[f"{prefix}_{count}_worker_statuses"] = statuses
    one, two = rates[1][0], rates[2][0]
    result[f"{prefix}_speedup"] = round(two / one, 2) if one else None
    return result


def worker_scale(*, env: dict, documents: int = 24) -> dict:
    """Drain time of the same batch with one ingestion worker vs two."""
    if not _available():
        return {"workers": "skipped: no ingestion tasks in this build (knowledge branch not merged)"}
    organization = _organization()
    rates = _drain_rates(
        env=env, enqueue=lambda count, tag: _enqueue(organization, count, tag), items=documents
    )
    return _scale_figures("ingestion", "docs", rates)


def crawl_worker_scale(*, env: dict, pages: int = 24, latency: float = 0.3) -> dict:
    """Drain time of `pages` single-page URL sources with one worker vs two, fetched from a
    loopback site that answers after `latency` seconds, as a real web server over the
    internet does: the I/O-bound half of ingestion, where a worker waits rather than computes."""
    organization = _organization()  # sets Django up
    from django.conf import settings

    from knowledge.services import url_source_create
    from testkit.sites import LoopbackSite, html_page

    site = LoopbackSite()
    body = html_page("Returns", f"<p>{PARAGRAPH * 2}</p>")
    site.page("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")
    settings.SCRAPE_ALLOWLIST = [*settings.SCRAPE_ALLOWLIST, site.netloc]

    def enqueue(count: int, tag: str) -> list[str]:
        for index in range(count):
            site.page(f"/{tag}/{index}", body, delay=latency)
        return [
            str(url_source_create(organization=organization, url=site.url(f"/{tag}/{index}")).pk)
            for index in range(count)
        ]

    try:
        rates = _drain_rates(env=dict(env, SCRAPE_ALLOWLIST=site.netloc), enqueue=enqueue, items=pages)
    finally:
        site.close()
    return {"crawl_page_latency_s": latency, **_scale_figures("crawl", "pages", rates)}


def worker_memory(*, env: dict, seconds: float) -> dict | str:
    """RSS of one ingestion worker's pool child while it ingests documents for `seconds`."""
    if not _available():
        return "skipped: no ingestion tasks in this build (knowledge branch not merged)"
    from bench.memory import _series_summary

    organization = _organization()
    broker = PrivateBroker().__enter__()
    env = dict(env, REDIS_URL=broker.url)
    workers = _workers(env, 1)
    try:
        warm = _enqueue(organization, 1, "memwarm")
        _wait(warm, timeout=600)
        child = processes.process_children(workers[0])[0].pid
        series = []
        started = time.monotonic()
        batch = 0
        pending: list[str] = []
        while time.monotonic() - started < seconds:
            if len(pending) < 4:
                batch += 1
                pending += _enqueue(organization, 4, f"mem{batch}")
            from knowledge.models import KnowledgeSource

            done = set(
                KnowledgeSource.objects.unscoped()
                .filter(pk__in=pending, status__in=["ready", "failed"])
                .values_list("id", flat=True)
            )
            pending = [source_id for source_id in pending if source_id not in {str(d) for d in done}]
            series.append((time.monotonic() - started, [processes.rss_bytes(child)]))
            time.sleep(3)
        return {"seconds": seconds, "documents_enqueued": batch * 4, **_series_summary(series)}
    finally:
        for worker in workers:
            processes.process_stop(worker)
        broker.__exit__(None, None, None)
