"""Creating, deleting and retrying knowledge sources."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import connection, transaction
from django.utils import timezone

from core.errors import Conflict, ValidationFailed
from knowledge import duplicates
from knowledge.chunking import text_normalise
from knowledge.models import KnowledgeSource
from knowledge.services.indexing import (
    _statistics_lock,
    content_hash,
    document_store,
    documents_remove,
    source_counts_refresh,
)
from knowledge.types import ChunkDraft

MAX_QUESTION_CHARS = 2_000
MAX_ANSWER_CHARS = 20_000
MAX_TAGS = 20

logger = logging.getLogger(__name__)


def _assistant_check(*, organization, assistant) -> None:
    if assistant is not None and assistant.organization_id != organization.pk:
        raise ValidationFailed("Unknown assistant.", details={"assistant_id": ["Not found."]})


class SourceExists(Conflict):
    """The source being added is already in the knowledge (same fingerprint, same scope):
    nothing new was stored. `source` is the one already there."""

    code = "source_exists"

    def __init__(self, *, source: KnowledgeSource):
        self.source = source
        added = timezone.localtime(source.created_at).strftime("%-d %b %Y")
        title = source.display_title
        title = title if len(title) <= 80 else title[:79] + "…"
        super().__init__(
            f"Already in your knowledge as “{title}”, added {added}.",
            details={"id": str(source.pk), "title": title, "status": source.status},
        )


def _same_source_lock_get(*, organization, assistant, fingerprint: str) -> KnowledgeSource | None:
    """The source of this scope (organization, and assistant or organization-wide) with this
    fingerprint, oldest first; call inside a transaction. A transaction-scoped advisory lock on
    the fingerprint makes two concurrent adds of the same thing wait for each other, so the
    second one finds the first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"knowledge-source:{organization.pk}:{fingerprint}"],
        )
    return (
        KnowledgeSource.objects.for_organization(organization)
        .filter(fingerprint=fingerprint, assistant=assistant)
        .order_by("created_at")
        .first()
    )


def _retryable(source: KnowledgeSource) -> bool:
    return source.status == KnowledgeSource.Status.FAILED or source.unpicked


def qa_text(*, question: str, answer: str) -> str:
    return f"{question}\n{answer}"


def _qa_clean(*, question: str, answer: str, tags: Iterable[str] | None) -> tuple[str, str, list[str] | None]:
    """A Q&A pair's fields as stored (normalised, tags trimmed), or ValidationFailed naming
    every bad field. `tags=None` (an update that leaves them) stays None."""
    question = text_normalise(question or "")
    answer = text_normalise(answer or "")
    errors = {}
    if not question:
        errors["question"] = ["This field may not be blank."]
    elif len(question) > MAX_QUESTION_CHARS:
        errors["question"] = [f"At most {MAX_QUESTION_CHARS} characters."]
    if not answer:
        errors["answer"] = ["This field may not be blank."]
    elif len(answer) > MAX_ANSWER_CHARS:
        errors["answer"] = [f"At most {MAX_ANSWER_CHARS} characters."]
    if tags is not None:
        tags = [str(tag).strip()[:100] for tag in tags if str(tag).strip()]
        if len(tags) > MAX_TAGS:
            errors["tags"] = [f"At most {MAX_TAGS} tags."]
    if errors:
        raise ValidationFailed(
            "Invalid Q&A pair - " + "; ".join(f"{k}: {v[0]}" for k, v in errors.items()), details=errors
        )
    return question, answer, tags


def _qa_index(*, source: KnowledgeSource) -> None:
    """(Re-)indexes a pair's one chunk and refreshes its counts (inside the caller's transaction)."""
    text = qa_text(question=source.question, answer=source.answer)
    document_store(
        source=source,
        key="qa",
        title="",
        drafts=[ChunkDraft(content=text, heading="", question=source.question)],
        text_hash=content_hash(text),
        embedding_required=False,
    )
    source_counts_refresh(source=source)


def qa_create(
    *,
    organization,
    question: str,
    answer: str,
    tags: Iterable[str] = (),
    source: str = "manual",
    assistant=None,
    made_from_question: str = "",
) -> KnowledgeSource:
    """A Q&A pair, searchable (lexically and semantically) as soon as this returns.

    `made_from_question`: the visitor's wording it answers, when it was made from a question
    without an answer on the overview (which then leaves that list).

    The same question and answer already in this scope: `SourceExists` (nothing stored)."""
    question, answer, tags = _qa_clean(question=question, answer=answer, tags=tags)
    _assistant_check(organization=organization, assistant=assistant)
    fingerprint = duplicates.qa_fingerprint(question=question, answer=answer)
    with transaction.atomic():
        existing = _same_source_lock_get(
            organization=organization, assistant=assistant, fingerprint=fingerprint
        )
        if existing is not None:
            raise SourceExists(source=existing)
        knowledge_source = KnowledgeSource.objects.create(
            organization=organization,
            kind=KnowledgeSource.Kind.QA,
            assistant=assistant,
            title=question[:500],
            question=question,
            answer=answer,
            tags=tags,
            origin=(source or "manual")[:100],
            made_from_question=text_normalise(made_from_question or "")[:MAX_QUESTION_CHARS],
            fingerprint=fingerprint,
            # Ready as it commits: its one chunk is stored in the same transaction.
            status=KnowledgeSource.Status.READY,
            ready_at=timezone.now(),
        )
        _qa_index(source=knowledge_source)
    return knowledge_source


def qa_update(
    *, source: KnowledgeSource, question: str, answer: str, tags: Iterable[str] | None = None
) -> KnowledgeSource:
    """Edit a Q&A pair in place; its chunk is re-indexed before this returns."""
    if source.kind != KnowledgeSource.Kind.QA:
        raise ValidationFailed("Only Q&A pairs can be edited.")
    question, answer, tags = _qa_clean(question=question, answer=answer, tags=tags)
    fingerprint = duplicates.qa_fingerprint(question=question, answer=answer)
    with transaction.atomic():
        existing = _same_source_lock_get(
            organization=source.organization, assistant=source.assistant, fingerprint=fingerprint
        )
        if existing is not None and existing.pk != source.pk:
            raise SourceExists(source=existing)
        source.question, source.answer, source.title = question, answer, question[:500]
        source.fingerprint = fingerprint
        if tags is not None:
            source.tags = tags
        source.save(update_fields=["question", "answer", "title", "tags", "fingerprint", "updated_at"])
        _qa_index(source=source)
    return source


def source_delete(*, source: KnowledgeSource) -> None:
    """Remove a source, its documents and chunks (and their weight in the term statistics); its
    stored file goes after commit (`source_file_delete_receive`)."""
    with transaction.atomic():
        documents_remove(source=source)
        source.delete()


def source_file_delete_receive(sender, *, instance: KnowledgeSource, **_kwargs) -> None:
    """Django's `post_delete` of a source → its uploaded original deleted from storage once the
    deletion commits (not at all if it rolls back). Every deletion of a source row sends it:
    `source_delete`, an assistant's or an organization's cascade, a queryset's `delete()`, so
    no path leaves the file behind. Connected in `knowledge/apps.py`."""
    if instance.file:
        stored_name, storage = instance.file.name, instance.file.storage
        transaction.on_commit(lambda: storage.delete(stored_name))


def assistant_sources_delete(*, assistant) -> int:
    """Remove the knowledge only `assistant` answers from, each source as `source_delete` does
    (its weight taken out of the term statistics; its stored file deleted after commit); returns
    how many sources. Runs before any deletion of the assistant (`assistant_deleting_receive`):
    the database's cascade alone would delete their chunks but leave the statistics counting
    them, and it would lock the chunk rows before the organization's
    corpus row, the reverse of every index write (`_statistics_lock`), so it could deadlock with
    an ingestion of the same organization."""
    organization = assistant.organization_id
    with transaction.atomic():
        _statistics_lock(organization=organization)
        sources = list(KnowledgeSource.objects.for_organization(organization).filter(assistant=assistant))
        for source in sources:
            source_delete(source=source)
    return len(sources)


def assistant_deleting_receive(sender, *, instance, **_kwargs) -> None:
    """Django's `pre_delete` of an assistant → `assistant_sources_delete`. Django sends it for
    every assistant however it is deleted (`assistant.delete()`, a queryset's `delete()` through
    any manager, the admin's "delete selected", its organization's cascade), inside the
    deletion's transaction and before any row is deleted, so the sources go as `source_delete`
    takes them (statistics, stored files, the corpus row locked first) and the cascade that
    follows finds nothing of theirs left. Connected in `knowledge/apps.py`: assistants is below
    knowledge and does not know it."""
    assistant_sources_delete(assistant=instance)


# --- files and URLs: stored now, ingested by a worker -----------------------------------
FILE_TYPE_ALIASES = {
    "pdf": "pdf",
    "application/pdf": "pdf",
    "text": "text",
    "txt": "text",
    "plain": "text",
    "text/plain": "text",
    "markdown": "markdown",
    "md": "markdown",
    "text/markdown": "markdown",
    "html": "html",
    "htm": "html",
    "text/html": "html",
    "docx": "docx",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}
# An upload without a declared type that reads as text is Markdown when its name says so: its
# "#" lines are headings, where a plain text file's are text (`parsing.plain_parse`).
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd")


def file_kind_parsed(source: KnowledgeSource) -> str:
    """The parser for a stored file: its type, Markdown for a text file named as Markdown
    (uploaded before the type was inferred from the name)."""
    if source.file_type == "text" and source.file_name.lower().endswith(MARKDOWN_SUFFIXES):
        return "markdown"
    return source.file_type


_KIND_NAMES = {
    "pdf": "a PDF",
    "docx": "a Word document",
    "zip": "a ZIP archive",
    "html": "HTML",
    "text": "plain text",
    "xml": "XML/SVG",
    "binary": "binary data",
}


def _ingestion_enqueue(*, source: KnowledgeSource) -> None:
    from knowledge.tasks import source_ingest_task

    source_id = str(source.pk)

    def enqueue() -> None:
        try:
            source_ingest_task.delay(source_id)
        except Exception as error:  # broker (Redis) down: the row is the outbox
            # The source is committed as `pending`; the `sources_requeue_stuck` beat task
            # re-enqueues it once the broker is back, so the client still gets its 202.
            logger.warning(
                "could not enqueue ingestion of source %s (%s); it stays pending and will be re-driven",
                source_id,
                error.__class__.__name__,
            )

    transaction.on_commit(enqueue)


def _file_name_clean(name: str) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(character for character in name if character.isprintable()).strip(" .")
    return name[:255] or "upload"


def file_source_create(
    *, organization, title: str, file_type: str, uploaded_file, assistant=None
) -> KnowledgeSource:
    """Store an uploaded file (under a random name) and enqueue its ingestion.

    The same bytes already in this scope: `SourceExists` (nothing stored), unless that source
    failed (or no worker picked it up): then this upload replaces its file and it is queued
    again, and that source is returned."""
    from django.conf import settings

    from knowledge.parsing import BINARY_KINDS, file_kind_sniff

    if uploaded_file is None:
        raise ValidationFailed("A file is required.", details={"file": ["No file was submitted."]})
    size = getattr(uploaded_file, "size", None) or 0
    if size > settings.KNOWLEDGE_MAX_FILE_BYTES:
        from core.errors import PayloadTooLarge

        raise PayloadTooLarge(
            f"The file is {size // (1024 * 1024)} MB; the limit is {settings.KNOWLEDGE_MAX_FILE_BYTES // (1024 * 1024)} MB."
        )
    if size == 0:
        raise ValidationFailed("The file is empty.", details={"file": ["The submitted file is empty."]})
    declared = FILE_TYPE_ALIASES.get((file_type or "").strip().lower(), None)
    if file_type and declared is None:
        raise ValidationFailed(
            "Unsupported file_type - use pdf, text, markdown, html or docx.",
            details={"file_type": ["Use one of: pdf, text, markdown, html, docx."]},
        )

    uploaded_file.seek(0)
    head = uploaded_file.read(8192)
    zip_names = None
    if head.startswith(b"PK\x03\x04"):
        import zipfile

        uploaded_file.seek(0)
        try:
            zip_names = zipfile.ZipFile(uploaded_file).namelist()
        except zipfile.BadZipFile:
            zip_names = []
    uploaded_file.seek(0)
    sniffed = file_kind_sniff(head, zip_names=zip_names)
    if declared is None:
        if sniffed in ("pdf", "docx", "html", "text"):
            declared = sniffed
            if sniffed == "text" and str(getattr(uploaded_file, "name", "") or "").lower().endswith(
                MARKDOWN_SUFFIXES
            ):
                declared = "markdown"
        else:
            raise ValidationFailed(
                f"The file is {_KIND_NAMES.get(sniffed, sniffed)}, which cannot be ingested.",
                details={"file": ["Unsupported file content."]},
            )
    compatible = sniffed == declared if declared in BINARY_KINDS else sniffed in ("text", "html")
    if not compatible:
        raise ValidationFailed(
            f"The file's content is {_KIND_NAMES.get(sniffed, sniffed)}, not {declared} as declared.",
            details={"file": [f"Content is {_KIND_NAMES.get(sniffed, sniffed)}, not {declared}."]},
        )
    _assistant_check(organization=organization, assistant=assistant)
    file_name = _file_name_clean(getattr(uploaded_file, "name", ""))
    title = (title or "").strip()[:500]
    fingerprint = duplicates.uploaded_file_fingerprint(uploaded_file)
    with transaction.atomic():
        existing = _same_source_lock_get(
            organization=organization, assistant=assistant, fingerprint=fingerprint
        )
        if existing is not None and not _retryable(existing):
            raise SourceExists(source=existing)
        if existing is not None:
            return _file_source_replace(
                source=existing,
                title=title,
                file_name=file_name,
                file_type=declared,
                uploaded_file=uploaded_file,
            )
        source = KnowledgeSource(
            organization=organization,
            kind=KnowledgeSource.Kind.FILE,
            assistant=assistant,
            title=title or file_name,
            file_name=file_name,
            file_type=declared,
            file_size=size,
            status=KnowledgeSource.Status.PENDING,
            fingerprint=fingerprint,
        )
        source.file.save(file_name, uploaded_file, save=False)
        stored_name = source.file.name
        try:
            source.save()
        except Exception:
            source.file.storage.delete(stored_name)
            raise
        _ingestion_enqueue(source=source)
    return source


def _file_source_replace(
    *, source: KnowledgeSource, title: str, file_name: str, file_type: str, uploaded_file
) -> KnowledgeSource:
    """A failed file source given the same bytes again: the new upload takes its place (its
    stored file may be what was missing) and it is queued again (inside the caller's
    transaction)."""
    previous = source.file.name if source.file else ""
    source.file.save(file_name, uploaded_file, save=False)
    stored_name = source.file.name
    source.title = title or source.title or file_name
    source.file_name, source.file_type = file_name, file_type
    source.status, source.error, source.attempts = KnowledgeSource.Status.PENDING, "", 0
    try:
        source.save(
            update_fields=[
                "file",
                "title",
                "file_name",
                "file_type",
                "status",
                "error",
                "attempts",
                "updated_at",
            ]
        )
    except Exception:
        source.file.storage.delete(stored_name)
        raise
    if previous:
        transaction.on_commit(lambda: source.file.storage.delete(previous))
    _ingestion_enqueue(source=source)
    return source


def url_refusal_text(error) -> str:
    """The dashboard's and API's words for a refused URL: a sentence, and for an address that
    is refused only for being private, internal or on another port (a help site on the
    intranet, or on loopback while trying SupportAI out) who can allow it and how. The
    fetcher's bare reason ("port 8151 (only ports 80 and 443 are fetched)") left a new user
    without a way forward."""
    text = f"This URL is not fetched: {error.reason}."
    if error.allowlist_entry:
        text += (
            " SupportAI fetches only public web sites on ports 80 and 443; the server's operator can "
            f"allow this one with SCRAPE_ALLOWLIST={error.allowlist_entry}."
        )
    return text


def url_source_create(
    *,
    organization,
    url: str,
    title: str = "",
    assistant=None,
    crawl: bool = False,
    max_pages: int = 1,
    sync_interval_hours: int | None = None,
) -> KnowledgeSource:
    """Check the URL now (refusing internal addresses before anything is stored), store it, enqueue.

    The same page (or crawl from it) already in this scope: `SourceExists`, unless that source
    failed (or no worker picked it up): then it is queued again with this request's title and
    options, and returned."""
    from django.conf import settings

    from core import fetcher

    url = (url or "").strip() if isinstance(url, str) else ""
    if not url:
        raise ValidationFailed("url is required.", details={"url": ["This field is required."]})
    try:
        target = fetcher.url_check(url)
    except fetcher.FetchFailed as error:
        raise ValidationFailed(
            f"The URL cannot be fetched: {error.message}", details={"url": [str(error.message)]}
        ) from error
    except fetcher.UrlNotAllowed as error:
        raise ValidationFailed(
            error.message, details={"code": error.code, "url": [url_refusal_text(error)]}
        ) from error
    limit = settings.KNOWLEDGE_CRAWL_MAX_PAGES
    try:
        max_pages = int(max_pages or 1)
    except (TypeError, ValueError):
        max_pages = 0
    if not 1 <= max_pages <= limit:
        raise ValidationFailed(
            f"max_pages must be between 1 and {limit}.", details={"max_pages": [f"Between 1 and {limit}."]}
        )
    if sync_interval_hours is not None and not 1 <= int(sync_interval_hours) <= 24 * 365:
        raise ValidationFailed(
            "sync_interval_hours must be between 1 and 8760.",
            details={"sync_interval_hours": ["Between 1 and 8760."]},
        )
    _assistant_check(organization=organization, assistant=assistant)
    crawl = bool(crawl)
    fingerprint = duplicates.url_fingerprint(
        normalised_url=duplicates.url_normalise(target.url),
        crawl=crawl,
    )
    sync_interval_hours = (
        sync_interval_hours if sync_interval_hours is not None else settings.KNOWLEDGE_DEFAULT_SYNC_HOURS
    ) or None
    with transaction.atomic():
        existing = _same_source_lock_get(
            organization=organization, assistant=assistant, fingerprint=fingerprint
        )
        if existing is not None and not _retryable(existing):
            raise SourceExists(source=existing)
        if existing is not None:
            # A failed page added again: queued again with what was asked this time.
            existing.title = (title or "").strip()[:500] or existing.title
            existing.url, existing.max_pages = target.url, max_pages if crawl else 1
            existing.sync_interval_hours = sync_interval_hours
            existing.status, existing.error, existing.attempts = KnowledgeSource.Status.PENDING, "", 0
            existing.save(
                update_fields=[
                    "title",
                    "url",
                    "max_pages",
                    "sync_interval_hours",
                    "status",
                    "error",
                    "attempts",
                    "updated_at",
                ]
            )
            _ingestion_enqueue(source=existing)
            return existing
        source = KnowledgeSource.objects.create(
            organization=organization,
            kind=KnowledgeSource.Kind.URL,
            assistant=assistant,
            title=(title or "").strip()[:500],
            url=target.url,
            crawl=crawl,
            max_pages=max_pages if crawl else 1,
            sync_interval_hours=sync_interval_hours,
            status=KnowledgeSource.Status.PENDING,
            fingerprint=fingerprint,
        )
        _ingestion_enqueue(source=source)
    return source


def source_retry(*, source: KnowledgeSource) -> KnowledgeSource:
    """Queue a failed file or URL source again (a fresh set of attempts), or one that no worker
    picked up (its message was lost, or the worker was down)."""
    from core.errors import Conflict

    if source.kind == KnowledgeSource.Kind.QA:
        raise Conflict("Q&A pairs are live at once; there is nothing to retry.")
    if source.status != KnowledgeSource.Status.FAILED and not source.unpicked:
        raise Conflict(
            f"Only failed sources, or ones no worker picked up, can be retried (this one is {source.status})."
        )
    with transaction.atomic():
        source.status = KnowledgeSource.Status.PENDING
        source.error = ""
        source.attempts = 0
        source.save(update_fields=["status", "error", "attempts", "updated_at"])
        _ingestion_enqueue(source=source)
    return source
