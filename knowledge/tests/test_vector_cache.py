"""Exact vector search in the web process (`knowledge.vector_cache`): the same ranking as the
SQL statement, never stale (the vector generation that a trigger renews with every chunk
write, from any connection), bounded in memory, and within its organization and assistant."""

from __future__ import annotations

import threading
import zlib

import numpy
import psycopg
import pytest
from django.db import connection

from knowledge import retrieval, vector_cache
from knowledge.chunking import text_chunk
from knowledge.models import Chunk, KnowledgeSource
from knowledge.services.indexing import DocumentDraft, content_hash, documents_store
from knowledge.tests.factories import assistant_make

DIMENSIONS = 384
MODEL = "test/seeded-384"


@pytest.fixture(autouse=True)
def _empty_cache(settings):
    settings.KNOWLEDGE_VECTOR_CACHE_SETTLE_SECONDS = 0.0
    vector_cache.cache.clear()
    yield
    vector_cache.cache.clear()


class RandomEmbedder:
    """A fixed random unit vector per text (seeded by the text), `dimensions` wide."""

    name = MODEL

    def __init__(self, dimensions: int = DIMENSIONS) -> None:
        self.dimensions = dimensions

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [_unit(text, self.dimensions).tolist() for text in texts]


def _unit(text: str, dimensions: int = DIMENSIONS) -> numpy.ndarray:
    vector = numpy.random.default_rng(zlib.crc32(text.encode())).standard_normal(dimensions)
    return (vector / numpy.linalg.norm(vector)).astype(numpy.float32)


def _store(*, organization, assistant=None, count: int, tag: str, embedder=None) -> list[Chunk]:
    source = KnowledgeSource.objects.create(
        organization=organization,
        assistant=assistant,
        kind=KnowledgeSource.Kind.FILE,
        title=tag,
        status=KnowledgeSource.Status.READY,
    )
    items = []
    for index in range(count):
        text = f"{tag} passage {index}."
        items.append(
            DocumentDraft(
                source=source,
                key=f"{tag}-{index}",
                title=tag,
                drafts=text_chunk(text, max_chars=200),
                text_hash=content_hash(text),
            )
        )
    documents_store(items=items, embedder=embedder or RandomEmbedder())
    return list(Chunk.objects.for_organization(organization).filter(source=source).order_by("id"))


def _search(*, organization, assistant=None, vector, limit: int = 10, in_process: bool = True, model=MODEL):
    """(ranking, Q&A ids) of the exact search, through the process's vectors (with the
    generation `query_prepare` reads, as `chunk_search` passes it) or in SQL."""
    prepared = retrieval.query_prepare(organization=organization, query="anything at all")
    extra = {"generation": prepared.generation, "chunk_count": prepared.chunk_count} if in_process else {}
    return retrieval.vector_candidates(
        organization=organization,
        assistant=assistant,
        vector=list(vector),
        model=model,
        limit=limit,
        exact=True,
        **extra,
    )


def _same(found, expected) -> None:
    (ranking, questions), (expected_ranking, expected_questions) = found, expected
    assert [chunk_id for chunk_id, _ in ranking] == [chunk_id for chunk_id, _ in expected_ranking]
    assert [score for _, score in ranking] == pytest.approx(
        [score for _, score in expected_ranking], abs=1e-6
    )
    assert questions == expected_questions


def _generation(organization) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT vector_generation FROM knowledge_corpusstatistic WHERE organization_id = %s",
            [organization.pk],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_the_in_process_search_ranks_as_the_sql_statement(tenant, other_tenant):
    """Organization-wide and assistant chunks, Q&A chunks (a question vector each), exact
    duplicates (ties, by id), chunks of another model and of another size, and another
    organization's chunks nearest of all: for every scope and query, the same chunks in the
    same order with the same scores and the same Q&A chunks."""
    organization = tenant.organization
    helper, other_helper = (
        assistant_make(organization=organization),
        assistant_make(organization=organization),
    )
    shared = _store(organization=organization, count=60, tag="shared")
    _store(organization=organization, assistant=helper, count=30, tag="helper")
    _store(organization=organization, assistant=other_helper, count=30, tag="other helper")
    duplicates = _store(organization=organization, count=4, tag="duplicate")
    questions = shared[:12]
    for index, chunk in enumerate(questions):  # Q&A chunks: matched on their question too
        Chunk.objects.for_organization(organization).filter(pk=chunk.pk).update(
            question_embedding=_unit(f"question {index}").tolist()
        )
    Chunk.objects.for_organization(organization).filter(pk__in=[chunk.pk for chunk in duplicates]).update(
        embedding=_unit("the same text").tolist()
    )
    Chunk.objects.for_organization(organization).filter(pk__in=[chunk.pk for chunk in shared[40:50]]).update(
        embedding_model="other/model"
    )
    _store(organization=organization, count=10, tag="small", embedder=RandomEmbedder(dimensions=8))
    foreign = _store(organization=other_tenant.organization, count=20, tag="foreign")

    queries = [_unit(f"query {index}") for index in range(12)]
    queries += [_unit("the same text"), _unit("question 3"), numpy.array(foreign[0].embedding, numpy.float32)]
    for assistant in (None, helper, other_helper):
        for limit in (5, 50):
            for query in queries:
                expected = _search(
                    organization=organization,
                    assistant=assistant,
                    vector=query,
                    limit=limit,
                    in_process=False,
                )
                found = _search(organization=organization, assistant=assistant, vector=query, limit=limit)
                _same(found, expected)
                assert not {chunk_id for chunk_id, _ in found[0]} & {str(chunk.pk) for chunk in foreign}
    held = _search(organization=organization, vector=_unit("the same text"), limit=4)
    assert [chunk_id for chunk_id, _ in held[0]] == sorted(
        str(chunk.pk) for chunk in duplicates
    )  # ties by id
    assert held[1] == set()
    assert {
        chunk_id for chunk_id, _ in _search(organization=organization, vector=_unit("question 3"), limit=1)[0]
    } == {str(questions[3].pk)}
    # The 8-wide chunks are searched with their own entry; the other model's with theirs.
    small = _search(organization=organization, vector=_unit("query 0", 8), limit=50)
    _same(small, _search(organization=organization, vector=_unit("query 0", 8), limit=50, in_process=False))
    assert len(small[0]) == 10
    other_model = _search(organization=organization, vector=queries[0], limit=50, model="other/model")
    assert {chunk_id for chunk_id, _ in other_model[0]} == {str(chunk.pk) for chunk in shared[40:50]}
    assert sorted(key[1:] for key in vector_cache.cache.keys()) == [
        ("other/model", DIMENSIONS),
        (MODEL, 8),
        (MODEL, DIMENSIONS),
    ]
    assert vector_cache.cache.loads == 3  # each read once, then served while unchanged


@pytest.mark.django_db
def test_the_generation_follows_vector_writes_only(tenant):
    organization = tenant.organization
    chunks = _store(organization=organization, count=3, tag="gen")
    chunk = Chunk.objects.for_organization(organization)
    start = _generation(organization)
    chunk.filter(pk=chunks[0].pk).update(content="new words, same vector")
    assert _generation(organization) == start
    changes = [
        {"embedding": _unit("moved").tolist()},
        {"question_embedding": _unit("asked").tolist()},
        {"embedding_model": "other/model"},
        {"assistant": assistant_make(organization=organization)},
    ]
    for change in changes:
        chunk.filter(pk=chunks[0].pk).update(**change)
        assert _generation(organization) > start, change
        start = _generation(organization)
    chunk.filter(pk=chunks[1].pk).delete()
    assert _generation(organization) > start


def _other_connection():
    """A connection of its own, committing each statement: another process's writes."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


@pytest.mark.django_db(transaction=True)
def test_writes_from_another_connection_are_seen_by_the_next_search(tenant):
    """The entry is read, then another connection inserts a chunk (raw SQL: a writer that knows
    nothing of the cache), re-embeds one and deletes one: each next search ranks what is
    committed, read again from Postgres, never the entry it held."""
    organization = tenant.organization
    chunks = _store(organization=organization, count=20, tag="live")
    query = _unit("the query")

    def search():
        return _search(organization=organization, vector=query, limit=5)

    def check(found) -> list[str]:
        _same(found, _search(organization=organization, vector=query, limit=5, in_process=False))
        return [chunk_id for chunk_id, _ in found[0]]

    before = check(search())
    assert vector_cache.cache.loads == 1
    check(search())
    assert vector_cache.cache.loads == 1  # unchanged: served from the process

    with _other_connection() as other:
        other.execute(
            "INSERT INTO knowledge_chunk (id, organization_id, created_at, source_id, document_id, chunk_no, "
            "title, heading, url, content, lexical, lexical_length, lexical_avgdl, terms, language, "
            "embedding, embedding_model, embedding_dimensions) SELECT gen_random_uuid(), organization_id, now(), "
            "source_id, document_id, 1000, title, heading, url, content, lexical, lexical_length, "
            "lexical_avgdl, terms, language, %s::vector, embedding_model, embedding_dimensions "
            "FROM knowledge_chunk WHERE id = %s RETURNING id",
            [str(query.tolist()), chunks[0].pk],
        )
    added = check(search())
    assert vector_cache.cache.loads == 2
    assert added[0] not in before and added[1:] == before[:4]  # the new chunk is the query itself

    with _other_connection() as other:  # re-embedded: the best chunk moves away
        other.execute(
            "UPDATE knowledge_chunk SET embedding = %s::vector WHERE id = %s",
            [str((-query).tolist()), added[0]],
        )
    assert check(search()) == before
    assert vector_cache.cache.loads == 3

    with _other_connection() as other:
        other.execute("DELETE FROM knowledge_chunk WHERE id = %s", [before[0]])
    after = check(search())
    assert after[:4] == before[1:] and before[0] not in after
    assert vector_cache.cache.loads == 4


@pytest.mark.django_db
def test_a_search_with_an_older_generation_than_the_entry_runs_in_sql(tenant):
    """A turn that read the generation before a write, searching after another thread read
    the entry at the new one: the entry does not serve it (it would rank chunks the turn's
    statistics never counted), SQL does."""
    organization = tenant.organization
    _store(organization=organization, count=5, tag="old")
    old = retrieval.query_prepare(organization=organization, query="x")
    _store(organization=organization, count=5, tag="new")
    _search(organization=organization, vector=_unit("q"))  # reads the entry at the new generation
    assert vector_cache.cache.loads == 1
    entry = vector_cache.cache.get(
        organization_id=organization.pk,
        model=MODEL,
        dimensions=DIMENSIONS,
        generation=old.generation,
        chunk_count=old.chunk_count,
    )
    assert entry is None  # read again: still the new generation, so not this search's
    assert vector_cache.cache.loads == 2


@pytest.mark.django_db
def test_an_organization_whose_vectors_are_changing_is_searched_in_sql(tenant, settings):
    settings.KNOWLEDGE_VECTOR_CACHE_SETTLE_SECONDS = 60.0
    organization = tenant.organization
    _store(organization=organization, count=10, tag="churn")
    query = _unit("q")
    _same(
        _search(organization=organization, vector=query),
        _search(organization=organization, vector=query, in_process=False),
    )
    assert vector_cache.cache.loads == 0


@pytest.mark.django_db
def test_a_search_does_not_wait_for_another_thread_reading_the_same_entry(tenant):
    organization = tenant.organization
    _store(organization=organization, count=10, tag="busy")
    key = (organization.pk, MODEL, DIMENSIONS)
    held = vector_cache.cache._loading.setdefault(key, threading.Lock())
    query = _unit("q")
    with held:  # another thread is reading it
        _same(
            _search(organization=organization, vector=query),
            _search(organization=organization, vector=query, in_process=False),
        )
        assert vector_cache.cache.loads == 0
    _search(organization=organization, vector=query)
    assert vector_cache.cache.loads == 1


@pytest.mark.django_db
def test_memory_is_bounded_least_recently_used_first(tenant, other_tenant, settings):
    first, second = tenant.organization, other_tenant.organization
    _store(organization=first, count=40, tag="first")
    _store(organization=second, count=40, tag="second")
    query = _unit("q")
    _search(organization=first, vector=query)
    one = vector_cache.cache.nbytes
    assert 40 * DIMENSIONS * 4 < one < 40 * (DIMENSIONS * 4 + vector_cache.ROW_OVERHEAD_BYTES) + 4096

    settings.KNOWLEDGE_VECTOR_CACHE_BYTES = one + one // 2  # room for one of the two
    _search(organization=second, vector=query)
    assert [key[0] for key in vector_cache.cache.keys()] == [second.pk]
    assert vector_cache.cache.nbytes <= settings.KNOWLEDGE_VECTOR_CACHE_BYTES

    settings.KNOWLEDGE_VECTOR_CACHE_BYTES = one // 2  # neither fits: never held, SQL answers
    vector_cache.cache.clear()
    loads = vector_cache.cache.loads
    for organization in (first, second):
        _same(
            _search(organization=organization, vector=query),
            _search(organization=organization, vector=query, in_process=False),
        )
    assert vector_cache.cache.keys() == [] and vector_cache.cache.loads == loads

    settings.KNOWLEDGE_VECTOR_CACHE_BYTES = 0  # off
    _same(
        _search(organization=first, vector=query), _search(organization=first, vector=query, in_process=False)
    )
    assert vector_cache.cache.keys() == []


@pytest.mark.django_db
def test_another_organizations_entry_never_answers(tenant, other_tenant):
    """Both organizations held, the other's vectors nearer the query: a search returns its own
    organization's chunks only, from its own entry; an entry asked for another organization's
    scope allows no row."""
    mine = _store(organization=tenant.organization, count=5, tag="mine")
    theirs = _store(organization=other_tenant.organization, count=5, tag="theirs")
    query = numpy.array(theirs[0].embedding, dtype=numpy.float32)
    assert _search(organization=other_tenant.organization, vector=query, limit=1)[0][0][0] == str(
        theirs[0].pk
    )
    found = {chunk_id for chunk_id, _ in _search(organization=tenant.organization, vector=query, limit=50)[0]}
    assert found == {str(chunk.pk) for chunk in mine}
    assert vector_cache.cache.loads == 2
    their_entry = vector_cache.load(
        organization_id=other_tenant.organization.pk, model=MODEL, dimensions=DIMENSIONS
    )
    assert not retrieval.scope_mask(their_entry, organization=tenant.organization, assistant=None).any()


def _failing_read(kind: str):
    """What `vector_cache._matrix` (called per batch, mid-read) becomes for each way a read fails:
    the real decoder given a truncated blob, a real database error on the read's connection (the
    transaction is aborted unless the read had a savepoint), or the allocator giving up."""
    real = vector_cache._matrix

    def matrix(blobs, *, dimensions):
        if kind == "corrupt blob":
            return real([blob[:-8] for blob in blobs], dimensions=dimensions)
        if kind == "database error":
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")
        if kind == "out of memory":
            raise MemoryError
        return real(blobs, dimensions=dimensions)

    return matrix


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["corrupt blob", "database error", "out of memory"])
def test_a_read_that_fails_leaves_the_search_to_sql_and_the_transaction_usable(tenant, kind, monkeypatch):
    """The test runs in a transaction, as a turn may: after the failed read the same
    transaction still answers (the SQL search, then more statements), and the failure is not
    paid again by every turn while the vectors are unchanged."""
    organization = tenant.organization
    chunks = _store(organization=organization, count=12, tag="fragile")
    query = _unit("q")
    expected = _search(organization=organization, vector=query, in_process=False)
    monkeypatch.setattr(vector_cache, "_matrix", _failing_read(kind))

    assert connection.in_atomic_block
    _same(_search(organization=organization, vector=query), expected)
    assert vector_cache.cache.failures == 1 and vector_cache.cache.loads == 0
    assert Chunk.objects.for_organization(organization).count() == len(chunks)  # still usable
    _same(_search(organization=organization, vector=query), expected)
    assert vector_cache.cache.failures == 1  # not tried again at this generation yet

    monkeypatch.undo()  # the condition passed; after the wait the vectors are read again
    monkeypatch.setattr(vector_cache, "RETRY_AFTER_FAILURE_SECONDS", 0.0)
    _same(_search(organization=organization, vector=query), expected)
    assert vector_cache.cache.loads == 1 and vector_cache.cache.keys() == [
        (organization.pk, MODEL, DIMENSIONS)
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_reads_of_two_organizations_stay_within_the_limit_together(tenant, other_tenant, settings):
    """Each organization fits the limit, both together do not: while one thread reads the
    first, a search of the second runs in SQL instead of reading it alongside, and what is held
    plus what is being read never passes the limit."""
    first, second = tenant.organization, other_tenant.organization
    _store(organization=first, count=40, tag="first")
    _store(organization=second, count=40, tag="second")
    query = _unit("q")
    _search(organization=first, vector=query)
    one = vector_cache.cache.nbytes
    vector_cache.cache.clear()
    settings.KNOWLEDGE_VECTOR_CACHE_BYTES = 40 * (DIMENSIONS * 4 + vector_cache.ROW_OVERHEAD_BYTES) + one // 2

    reading, release = threading.Event(), threading.Event()
    real = vector_cache._matrix

    def slow_matrix(blobs, *, dimensions):
        reading.set()
        release.wait(30)
        return real(blobs, dimensions=dimensions)

    results = {}

    def first_search():
        try:
            results["first"] = _search(organization=first, vector=query)
        finally:
            connection.close()

    vector_cache._matrix = slow_matrix
    try:
        thread = threading.Thread(target=first_search)
        thread.start()
        assert reading.wait(30)
        vector_cache._matrix = real
        _same(
            _search(organization=second, vector=query),
            _search(organization=second, vector=query, in_process=False),
        )
        assert vector_cache.cache.loads == 0  # not read beside the first
        assert vector_cache.cache.reserved > 0  # the first's read
        assert (
            vector_cache.cache.nbytes + vector_cache.cache.reserved <= settings.KNOWLEDGE_VECTOR_CACHE_BYTES
        )
    finally:
        vector_cache._matrix = real
        release.set()
        thread.join(30)
    _same(results["first"], _search(organization=first, vector=query, in_process=False))
    assert vector_cache.cache.loads == 1 and vector_cache.cache.reserved == 0

    _search(organization=second, vector=query)  # now read, the first dropped to make room
    assert [key[0] for key in vector_cache.cache.keys()] == [second.pk]
    assert vector_cache.cache.nbytes <= settings.KNOWLEDGE_VECTOR_CACHE_BYTES
