"""The narrow half-precision copies of chunk vectors (`ChunkVector`) that exact vector search
ranks: Postgres keeps them in step with every chunk write, and the search they serve returns
exactly the full-precision ranking, within the organization and assistant asked for."""

from __future__ import annotations

import math

import numpy
import pytest
from django.db import connection

from knowledge import retrieval, services
from knowledge.chunking import text_chunk
from knowledge.models import Chunk, ChunkVector, KnowledgeSource
from knowledge.services.indexing import content_hash, document_store
from knowledge.tests.factories import assistant_make

pytestmark = pytest.mark.django_db

DIMENSIONS = 384
MODEL = "test/seeded-384"


class TableEmbedder:
    """Returns the vector the test chose for each text."""

    name = MODEL

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self.vectors[text] for text in texts]


def _at_cosine(cosine: float, seed: int) -> list[float]:
    """A unit vector at `cosine` to the first axis (the query below), otherwise random."""
    rest = numpy.random.default_rng(seed).standard_normal(DIMENSIONS)
    rest[0] = 0.0
    rest /= numpy.linalg.norm(rest)
    vector = rest * math.sqrt(1.0 - cosine * cosine)
    vector[0] = cosine
    return vector.tolist()


QUERY = [1.0] + [0.0] * (DIMENSIONS - 1)


def _chunks_store(*, organization, assistant=None, cosines: list[float], tag: str) -> list[Chunk]:
    texts = [f"{tag} passage number {index}." for index in range(len(cosines))]
    embedder = TableEmbedder(
        {text: _at_cosine(cosine, seed=index) for index, (text, cosine) in enumerate(zip(texts, cosines))}
    )
    source = KnowledgeSource.objects.create(
        organization=organization,
        assistant=assistant,
        kind=KnowledgeSource.Kind.FILE,
        title=tag,
        status=KnowledgeSource.Status.READY,
    )
    drafts = [draft for text in texts for draft in text_chunk(text, max_chars=200)]
    document_store(
        source=source,
        key=tag,
        title=tag,
        drafts=drafts,
        text_hash=content_hash(" ".join(texts)),
        embedder=embedder,
    )
    return list(Chunk.objects.for_organization(organization).filter(source=source).order_by("chunk_no"))


def _copy(chunk: Chunk) -> ChunkVector | None:
    return ChunkVector.objects.for_organization(chunk.organization_id).filter(chunk_id=chunk.pk).first()


def test_every_embedded_chunk_has_its_copy_and_it_follows_the_chunk(tenant):
    organization = tenant.organization
    source = services.qa_create(organization=organization, question="Where is my parcel?", answer="Track it.")
    chunk = Chunk.objects.for_organization(organization).get(source=source)
    copy = _copy(chunk)
    assert copy is not None
    assert (copy.embedding_model, copy.embedding_dimensions, copy.assistant_id) == (
        chunk.embedding_model,
        384,
        None,
    )
    full = numpy.array(chunk.embedding, dtype=numpy.float64)
    half = numpy.array(list(copy.embedding), dtype=numpy.float64)
    assert numpy.dot(full, half) / (numpy.linalg.norm(full) * numpy.linalg.norm(half)) > 0.99999
    assert abs(numpy.linalg.norm(half) - 1.0) < 1e-3  # stored at unit length
    question = numpy.array(chunk.question_embedding, dtype=numpy.float64)  # a Q&A pair's question
    half_question = numpy.array(list(copy.question_embedding), dtype=numpy.float64)
    assert numpy.dot(question, half_question) / numpy.linalg.norm(question) > 0.9999

    # A new vector (re-embedding writes through a queryset update), scaled far past half
    # precision's range: the copy is the new direction at unit length.
    Chunk.objects.for_organization(organization).filter(pk=chunk.pk).update(
        embedding=[100_000.0] + [0.0] * 383, embedding_model="other/model"
    )
    copy = _copy(chunk)
    assert copy.embedding_model == "other/model"
    assert list(copy.embedding)[:2] == [1.0, 0.0]

    # The source moves to an assistant: so does the copy.
    assistant = assistant_make(organization=organization)
    Chunk.objects.for_organization(organization).filter(pk=chunk.pk).update(assistant=assistant)
    assert _copy(chunk).assistant_id == assistant.pk

    # The vector is cleared (a failed re-embed stores lexical-only chunks): no copy to search.
    Chunk.objects.for_organization(organization).filter(pk=chunk.pk).update(embedding=None)
    assert _copy(chunk) is None
    Chunk.objects.for_organization(organization).filter(pk=chunk.pk).update(embedding=[0.5] * 384)
    assert _copy(chunk) is not None

    # Deleting the source deletes its chunks, and their copies with them.
    services.source_delete(source=source)
    assert not ChunkVector.objects.for_organization(organization).exists()


def test_a_chunk_stored_without_a_vector_has_no_copy(tenant):
    chunk = _chunks_store(organization=tenant.organization, cosines=[0.5], tag="plain")[0]
    Chunk.objects.for_organization(tenant.organization).filter(pk=chunk.pk).update(embedding=None)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO knowledge_chunk (id, organization_id, created_at, source_id, document_id, chunk_no, "
            "title, heading, url, content, lexical, lexical_length, lexical_avgdl, terms, language, "
            "embedding_model, embedding_dimensions) SELECT gen_random_uuid(), organization_id, now(), "
            "source_id, document_id, chunk_no + 1, title, heading, url, content, lexical, lexical_length, "
            "lexical_avgdl, terms, language, '', 0 FROM knowledge_chunk WHERE id = %s",
            [chunk.pk],
        )
    assert Chunk.objects.for_organization(tenant.organization).count() == 2
    assert not ChunkVector.objects.for_organization(tenant.organization).exists()


def test_exact_search_returns_the_full_precision_ranking(tenant):
    """Twenty chunks closer to the query than half precision can tell apart (1e-6 apart), and
    forty far ones: the half-precision order of the close ones is scrambled, the result is
    not: order and scores are the float32 ones."""
    close = [0.9 + index * 1e-6 for index in range(20)]
    far = [0.1 + index * 0.01 for index in range(40)]
    chunks = _chunks_store(organization=tenant.organization, cosines=close + far, tag="close")
    found = retrieval.vector_ranking(
        organization=tenant.organization, assistant=None, vector=QUERY, model=MODEL, limit=10, exact=True
    )
    vectors = {str(chunk.pk): numpy.array(chunk.embedding, dtype=numpy.float32) for chunk in chunks}
    expected = sorted(
        ((chunk_id, float(vector[0] / numpy.linalg.norm(vector))) for chunk_id, vector in vectors.items()),
        key=lambda pair: -pair[1],
    )[:10]
    assert [chunk_id for chunk_id, _ in found] == [chunk_id for chunk_id, _ in expected]
    assert [score for _, score in found] == pytest.approx([score for _, score in expected], abs=1e-6)
    with connection.cursor() as cursor:  # what ranking the copies alone would have given
        cursor.execute(
            "SELECT chunk_id::text FROM knowledge_chunkvector WHERE organization_id = %s "
            "ORDER BY embedding <=> %s::halfvec LIMIT 10",
            [tenant.organization.pk, "[" + ",".join(map(str, QUERY)) + "]"],
        )
        half_order = [row[0] for row in cursor.fetchall()]
    assert half_order != [chunk_id for chunk_id, _ in expected]  # so the re-scoring mattered


def test_exact_search_stays_in_its_organization_and_assistant(tenant, other_tenant):
    organization = tenant.organization
    own = _chunks_store(organization=organization, cosines=[0.5, 0.6], tag="own")
    helper, other_helper = (
        assistant_make(organization=organization),
        assistant_make(organization=organization),
    )
    helpers = _chunks_store(organization=organization, assistant=helper, cosines=[0.7], tag="helper")
    others = _chunks_store(
        organization=organization, assistant=other_helper, cosines=[0.99], tag="other helper"
    )
    # Another organization's chunks are closer to the query than any of this one's.
    foreign = _chunks_store(organization=other_tenant.organization, cosines=[0.999, 0.998], tag="foreign")

    def found(assistant) -> set[str]:
        return {
            chunk_id
            for chunk_id, _ in retrieval.vector_ranking(
                organization=organization,
                assistant=assistant,
                vector=QUERY,
                model=MODEL,
                limit=50,
                exact=True,
            )
        }

    ids = lambda chunks: {str(chunk.pk) for chunk in chunks}  # noqa: E731
    assert found(None) == ids(own)
    assert found(helper) == ids(own) | ids(helpers)
    assert found(other_helper) == ids(own) | ids(others)
    assert not found(helper) & ids(foreign)


@pytest.fixture
def full_scans(monkeypatch) -> list[int]:
    """Counts exact searches that ranked every chunk in float32 (`_exact_full_statement`)."""
    calls: list[int] = []
    full_statement = retrieval._exact_full_statement

    def counted(**kwargs):
        calls.append(kwargs["limit"])
        return full_statement(**kwargs)

    monkeypatch.setattr(retrieval, "_exact_full_statement", counted)
    return calls


def _float32_ranking(chunks: list[Chunk], limit: int) -> list[str]:
    vectors = {str(chunk.pk): numpy.array(chunk.embedding, dtype=numpy.float32) for chunk in chunks}
    return [
        chunk_id
        for chunk_id, _cosine in sorted(
            (
                (chunk_id, float(vector[0] / numpy.linalg.norm(vector)))
                for chunk_id, vector in vectors.items()
            ),
            key=lambda pair: (-pair[1], pair[0]),
        )[:limit]
    ]


def test_exact_search_ranks_every_chunk_when_ties_straddle_the_window(tenant, full_scans):
    """Thirty chunks 1e-6 apart, which half precision cannot tell apart, stored worst first:
    the window of the best `exact_window(5)` copies holds some of them, not necessarily the five
    best, and its edge is within half precision's error of the fifth: the search cannot prove
    the window held the top 5, so it ranks every chunk in float32."""
    tied = [0.9 + index * 1e-6 for index in range(30)]
    far = [0.1 + index * 0.01 for index in range(30)]
    assert retrieval.exact_window(5) < len(tied)
    chunks = _chunks_store(organization=tenant.organization, cosines=tied + far, tag="tied")
    found = retrieval.vector_ranking(
        organization=tenant.organization, assistant=None, vector=QUERY, model=MODEL, limit=5, exact=True
    )
    assert [chunk_id for chunk_id, _ in found] == _float32_ranking(chunks, 5)
    assert full_scans == [5]


def test_exact_search_keeps_to_its_window_when_the_gap_proves_it(tenant, full_scans):
    """Twelve near-tied chunks, then a gap far wider than half precision's error: the window
    of the best `exact_window(10)` copies ends in that gap, so it provably holds the top 10 (no
    full scan), re-scored in float32."""
    close = [0.9 + index * 1e-6 for index in range(12)]
    far = [0.1 + index * 0.01 for index in range(45)]
    assert len(close) < retrieval.exact_window(10) < len(close + far)
    chunks = _chunks_store(organization=tenant.organization, cosines=close + far, tag="gap")
    found = retrieval.vector_ranking(
        organization=tenant.organization, assistant=None, vector=QUERY, model=MODEL, limit=10, exact=True
    )
    assert [chunk_id for chunk_id, _ in found] == _float32_ranking(chunks, 10)
    assert full_scans == []


@pytest.mark.parametrize(
    ("rows", "holds"),
    [
        ([], True),  # nothing in scope
        ([("a", 0.30, False, -0.60, 3), ("b", 0.31, False, -0.60, 3)], True),  # the window held all 3
        ([("a", 0.30, False, -0.60, 4)] * 2, True),  # the 2nd is 0.30 < 1 - 0.60 - error: proven
        ([("a", 0.30, False, -0.69, 4)] * 2, True),
        ([("a", 0.30, False, -0.699, 4)] * 2, False),  # within the error of the window's edge
        ([("a", 0.30, False, -0.70, 4)] * 2, False),  # a chunk outside could tie it
        ([("a", float("nan"), False, -0.60, 4)] * 2, False),
    ],
)
def test_window_proof(rows, holds):
    assert retrieval._exact_window_holds(rows, limit=2, window=4) is holds
