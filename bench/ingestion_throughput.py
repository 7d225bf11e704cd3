"""Ingestion throughput through a real Celery worker (prefork, concurrency 1, queue
`ingestion`) on the local database and broker: a generated 200-page PDF uploaded with
`file_source_create`, and a 50-page crawl of a local site (loopback server with a
sitemap and robots.txt) added with `url_source_create`. Time runs from enqueue to `ready`
after a warm-up task (the embedder's one-time load is reported separately). Peak memory is
sampled every 0.1 s over the worker's process tree (parent, pool child, parser sandbox)."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PDF_PAGES = 200
SITE_PAGES = 50
WORDS = (
    "router warranty firmware update network signal reset account billing invoice shipping "
    "delivery return refund device battery charger cable adapter install configure support"
).split()


def _page_text(number: int) -> str:
    import random

    rng = random.Random(number)
    sentences = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize() + "." for _ in range(18)
    ]
    return f"Section {number}. " + " ".join(sentences)


class MemorySampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        import psutil

        self.psutil = psutil
        self.root = psutil.Process(pid)
        self.peak_total = 0
        self.peak_process = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                tree = [self.root, *self.root.children(recursive=True)]
                sizes = []
                for process in tree:
                    try:
                        sizes.append(process.memory_info().rss)
                    except self.psutil.NoSuchProcess:
                        pass
                self.peak_total = max(self.peak_total, sum(sizes))
                self.peak_process = max(self.peak_process, max(sizes, default=0))
            except self.psutil.NoSuchProcess:
                return
            time.sleep(0.1)


def _wait_ready(source_id, timeout: float = 900.0) -> float:
    from knowledge.models import KnowledgeSource

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        source = KnowledgeSource.objects.unscoped().get(pk=source_id)
        if source.status in ("ready", "failed"):
            if source.status == "failed":
                raise RuntimeError(f"ingestion failed: {source.error}")
            return time.monotonic() - started
        time.sleep(0.1)
    raise TimeoutError("ingestion did not finish")


def main() -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    from testkit import processes
    from testkit.documents import pdf_make
    from testkit.sites import LoopbackSite, html_page

    site = LoopbackSite()
    os.environ["SCRAPE_ALLOWLIST"] = site.netloc
    import django

    from supportai.startup import process_start

    process_start()  # the embedded Postgres, as every process starts

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command

    from knowledge import services
    from organizations.services import organization_create

    call_command("migrate", "--noinput", verbosity=0)
    for number in range(SITE_PAGES):
        links = [f"/kb/{(number + step) % SITE_PAGES}" for step in (1, 7, 13)]
        paragraphs = "".join(f"<p>{_page_text(number * 10 + part)}</p>" for part in range(3))
        site.page(f"/kb/{number}", html_page(f"Article {number}", paragraphs, links=links))
    site.page("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")

    from django.conf import settings

    # This process checks the crawl's URL when the source is created; the worker fetches it.
    settings.SCRAPE_ALLOWLIST = [*settings.SCRAPE_ALLOWLIST, site.netloc]
    log_dir = Path(tempfile.mkdtemp(prefix="bench-ingestion-"))
    env = processes.base_env(SCRAPE_ALLOWLIST=site.netloc, LOG_LEVEL="WARNING", EMBEDDING_THREADS="1")
    worker = processes.celery_worker_start(
        env=env,
        queues="ingestion",
        concurrency=1,
        log_path=log_dir / "worker.log",
        extra=["--pool", "prefork"],
    )
    stamp = uuid.uuid4().hex[:8]
    organization = organization_create(
        name=f"bench ingestion {stamp}", slug=f"bench-ingestion-{stamp}",
        owner_email=f"ingestion-{stamp}@example.com", owner_password=uuid.uuid4().hex,
    )  # fmt: skip
    sampler = MemorySampler(worker.pid)
    try:
        processes.celery_worker_wait_ready(log_dir / "worker.log", timeout=120)
        sampler.start()
        warm = services.file_source_create(
            organization=organization, title="warm-up", file_type="text",
            uploaded_file=SimpleUploadedFile("warm.txt", b"Warm up the embedder and the parser."),
        )  # fmt: skip
        warmup_seconds = _wait_ready(warm.pk)

        pdf_bytes = pdf_make([_page_text(number) for number in range(PDF_PAGES)], title="Generated manual")
        pdf = services.file_source_create(
            organization=organization, title="Generated manual", file_type="pdf",
            uploaded_file=SimpleUploadedFile("manual.pdf", pdf_bytes),
        )  # fmt: skip
        pdf_seconds = _wait_ready(pdf.pk)
        pdf.refresh_from_db()

        crawl = services.url_source_create(
            organization=organization, url=site.url("/kb/0"), crawl=True, max_pages=SITE_PAGES
        )
        crawl_seconds = _wait_ready(crawl.pk)
        crawl.refresh_from_db()
    finally:
        sampler.running = False
        processes.process_stop(worker)
        site.close()
        organization.delete()
    return {
        "worker_warmup_seconds_incl_model_load": round(warmup_seconds, 1),
        "pdf": {
            "pages": pdf.page_count,
            "chunks": pdf.chunk_count,
            "seconds": round(pdf_seconds, 2),
            "pages_per_second": round(pdf.page_count / pdf_seconds, 1),
            "bytes": len(pdf_bytes),
        },
        "crawl": {
            "pages": crawl.document_count,
            "chunks": crawl.chunk_count,
            "seconds": round(crawl_seconds, 2),
            "pages_per_second": round(crawl.document_count / crawl_seconds, 1),
        },
        "peak_worker_tree_rss_mb": round(sampler.peak_total / 2**20),
        "peak_single_process_rss_mb": round(sampler.peak_process / 2**20),
    }


def report(result: dict) -> str:
    pdf, crawl = result["pdf"], result["crawl"]
    return "\n".join(
        [
            "| input | pages | chunks | seconds | pages/s |",
            "|---|---|---|---|---|",
            f"| generated PDF | {pdf['pages']} | {pdf['chunks']} | {pdf['seconds']} | {pdf['pages_per_second']} |",
            f"| crawl of a local site | {crawl['pages']} | {crawl['chunks']} | {crawl['seconds']} | {crawl['pages_per_second']} |",
            "",
            f"Peak worker memory: {result['peak_worker_tree_rss_mb']} MB for the whole process tree "
            f"(largest single process {result['peak_single_process_rss_mb']} MB). "
            f"First task after start (loads the embedder): {result['worker_warmup_seconds_incl_model_load']} s.",
        ]
    )


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
