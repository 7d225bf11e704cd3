"""Storing a document's chunks: BM25 weights, embeddings and the term statistics, together.

`document_store` is the one way chunks are written. It embeds outside the transaction
(slow, may fail), then in one transaction replaces the document's chunks and moves the
organization's term statistics by exactly what was removed and added, so statistics and
chunks never disagree and running it twice leaves the same rows (chunks are unique on
`(document, chunk_no)`).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Q
from pgvector import SparseVector

from core.errors import UpstreamError
from knowledge import analysis, retrieval
from knowledge.chunking import PARSER_VERSION
from knowledge.embeddings import CHOICES, Embedder, embed_with_questions, embedder_get
from knowledge.models import LEXICAL_DIMENSIONS, Chunk, CorpusStatistic, KnowledgeDocument, KnowledgeSource
from knowledge.types import ChunkDraft

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreResult:
    document: KnowledgeDocument
    changed: bool


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def chunk_text_for_index(*, title: str, content: str) -> str:
    """What both retrievers see: the document title gives every chunk its context."""
    return f"{title}\n{content}" if title and not content.startswith(title) else content


def _embed_or_none(
    *, embedder: Embedder, texts: list[str], required: bool, questions: list[str] = ()
) -> list[list[float]] | None:
    """The vectors of `texts` (stored text), then of `questions` (a Q&A pair's question, matched
    question-to-question: embedded as a question, e5's "query: " on both sides)."""
    try:
        return embed_with_questions(embedder=embedder, texts=texts, questions=list(questions))
    except UpstreamError:
        if required:
            raise
        logger.warning("embedding failed; stored lexical-only, the re-embed job will retry")
        return None


def _statistics_lock(*, organization) -> CorpusStatistic:
    """The organization's corpus row (`organization`: the organization or its id), locked: every
    index write of one organization queues here, which also keeps the term-statistic upserts
    free of deadlocks, and so does every other writer of chunk vectors (re-embedding, the
    embedder switch's swap): the trigger that renews the organization's vector generation
    (`knowledge/0011`) updates this row after a statement's chunk rows are locked, so a writer
    that locked chunks first and this row second could deadlock with one that did the reverse."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO knowledge_corpusstatistic (id, organization_id, created_at, chunk_count, total_length) "
            "VALUES (gen_random_uuid(), %s, now(), 0, 0) ON CONFLICT (organization_id) DO NOTHING",
            [getattr(organization, "pk", organization)],
        )
    return CorpusStatistic.objects.for_organization(organization).select_for_update().get()


def _term_frequencies_apply(*, organization, delta: Counter[int]) -> None:
    delta = Counter({term: change for term, change in delta.items() if change})
    if not delta:
        return
    terms = sorted(delta)
    changes = [delta[term] for term in terms]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO knowledge_termstatistic (id, organization_id, created_at, term, document_frequency) "
            "SELECT gen_random_uuid(), %s, now(), u.term, u.change "
            "FROM unnest(%s::int[], %s::int[]) AS u(term, change) ORDER BY u.term "
            "ON CONFLICT (organization_id, term) DO UPDATE "
            "SET document_frequency = knowledge_termstatistic.document_frequency + EXCLUDED.document_frequency",
            [organization.pk, terms, changes],
        )
        if any(change < 0 for change in changes):
            cursor.execute(
                "DELETE FROM knowledge_termstatistic WHERE organization_id = %s AND term = ANY(%s::int[]) "
                "AND document_frequency <= 0",
                [organization.pk, [term for term in terms if delta[term] < 0]],
            )


def _chunks_unindex(
    *, organization, chunks: list[tuple[SparseVector, int]], statistics: CorpusStatistic
) -> None:
    """Take removed chunks out of the term statistics (`chunks`: (lexical, length) pairs)."""
    delta: Counter[int] = Counter()
    for vector, _length in chunks:
        for term in vector.indices():
            delta[term] -= 1
    _term_frequencies_apply(organization=organization, delta=delta)
    statistics.chunk_count = max(0, statistics.chunk_count - len(chunks))
    statistics.total_length = max(0, statistics.total_length - sum(length for _vector, length in chunks))


@dataclass(frozen=True)
class DocumentDraft:
    """One document to store: `key` is unique within its source (page URL, "file", "qa")."""

    source: KnowledgeSource
    key: str
    title: str
    drafts: list[ChunkDraft]
    text_hash: str
    url: str = ""


def document_store(
    *,
    source: KnowledgeSource,
    key: str,
    title: str,
    url: str = "",
    drafts: list[ChunkDraft],
    text_hash: str,
    embedder: Embedder | None = None,
    embedding_required: bool = True,
) -> StoreResult:
    """Create or replace the document `key` of `source` with `drafts`; unchanged text whose
    chunks already carry the current embedder's vectors is left alone."""
    item = DocumentDraft(source=source, key=key, title=title, url=url, drafts=drafts, text_hash=text_hash)
    return documents_store(items=[item], embedder=embedder, embedding_required=embedding_required)[0]


def documents_store(
    *, items: list[DocumentDraft], embedder: Embedder | None = None, embedding_required: bool = True
) -> list[StoreResult]:
    """`document_store` for many documents of one organization at once: one embedding call
    (batched) and one transaction, which is what makes bulk ingestion fast."""
    if not items:
        return []
    organization = items[0].source.organization
    if any(item.source.organization_id != organization.pk for item in items):
        raise ValueError("documents_store takes documents of one organization")
    embedder = embedder or embedder_get(organization=organization)
    results: dict[int, StoreResult] = {}
    pending: list[tuple[int, DocumentDraft]] = []
    for index, item in enumerate(items):
        existing = (
            KnowledgeDocument.objects.for_organization(organization)
            .filter(source=item.source, key=item.key)
            .first()
        )
        if (
            existing
            and existing.content_hash == item.text_hash
            and existing.title == item.title[:500]
            and existing.parser_version == PARSER_VERSION  # else cut by an older parser: cut again
        ):
            questions = any(draft.question for draft in item.drafts)
            if not _vectors_missing(document=existing, embedder=embedder, questions=questions):
                results[index] = StoreResult(document=existing, changed=False)
                continue
        pending.append((index, item))

    index_texts: list[list[str]] = [
        [chunk_text_for_index(title=item.title, content=draft.content) for draft in item.drafts]
        for _, item in pending
    ]
    flat = [text for texts in index_texts for text in texts]
    questions = [draft.question for _, item in pending for draft in item.drafts if draft.question]
    # One embedding call for the chunks' texts and the Q&A questions (the questions last).
    vectors = (
        _embed_or_none(embedder=embedder, texts=flat, questions=questions, required=embedding_required)
        if flat
        else []
    )
    question_vectors = iter(vectors[len(flat) :] if vectors else [])
    vectors = vectors[: len(flat)] if vectors else vectors
    position = 0

    with transaction.atomic():
        statistics = _statistics_lock(organization=organization)
        stored: list[tuple[int, KnowledgeDocument, list[Counter[int]], list[str], list]] = []
        # Remove what is being replaced first, so the average length below is current.
        for (index, item), texts in zip(pending, index_texts, strict=True):
            document, _created = KnowledgeDocument.objects.for_organization(organization).get_or_create(
                source=item.source,
                key=item.key[:2000],
                defaults={"organization": organization, "content_hash": item.text_hash},
            )
            old = list(document.chunks.values_list("lexical", "lexical_length"))
            if old:
                _chunks_unindex(organization=organization, chunks=old, statistics=statistics)
                document.chunks.all().delete()
            languages = [analysis.language_detect(text) for text in texts]
            counts = [
                retrieval.term_counts(text, language=language)
                for text, language in zip(texts, languages, strict=True)
            ]
            item_vectors = vectors[position : position + len(texts)] if vectors else None
            position += len(texts)
            stored.append((index, document, counts, languages, item_vectors))

        new_length = sum(sum(count.values()) for _, _, counts, _, _ in stored for count in counts)
        new_chunks = sum(len(counts) for _, _, counts, _, _ in stored)
        chunk_total = statistics.chunk_count + new_chunks
        average_length = (statistics.total_length + new_length) / chunk_total if chunk_total else 0.0
        delta: Counter[int] = Counter()
        rows = []
        for (index, document, counts, languages, item_vectors), (_, item) in zip(
            stored, pending, strict=True
        ):
            for number, (draft, count, language) in enumerate(
                zip(item.drafts, counts, languages, strict=True)
            ):
                delta.update(count.keys())
                weights = retrieval.document_weights(count, average_length=average_length)
                vector = item_vectors[number] if item_vectors else None
                question_vector = next(question_vectors) if vector is not None and draft.question else None
                rows.append(
                    Chunk(
                        organization=organization,
                        source=item.source,
                        document=document,
                        assistant_id=item.source.assistant_id,
                        chunk_no=number,
                        title=item.title[:500],
                        heading=draft.heading[:500],
                        url=item.url[:2000],
                        page=draft.page,
                        content=draft.content,
                        lexical=SparseVector(weights, LEXICAL_DIMENSIONS),
                        lexical_length=sum(count.values()),
                        lexical_avgdl=average_length,
                        terms=sorted(count),
                        language=language,
                        embedding=vector,
                        embedding_model=embedder.name if vector is not None else "",
                        embedding_dimensions=len(vector) if vector is not None else 0,
                        question_embedding=question_vector,
                    )
                )
            document.title = item.title[:500]
            document.url = item.url[:2000]
            document.content_hash = item.text_hash
            document.parser_version = PARSER_VERSION
            document.chunk_count = len(item.drafts)
            document.save(
                update_fields=["title", "url", "content_hash", "parser_version", "chunk_count", "updated_at"]
            )
            results[index] = StoreResult(document=document, changed=True)
        Chunk.objects.unscoped().bulk_create(rows, batch_size=500)
        _term_frequencies_apply(organization=organization, delta=delta)
        statistics.chunk_count += len(rows)
        statistics.total_length += new_length
        statistics.save(update_fields=["chunk_count", "total_length"])
    return [results[index] for index in range(len(items))]


def _vectors_missing(*, document: KnowledgeDocument, embedder: Embedder, questions: bool) -> bool:
    """Whether a stored document lacks the current embedder's vectors: a chunk embedded by
    another model (or not at all), or, for a Q&A pair (`questions`), a chunk stored before
    questions had a vector of their own. One query."""
    missing = ~Q(embedding_model=embedder.name)
    if questions:
        missing |= Q(question_embedding__isnull=True)
    return document.chunks.filter(missing).exists()


def documents_remove(*, source: KnowledgeSource, keep_keys: set[str] | None = None) -> int:
    """Delete `source`'s documents (all, or those not in `keep_keys`) and unindex their chunks."""
    organization = source.organization
    with transaction.atomic():
        statistics = _statistics_lock(organization=organization)
        documents = KnowledgeDocument.objects.for_organization(organization).filter(source=source)
        if keep_keys is not None:
            documents = documents.exclude(key__in=keep_keys)
        chunks = list(
            Chunk.objects.for_organization(organization)
            .filter(document__in=documents)
            .values_list("lexical", "lexical_length")
        )
        if chunks:
            _chunks_unindex(organization=organization, chunks=chunks, statistics=statistics)
            statistics.save(update_fields=["chunk_count", "total_length"])
        removed, _ = documents.delete()
    return removed


def source_counts_refresh(*, source: KnowledgeSource) -> None:
    documents = KnowledgeDocument.objects.for_organization(source.organization).filter(source=source)
    source.document_count = documents.count()
    source.chunk_count = Chunk.objects.for_organization(source.organization).filter(source=source).count()
    source.save(update_fields=["document_count", "chunk_count", "updated_at"])


def chunks_reembed(*, organization=None, batch_size: int = 64, limit: int | None = None) -> int:
    """Embed chunks whose vectors are missing or from another model than their organization's
    embedder (`organization`'s, or every organization's), and Q&A chunks without their
    question's vector (stored before questions had one); returns how many chunks.

    A Q&A chunk's two vectors are always written together, by one embedder, so the chunk's
    `embedding_model` speaks for both."""
    from organizations.models import Organization

    if organization is not None:
        targets = [(embedder_get(organization=organization), Chunk.objects.for_organization(organization))]
    else:
        targets = [
            (
                embedder_get(choice=choice),
                Chunk.objects.unscoped().filter(
                    organization__in=Organization.objects.filter(knowledge_embedder=choice)
                ),
            )
            for choice in CHOICES
        ]
    done = 0
    for embedder, queryset in targets:
        stale = ~Q(embedding_model=embedder.name) | (
            Q(source__kind=KnowledgeSource.Kind.QA, question_embedding__isnull=True) & ~Q(source__question="")
        )
        while limit is None or done < limit:
            batch = list(
                queryset.filter(stale)
                .order_by("id")
                .values_list("id", "title", "content", "source__kind", "source__question", "organization_id")[
                    :batch_size
                ]
            )
            if not batch:
                break
            vectors, question_vectors = chunk_vectors(embedder=embedder, rows=[row[:5] for row in batch])
            by_organization: dict = {}
            for row, vector, question_vector in zip(batch, vectors, question_vectors, strict=True):
                by_organization.setdefault(row[5], []).append((row[0], vector, question_vector))
            for organization_id in sorted(by_organization):
                with transaction.atomic():  # the corpus row first, as every index write (`_statistics_lock`)
                    _statistics_lock(organization=organization_id)
                    for chunk_id, vector, question_vector in by_organization[organization_id]:
                        Chunk.objects.unscoped().filter(pk=chunk_id).update(
                            embedding=vector,
                            embedding_model=embedder.name,
                            embedding_dimensions=len(vector),
                            question_embedding=question_vector,
                        )
            done += len(batch)
    return done


def chunk_vectors(*, embedder: Embedder, rows: list[tuple]) -> tuple[list, list]:
    """For rows (id, title, content, source kind, source question): each chunk's vector, and
    its question's vector (a Q&A pair's; None for other chunks), in one embedding call."""
    texts = [chunk_text_for_index(title=title, content=content) for _id, title, content, _k, _q in rows]
    questions = [question for *_rest, kind, question in rows if kind == KnowledgeSource.Kind.QA and question]
    vectors = _embed_or_none(embedder=embedder, texts=texts, questions=questions, required=True)
    question_vectors = iter(vectors[len(texts) :])
    return vectors[: len(texts)], [
        next(question_vectors) if kind == KnowledgeSource.Kind.QA and question else None
        for *_rest, kind, question in rows
    ]


def lexical_statistics_rebuild(*, organization) -> bool:
    """Recount the organization's term statistics from its chunks; returns True if they had
    drifted (rows removed by a database cascade, e.g. a deleted assistant, bypass the
    bookkeeping in `documents_remove`)."""
    with transaction.atomic():
        statistics = _statistics_lock(organization=organization)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), coalesce(sum(lexical_length), 0) FROM knowledge_chunk WHERE organization_id = %s",
                [organization.pk],
            )
            chunk_count, total_length = cursor.fetchone()
            if chunk_count == statistics.chunk_count and total_length == statistics.total_length:
                return False
            cursor.execute(
                "DELETE FROM knowledge_termstatistic WHERE organization_id = %s", [organization.pk]
            )
            cursor.execute(
                "INSERT INTO knowledge_termstatistic (id, organization_id, created_at, term, document_frequency) "
                "SELECT gen_random_uuid(), %s, now(), term, count(*) FROM knowledge_chunk, unnest(terms) AS term "
                "WHERE organization_id = %s GROUP BY term",
                [organization.pk, organization.pk],
            )
        statistics.chunk_count = chunk_count
        statistics.total_length = total_length
        statistics.save(update_fields=["chunk_count", "total_length"])
    return True


def chunks_reanalyse(*, organization, batch_size: int = 500) -> int:
    """Detect each chunk's language again and re-weight the chunks whose language changed
    (chunks indexed before languages were detected are English); returns how many changed.
    A chunk keeps the average length it was weighted with; the term statistics follow."""
    changed = 0
    last_id = None
    while True:
        chunks = Chunk.objects.for_organization(organization).order_by("id")
        if last_id is not None:
            chunks = chunks.filter(id__gt=last_id)
        batch = list(
            chunks.only("id", "title", "content", "language", "lexical_length", "lexical_avgdl")[:batch_size]
        )
        if not batch:
            return changed
        last_id = batch[-1].id
        updates = []
        for chunk in batch:
            text = chunk_text_for_index(title=chunk.title, content=chunk.content)
            language = analysis.language_detect(text)
            if language != chunk.language:
                updates.append((chunk, language, retrieval.term_counts(text, language=language)))
        if updates:
            _chunks_reweight(organization=organization, updates=updates)
            changed += len(updates)


def _chunks_reweight(*, organization, updates: list[tuple[Chunk, str, Counter[int]]]) -> None:
    with transaction.atomic():
        statistics = _statistics_lock(organization=organization)
        delta: Counter[int] = Counter()
        for chunk, language, count in updates:
            current = Chunk.objects.for_organization(organization).filter(pk=chunk.pk).only("lexical").first()
            if current is None:  # deleted meanwhile
                continue
            delta.subtract(Counter(current.lexical.indices()))
            delta.update(count.keys())
            statistics.total_length += sum(count.values()) - chunk.lexical_length
            weights = retrieval.document_weights(count, average_length=chunk.lexical_avgdl)
            Chunk.objects.for_organization(organization).filter(pk=chunk.pk).update(
                language=language,
                lexical=SparseVector(weights, LEXICAL_DIMENSIONS),
                lexical_length=sum(count.values()),
                terms=sorted(count),
            )
        _term_frequencies_apply(organization=organization, delta=delta)
        statistics.total_length = max(0, statistics.total_length)
        statistics.save(update_fields=["total_length"])
