"""Exact vector search in the web process: an organization's chunk vectors held as float32
matrices, so the exact search of a small organization (`retrieval.vector_candidates` with
`exact=True`) is a product in numpy instead of a scan of its rows in Postgres.

What is held, per (organization, embedding model, dimensions): every chunk of the organization
with a vector of that model and size, in id order, as
- `matrix`: the vectors (float32, the stored values exactly) and their squared norms;
- `questions`: a Q&A pair's question vector for the rows that have one, and their norms;
- `assistants`: each row's assistant (-1: organization-wide), which `retrieval.scope_mask`
  applies as `retrieval.scope_sql` does in SQL.

Distances are pgvector's cosine distance computed the way pgvector computes it (a float32
inner product and float32 norms, divided in double, clamped to [-1, 1]), the Q&A blend the
same double-precision expression, and ties go to the lower id, so the ranking is the SQL
statement's: the same chunks in the same order, scores within float32 rounding of the
accumulation order (docs/knowledge.md, "Exact search in the web process").

Staleness, across processes. Each organization's corpus row carries a vector generation that a
trigger on `knowledge_chunk` renews, in the writing transaction, whenever a statement changes
which vectors a search would rank (`knowledge/0011`). A search already reads the corpus row
(`retrieval.corpus_statistics`), so it learns the current generation at no extra round trip, and
an entry serves only a search whose generation is the one it was read at (the entry's rows and
its generation come from one statement, one snapshot). Anything else is a miss: the search runs
in SQL, and the entry is read again (`load`), unless
- the generation changed less than `KNOWLEDGE_VECTOR_CACHE_SETTLE_SECONDS` ago (ingestion or a
  re-embed is under way: reading 15 MB after every batch would cost more than it saves);
- another thread of this process is reading it (that thread's turn pays for the read, the
  others do not wait for it);
- it would not fit `KNOWLEDGE_VECTOR_CACHE_BYTES` (an organization too large to hold is never
  read; the limit also bounds what all entries of the process hold together, least recently
  used dropped first). 0 turns the cache off;
- reading it failed less than `RETRY_AFTER_FAILURE_SECONDS` ago at this generation.

The limit covers what is being read too. A read first reserves its estimated size (the
organization's chunk count times a row's bytes), dropping least recently used entries to make
room; while other threads' reads hold reservations that leave no room for it, the search runs in
SQL instead. So concurrent reads of different organizations, each under the limit, cannot
together pass it before eviction (what is held plus what is reserved stays within the limit;
what a read holds in passing, the rows as Postgres sent them, is on top, for one read's length).

A read that fails (the database raising mid-statement, a vector that does not decode, running
out of memory) is logged and costs only the cache: the search runs in SQL. It runs in a
savepoint when the caller is inside a transaction, so a database error rolls back the read alone
and the chat turn's transaction goes on (without one, Postgres would refuse every later
statement of the turn).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy
from django.conf import settings
from django.db import connection, transaction

logger = logging.getLogger(__name__)

# Bytes an entry holds per row beyond its vector: the id string (~85), the list slot, the
# assistant code and the norm. Used to refuse an organization before reading it.
ROW_OVERHEAD_BYTES = 110
LOAD_BATCH = 1000  # rows read at a time
# After a failed read, the organization's searches run in SQL for this long (at the same
# generation; a change of its vectors is a new chance at once), not one failing read per turn.
RETRY_AFTER_FAILURE_SECONDS = 60.0


@dataclass(frozen=True)
class Generation:
    """An organization's vector generation as a search read it (`retrieval.corpus_statistics`)."""

    value: int
    age_seconds: float  # since it last changed

    @property
    def settled(self) -> bool:
        return self.age_seconds >= settings.KNOWLEDGE_VECTOR_CACHE_SETTLE_SECONDS


@dataclass(frozen=True)
class Entry:
    organization_id: object
    model: str
    dimensions: int
    generation: int
    ids: list[str]  # in id order (Postgres's uuid order)
    matrix: numpy.ndarray  # (rows, dimensions) float32
    norms: numpy.ndarray  # (rows,) float32: each row's squared norm, summed in float32
    question_rows: numpy.ndarray  # indexes of the rows with a question vector
    questions: numpy.ndarray  # (len(question_rows), dimensions) float32
    question_norms: numpy.ndarray
    is_question: numpy.ndarray  # (rows,) bool
    assistants: numpy.ndarray  # (rows,) int32: index into `assistant_ids`, -1 = organization-wide
    assistant_ids: dict  # assistant pk -> code
    nbytes: int


class VectorCache:
    """The process's entries, least recently used first, at most `limit` bytes together."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple, Entry] = OrderedDict()
        self._loading: dict[tuple, threading.Lock] = {}
        self._refused: dict[tuple, int] = {}  # key -> the generation read and found too large
        self._failed: dict[tuple, tuple[int, float]] = {}  # key -> (generation, monotonic time)
        self._reserved = 0  # estimated bytes of the reads under way
        self._lock = threading.Lock()
        self.loads = 0  # entries read from Postgres (tests and the bench count them)
        self.failures = 0  # reads that raised (tests count them)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(entry.nbytes for entry in self._entries.values())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._refused.clear()
            self._failed.clear()
            self.loads = 0
            self.failures = 0

    @property
    def reserved(self) -> int:
        with self._lock:
            return self._reserved

    def keys(self) -> list[tuple]:
        with self._lock:
            return list(self._entries)

    def get(self, *, organization_id, model: str, dimensions: int, generation: Generation, chunk_count: int):
        """The entry for this search, read from Postgres when it is missing or stale and may be
        read now (see the module's docstring); None: search in SQL."""
        limit = settings.KNOWLEDGE_VECTOR_CACHE_BYTES
        if limit <= 0:
            return None
        key = (organization_id, model, dimensions)
        estimate = chunk_count * (dimensions * 4 + ROW_OVERHEAD_BYTES)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.generation == generation.value:
                self._entries.move_to_end(key)
                return entry
            if (
                not generation.settled
                or estimate > limit
                or self._refused.get(key) == generation.value
                or self._failed_recently(key, generation=generation.value)
            ):
                return None
            loading = self._loading.setdefault(key, threading.Lock())
        if not loading.acquire(blocking=False):  # another thread is reading it
            return None
        try:
            with self._lock:  # read meanwhile by the thread that held the lock?
                entry = self._entries.get(key)
                if entry is not None and entry.generation == generation.value:
                    return entry
                if self._reserved + estimate > limit:  # other reads under way leave no room
                    return None
                self._reserved += estimate
                self._evict(limit=limit)
            try:
                entry = self._load(key, generation=generation.value)
            finally:
                with self._lock:
                    self._reserved -= estimate
            if entry is None or entry.generation != generation.value or entry.nbytes > limit:
                # Changed since the search read its generation (the next one will find this
                # entry current), too large, or not read: search in SQL this time.
                if entry is not None and entry.nbytes <= limit:
                    self._store(key, entry, limit=limit)
                elif entry is not None:
                    with self._lock:
                        if len(self._refused) > 10_000:
                            self._refused.clear()
                        self._refused[key] = entry.generation
                return None
            self._store(key, entry, limit=limit)
            logger.info(
                "vector cache: read %s vectors of organization %s (%s, %s-d) at generation %s, %.1f MB",
                len(entry.ids),
                organization_id,
                model,
                dimensions,
                entry.generation,
                entry.nbytes / 1e6,
            )
            return entry
        finally:
            loading.release()

    def _load(self, key: tuple, *, generation: int) -> Entry | None:
        """`load`, or None when it raised: the failure is logged and remembered, and the search
        runs in SQL. It runs in a transaction of its own, or a savepoint inside the caller's, so
        a database error rolls back this read, not the turn (and its server-side cursor needs
        one: without, Postgres would materialise the whole result to hold it past a commit)."""
        organization_id, model, dimensions = key
        try:
            with transaction.atomic():
                return load(organization_id=organization_id, model=model, dimensions=dimensions)
        except Exception:  # a database error, a vector that does not decode, MemoryError
            logger.exception(
                "vector cache: reading the vectors of organization %s (%s, %s-d) failed; searching in SQL",
                organization_id,
                model,
                dimensions,
            )
            with self._lock:
                self.failures += 1
                if len(self._failed) > 10_000:
                    self._failed.clear()
                self._failed[key] = (generation, time.monotonic())
            return None

    def _failed_recently(self, key: tuple, *, generation: int) -> bool:
        failed = self._failed.get(key)
        return (
            failed is not None
            and failed[0] == generation
            and time.monotonic() - failed[1] < RETRY_AFTER_FAILURE_SECONDS
        )

    def _evict(self, *, limit: int, keep: tuple | None = None) -> None:
        """Drop least recently used entries (never `keep`) until what is held and what reads
        under way reserved fit `limit`. Called with `_lock` held."""
        total = sum(held.nbytes for held in self._entries.values()) + self._reserved
        for key in list(self._entries):
            if total <= limit:
                break
            if key != keep:
                total -= self._entries.pop(key).nbytes

    def _store(self, key: tuple, entry: Entry, *, limit: int) -> None:
        with self._lock:
            self.loads += 1
            self._entries[key] = entry
            self._entries.move_to_end(key)
            self._evict(limit=limit, keep=key)


cache = VectorCache()


def load(*, organization_id, model: str, dimensions: int) -> Entry | None:
    """The organization's vectors of this model and size, with the vector generation they are
    at, in one statement (one snapshot); None when the organization has no corpus row yet (no
    generation to check an entry against). Vectors travel in pgvector's binary form
    (`vector_send`): float32 values, not decimal text. The rows come through a server-side
    cursor, `LOAD_BATCH` at a time, so the process never holds the whole result as Postgres sent
    it beside the matrix it becomes (measured on an 8.2 MB entry: the read's peak +20 MB and
    +12 MB left resident, against +33 MB and +27 MB with the result read whole)."""
    generation, ids, assistant_ids = None, [], {}
    assistants, question_rows, blocks, question_blocks = [], [], [], []
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            "SELECT statistic.vector_generation, chunk.id, chunk.assistant_id, vector_send(chunk.embedding), "
            "vector_send(chunk.question_embedding) FROM knowledge_corpusstatistic statistic "
            "LEFT JOIN knowledge_chunk chunk ON chunk.organization_id = statistic.organization_id "
            "AND chunk.embedding_model = %s AND chunk.embedding_dimensions = %s AND chunk.embedding IS NOT NULL "
            "WHERE statistic.organization_id = %s ORDER BY chunk.id",
            [model, dimensions, organization_id],
        )
        # A batch at a time, each made a float32 block at once: the rows' ~1.5 kB byte strings
        # of 10,000 chunks would otherwise all be alive together, and the allocator keeps
        # that memory from the process once they are freed.
        while batch := cursor.fetchmany(LOAD_BATCH):
            generation = batch[0][0]
            batch = [row for row in batch if row[1] is not None]
            for row in batch:
                if row[4] is not None:
                    question_rows.append(len(ids))
                ids.append(str(row[1]))
                assistants.append(
                    -1 if row[2] is None else assistant_ids.setdefault(row[2], len(assistant_ids))
                )
            blocks.append(_matrix([row[3] for row in batch], dimensions=dimensions))
            question_blocks.append(
                _matrix([row[4] for row in batch if row[4] is not None], dimensions=dimensions)
            )
    if generation is None:
        return None
    matrix = numpy.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    questions = numpy.concatenate(question_blocks) if len(question_blocks) > 1 else question_blocks[0]
    question_rows = numpy.array(question_rows, dtype=numpy.int64)
    is_question = numpy.zeros(len(ids), dtype=bool)
    is_question[question_rows] = True
    assistants = numpy.array(assistants, dtype=numpy.int32)
    norms = _squared_norms(matrix)
    question_norms = _squared_norms(questions)
    arrays = (matrix, norms, question_rows, questions, question_norms, is_question, assistants)
    nbytes = (
        sum(array.nbytes for array in arrays)
        + sys.getsizeof(ids)
        + sum(sys.getsizeof(chunk_id) for chunk_id in ids)
        + sys.getsizeof(assistant_ids)
    )
    for array in arrays:
        array.flags.writeable = False  # shared by the process's threads
    return Entry(
        organization_id=organization_id,
        model=model,
        dimensions=dimensions,
        generation=generation,
        ids=ids,
        matrix=matrix,
        norms=norms,
        question_rows=question_rows,
        questions=questions,
        question_norms=question_norms,
        is_question=is_question,
        assistants=assistants,
        assistant_ids=assistant_ids,
        nbytes=nbytes,
    )


def _matrix(blobs: list, *, dimensions: int) -> numpy.ndarray:
    """Vectors in pgvector's binary form (`vector_send`: int16 dimensions, int16 unused, then
    big-endian float32s) as the rows of a float32 matrix, each value the stored one exactly."""
    matrix = numpy.empty((len(blobs), dimensions), dtype=numpy.float32)
    for index, blob in enumerate(blobs):
        matrix[index] = numpy.frombuffer(blob, dtype=">f4", count=dimensions, offset=4)
    return matrix


def _squared_norms(matrix: numpy.ndarray) -> numpy.ndarray:
    """Each row's squared norm summed in float32, as pgvector sums it."""
    return numpy.einsum("ij,ij->i", matrix, matrix)


def distances(entry: Entry, *, query: numpy.ndarray, question_weight: float) -> numpy.ndarray:
    """Every row's distance to `query` (float32), as `retrieval.vector_candidates`' SQL computes
    it: pgvector's cosine distance `1 - dot / sqrt(|a|^2 |b|^2)` (float32 sums, double division,
    the similarity clamped to [-1, 1]; a zero vector's is NaN), and for a row with a question
    vector `(1 - w) * full + w * question` in double. `einsum` sums each row alike (no BLAS
    threads, and equal vectors get equal distances wherever they sit)."""
    query_norm = numpy.float64(numpy.einsum("i,i->", query, query))
    with numpy.errstate(divide="ignore", invalid="ignore"):
        full = _cosine_distance(numpy.einsum("ij,j->i", entry.matrix, query), entry.norms, query_norm)
        if len(entry.question_rows):
            question = _cosine_distance(
                numpy.einsum("ij,j->i", entry.questions, query), entry.question_norms, query_norm
            )
            full[entry.question_rows] = (1 - question_weight) * full[
                entry.question_rows
            ] + question_weight * question
    return full


def _cosine_distance(dots: numpy.ndarray, norms: numpy.ndarray, query_norm) -> numpy.ndarray:
    similarity = dots.astype(numpy.float64) / numpy.sqrt(norms.astype(numpy.float64) * query_norm)
    return 1.0 - numpy.clip(similarity, -1.0, 1.0)  # clip keeps NaN, as pgvector does


def top(
    entry: Entry, *, distance: numpy.ndarray, mask: numpy.ndarray, limit: int
) -> list[tuple[str, float, bool]]:
    """The `limit` rows in `mask` nearest first, equal distances by id (rows are in id order), NaN
    last: what `ORDER BY distance, id LIMIT limit` returns. Rows: (id, distance, is_question)."""
    candidates = numpy.flatnonzero(mask)
    if not len(candidates):
        return []
    key = distance[candidates]
    key = numpy.where(numpy.isnan(key), numpy.inf, key)
    if len(candidates) > limit:
        kth = numpy.partition(key, limit - 1)[limit - 1]
        keep = key <= kth  # every row tied with the limit-th, for the id order to choose among
        candidates, key = candidates[keep], key[keep]
    order = numpy.lexsort((candidates, key))[:limit]
    return [
        (entry.ids[row], float(distance[row]), bool(entry.is_question[row]))
        for row in candidates[order].tolist()
    ]
