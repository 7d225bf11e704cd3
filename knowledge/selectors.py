"""Knowledge reads, and the one retrieval function the answering engine calls."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.db.models import IntegerField, Value
from pgvector import SparseVector

from core import timing
from core.errors import NotFound, UpstreamError, ValidationFailed
from knowledge import lexical
from knowledge.embeddings import embedder_get, query_embed
from knowledge.models import LEXICAL_DIMENSIONS, Chunk, CorpusStatistic, KnowledgeSource, TermStatistic
from knowledge.types import Passage

logger = logging.getLogger(__name__)

SEARCH_MODES = ("hybrid", "lexical", "vector")
CANDIDATES = 50  # per retriever, before fusion
RRF_K = 60
MAX_K = 100
MAX_QUERY_CHARS = 2000
SNIPPET_CHARS = 300
HNSW_EF_SEARCH = 100
# In organizations larger than settings.KNOWLEDGE_LEXICAL_PRUNE_MIN_CHUNKS (default 5,000),
# BM25 ranks a bounded candidate set instead of every chunk: the chunks holding the query's
# rarest terms, found through the GIN index on `terms`. Terms are taken rarest first while
# their summed document frequencies stay within the candidate budget (the larger of
# settings.KNOWLEDGE_LEXICAL_CANDIDATES and CANDIDATE_SHARE of the organization's chunks);
# the rarest term is always taken. Rare terms carry most of a BM25 score, and the semantic
# retriever covers what the pruned lexical side misses (docs/knowledge.md has the measured
# cost in quality).
CANDIDATE_SHARE = 0.02


def source_list(*, organization, assistant=None, kind: str | None = None):
    """Sources of the organization (all, or the org-wide ones plus `assistant`'s), newest first."""
    sources = KnowledgeSource.objects.for_organization(organization)
    if assistant is not None:
        sources = sources.filter(assistant__isnull=True) | sources.filter(assistant=assistant)
    if kind:
        sources = sources.filter(kind=kind)
    return sources.order_by("-created_at")


def source_get(*, organization, source_id, kind: str | None = None) -> KnowledgeSource:
    sources = KnowledgeSource.objects.for_organization(organization)
    if kind:
        sources = sources.filter(kind=kind)
    try:
        return sources.get(pk=source_id)
    except (KnowledgeSource.DoesNotExist, ValueError, TypeError, DjangoValidationError) as error:
        # "Not yours", "does not exist" and "not an id" are the same answer.
        raise NotFound("Knowledge source not found.") from error


def _scope_sql(*, organization, assistant) -> tuple[str, list]:
    if assistant is None:
        return "organization_id = %s AND assistant_id IS NULL", [organization.pk]
    return "organization_id = %s AND (assistant_id IS NULL OR assistant_id = %s)", [
        organization.pk,
        assistant.pk,
    ]


@dataclass(frozen=True)
class LexicalQuery:
    vector: SparseVector
    rare_terms: list[int]  # candidates hold one of these; empty = rank every chunk of the organization
    chunk_count: int


def organization_chunk_count(*, organization) -> int:
    """How many chunks the organization has (its BM25 corpus statistics row, kept current)."""
    statistics = CorpusStatistic.objects.for_organization(organization).values_list("chunk_count", flat=True)
    return next(iter(statistics), 0)


# The corpus row's place in `corpus_statistics`' union; real terms are hashes >= 0.
_CHUNK_COUNT_TERM = -1


def corpus_statistics(*, organization, terms: list[int]) -> tuple[int, dict[int, int]]:
    """(the organization's chunk count, each of `terms`' document frequency) in one query: a
    search needs both before it ranks (the count also picks exact or HNSW vector search)."""
    chunk_count = (
        CorpusStatistic.objects.for_organization(organization)
        .annotate(term=Value(_CHUNK_COUNT_TERM, output_field=IntegerField()))
        .values_list("term", "chunk_count")
    )
    if not terms:
        return next(iter(chunk_count), (None, 0))[1], {}
    rows = chunk_count.union(
        TermStatistic.objects.for_organization(organization)
        .filter(term__in=terms)
        .values_list("term", "document_frequency"),
        all=True,
    )
    frequencies = dict(rows)
    return frequencies.pop(_CHUNK_COUNT_TERM, 0), frequencies


def _lexical_query_build(
    *, counts: dict[int, int], chunk_count: int, frequencies: dict[int, int]
) -> LexicalQuery | None:
    if not counts or not chunk_count:
        return None
    weights = {
        term: count
        * lexical.inverse_document_frequency(chunk_count=chunk_count, document_frequency=frequencies[term])
        for term, count in counts.items()
        if frequencies.get(term)
    }
    if not weights:
        return None
    rare_terms = []
    if chunk_count > settings.KNOWLEDGE_LEXICAL_PRUNE_MIN_CHUNKS:
        budget = max(settings.KNOWLEDGE_LEXICAL_CANDIDATES, CANDIDATE_SHARE * chunk_count)
        covered = 0
        for term in sorted(weights, key=lambda term: (frequencies[term], term)):
            if rare_terms and covered + frequencies[term] > budget:
                break
            rare_terms.append(term)
            covered += frequencies[term]
        rare_terms.sort()
    return LexicalQuery(
        vector=SparseVector(weights, LEXICAL_DIMENSIONS), rare_terms=rare_terms, chunk_count=chunk_count
    )


def query_vector_lexical(*, organization, query: str) -> LexicalQuery | None:
    """BM25's query side: each query term's IDF (times its count in the query)."""
    counts = lexical.term_counts(query)
    if not counts:
        return None
    chunk_count, frequencies = corpus_statistics(organization=organization, terms=list(counts))
    return _lexical_query_build(counts=counts, chunk_count=chunk_count, frequencies=frequencies)


def _lexical_ranking(
    *, organization, assistant, lexical_query: LexicalQuery | None, limit: int
) -> list[tuple[str, float]]:
    if lexical_query is None:
        return []
    scope, params = _scope_sql(organization=organization, assistant=assistant)
    vector = lexical_query.vector.to_text()
    prune = ""
    if lexical_query.rare_terms:
        prune = "AND terms && %s::int[] "
        params = [*params, lexical_query.rare_terms]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, score FROM (SELECT id, (lexical <#> %s::sparsevec) * -1 AS score FROM knowledge_chunk "  # noqa: S608
            f"WHERE {scope} {prune}ORDER BY lexical <#> %s::sparsevec LIMIT %s) ranked WHERE score > 0",
            [vector, *params, vector, limit],
        )
        return [(str(chunk_id), float(score)) for chunk_id, score in cursor.fetchall()]


def _vector_ranking(
    *, organization, assistant, vector: list[float], model: str, limit: int, exact: bool = False
) -> list[tuple[str, float]]:
    dimensions = int(len(vector))
    scope, params = _scope_sql(organization=organization, assistant=assistant)
    literal = "[" + ",".join(repr(float(value)) for value in vector) + "]"
    distance_sql = f"(embedding::vector({dimensions})) <=> %s::vector({dimensions})"
    if exact:
        # A small organization in a large table: comparing its own rows (found through the
        # organization index) is faster than walking the shared HNSW graph past everyone
        # else's, and exact. Ordering by `distance + 0` is an expression the HNSW index
        # cannot serve, so the planner sorts the organization's rows instead: one statement,
        # where `SET LOCAL enable_indexscan = off` needed a transaction (four round trips).
        order, settings_sql = f"({distance_sql}) + 0", []
    else:
        # The organization filter is applied while the HNSW index is walked (pgvector 0.8
        # iterative scans), so a small tenant among large ones still gets its top matches.
        order = distance_sql
        settings_sql = [
            ("SET LOCAL hnsw.iterative_scan = relaxed_order", []),
            ("SET LOCAL hnsw.ef_search = %s", [max(HNSW_EF_SEARCH, limit)]),
        ]
    with transaction.atomic() if settings_sql else nullcontext(), connection.cursor() as cursor:
        for statement, statement_params in settings_sql:
            cursor.execute(statement, statement_params)
        cursor.execute(
            f"SELECT id, distance FROM (SELECT id, {distance_sql} "  # noqa: S608
            f"AS distance FROM knowledge_chunk WHERE {scope} AND embedding_model = %s "
            f"AND embedding_dimensions = {dimensions} "
            f"ORDER BY {order} LIMIT %s) found "
            "ORDER BY distance",
            [literal, *params, model, literal, limit],
        )
        return [(str(chunk_id), 1.0 - float(distance)) for chunk_id, distance in cursor.fetchall()]


def rank_fuse(*rankings: list[tuple[str, float]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion of best-first rankings: a candidate scores the sum of 1 / (k + rank).

    RRF is defined over complete rankings, and a retriever returns only its top few. A
    candidate one retriever did not return ranks somewhere below all that it did, so it counts
    at the rank just after that list's last entry, not as absent: absent would hand a chunk
    that both lists happen to hold (say 2nd and 9th) a lead over one the other retriever put
    first. For a lexical list that ends because no other chunk shares a query term this is the
    exact (tied) rank; for a truncated list it is the best rank the chunk could have.

    Equal sums are common (ranked 1st and 3rd against 3rd and 1st) and go to the candidate
    the retrievers were surer of: each list's scores min-max normalised and summed. Then to
    the lower id, so the order never depends on chance.
    """
    fused: defaultdict[str, float] = defaultdict(float)
    confidence: defaultdict[str, float] = defaultdict(float)
    candidates = {chunk_id for ranking in rankings for chunk_id, _score in ranking}
    for ranking in rankings:
        if not ranking:
            continue
        scores = [score for _chunk_id, score in ranking]
        low, spread = min(scores), max(scores) - min(scores)
        ranks = {chunk_id: rank for rank, (chunk_id, _score) in enumerate(ranking, start=1)}
        for chunk_id in candidates:
            fused[chunk_id] += 1.0 / (k + ranks.get(chunk_id, len(ranking) + 1))
        for chunk_id, score in ranking:
            confidence[chunk_id] += (score - low) / spread if spread else 1.0
    order = sorted(fused, key=lambda chunk_id: (-round(fused[chunk_id], 12), -confidence[chunk_id], chunk_id))
    return [(chunk_id, fused[chunk_id]) for chunk_id in order]


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def snippet_make(*, content: str, query: str, limit: int = SNIPPET_CHARS) -> str:
    """The stretch of `content` (whole sentences where possible) that shares most terms with the query."""
    text = " ".join(content.split())
    if len(text) <= limit:
        return text
    query_terms = set(lexical.terms_tokenize(query))
    sentences = [sentence for sentence in _SENTENCE_SPLIT.split(content) if sentence.strip()]
    best_index, best_hits = 0, -1
    for index, sentence in enumerate(sentences):
        hits = len(query_terms.intersection(lexical.terms_tokenize(sentence)))
        if hits > best_hits:
            best_index, best_hits = index, hits
    pieces: list[str] = []
    length = 0
    for sentence in sentences[best_index:]:
        sentence = " ".join(sentence.split())
        if length + len(sentence) + 1 > limit:
            break
        pieces.append(sentence)
        length += len(sentence) + 1
    snippet = " ".join(pieces)
    if not snippet:
        snippet = " ".join(sentences[best_index].split())
    if len(snippet) > limit:
        cut = snippet.rfind(" ", 0, limit - 1)
        snippet = snippet[: cut if cut > limit // 2 else limit - 1].rstrip() + "…"
    return snippet


def _passages(*, ranked: list[tuple[str, float]], query: str, embedder_name: str = "") -> list[Passage]:
    if not ranked:
        return []
    chunks = {
        str(chunk.pk): chunk
        for chunk in Chunk.objects.unscoped()
        .filter(pk__in=[chunk_id for chunk_id, _ in ranked])
        .select_related("source")
        .only(
            "id",
            "title",
            "url",
            "page",
            "content",
            "heading",
            "embedding",
            "embedding_model",
            "source__id",
            "source__kind",
            "source__title",
            "source__url",
            "source__file_name",
            "source__question",
            "source__answer",
        )
    }
    passages = []
    for chunk_id, score in ranked:
        chunk = chunks.get(chunk_id)
        if chunk is None:  # deleted between the ranking and this read
            continue
        source = chunk.source
        is_qa = source.kind == KnowledgeSource.Kind.QA
        passages.append(
            Passage(
                source_id=source.pk,
                chunk_id=chunk.pk,
                source_type=source.kind,
                title=source.question
                if is_qa
                else (chunk.title or source.title or chunk.url or source.file_name),
                url=chunk.url or source.url,
                file_name=source.file_name,
                page=chunk.page,
                content=chunk.content,
                snippet=(
                    source.answer
                    if is_qa and len(source.answer) <= SNIPPET_CHARS
                    else snippet_make(content=source.answer if is_qa else chunk.content, query=query)
                ),
                score=score,
                question=source.question if is_qa else "",
                answer=source.answer if is_qa else "",
                embedding=(
                    tuple(float(value) for value in chunk.embedding)
                    if embedder_name
                    and chunk.embedding_model == embedder_name
                    and chunk.embedding is not None
                    else None
                ),
            )
        )
    return passages


def chunk_search(
    *, organization, assistant=None, query: str, k: int = 5, mode: str = "hybrid"
) -> list[Passage]:
    """The best `k` passages of the organization's knowledge for `query`, best first.

    `assistant=None` searches the organization-wide knowledge; with an assistant, its own
    sources are searched too. `mode`: "hybrid" (default: BM25 and vectors fused by
    reciprocal rank), "lexical" (BM25 only) or "vector" (embeddings only).
    """
    if mode not in SEARCH_MODES:
        raise ValidationFailed(f"mode must be one of {', '.join(SEARCH_MODES)}.")
    query = (query or "").strip()[:MAX_QUERY_CHARS]
    k = max(1, min(int(k), MAX_K))
    if not query:
        return []

    query_embedding = None
    embedder = None
    if mode in ("hybrid", "vector"):
        embedder = embedder_get()
        with timing.phase("embed"):
            try:
                query_embedding = query_embed(embedder=embedder, text=query)
            except UpstreamError:
                if mode == "vector":
                    raise
                logger.warning("query embedding failed; answering from lexical retrieval only")

    limit = max(CANDIDATES, k)
    with timing.phase("retrieve"):
        counts = lexical.term_counts(query) if mode in ("hybrid", "lexical") else {}
        chunk_count, frequencies = corpus_statistics(organization=organization, terms=list(counts))
        lexical_ranking = (
            _lexical_ranking(
                organization=organization,
                assistant=assistant,
                lexical_query=_lexical_query_build(
                    counts=counts, chunk_count=chunk_count, frequencies=frequencies
                ),
                limit=limit,
            )
            if mode in ("hybrid", "lexical")
            else []
        )
        vector_ranking = (
            _vector_ranking(
                organization=organization,
                assistant=assistant,
                vector=query_embedding,
                model=embedder.name,
                limit=limit,
                exact=chunk_count <= settings.KNOWLEDGE_VECTOR_EXACT_MAX_CHUNKS,
            )
            if query_embedding is not None
            else []
        )
        if mode == "lexical":
            ranked = lexical_ranking[:k]
        elif mode == "vector":
            ranked = vector_ranking[:k]
        else:
            ranked = rank_fuse(lexical_ranking, vector_ranking)[:k]
        return _passages(ranked=ranked, query=query, embedder_name=embedder.name if embedder else "")
