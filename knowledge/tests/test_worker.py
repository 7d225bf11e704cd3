"""Ingestion through a REAL Celery worker process on the real broker (Redis) and the test
database: the API enqueues on commit, the worker ingests, the source becomes answerable.
Killing the worker mid-task redelivers the task, which then completes exactly once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from knowledge import retrieval
from knowledge.models import Chunk, KnowledgeDocument, KnowledgeSource
from knowledge.tests.conftest import upload, wait_for
from testkit import processes
from testkit.documents import pdf_decompression_bomb, pdf_encrypted, pdf_make, pdf_malformed
from testkit.sites import html_page

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FINAL = {"ready", "failed"}


def _status(source_id) -> KnowledgeSource:
    return KnowledgeSource.objects.unscoped().get(pk=source_id)


def _settled(source_id, worker=None, timeout=300.0) -> KnowledgeSource:
    # Generous: a fresh pool child loads the embedder first, which is slow on a busy machine.
    def settled():
        return _status(source_id).status in FINAL

    try:
        wait_for(settled, timeout=timeout, message=f"source {source_id} not settled")
    except AssertionError:
        raise AssertionError(
            f"source {source_id} not settled\n" + (worker.log_text()[-4000:] if worker else "")
        )
    return _status(source_id)


@pytest.mark.without_redis
def test_a_pdf_a_page_and_a_broken_pdf_through_a_real_worker(api, tenant, site, worker):
    """The lean round trip `make test` also runs without Redis (broker and cache in Postgres)."""
    worker.start()
    pdf = api.post(
        "/api/v1/knowledge/files",
        {"file_type": "pdf", "file": upload("manual.pdf", pdf_make(["Warranty: three years on hardware."]))},
        format="multipart",
    ).json()["data"]["id"]
    site.page("/guide", html_page("Guide", "<p>The guide says the warehouse opens at dawn.</p>"))
    page = api.post("/api/v1/knowledge/urls", {"url": site.url("/guide")}, format="json").json()["data"]["id"]
    broken = api.post(
        "/api/v1/knowledge/files",
        {"file_type": "pdf", "file": upload("broken.pdf", pdf_malformed())},
        format="multipart",
    ).json()["data"]["id"]
    assert _settled(pdf, worker).status == "ready"
    assert _settled(page, worker).status == "ready"
    failed = _settled(broken, worker)
    assert failed.status == "failed" and "damaged" in failed.error
    passage = retrieval.chunk_search(organization=tenant.organization, query="how long is the warranty")[0]
    assert passage.file_name == "manual.pdf"


def test_pdf_and_crawl_through_a_real_worker_and_hostile_pdfs_fail_alone(api, tenant, site, worker):
    worker.start(KNOWLEDGE_PARSE_WALL_SECONDS="3")
    pdf = api.post(
        "/api/v1/knowledge/files",
        {"title": "Router manual", "file_type": "pdf",
         "file": upload("manual.pdf", pdf_make(["Setup: plug the router in.", "Warranty: three years on hardware."]))},
        format="multipart",
    )  # fmt: skip
    assert pdf.status_code == 202 and pdf.json()["data"]["status"] == "pending"

    for number in range(3):
        site.page(
            f"/docs/{number}",
            html_page(f"Doc {number}", f"<p>Document {number} explains feature {number}.</p>",
                      links=[f"/docs/{(number + 1) % 3}"]),
        )  # fmt: skip
    site.page("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")
    url = api.post(
        "/api/v1/knowledge/urls", {"url": site.url("/docs/0"), "crawl": True, "max_pages": 10}, format="json"
    )
    assert url.status_code == 202

    hostile = {
        "malformed": pdf_malformed(),
        "encrypted": pdf_encrypted(["secret"]),
        "bomb": pdf_decompression_bomb(300),
        "endless": pdf_make([f"Page {n} " + "lorem ipsum " * 300 for n in range(1900)]),
    }
    hostile_ids = {}
    for name, data in hostile.items():
        response = api.post(
            "/api/v1/knowledge/files",
            {"file_type": "pdf", "file": upload(f"{name}.pdf", data)},
            format="multipart",
        )
        assert response.status_code == 202, response.json()
        hostile_ids[name] = response.json()["data"]["id"]
    after = api.post(
        "/api/v1/knowledge/files",
        {
            "file_type": "text",
            "file": upload("after.txt", b"Uploaded after the hostile files: still served."),
        },
        format="multipart",
    )

    ready_pdf = _settled(pdf.json()["data"]["id"])
    assert ready_pdf.status == "ready", ready_pdf.error
    assert ready_pdf.page_count == 2
    crawl = _settled(url.json()["data"]["id"])
    assert crawl.status == "ready", crawl.error
    assert crawl.document_count == 3
    errors = {name: _settled(source_id).error for name, source_id in hostile_ids.items()}
    assert all(_status(source_id).status == "failed" for source_id in hostile_ids.values()), errors
    assert "damaged" in errors["malformed"]
    assert "password-protected" in errors["encrypted"]
    assert "longer than the 3 s limit" in errors["endless"]
    assert _settled(after.json()["data"]["id"]).status == "ready"  # the worker kept serving

    passage = retrieval.chunk_search(organization=tenant.organization, query="how long is the warranty")[0]
    assert passage.file_name == "manual.pdf" and passage.page == 2
    passage = retrieval.chunk_search(organization=tenant.organization, query="feature 2 explained")[0]
    assert passage.url == site.url("/docs/2")
    listed = api.get("/api/v1/knowledge/files").json()["data"]["results"]
    assert {item["status"] for item in listed} == {"ready", "failed"}


def _slow_page(site, path: str, seconds: float) -> None:
    body = html_page("Slow page", "<p>The slow page says the warehouse opens at dawn.</p>")
    site.page(path, body, content_type="text/html", delay=seconds)


def _assert_ingested_once(tenant, source_id) -> None:
    source = _status(source_id)
    assert source.status == "ready", source.error
    assert (
        KnowledgeDocument.objects.for_organization(tenant.organization).filter(source_id=source_id).count()
        == 1
    )
    chunks = list(
        Chunk.objects.for_organization(tenant.organization)
        .filter(source_id=source_id)
        .values_list("chunk_no", flat=True)
    )
    assert chunks == [0]
    assert source.chunk_count == 1


@pytest.mark.chaos
def test_worker_killed_mid_task_redelivers_and_completes_exactly_once(api, tenant, site, worker):
    visibility = "6"
    parent = worker.start(CELERY_VISIBILITY_TIMEOUT=visibility)
    _slow_page(site, "/slow-1", 3.0)
    _slow_page(site, "/slow-2", 3.0)

    # 1. The pool child dies mid-task (SIGKILL, like the OOM killer): with acks_late and
    #    reject_on_worker_lost the message goes straight back to the queue.
    first = api.post("/api/v1/knowledge/urls", {"url": site.url("/slow-1")}, format="json").json()["data"][
        "id"
    ]
    wait_for(lambda: site.requests.count("/slow-1") >= 1, timeout=90, message="task never started")
    assert _status(first).status == "processing"
    children = processes.process_children(parent)
    assert children, "no pool child"
    for child in children:
        os.kill(child.pid, signal.SIGKILL)
    source = _settled(first, worker)
    assert source.status == "ready", source.error + worker.log_text()[-3000:]
    assert source.attempts == 2 and site.requests.count("/slow-1") == 2
    _assert_ingested_once(tenant, first)

    # 2. The whole worker node dies mid-task: nothing acks or rejects; after the broker's
    #    visibility timeout a restarted worker gets the message again.
    second = api.post("/api/v1/knowledge/urls", {"url": site.url("/slow-2")}, format="json").json()["data"][
        "id"
    ]
    wait_for(lambda: site.requests.count("/slow-2") >= 1, timeout=90, message="task never started")
    children = processes.process_children(parent)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    for child in children:
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert _status(second).status == "processing"
    time.sleep(int(visibility) + 1)
    worker.start(CELERY_VISIBILITY_TIMEOUT=visibility)
    source = _settled(second, worker)
    assert source.status == "ready", source.error + worker.log_text()[-3000:]
    assert site.requests.count("/slow-2") == 2  # one fetch per delivery, never two at once
    _assert_ingested_once(tenant, second)
    # The first source was not touched again.
    assert _status(first).attempts == 2


def test_knowledge_reparse_goes_through_a_real_worker_and_a_second_run_queues_nothing(tenant, site, worker):
    """After an upgrade: a file with its original kept and a page, both cut by an older parser,
    are queued by the command, cut again by the worker, and then nothing is left to queue."""
    import io

    from django.core.management import call_command

    from knowledge import services
    from knowledge.chunking import PARSER_VERSION
    from knowledge.tests.test_reparse import BODY, _cut_by_an_older_parser, _file, _keep_originals

    organization = tenant.organization
    _keep_originals(organization)
    manual = _file(organization)
    site.page("/lamp", html_page("Lamp", f"<h2>Warranty</h2><p>{BODY}</p>"))
    page = services.url_source_create(organization=organization, url=site.url("/lamp"))
    assert services.source_ingest(source_id=page.pk) == "ready"
    sources = [manual.pk, page.pk]
    headings = sorted(
        Chunk.objects.unscoped().filter(source_id__in=sources).values_list("heading", flat=True)
    )
    for source in (manual, page):
        _cut_by_an_older_parser(source)
    worker.start()

    out = io.StringIO()
    call_command("knowledge_reparse", stdout=out)
    assert out.getvalue().endswith(
        "2 source(s) queued for re-parsing; 0 file source(s) without an original\n"
    )

    def current() -> bool:
        versions = KnowledgeDocument.objects.unscoped().filter(source_id__in=sources)
        return set(versions.values_list("parser_version", flat=True)) == {PARSER_VERSION}

    wait_for(current, timeout=300, message="re-parse not done\n" + worker.log_text()[-3000:])
    assert (
        sorted(Chunk.objects.unscoped().filter(source_id__in=sources).values_list("heading", flat=True))
        == headings
    )
    assert {_status(source_id).status for source_id in sources} == {"ready"}

    out = io.StringIO()
    call_command("knowledge_reparse", stdout=out)
    assert out.getvalue() == "0 source(s) queued for re-parsing; 0 file source(s) without an original\n"
