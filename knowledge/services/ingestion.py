"""Ingesting files and web pages: what the Celery tasks run.

`source_ingest` is idempotent: it claims the source (pending/processing -> processing),
does the work, and marks it ready or failed. Running it twice, or again after a worker
died half-way, leaves exactly one set of chunks (documents are unique per source and key,
chunks per document and number, and each document is replaced in one transaction).
Transient failures (a site timing out, an embedding provider down) raise
`TransientIngestionError` so the task can retry with backoff; everything else fails the
source with a readable `error`.
"""

from __future__ import annotations

import logging
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from core import fetcher
from core.concurrency import Cap, CapReached, slots_held
from core.errors import (
    ApplicationError,
    ServiceUnavailable,
    TooManyConcurrent,
    UpstreamError,
    UpstreamTimeout,
    ValidationFailed,
)
from core.fetcher import FetchFailed, FetchTimeout, UrlNotAllowed
from knowledge.chunking import PARSER_VERSION, body_unescape, pages_chunk, text_normalise
from knowledge.crawler import CrawledPage, Crawler, RobotsDisallowed, page_kind
from knowledge.models import KnowledgeDocument, KnowledgeSource
from knowledge.parsing import ParseError
from knowledge.sandbox import ParserSandbox, sandbox_shared
from knowledge.services.indexing import (
    DocumentDraft,
    content_hash,
    document_store,
    documents_remove,
    documents_store,
    source_counts_refresh,
)
from knowledge.services.sources import file_kind_parsed
from organizations.services import event_emit

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


class TransientIngestionError(Exception):
    """Worth retrying later (the site or a provider is temporarily unavailable)."""


class PermanentIngestionError(Exception):
    """The source cannot be ingested as it is; retrying will not help."""


@dataclass(frozen=True)
class ScrapedPage:
    url: str
    title: str
    content: str
    scraped_at: datetime


# --- claiming and finishing ------------------------------------------------------------
def _claim(*, source_id) -> KnowledgeSource | None:
    with transaction.atomic():
        source = (
            KnowledgeSource.objects.unscoped()
            .select_for_update()
            .select_related("organization")
            .filter(pk=source_id)
            .first()
        )
        if source is None or source.kind == KnowledgeSource.Kind.QA:
            return None
        if source.status not in (KnowledgeSource.Status.PENDING, KnowledgeSource.Status.PROCESSING):
            return None  # already ready or failed: a duplicate delivery has nothing to do
        if source.attempts >= MAX_ATTEMPTS:
            source.status = KnowledgeSource.Status.FAILED
            source.error = (
                f"Gave up after {source.attempts} attempts: the worker stopped while processing this source "
                "every time (it may exceed the memory or time limits)."
            )
            source.save(update_fields=["status", "error", "updated_at"])
            _source_event(source=source, type="source.failed")
            return None
        source.status = KnowledgeSource.Status.PROCESSING
        source.attempts += 1
        source.processing_started_at = timezone.now()
        source.save(update_fields=["status", "attempts", "processing_started_at", "updated_at"])
        return source


def _attempt_ended(*, source_id) -> None:
    """An attempt that ended with a retryable error does not count towards MAX_ATTEMPTS, which
    counts deliveries that never finished (a worker killed by the source, e.g. out of memory)."""
    KnowledgeSource.objects.unscoped().filter(pk=source_id, attempts__gt=0).update(attempts=F("attempts") - 1)


def _source_event(*, source: KnowledgeSource, type: str) -> None:  # noqa: A002 (the event's field name)
    """`source.ready` / `source.failed`, in the transaction that changed the status."""
    data = {
        "source_id": str(source.pk),
        "kind": source.kind,
        "assistant_id": str(source.assistant_id) if source.assistant_id else None,
        "title": source.title[:200],
        "url": source.url if source.kind == KnowledgeSource.Kind.URL else None,
        "status": source.status,
    }
    if type == "source.failed":
        data["error"] = source.error[:500]
    event_emit(organization=source.organization_id, type=type, data=data)


def source_fail(*, source_id, error: str) -> None:
    with transaction.atomic():
        source = (
            KnowledgeSource.objects.unscoped()
            .select_for_update()
            .filter(pk=source_id)
            .exclude(status__in=[KnowledgeSource.Status.READY, KnowledgeSource.Status.FAILED])
            .first()
        )
        if source is None:  # ready, already failed (one event per failure), or gone
            KnowledgeSource.objects.unscoped().filter(
                pk=source_id, status=KnowledgeSource.Status.FAILED
            ).update(error=error[:2000], updated_at=timezone.now())
            return
        source.status, source.error = KnowledgeSource.Status.FAILED, error[:2000]
        source.save(update_fields=["status", "error", "updated_at"])
        _source_event(source=source, type="source.failed")


def _ready(*, source: KnowledgeSource, note: str = "") -> None:
    became_ready = source.status != KnowledgeSource.Status.READY  # a re-sync of a ready source is not news
    source_counts_refresh(source=source)
    source.status = KnowledgeSource.Status.READY
    source.error = note[:2000]
    source.ready_at = timezone.now()
    if source.kind == KnowledgeSource.Kind.URL:
        source.last_synced_at = source.ready_at
    fields = ["status", "error", "ready_at", "last_synced_at", "updated_at"]
    if source.file and not source.organization.keep_original_files:
        # Privacy: once parsed, the text lives in the chunks; the uploaded original (which may
        # hold more than the knowledge base needs) goes, unless the organization keeps originals.
        stored_name, storage = source.file.name, source.file.storage
        transaction.on_commit(lambda: storage.delete(stored_name))
        source.file = ""
        fields.append("file")
    with transaction.atomic():
        source.save(update_fields=fields)
        if became_ready:
            _source_event(source=source, type="source.ready")


def source_ingest(*, source_id) -> str:
    """Ingest one file or URL source; returns "ready", "failed" or "skipped"."""
    source = _claim(source_id=source_id)
    if source is None:
        return "skipped"
    try:
        if source.kind == KnowledgeSource.Kind.FILE:
            note = _file_ingest(source=source)
        else:
            note = _site_ingest(source=source)
    except (PermanentIngestionError, ParseError, UrlNotAllowed, ValidationFailed) as error:
        message = getattr(error, "message", None) or getattr(error, "detail", None) or str(error)
        source_fail(source_id=source.pk, error=str(message))
        # The parser's own exception (class and text) is for the logs; operators read `message`.
        detail = getattr(error, "detail", "") if isinstance(error, ParseError) else ""
        logger.info("knowledge source %s failed: %s%s", source.pk, message, f" [{detail}]" if detail else "")
        return "failed"
    except (FetchTimeout, UpstreamTimeout) as error:
        _attempt_ended(source_id=source.pk)
        raise TransientIngestionError(str(error.message)) from error
    except FetchFailed as error:
        if error.transient:
            _attempt_ended(source_id=source.pk)
            raise TransientIngestionError(str(error.message)) from error
        source_fail(source_id=source.pk, error=str(error.message))
        return "failed"
    except UpstreamError as error:
        _attempt_ended(source_id=source.pk)
        raise TransientIngestionError(str(error.message)) from error
    _ready(source=source, note=note)
    return "ready"


def source_sync(*, source_id) -> str:
    """Re-fetch a ready URL source; unchanged pages (same text hash) are not re-embedded."""
    source = KnowledgeSource.objects.unscoped().select_related("organization").filter(pk=source_id).first()
    if (
        source is None
        or source.kind != KnowledgeSource.Kind.URL
        or source.status != KnowledgeSource.Status.READY
    ):
        return "skipped"
    try:
        note = _site_ingest(source=source)
    except (
        FetchTimeout,
        UpstreamError,
        FetchFailed,
        ApplicationError,
        ParseError,
        PermanentIngestionError,
    ) as error:
        message = getattr(error, "detail", None) or getattr(error, "message", None) or str(error)
        # The previous content stays searchable; the operator sees why the refresh failed.
        KnowledgeSource.objects.unscoped().filter(pk=source.pk).update(
            error=f"Last re-sync failed: {message}"[:2000],
            last_synced_at=timezone.now(),
            updated_at=timezone.now(),
        )
        return "failed"
    _ready(source=source, note=note)
    return "ready"


@dataclass(frozen=True)
class ReparseDue:
    """An organization's ready file and URL sources with a document cut by an older parser
    (`KnowledgeDocument.parser_version`): those that can be cut again (`due`: a URL, re-read from
    the site, or a file whose uploaded original is kept) and files that cannot (`not_kept`: the
    original was deleted once parsed, and the chunks alone cannot be cut again)."""

    due: list
    not_kept: list


def sources_reparse_due(*, organization) -> ReparseDue:
    """What `manage.py knowledge_reparse` queues for `source_reparse` (Q&A pairs have no parser)."""
    older = KnowledgeDocument.objects.for_organization(organization).filter(
        source=OuterRef("pk"), parser_version__lt=PARSER_VERSION
    )
    sources = (
        KnowledgeSource.objects.for_organization(organization)
        .filter(
            kind__in=[KnowledgeSource.Kind.FILE, KnowledgeSource.Kind.URL],
            status=KnowledgeSource.Status.READY,
        )
        .filter(Exists(older))
        .order_by("created_at")
        .values_list("id", "kind", "file")
    )
    due, not_kept = [], []
    for source_id, kind, stored_file in sources:
        (not_kept if kind == KnowledgeSource.Kind.FILE and not stored_file else due).append(source_id)
    return ReparseDue(due=due, not_kept=not_kept)


def source_reparse(*, source_id) -> str:
    """Cut a ready source's documents again with the current parser and chunker, when one was
    cut by an older one: a file from its kept original, a URL by reading the site again (a
    re-sync). Returns "ready", "failed" or "skipped" (nothing older, not ready, no original,
    gone: a second delivery does nothing).

    The source stays ready and searchable throughout: each document's chunks are replaced in
    the one transaction that stores the new ones (`documents_store`), so a failure (the file no
    longer parses, the site is down) leaves every stored chunk as it was and notes why on the
    source; `knowledge_reparse` tries it again next time."""
    source = KnowledgeSource.objects.unscoped().select_related("organization").filter(pk=source_id).first()
    if (
        source is None
        or source.status != KnowledgeSource.Status.READY
        or source.kind not in (KnowledgeSource.Kind.FILE, KnowledgeSource.Kind.URL)
        or not KnowledgeDocument.objects.for_organization(source.organization_id)
        .filter(source=source, parser_version__lt=PARSER_VERSION)
        .exists()
    ):
        return "skipped"
    if source.kind == KnowledgeSource.Kind.URL:
        return source_sync(source_id=source.pk)
    if not source.file:
        return "skipped"  # the original was not kept: only a new upload can be parsed again
    try:
        documents_store(items=[_file_document(source=source)])
    except UpstreamError as error:  # the embedder is unavailable: worth retrying
        raise TransientIngestionError(str(error.message)) from error
    except (PermanentIngestionError, ParseError, ApplicationError) as error:
        message = getattr(error, "message", None) or str(error)
        KnowledgeSource.objects.unscoped().filter(pk=source.pk).update(
            error=f"Last re-parse failed (the previous chunks are kept): {message}"[:2000],
            updated_at=timezone.now(),
        )
        logger.info("knowledge source %s: re-parse failed: %s", source.pk, message)
        return "failed"
    _ready(source=source)
    return "ready"


def sources_due_for_sync(*, now: datetime | None = None) -> list:
    now = now or timezone.now()
    due = []
    candidates = KnowledgeSource.objects.unscoped().filter(
        kind=KnowledgeSource.Kind.URL, status=KnowledgeSource.Status.READY, sync_interval_hours__isnull=False
    )
    for source_id, interval, last in candidates.values_list("id", "sync_interval_hours", "last_synced_at"):
        if interval and (last is None or last + timedelta(hours=interval) <= now):
            due.append(source_id)
    return due


def sources_stuck(*, older_than: timedelta | None = None) -> list:
    """Pending or processing sources nobody is working on (a lost message, a dead worker)."""
    from django.conf import settings

    if older_than is None:
        older_than = timedelta(seconds=getattr(settings, "KNOWLEDGE_STUCK_AFTER_SECONDS", 1200))
    cutoff = timezone.now() - older_than
    return list(
        KnowledgeSource.objects.unscoped()
        .filter(
            status__in=[KnowledgeSource.Status.PENDING, KnowledgeSource.Status.PROCESSING],
            updated_at__lt=cutoff,
        )
        .exclude(kind=KnowledgeSource.Kind.QA)
        .values_list("id", flat=True)
    )


def sources_lost(*, started_before: datetime) -> list:
    """Sources a dead worker was processing: claimed (`processing`) before it died. Only the
    caller knows no other worker holds them (`make run` runs exactly one)."""
    return list(
        KnowledgeSource.objects.unscoped()
        .filter(status=KnowledgeSource.Status.PROCESSING, processing_started_at__lt=started_before)
        .exclude(kind=KnowledgeSource.Kind.QA)
        .values_list("id", flat=True)
    )


# --- files -------------------------------------------------------------------------------
def files_ingest(*, source_ids: list, batch_size: int = 64) -> dict[str, str]:
    """`source_ingest` for many file sources at once (bulk imports): parsing as usual, but
    embeddings and index writes batched across documents. Returns {source id: outcome}."""
    outcomes: dict[str, str] = {}
    for start in range(0, len(source_ids), batch_size):
        claimed = [
            source
            for source in (_claim(source_id=sid) for sid in source_ids[start : start + batch_size])
            if source
        ]
        outcomes.update({str(sid): "skipped" for sid in source_ids[start : start + batch_size]})
        by_organization: dict = {}
        for source in claimed:
            if source.kind != KnowledgeSource.Kind.FILE:
                outcomes[str(source.pk)] = source_ingest(source_id=source.pk)
                continue
            try:
                item = _file_document(source=source)
            except (PermanentIngestionError, ParseError) as error:
                source_fail(source_id=source.pk, error=getattr(error, "message", None) or str(error))
                outcomes[str(source.pk)] = "failed"
                continue
            by_organization.setdefault(source.organization_id, []).append((source, item))
        for pairs in by_organization.values():
            try:
                documents_store(items=[item for _, item in pairs])
            except UpstreamError as error:
                raise TransientIngestionError(str(error.message)) from error
            for source, _ in pairs:
                _ready(source=source)
                outcomes[str(source.pk)] = "ready"
    return outcomes


def _file_document(*, source: KnowledgeSource) -> DocumentDraft:
    if not source.file:
        raise PermanentIngestionError("The uploaded file is missing.")
    try:
        with source.file.open("rb") as handle:
            data = handle.read(settings.KNOWLEDGE_MAX_FILE_BYTES + 1)
    except FileNotFoundError as error:
        raise PermanentIngestionError("The uploaded file is missing from storage.") from error
    if len(data) > settings.KNOWLEDGE_MAX_FILE_BYTES:
        raise PermanentIngestionError("The file is larger than the upload limit.")
    sandbox = sandbox_shared()
    with sandbox.lock:
        parsed = sandbox.parse(file_kind_parsed(source), data)
    title = source.title or parsed["title"] or source.file_name
    drafts = pages_chunk(parsed["pages"])
    if not drafts:
        raise PermanentIngestionError("The file contains no text.")
    full_text = "\n\f".join(page["text"] for page in parsed["pages"])
    page_count = sum(1 for page in parsed["pages"] if page["page"] is not None)
    if page_count != source.page_count:
        source.page_count = page_count
        source.save(update_fields=["page_count", "updated_at"])
    return DocumentDraft(
        source=source, key="file", title=title, drafts=drafts, text_hash=content_hash(full_text)
    )


def _file_ingest(*, source: KnowledgeSource) -> str:
    documents_store(items=[_file_document(source=source)])
    return ""


# --- web pages ---------------------------------------------------------------------------
def _site_ingest(*, source: KnowledgeSource) -> str:
    """Store what the crawler reads from the source's URL (one page, or a same-site crawl) as
    documents, one per page; documents of pages no longer found are removed."""
    max_pages = max(1, min(source.max_pages if source.crawl else 1, settings.KNOWLEDGE_CRAWL_MAX_PAGES))
    sandbox = sandbox_shared()
    crawl = Crawler(start_url=source.url, crawl=source.crawl, max_pages=max_pages, parse=sandbox.parse)
    try:
        crawl.start()
    except RobotsDisallowed as error:
        raise PermanentIngestionError(str(error)) from error
    stored_keys: set[str] = set()
    with sandbox.lock, closing(crawl.pages()) as pages:
        for page in pages:
            if _page_store(source=source, page=page):
                stored_keys.add(page.key)
    if not stored_keys:
        raise PermanentIngestionError(
            "No readable text was found" + (f" ({crawl.failures[0]})" if crawl.failures else " on the page.")
        )
    documents_remove(source=source, keep_keys=stored_keys)  # pages that disappeared from the site
    if crawl.failures:
        return f"{len(crawl.failures)} page(s) could not be read, e.g. {crawl.failures[0]}"
    return ""


def _page_store(*, source: KnowledgeSource, page: CrawledPage) -> bool:
    """Store one crawled page as a document of `source`; False if it has no text to store.
    The start page also names the source (canonical URL, and its title if it has none)."""
    if page.is_start and page.canonical_url:
        source.canonical_url = page.key[:2000]
        source.save(update_fields=["canonical_url", "updated_at"])
    drafts = pages_chunk(page.pages)
    if not drafts:
        return False
    title = page.title or (source.title if page.is_start else "") or page.key
    document_store(
        source=source,
        key=page.key,
        title=title,
        url=page.key,
        drafts=drafts,
        text_hash=content_hash(page.text),
    )
    if page.is_start and not source.title and page.title:
        source.title = page.title[:500]
        source.save(update_fields=["title", "updated_at"])
    return True


# How long a refused scrape is told to wait: a slot frees when a running scrape ends,
# which the request-thread deadline (SCRAPE_REQUEST_TIMEOUT) bounds.
SCRAPE_RETRY_AFTER_SECONDS = 5


def page_scrape(*, organization, url: str) -> ScrapedPage:
    """Fetch one page now, on the caller's (request) thread, and return its main text.

    A web thread waits for the whole fetch, so it is bounded three ways: a shorter total
    deadline than the worker's (`SCRAPE_REQUEST_TIMEOUT`), at most
    `SCRAPE_CONCURRENCY_PER_ORG` at once per organization (the excess gets 429) and
    `SCRAPE_CONCURRENCY_TOTAL` at once overall (503), across every web process. Slow or
    large sites belong to the worker (`knowledge/urls`, or this endpoint's `widgetId`).
    """
    if not isinstance(url, str) or not url.strip():
        raise ValidationFailed("url is required.", details={"url": ["This field is required."]})
    caps = (
        Cap(group=f"scrape:org:{organization.pk}", limit=settings.SCRAPE_CONCURRENCY_PER_ORG),
        Cap(group="scrape:all", limit=settings.SCRAPE_CONCURRENCY_TOTAL),
    )
    deadline = settings.SCRAPE_REQUEST_TIMEOUT
    try:
        # The lease outlives the fetch deadline plus parsing, so it never expires under a holder.
        with slots_held(caps=caps, lease_seconds=deadline + settings.SCRAPE_TOTAL_TIMEOUT + 30):
            return _page_scrape(url=url.strip(), total_timeout=deadline)
    except CapReached as refused:
        data = {"retry_after": SCRAPE_RETRY_AFTER_SECONDS, "limit": refused.cap.limit}
        if refused.cap is caps[0]:
            raise TooManyConcurrent(
                f"This organization already has {refused.cap.limit} pages being fetched; "
                "retry shortly, or add the URL as a knowledge source (fetched in the background).",
                details=data,
            ) from None
        raise ServiceUnavailable(
            "Too many pages are being fetched right now; retry shortly.", details=data
        ) from None


def _page_scrape(*, url: str, total_timeout: float) -> ScrapedPage:
    response = fetcher.fetch(url, total_timeout=total_timeout)
    try:
        with ParserSandbox() as sandbox:
            parsed = sandbox.parse(page_kind(response.content_type), response.content, url=response.url)
    except ParseError as error:
        raise UpstreamError(f"The page could not be read: {error.message}") from error
    # Shown as read: a body line starting with "#" without the chunker's escape (`body_unescape`).
    content = body_unescape(text_normalise("\n\n".join(page["text"] for page in parsed["pages"])))
    return ScrapedPage(url=response.url, title=parsed["title"], content=content, scraped_at=timezone.now())
