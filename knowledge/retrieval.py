"""Retrieval: the pipeline that finds the passages of an organization's knowledge for a question.

One function is called from outside, `chunk_search`; the stages it runs, in order:
1. **query analysis** (`query_analyse`): the question's terms through the one text analyser
   (`knowledge.analysis`: stop words, Snowball stems); an English question's misspelt words are
   corrected to the word one edit away that the organization's knowledge uses
   (`spelling_correct`: "pasword" -> "password"), for both retrievers;
2. **lexical** (`lexical_query_build`, `lexical_ranking`): BM25 inside Postgres as sparse
   vectors (the weighting below) over the chunks holding a query term (in large organizations,
   a rare one), read from narrow copies of the chunks' BM25 side (`ChunkLexical`);
3. **vector** (`vector_candidates`): the question's embedding against the chunks' through
   pgvector's HNSW index (iterative scan, `HNSW_EF_SEARCH`), or exactly in small organizations;
   a Q&A pair is matched on its question's own vector as well as on question and answer;
4. **fusion** (`rank_fuse`, `fusion_for`): each list's scores divided by its best, combined
   0.55 lexical / 0.45 vector (chosen by cross-validation, see `FUSION`), in which a Q&A pair's
   lexical vote is never worse than its vector one; an embedder whose cosines have another
   scale has its own (`FUSION_BY_EMBEDDER`: multilingual-e5's cosines above a floor, 0.25 / 0.75);
5. **snippets** (`passages_build`, `snippet_make`): the ranked chunks as `Passage`s with the
   stretch of text that best matches the question.

BM25 as sparse vectors. A chunk's `lexical` vector holds, for each (hashed) term, its BM25
term weight
    tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avgdl))
and a query's vector holds each query term's IDF from the organization's term statistics
    ln(1 + (N - df + 0.5) / (df + 0.5)).
Their inner product is the BM25 score, which pgvector ranks with `<#>`. IDF lives on the
query side so it follows the corpus as it grows; avgdl is fixed when a chunk is weighted
(the organization's average at that time, kept in `Chunk.lexical_avgdl`), which is BM25 with
a slightly stale normaliser: nothing re-weights stored chunks when the average drifts.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
import uuid
import zlib
from collections import Counter
from collections.abc import Collection
from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from pgvector import SparseVector

from core import timing
from core.errors import UpstreamError, ValidationFailed
from knowledge import analysis, vector_cache
from knowledge.embeddings import MULTILINGUAL_MODEL_NAME, embedder_get, query_embed
from knowledge.models import LEXICAL_DIMENSIONS, Chunk, KnowledgeSource
from knowledge.types import Passage

logger = logging.getLogger(__name__)

SEARCH_MODES = ("hybrid", "lexical", "vector")
CANDIDATES = 50  # per retriever, before fusion
RRF_K = 60
MAX_K = 100
MAX_QUERY_CHARS = 2000
SNIPPET_CHARS = 300
HNSW_EF_SEARCH = 100
# A Q&A pair's vector score: this share from its question alone, the rest from its question and
# answer together. Chosen on the dev split of bench/data/support_kbs.json (right Q&A first over
# 0, 0.05, ..., 0.5; 0.2 was best, 0 is the old full-text-only score, and the better-of-the-two
# (max) scored below both); docs/benchmarks.md has the held-out figures.
QUESTION_WEIGHT = 0.2
# BM25's parameters.
K1 = 1.5
B = 0.75
# In organizations larger than settings.KNOWLEDGE_LEXICAL_PRUNE_MIN_CHUNKS (default 5,000),
# BM25 ranks a bounded candidate set instead of every chunk holding a query term: the chunks
# holding the query's rarest terms, found through the GIN index on `ChunkLexical.terms`.
# Terms are taken rarest first while their summed document frequencies stay within the
# candidate budget (the larger of settings.KNOWLEDGE_LEXICAL_CANDIDATES and CANDIDATE_SHARE of
# the organization's chunks); the rarest term is always taken. Rare terms carry most of a BM25 score, and the semantic
# retriever covers what the pruned lexical side misses (docs/knowledge.md has the measured
# cost in quality).
CANDIDATE_SHARE = 0.02


# --- BM25 weights (shared with indexing) ------------------------------------------------
@lru_cache(maxsize=200_000)
def term_dimension(term: str) -> int:
    return zlib.crc32(term.encode("utf-8")) % LEXICAL_DIMENSIONS


def term_counts(text: str, *, language: str = analysis.DEFAULT_LANGUAGE) -> Counter[int]:
    """Hashed term frequencies of `text` (term dimension -> count)."""
    return Counter(term_dimension(term) for term in analysis.terms(text, language=language))


def document_weights(counts: Counter[int], *, average_length: float) -> dict[int, float]:
    length = sum(counts.values())
    if not length:
        return {}
    average_length = average_length or float(length)
    norm = K1 * (1 - B + B * length / average_length)
    return {dimension: tf * (K1 + 1) / (tf + norm) for dimension, tf in counts.items()}


def inverse_document_frequency(*, chunk_count: int, document_frequency: int) -> float:
    return math.log(1 + (chunk_count - document_frequency + 0.5) / (document_frequency + 0.5))


# --- 1. query analysis --------------------------------------------------------------------
@dataclass(frozen=True)
class QueryAnalysis:
    text: str  # the question as searched (stripped, at most MAX_QUERY_CHARS)
    language: str  # the analyser's language for it (ISO 639-1)
    counts: Counter[int]  # its hashed BM25 terms (term dimension -> count)


def query_text(query: str) -> str:
    """The question as searched: stripped, at most MAX_QUERY_CHARS."""
    return (query or "").strip()[:MAX_QUERY_CHARS]


def query_analyse(query: str) -> QueryAnalysis:
    """The question as the retrievers see it: its text, its language and its BM25 terms.

    The terms are the question's analysed in its own language (they match chunks written
    in it) and, for a question not in English, also analysed as English, the default
    language of knowledge (names, products and numbers, and a safety net for a question
    the detector got wrong). A term counts once even when both analyses give it.
    """
    text = query_text(query)
    language = analysis.language_detect(text)
    counts = term_counts(text, language=language)
    if language != analysis.DEFAULT_LANGUAGE:
        counts |= term_counts(text, language=analysis.DEFAULT_LANGUAGE)
    return QueryAnalysis(text=text, language=language, counts=counts)


# --- 2. lexical: BM25 as sparse vectors ---------------------------------------------------
def scope_sql(*, organization, assistant) -> tuple[str, list]:
    """The chunks a search of `organization` (for `assistant`, or organization-wide) may rank:
    the organization's own, organization-wide or the assistant's. `scope_mask` is the same rule
    over the rows of one organization held in the web process (`knowledge.vector_cache`)."""
    if assistant is None:
        return "organization_id = %s AND assistant_id IS NULL", [organization.pk]
    return "organization_id = %s AND (assistant_id IS NULL OR assistant_id = %s)", [
        organization.pk,
        assistant.pk,
    ]


def scope_mask(entry, *, organization, assistant):
    """`scope_sql` over a `vector_cache.Entry`: which of its rows a search may rank. The entry
    holds one organization's rows only; one of another organization allows none."""
    import numpy

    if entry.organization_id != organization.pk:
        return numpy.zeros(len(entry.ids), dtype=bool)
    allowed = entry.assistants == -1
    if assistant is not None and assistant.pk in entry.assistant_ids:
        allowed |= entry.assistants == entry.assistant_ids[assistant.pk]
    return allowed


@dataclass(frozen=True)
class LexicalQuery:
    vector: SparseVector
    rare_terms: list[int]  # candidates hold one of these; empty = every chunk holding a query term
    chunk_count: int


def corpus_statistics(*, organization, terms: list[int]) -> tuple[int, dict[int, int]]:
    """(the organization's chunk count, each of `terms`' document frequency) in one query: a
    search needs both before it ranks (the count also picks exact or HNSW vector search)."""
    chunk_count, frequencies, _generation = _corpus_statistics(organization=organization, terms=terms)
    return chunk_count, frequencies


def _corpus_statistics(
    *, organization, terms: list[int]
) -> tuple[int, dict[int, int], vector_cache.Generation | None]:
    """`corpus_statistics`, and the organization's vector generation (None: no corpus row yet),
    which tells whether the vectors this process holds for it are current (`vector_cache`).

    Written as SQL: the ORM's union of two querysets cost ~1 ms of Python per chat turn to
    build, five times the round trip's own client cost."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT NULL, chunk_count, vector_generation, "
            "extract(epoch FROM statement_timestamp() - vector_changed_at)::float8 "
            "FROM knowledge_corpusstatistic WHERE organization_id = %s "
            "UNION ALL SELECT term, document_frequency, NULL, NULL FROM knowledge_termstatistic "
            "WHERE organization_id = %s AND term = ANY(%s)",
            [organization.pk, organization.pk, list(terms)],
        )
        rows = cursor.fetchall()
    chunk_count, generation, frequencies = 0, None, {}
    for term, value, vector_generation, age in rows:
        if term is None:
            chunk_count, generation = value, vector_cache.Generation(value=vector_generation, age_seconds=age)
        else:
            frequencies[term] = value
    return chunk_count, frequencies, generation


# The statistics the last search on this thread looked up: (organization pk, the terms looked
# up, chunk count, their document frequencies). The relevance gate asks for the same terms
# right after retrieval, in the same request, and should not cost a second query.
_last_statistics = threading.local()


def term_document_frequencies(*, organization, terms: list[str]) -> tuple[int, dict[str, int]]:
    """(the organization's chunk count, how many of its chunks contain each of `terms`, analysed
    terms as `knowledge.analysis` gives them; 0 = no chunk does). Served from the search this
    thread just ran when it looked these terms up (a chat turn: no extra query), else one query."""
    dimensions = {term: term_dimension(term) for term in terms}
    last = getattr(_last_statistics, "value", None)
    if last is not None and last[0] == organization.pk and set(dimensions.values()) <= last[1]:
        chunk_count, frequencies = last[2], last[3]
    else:
        chunk_count, frequencies = corpus_statistics(
            organization=organization, terms=list(set(dimensions.values()))
        )
    return chunk_count, {term: frequencies.get(dimension, 0) for term, dimension in dimensions.items()}


def spelling_terms(suspects: dict[str, tuple[str, ...]]) -> set[int]:
    """The term dimensions `spelling_correct` needs the document frequencies of: each suspect
    word's and each of its candidates'."""
    words = [word for word, candidates in suspects.items() for word in (word, *candidates)]
    return {term_dimension(analysis.stem(word)) for word in words}


def spelling_correct(text: str, *, suspects: dict[str, tuple[str, ...]], frequencies: dict[int, int]) -> str:
    """`text` with each suspect word (`analysis.spelling_suspects`) that no chunk of the
    organization holds replaced by its candidate that the most chunks hold; a suspect the
    knowledge uses ("Tasklane", a product's name) or with no candidate in it stays as written.
    `frequencies`: the organization's document frequencies of `spelling_terms(suspects)`."""
    corrections = {}
    for word, candidates in suspects.items():
        if frequencies.get(term_dimension(analysis.stem(word))):
            continue
        held = [
            (frequencies.get(term_dimension(analysis.stem(candidate)), 0), candidate)
            for candidate in candidates
        ]
        best = max(held, key=lambda item: item[0])  # ties: the first in alphabetical order
        if best[0]:
            corrections[word] = best[1]
    return analysis.spelling_apply(text, corrections)


# The question the last search on this thread searched for, as written and as searched (after
# `spelling_correct`): (organization pk, as written, as searched). The relevance gate scores the
# candidates against the question as searched (`query_as_searched`), whose vector is in the
# query cache.
_last_searched = threading.local()


def query_as_searched(*, organization, query: str) -> str:
    """`query` as the last `chunk_search` on this thread for this organization searched it
    (misspellings corrected), or `query` itself when that search was for another question."""
    last = getattr(_last_searched, "value", None)
    if last is not None and last[0] == organization.pk and last[1] == query:
        return last[2]
    return query


@dataclass(frozen=True)
class PreparedQuery:
    analysed: QueryAnalysis  # the question as searched: misspellings corrected (`spelling_correct`)
    chunk_count: int  # the organization's
    frequencies: dict[int, int]  # document frequencies of the terms looked up (absent: 0)
    generation: vector_cache.Generation | None = None  # its vectors' (None: no corpus row)


def query_prepare(*, organization, query: str, lexical: bool = True) -> PreparedQuery:
    """The question as `chunk_search` searches it, with the corpus statistics BM25 needs: analysed
    (`query_analyse`), an English question's misspelt words corrected to the words the
    organization's knowledge uses (`spelling_correct`), and its terms' document frequencies
    (`lexical`: a search that ranks by BM25), looked up in the same statement as the suspects'.
    Remembers the question as searched for `query_as_searched` and the statistics for
    `term_document_frequencies`. (Benchmarks that collect the retrievers' lists call it too.)"""
    analysed = query_analyse(query)
    suspects = (
        analysis.spelling_suspects(analysed.text) if analysed.language == analysis.DEFAULT_LANGUAGE else {}
    )
    looked_up = (set(analysed.counts) if lexical else set()) | spelling_terms(suspects)
    with timing.phase("retrieve"):
        chunk_count, frequencies, generation = _corpus_statistics(
            organization=organization, terms=list(looked_up)
        )
    searched = spelling_correct(analysed.text, suspects=suspects, frequencies=frequencies)
    corrected = searched != analysed.text
    if corrected:
        analysed = query_analyse(searched)
        if lexical and not set(analysed.counts) <= looked_up:
            looked_up |= set(analysed.counts)  # the corrected text analysed otherwise (rare)
            with timing.phase("retrieve"):
                chunk_count, frequencies, generation = _corpus_statistics(
                    organization=organization, terms=list(looked_up)
                )
    _last_searched.value = (organization.pk, query, searched if corrected else query)
    _last_statistics.value = (organization.pk, frozenset(looked_up), chunk_count, frequencies)
    return PreparedQuery(
        analysed=analysed, chunk_count=chunk_count, frequencies=frequencies, generation=generation
    )


def lexical_query_build(
    *, counts: dict[int, int], chunk_count: int, frequencies: dict[int, int]
) -> LexicalQuery | None:
    if not counts or not chunk_count:
        return None
    weights = {
        term: count
        * inverse_document_frequency(chunk_count=chunk_count, document_frequency=frequencies[term])
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
    counts = query_analyse(query).counts
    if not counts:
        return None
    chunk_count, frequencies = corpus_statistics(organization=organization, terms=list(counts))
    return lexical_query_build(counts=counts, chunk_count=chunk_count, frequencies=frequencies)


def lexical_ranking(
    *, organization, assistant, lexical_query: LexicalQuery | None, limit: int
) -> list[tuple[str, float]]:
    """The best `limit` chunks by BM25, best first (equal scores by id). The candidates are the
    chunks holding one of the query's terms (in a large organization, one of its rare terms:
    `LexicalQuery.rare_terms`), looked up through the GIN index of the narrow copies
    (`ChunkLexical`): a chunk sharing no term scores 0 and was never returned, so limiting the
    small organizations' search to them changes nothing but its cost. Each candidate's score is
    computed once (`ORDER BY` the score, not the distance expression again: Postgres evaluates
    each separately), from the copy's sparse vector: the same values as the chunk's, so the
    same score."""
    if lexical_query is None:
        return []
    scope, params = scope_sql(organization=organization, assistant=assistant)
    vector = lexical_query.vector.to_text()
    candidates = lexical_query.rare_terms or sorted(lexical_query.vector.indices())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, score FROM (SELECT chunk_id AS id, (lexical <#> %s::sparsevec) * -1 AS score "  # noqa: S608
            f"FROM knowledge_chunklexical WHERE {scope} AND terms && %s::int[] "
            "ORDER BY score DESC, id LIMIT %s) ranked WHERE score > 0",
            [vector, *params, candidates, limit],
        )
        return [(str(chunk_id), float(score)) for chunk_id, score in cursor.fetchall()]


# --- 3. vector: pgvector HNSW (or exact in small organizations) ----------------------------
# Exact search ranks the organization's half-precision copies (`ChunkVector`), re-scores the
# best `exact_window(limit)` of them with the chunks' own float32 vectors, then proves that no
# chunk outside that window could have made the top `limit` (`_exact_window_holds`), and
# otherwise ranks every chunk in float32 (`_exact_full_statement`). The proof rests on
# HALF_PRECISION_ERROR, a bound on how far a copy's blended distance can be from the float32
# one (docs/knowledge.md, "Exact search reads narrow copies"):
# - a unit vector's components rounded to half precision are each off by at most 2^-11 of
#   their value (2^-25 absolute below half's normal range, 2^-14), so an inner product of two
#   such vectors is off by at most (2 x 2^-11 + 2^-22) x sum |a_i b_i| + 2^-25 x (|a|_1 + |b|_1)
#   <= 9.77e-4 + 1.2e-6 (sum |a_i b_i| <= 1, |v|_1 <= sqrt(384) x 1.001);
# - float32 accumulation of 384 products on either side: <= 383 x 2^-24 = 2.3e-5 for the
#   copies' inner product, and for pgvector's cosine (dot and both norms) <= ~7e-5; the
#   normalisation before halving, one float32 rounding a component: < 1e-6;
# - the Q&A blend is a convex combination of two such distances, so the same bound holds.
# In all < 1.1e-3; the constant leaves about twice that. On real MiniLM vectors (SciFact) the
# largest difference seen was 8.1e-5. A larger bound only costs more full scans, never a
# wrong ranking. The window, 1.5 x `limit`: the smallest window the proof needed was at most
# 68 of 50 over the bench knowledge base's 464 chat and support questions (and 61 for
# SciFact's 300 test queries on its own corpus, checked after the choice); a window that is
# too small costs a full scan (~2-3 x the search), one too large re-scores rows for nothing.
EXACT_RESCORE_FACTOR = 1.5
HALF_PRECISION_ERROR = 2e-3


def exact_window(limit: int) -> int:
    """How many of the best half-precision copies an exact search re-scores in float32."""
    return math.ceil(limit * EXACT_RESCORE_FACTOR)


def vector_ranking(
    *, organization, assistant, vector: list[float], model: str, limit: int, exact: bool = False
) -> list[tuple[str, float]]:
    """Chunks by cosine similarity to the question's vector, best first (see `vector_candidates`)."""
    ranking, _questions = vector_candidates(
        organization=organization, assistant=assistant, vector=vector, model=model, limit=limit, exact=exact
    )
    return ranking


@functools.cache
def _vector_format(dimensions: int) -> str:
    return "[" + ",".join(["%.9g"] * dimensions) + "]"


def vector_literal(vector) -> str:
    """`vector` in pgvector's text form, each component as the float32 the column stores: nine
    significant digits name a float32 exactly and pgvector reads them with `strtof`, so the
    database gets the same vector as from the shortest double repr (a MiniLM or e5 vector's
    components are float32 values already), from ~35 % fewer characters and in a third of the
    Python CPU (one format for 384 numbers: ~50 µs against ~150 µs for 384 `repr`s)."""
    import numpy

    values = numpy.asarray(vector, dtype=numpy.float32).tolist()
    return _vector_format(len(values)) % tuple(values)


def vector_candidates(
    *,
    organization,
    assistant,
    vector: list[float],
    model: str,
    limit: int,
    exact: bool = False,
    generation: vector_cache.Generation | None = None,
    chunk_count: int = 0,
) -> tuple[list[tuple[str, float]], set[str]]:
    """(chunks by similarity to the question's vector, best first; the ids among them that are
    Q&A pairs' chunks).

    A Q&A pair's chunk is matched on its question alone as well as on its question and answer:
    it scores (1 - QUESTION_WEIGHT) x cos(question+answer) + QUESTION_WEIGHT x cos(question).
    A visitor's paraphrase is about the pair's question, and the answer's words (often about
    something else: "Go to Account > Orders…") dilute the pair's full vector; a question worded
    like the answer still finds the pair through the full vector. Other chunks have one vector.

    An exact search given the organization's vector `generation` (and `chunk_count`, both from
    `query_prepare`) ranks the vectors this process holds for the organization when they are
    at that generation (`knowledge.vector_cache`: the same ranking as the SQL below, from a
    numpy product); otherwise, and without a generation, it runs in SQL.
    """
    dimensions = int(len(vector))
    if exact and generation is not None:
        rows = _exact_in_process(
            organization=organization,
            assistant=assistant,
            vector=vector,
            model=model,
            limit=limit,
            generation=generation,
            chunk_count=chunk_count,
        )
        if rows is not None:
            return [(chunk_id, 1.0 - distance) for chunk_id, distance, _q in rows], {
                chunk_id for chunk_id, _distance, is_question in rows if is_question
            }
    scope, params = scope_sql(organization=organization, assistant=assistant)
    literal = vector_literal(vector)
    full_sql = f"((embedding::vector({dimensions})) <=> %s::vector({dimensions}))"
    question_sql = f"((question_embedding::vector({dimensions})) <=> %s::vector({dimensions}))"
    weight = float(QUESTION_WEIGHT)
    # A chunk without a question vector (a document) computes its one distance once.
    distance_sql = (
        f"(CASE WHEN question_embedding IS NULL THEN {full_sql} "
        f"ELSE {1 - weight!r} * {full_sql} + {weight!r} * {question_sql} END)"
    )
    distance_params = [literal, literal, literal]
    columns = f"id, {distance_sql} AS distance, question_embedding IS NOT NULL AS is_question"
    where = f"WHERE {scope} AND embedding_model = %s AND embedding_dimensions = {dimensions}"
    where_params = [*params, model]
    if exact:
        statement, statement_params = _exact_statement(
            columns=columns,
            distance_params=distance_params,
            scope=scope,
            scope_params=[*params, model],
            literal=literal,
            dimensions=dimensions,
            limit=limit,
        )
        settings_sql = []
    else:
        # Two HNSW walks, each with the organization filter applied while the index is walked
        # (pgvector 0.8 iterative scans): the chunks nearest by their full vector, and the Q&A
        # chunks nearest by their question's (a small partial index); each row scored by the
        # blend, the two merged.
        statement = (
            "SELECT id, min(distance), bool_or(is_question) FROM ("  # noqa: S608
            f"(SELECT {columns} FROM knowledge_chunk {where} ORDER BY {full_sql} LIMIT %s) UNION ALL "
            f"(SELECT {columns} FROM knowledge_chunk {where} AND question_embedding IS NOT NULL "
            f"ORDER BY {question_sql} LIMIT %s)"
            ") found GROUP BY id ORDER BY 2, 1 LIMIT %s"
        )
        statement_params = [
            *(*distance_params, *where_params, literal, limit),
            *(*distance_params, *where_params, literal, limit),
            limit,
        ]
        settings_sql = [
            ("SET LOCAL hnsw.iterative_scan = relaxed_order", []),
            # SET takes no parameter once they are bound server-side (settings.py): set_config
            # with is_local is SET LOCAL as a function.
            ("SELECT set_config('hnsw.ef_search', %s, true)", [str(max(HNSW_EF_SEARCH, limit))]),
        ]
    with transaction.atomic() if settings_sql else nullcontext(), connection.cursor() as cursor:
        for setting, setting_params in settings_sql:
            cursor.execute(setting, setting_params)
        cursor.execute(statement, statement_params)
        rows = cursor.fetchall()
        if exact:
            if not _exact_window_holds(rows, limit=limit, window=exact_window(limit)):
                cursor.execute(
                    *_exact_full_statement(
                        columns=columns,
                        distance_params=distance_params,
                        where=where,
                        where_params=where_params,
                        limit=limit,
                    )
                )
                rows = cursor.fetchall()
            rows = [row[:3] for row in rows]
    ranking = [(str(chunk_id), 1.0 - float(distance)) for chunk_id, distance, _is_question in rows]
    return ranking, {str(chunk_id) for chunk_id, _distance, is_question in rows if is_question}


def _exact_in_process(
    *, organization, assistant, vector, model: str, limit: int, generation, chunk_count: int
) -> list[tuple[str, float, bool]] | None:
    """The exact search's rows (id, distance, is Q&A), best first, from the vectors this process
    holds (`vector_cache`); None when it holds none current for this search (search in SQL)."""
    import numpy

    query = numpy.asarray(vector, dtype=numpy.float32)
    entry = vector_cache.cache.get(
        organization_id=organization.pk,
        model=model,
        dimensions=len(query),
        generation=generation,
        chunk_count=chunk_count,
    )
    if entry is None:
        return None
    distance = vector_cache.distances(entry, query=query, question_weight=float(QUESTION_WEIGHT))
    mask = scope_mask(entry, organization=organization, assistant=assistant)
    return vector_cache.top(entry, distance=distance, mask=mask, limit=limit)


def _exact_statement(
    *,
    columns: str,
    distance_params: list,
    scope: str,
    scope_params: list,
    literal: str,
    dimensions: int,
    limit: int,
) -> tuple[str, list]:
    """A small organization in a large table: comparing its own rows (found through the
    organization index) is faster than walking the shared HNSW graph past everyone else's,
    and exact. One statement, no `SET LOCAL`: the organization's narrow half-precision copies
    (`ChunkVector`) are ordered by the blended distance (no index serves it, so the planner
    sorts them: ~1,150 buffers for 10,000 chunks, where the wide chunk rows took ~2,850), and
    the best `exact_window(limit)` (the window) are re-scored from the chunks' float32
    vectors by primary key, so scores and order are the full-precision ones. The copies and the
    query are at unit length, so inner products order them as cosines do, without the norms.

    Each row also carries the window's largest half-precision distance and the window's size,
    for `_exact_window_holds` to prove that no chunk outside the window belongs in the top
    `limit`."""
    weight = float(QUESTION_WEIGHT)
    near = (
        "CASE WHEN copy.question_embedding IS NULL THEN copy.embedding <#> query.unit "
        f"ELSE {1 - weight!r} * (copy.embedding <#> query.unit) "
        f"+ {weight!r} * (copy.question_embedding <#> query.unit) END"
    )
    statement = (
        "SELECT id, distance, is_question, max(approximate) OVER () AS boundary, "  # noqa: S608
        "count(*) OVER () AS window_size FROM ("
        f"SELECT {columns}, near.approximate FROM knowledge_chunk JOIN ("
        f"SELECT copy.chunk_id, {near} AS approximate FROM knowledge_chunkvector copy, "
        f"(SELECT l2_normalize(%s::vector({dimensions}))::halfvec AS unit) query "
        f"WHERE {scope} "
        f"AND copy.embedding_model = %s AND copy.embedding_dimensions = {dimensions} "
        "ORDER BY approximate LIMIT %s"
        # OFFSET 0 keeps the re-scoring in its subquery: the window functions then buffer its
        # narrow rows, not the chunks' two float32 vectors the distance is computed from.
        ") near ON near.chunk_id = knowledge_chunk.id OFFSET 0"
        ") rescored ORDER BY distance, id LIMIT %s"
    )
    return statement, [*distance_params, literal, *scope_params, exact_window(limit), limit]


def _exact_window_holds(rows: list[tuple], *, limit: int, window: int) -> bool:
    """Whether `_exact_statement`'s rows are the float32 top `limit` of every chunk in scope.

    Rows: (id, float32 distance, is_question, the window's largest half-precision distance, the
    window's size), best first. A chunk outside the window has a half-precision distance
    (a negative inner product, so 1 + it is its cosine distance) at least the window's largest,
    so a float32 distance of at least 1 + that - HALF_PRECISION_ERROR: if the `limit`-th row is
    strictly below, no such chunk can take its place (nor tie it and win on its id). A window
    that is not full held every chunk in scope."""
    if not rows:
        return True
    _id, _distance, _is_question, boundary, window_size = rows[0]
    if window_size < window or len(rows) < limit:
        return True
    kth = rows[limit - 1][1]
    return kth is not None and kth < 1.0 + boundary - HALF_PRECISION_ERROR


def _exact_full_statement(
    *, columns: str, distance_params: list, where: str, where_params: list, limit: int
) -> tuple[str, list]:
    """Every chunk in scope ranked by its float32 distance: what `_exact_statement`'s window
    stands in for, run when `_exact_window_holds` cannot prove the window held the top
    `limit` (chunks nearly tied at the window's edge)."""
    statement = (
        f"SELECT {columns} FROM knowledge_chunk {where} AND embedding IS NOT NULL "  # noqa: S608
        "ORDER BY distance, id LIMIT %s"
    )
    return statement, [*distance_params, *where_params, limit]


# --- 4. fusion --------------------------------------------------------------------------
@dataclass(frozen=True)
class Fusion:
    """How `rank_fuse` combines the lexical and the vector ranking.

    method "rank": weighted reciprocal-rank fusion, a chunk scores
        lexical_weight / (k + lexical rank) + 1 / (k + vector rank).
    method "score": a convex combination of the two lists' normalised scores,
        lexical_weight * lexical' + (1 - lexical_weight) * vector',
    each list normalised ("minmax": (s - min) / (max - min); "zscore": (s - mean) / stdev;
    "max": s / max) with statistics taken over its first `window` entries only, so a search
    asking for more results (a deeper list) fuses its top the same way. `vector_floor` (score
    fusion): each cosine is first taken as its height above this floor (none below it), so
    "max" becomes (cos - floor) / (best - floor); 0, the default, leaves cosines as they are.
    An embedder whose cosines all sit high (multilingual-e5: unrelated text is rarely below
    0.7) needs it for its best chunk to stand out over the others when divided by the best.
    """

    method: str = "rank"
    lexical_weight: float = 1.0
    k: int = RRF_K
    normalise: str = "minmax"
    window: int = CANDIDATES
    vector_floor: float = 0.0

    def __post_init__(self):
        if self.method not in ("rank", "score") or self.normalise not in ("minmax", "zscore", "max"):
            raise ValueError(f"unknown fusion {self}")
        if self.method == "score" and not 0.0 <= self.lexical_weight <= 1.0:
            raise ValueError("a score fusion's lexical_weight is a share between 0 and 1")
        if not 0.0 <= self.vector_floor < 1.0 or (self.vector_floor and self.method != "score"):
            raise ValueError("a vector_floor is a cosine in [0, 1), for a score fusion")

    def label(self) -> str:
        if self.method == "rank":
            return f"rank k={self.k} lexical x{self.lexical_weight:g}"
        floor = f" vector floor {self.vector_floor:g}" if self.vector_floor else ""
        return f"score {self.normalise} lexical {self.lexical_weight:g}{floor} (window {self.window})"


# The lexical list's scores over their best (BM25 / the top BM25 score), 0.55 of the vote;
# the vector list's cosines over their best, 0.45. Chosen among 74 rank and score fusions by
# 10-fold cross-validation on SciFact's 300 queries (held-out nDCG@10 0.733; every fold chose
# this or the 0.5 share), among those that keep paraphrased FAQ questions (support_kbs dev split)
# matched at least as often as plain RRF; docs/benchmarks.md "Hybrid fusion chosen by
# cross-validation" has the method, the folds and the figures.
FUSION = Fusion(method="score", normalise="max", lexical_weight=0.55)
# An embedder's own fusion, keyed by its name (cosines of another model have another scale);
# an embedder without one (MiniLM, a provider's model set in EMBEDDING_MODEL) uses `FUSION`.
FUSION_BY_EMBEDDER: dict[str, Fusion] = {
    # multilingual-e5's cosines sit between ~0.7 and ~0.9 whatever the text, so divided by the
    # best every candidate's vector vote is ~0.9-1 and BM25 decides (English questions against
    # English pages: vector 19/20 right first, hybrid under `FUSION` 14/20). Its cosines are
    # taken above 0.7 and the lexical share is 0.25. Chosen by bench/fusion_fit.py among 152
    # fusions on dev questions only (support_kbs.json's dev split in English and the shop's dev
    # questions in Spanish and German, against the knowledge as Q&A pairs and as help pages):
    # right first 0.686 on all of them (vector alone 0.684, `FUSION` 0.647, lexical 0.377);
    # leave-one-knowledge-base-out, choice included, 0.676. On a SciFact subset (a check, not
    # chosen on) nDCG@10 0.859 against `FUSION`'s 0.819. docs/benchmarks.md has the figures.
    MULTILINGUAL_MODEL_NAME: Fusion(method="score", normalise="max", lexical_weight=0.25, vector_floor=0.7),
}


def fusion_for(embedder_name: str) -> Fusion:
    """The fusion `chunk_search` applies for an organization whose active embedder is this one."""
    return FUSION_BY_EMBEDDER.get(embedder_name, FUSION)


def _normaliser(scores: list[float], *, how: str):
    """The function that maps a list's scores to its normalised ones (statistics over `scores`)."""
    if how == "max":
        high = max(scores)
        return (lambda score: score / high) if high > 0 else (lambda score: 1.0)
    if how == "zscore":
        mean = math.fsum(scores) / len(scores)
        spread = math.sqrt(math.fsum((score - mean) ** 2 for score in scores) / len(scores))
        return (lambda score: (score - mean) / spread) if spread else (lambda score: 0.0)
    low, spread = min(scores), max(scores) - min(scores)
    return (lambda score: (score - low) / spread) if spread else (lambda score: 1.0)


def _votes(ranking: list[tuple[str, float]], *, candidates: set[str], fusion: Fusion) -> dict[str, float]:
    """Each candidate's unweighted vote from one list: 1 / (k + rank) ("rank") or its normalised
    score ("score"); a candidate the list lacks votes as if just below it; an empty list: none."""
    if not ranking:
        return {}
    if fusion.method == "rank":
        ranks = {chunk_id: rank for rank, (chunk_id, _score) in enumerate(ranking, start=1)}
        below = len(ranking) + 1
        return {chunk_id: 1.0 / (fusion.k + ranks.get(chunk_id, below)) for chunk_id in candidates}
    scores = [score for _chunk_id, score in ranking]
    normalised = _normaliser(scores[: fusion.window], how=fusion.normalise)
    found = dict(ranking)
    lowest = normalised(min(scores))
    return {chunk_id: normalised(found[chunk_id]) if chunk_id in found else lowest for chunk_id in candidates}


def rank_fuse(
    lexical: list[tuple[str, float]],
    vector: list[tuple[str, float]],
    *,
    fusion: Fusion = FUSION,
    vector_led: Collection[str] = frozenset(),
) -> list[tuple[str, float]]:
    """One best-first ranking from the lexical and the vector one (each best first, with scores).

    A retriever returns only its top few, so a candidate one list lacks is placed where it
    can at best be: at the rank just after that list's last entry ("rank"), or at that list's
    lowest score ("score"). Counted as absent instead, a chunk both lists happen to hold
    (say 2nd and 9th) would lead one that a retriever put first (the "membership effect" that
    cost paraphrased FAQ questions their right answer). For a lexical list that ends because
    no other chunk shares a query term this is the exact (tied) place; for a truncated list it
    is the best place the chunk could have. An empty list (no query term known, or no
    embedding) adds nothing, so the other list's order is kept.

    `vector_led`: candidates (Q&A pairs' chunks) whose lexical vote is the better of their own
    and their vector one (rank: the better rank; score: the higher normalised score). A
    visitor's paraphrase shares a pair's meaning, not its words: words the question does not
    share must not sink the pair, and words it does share still count (docs/knowledge.md,
    "Q&A pairs").

    Equal fused scores (common with ranks: 1st and 3rd against 3rd and 1st) go to the chunk
    the retrievers were surer of, each list's scores min-max normalised and summed, then to
    the lower id, so the order never depends on chance or on which list came first.
    """
    if fusion.vector_floor:
        vector = [(chunk_id, max(score - fusion.vector_floor, 0.0)) for chunk_id, score in vector]
    rankings = [(lexical, fusion.lexical_weight), (vector, 1.0)]
    if fusion.method == "score":
        rankings = [(lexical, fusion.lexical_weight), (vector, 1.0 - fusion.lexical_weight)]
    candidates = {chunk_id for ranking, _weight in rankings for chunk_id, _score in ranking}
    led = candidates.intersection(vector_led)
    fused: dict[str, float] = dict.fromkeys(candidates, 0.0)
    confidence: dict[str, float] = dict.fromkeys(candidates, 0.0)
    votes = [_votes(ranking, candidates=candidates, fusion=fusion) for ranking, _weight in rankings]
    if led and vector:  # a Q&A chunk's lexical vote: the better of its own and its vector one
        votes[0].update({chunk_id: max(votes[0].get(chunk_id, 0.0), votes[1][chunk_id]) for chunk_id in led})
    for (ranking, weight), vote in zip(rankings, votes, strict=True):
        if not ranking:
            continue
        sure = _normaliser([score for _chunk_id, score in ranking], how="minmax")
        for chunk_id, score in ranking:
            confidence[chunk_id] += sure(score)
        for chunk_id in candidates:
            fused[chunk_id] += weight * vote[chunk_id]
    order = sorted(fused, key=lambda chunk_id: (-round(fused[chunk_id], 12), -confidence[chunk_id], chunk_id))
    return [(chunk_id, fused[chunk_id]) for chunk_id in order]


# --- 5. passages and snippets -------------------------------------------------------------
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")


def snippet_make(
    *, content: str, query: str, limit: int = SNIPPET_CHARS, language: str = analysis.DEFAULT_LANGUAGE
) -> str:
    """The stretch of `content` (whole sentences where possible) that shares most terms with the
    query. Its lines stay lines: a heading, a list item or a table row starts a line of the
    snippet as it does in the passage (found on a new-user walk: the inbox showed a source as
    "…on fabric shades. Bulbs All our lamps take…", the heading "Bulbs" glued into the text)."""
    lines = [" ".join(line.split()) for line in (content or "").split("\n")]
    lines = [line for line in lines if line]
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    query_terms = set(analysis.terms(query, language=language))
    # (sentence, whether it starts a line of the passage)
    sentences = [
        (sentence, number == 0)
        for line in lines
        for number, sentence in enumerate(part for part in _SENTENCE_SPLIT.split(line) if part.strip())
    ]
    best_index, best_hits = 0, -1
    for index, (sentence, _starts_line) in enumerate(sentences):
        hits = len(query_terms.intersection(analysis.terms(sentence, language=language)))
        if hits > best_hits:
            best_index, best_hits = index, hits
    snippet = ""
    for sentence, starts_line in sentences[best_index:]:
        separator = "\n" if starts_line else " "
        joined = f"{snippet}{separator}{sentence}" if snippet else sentence
        if len(joined) > limit:
            break
        snippet = joined
    if not snippet:
        snippet = sentences[best_index][0]
    if len(snippet) > limit:
        cut = snippet.rfind(" ", 0, limit - 1)
        snippet = snippet[: cut if cut > limit // 2 else limit - 1].rstrip() + "…"
    return snippet


def passage_snippet(*, kind: str, content: str, answer: str, query: str, language: str) -> str:
    """A passage's snippet (`Passage.snippet`): a Q&A pair's answer when short, else the stretch of
    its answer (a Q&A pair) or its text that best matches `query` (as searched, `query_text`)."""
    if kind == KnowledgeSource.Kind.QA:
        if len(answer) <= SNIPPET_CHARS:
            return answer
        content = answer
    return snippet_make(content=content, query=query, language=language)


_PASSAGE_COLUMNS = (
    "chunk.id, chunk.title, chunk.url, chunk.page, chunk.content, chunk.language, "
    "source.id, source.kind, source.title, source.url, source.file_name, source.question, source.answer"
)


def _vector_unpack(data: bytes):
    """A vector in pgvector's binary form (`vector_send`: int16 dimensions, int16 unused, then
    big-endian float32s) as a read-only numpy float32 array, each component the stored float32
    exactly. Its text form cost the database a shortest-decimal conversion per component and
    this process a float() parse of each (~0.2 ms of Postgres and ~0.3 ms of Python CPU for six
    passages' 384-d vectors); a tuple of Python floats cost ~6 µs a vector to build and as much
    again for the relevance gate to turn back into a matrix, twice (~0.2 ms a turn)."""
    import numpy

    vector = numpy.frombuffer(data, dtype=">f4", offset=4).astype(numpy.float32)
    vector.flags.writeable = False  # shared through the gate's per-process cache
    return vector


@functools.cache
def _organization_chunk_ids_sql() -> str:
    """The ids of the chunks `Chunk.objects.for_organization(organization)` reads, as SQL whose
    one parameter is the organization: the scoped manager's own rule, compiled once per
    process (compiling a queryset on every call cost ~0.3-0.7 ms, as much as the read)."""
    placeholder = uuid.UUID(int=0)
    sql, params = Chunk.objects.for_organization(placeholder).values("pk").query.sql_with_params()
    if list(params) != [placeholder]:  # the rule grew another parameter: write it in here
        raise RuntimeError(f"Chunk.objects.for_organization compiles to unexpected parameters: {params}")
    return sql


def passages_build(
    *,
    organization,
    ranked: list[tuple[str, float]],
    query: str,
    embedder_name: str = "",
    snippets: bool = True,
) -> list[Passage]:
    """The ranked chunks of `organization` as passages, in one statement with their sources; a
    chunk id of another organization gives nothing. Written as SQL: the ORM's
    `select_related(...).only(...)` cost ~1.5 ms of Python per chat turn to build and read,
    for five rows. Which chunks it may read is still the scoped manager's
    (`Chunk.objects.for_organization`, compiled into the statement: Postgres folds it into the
    one scan of the chunks by id), so the tenant rule is the one every query follows rather
    than a caller's promise. A chunk's vector comes along only
    when it is `embedder_name`'s, and so does a Q&A pair's question vector
    (`Passage.question_embedding`). Without `snippets` every snippet is "" (`passage_snippet`
    makes one later, for a caller that shows only some of the passages)."""
    if not ranked:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_PASSAGE_COLUMNS}, "  # noqa: S608
            "CASE WHEN chunk.embedding_model = %s THEN vector_send(chunk.embedding) END, "
            "CASE WHEN chunk.embedding_model = %s THEN vector_send(chunk.question_embedding) END "
            "FROM knowledge_chunk chunk JOIN knowledge_knowledgesource source ON source.id = chunk.source_id "
            f"WHERE chunk.id = ANY(%s::uuid[]) AND chunk.id IN ({_organization_chunk_ids_sql()})",
            [
                embedder_name or None,
                embedder_name or None,
                [chunk_id for chunk_id, _ in ranked],
                organization.pk,
            ],
        )
        rows = {str(row[0]): row for row in cursor.fetchall()}
    passages = []
    for chunk_id, score in ranked:
        row = rows.get(chunk_id)
        if row is None:  # deleted between the ranking and this read
            continue
        (
            chunk_pk,
            chunk_title,
            chunk_url,
            page,
            content,
            language,
            source_id,
            kind,
            source_title,
            source_url,
            file_name,
            question,
            answer,
            embedding,
            question_embedding,
        ) = row
        is_qa = kind == KnowledgeSource.Kind.QA
        passages.append(
            Passage(
                source_id=source_id,
                chunk_id=chunk_pk,
                source_type=kind,
                title=question if is_qa else (chunk_title or source_title or chunk_url or file_name),
                url=chunk_url or source_url,
                file_name=file_name,
                page=page,
                content=content,
                snippet=(
                    passage_snippet(kind=kind, content=content, answer=answer, query=query, language=language)
                    if snippets
                    else ""
                ),
                score=score,
                question=question if is_qa else "",
                answer=answer if is_qa else "",
                language=language,
                embedding=_vector_unpack(embedding) if embedding else None,
                question_embedding=_vector_unpack(question_embedding)
                if is_qa and question_embedding
                else None,
            )
        )
    return passages


# --- the pipeline ----------------------------------------------------------------------------
def chunk_search(
    *, organization, assistant=None, query: str, k: int = 5, mode: str = "hybrid", snippets: bool = True
) -> list[Passage]:
    """The best `k` passages of the organization's knowledge for `query`, best first.

    `assistant=None` searches the organization-wide knowledge; with an assistant, its own
    sources are searched too. `mode`: "hybrid" (default: BM25 and vectors fused as the
    organization's embedder's `fusion_for` says), "lexical" (BM25 only) or "vector" (embeddings only).
    `snippets=False`: passages without their snippet (see `passages_build`).
    """
    if mode not in SEARCH_MODES:
        raise ValidationFailed(f"mode must be one of {', '.join(SEARCH_MODES)}.")
    k = max(1, min(int(k), MAX_K))
    if not (query or "").strip():
        return []
    # The organization's active embedder: while a switch re-embeds its knowledge, the old one.
    embedder = embedder_get(organization=organization) if mode in ("hybrid", "vector") else None
    prepared = query_prepare(organization=organization, query=query, lexical=mode in ("hybrid", "lexical"))
    analysed, chunk_count, frequencies = prepared.analysed, prepared.chunk_count, prepared.frequencies
    query_embedding = _query_embedding(embedder=embedder, text=analysed.text, required=mode == "vector")
    counts = analysed.counts if mode in ("hybrid", "lexical") else Counter()
    limit = max(CANDIDATES, k)
    scope = {"organization": organization, "assistant": assistant}
    with timing.phase("retrieve"):
        lexical = lexical_ranking(
            **scope,
            lexical_query=lexical_query_build(
                counts=counts, chunk_count=chunk_count, frequencies=frequencies
            ),
            limit=limit,
        )
        vector, questions = (
            vector_candidates(
                **scope,
                vector=query_embedding,
                model=embedder.name,
                limit=limit,
                exact=chunk_count <= settings.KNOWLEDGE_VECTOR_EXACT_MAX_CHUNKS,
                generation=prepared.generation,
                chunk_count=chunk_count,
            )
            if query_embedding is not None
            else ([], set())
        )
        if mode == "lexical":
            ranked = lexical
        elif mode == "vector":
            ranked = vector
        else:
            ranked = rank_fuse(lexical, vector, fusion=fusion_for(embedder.name), vector_led=questions)
        return _distinct_passages(
            organization=organization,
            ranked=ranked,
            k=k,
            query=analysed.text,
            embedder_name=embedder.name if embedder else "",
            snippets=snippets,
        )


def _passage_identity(passage: Passage) -> str:
    return " ".join(passage.content.split()).casefold()


def _distinct_passages(
    *, organization, ranked: list[tuple[str, float]], k: int, query: str, embedder_name: str, snippets: bool
) -> list[Passage]:
    """The first `k` ranked chunks as passages, a chunk whose text (spacing and case aside)
    a better-ranked one already has left out, and the next ones read in its place. Two sources
    holding the same text (a page added as a file and as a URL, one paragraph in two
    documents) would otherwise fill two of the few places, be cited twice, and be each other's
    closest other candidate in the relevance gate, whose margins then collapse
    (docs/knowledge.md, "Duplicate sources"). Without duplicates this reads exactly the first
    `k`, as before."""
    passages: list[Passage] = []
    seen: set[str] = set()
    start = 0
    while len(passages) < k and start < len(ranked):
        batch = ranked[start : start + k - len(passages)]
        start += len(batch)
        for passage in passages_build(
            organization=organization,
            ranked=batch,
            query=query,
            embedder_name=embedder_name,
            snippets=snippets,
        ):
            identity = _passage_identity(passage)
            if identity not in seen:
                seen.add(identity)
                passages.append(passage)
    return passages


def _query_embedding(*, embedder, text: str, required: bool) -> list[float] | None:
    """The question's embedding; None without an embedder, or when embedding failed and the
    search can fall back to lexical retrieval alone (hybrid)."""
    if embedder is None:
        return None
    with timing.phase("embed"):
        try:
            return query_embed(embedder=embedder, text=text)
        except UpstreamError:
            if required:
                raise
            logger.warning("query embedding failed; answering from lexical retrieval only")
            return None
