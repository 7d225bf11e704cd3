"""Relevance scoring reuses what retrieval already computed: the question is embedded once per
turn (knowledge's query cache) and a knowledge passage is scored with the vector stored with
its chunk, never embedded again on the request thread."""

from __future__ import annotations

import hashlib

import pytest

from chat import grounding
from chat.prompts import CompanyRules
from knowledge import embeddings
from knowledge.models import Chunk, KnowledgeSource
from knowledge.services.indexing import content_hash, document_store
from knowledge.types import ChunkDraft

pytestmark = pytest.mark.django_db

GUIDE = "Parcels leave our Berlin warehouse every weekday and are carried by DHL to over 40 countries."


@pytest.fixture
def guide(tenant):
    source = KnowledgeSource.objects.create(
        organization=tenant.organization,
        kind=KnowledgeSource.Kind.FILE,
        title="Shipping guide",
        file_name="shipping.txt",
        file_type=KnowledgeSource.FileType.TEXT,
        status=KnowledgeSource.Status.READY,
    )
    document_store(
        source=source,
        key="file",
        title="Shipping guide",
        drafts=[ChunkDraft(content=GUIDE)],
        text_hash=content_hash(GUIDE),
    )
    return Chunk.objects.for_organization(tenant.organization).get(source=source)


def _cache_key(text: str) -> tuple[str, str]:
    return (embeddings.LOCAL_MODEL_NAME, hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest())


def test_a_turn_embeds_the_question_once_and_scores_passages_with_their_stored_vectors(tenant, guide):
    question = "Who ships my parcels?"
    grounding._vector_cache.clear()
    embeddings._query_cache.clear()
    evidence, relevant = grounding.evidence_gather(
        organization=tenant.organization, assistant=None, question=question, rules=CompanyRules()
    )
    (passage,) = [item for item in evidence if item.kind == "file"]
    assert passage.vector == pytest.approx(tuple(guide.embedding), abs=1e-6)
    assert passage.number in relevant  # the stored vector still establishes relevance
    # The question went through the query cache once; nothing was embedded a second time.
    assert (embeddings.LOCAL_MODEL_NAME, question) in embeddings._query_cache
    assert _cache_key(question) not in grounding._vector_cache
    assert _cache_key(GUIDE) not in grounding._vector_cache
    assert len(grounding._vector_cache) == 0


def test_a_passage_is_scored_with_the_vector_it_brings(tenant):
    """A candidate whose stored vector is the question's own scores as fully relevant,
    whatever its text: proof the stored vector, not a fresh embedding, is what is compared."""
    from chat.llm.types import Evidence

    question = "Which carrier delivers my parcel?"
    vector = tuple(embeddings.query_embed(embedder=embeddings.embedder_get(), text=question))
    unrelated = Evidence(
        number=0,
        kind="file",
        title="Minutes",
        content="The board met on Tuesday.",
        relevance=0.0,
        vector=vector,
    )
    (scored,) = grounding.candidates_score(question=question, candidates=[unrelated])
    assert scored.relevance > 0.99
    without = grounding.candidates_score(
        question=question, candidates=[Evidence(**{**unrelated.__dict__, "vector": None})]
    )
    assert without[0].relevance < 0.5


def test_a_turns_evidence_carries_the_snippet_its_search_would_give(tenant):
    """Snippets are made after the gate, for the evidence shown only: the same ones a search returns."""
    from knowledge.retrieval import chunk_search

    long_guide = " ".join(
        [GUIDE, "Returns are free within 30 days of delivery."]
        + [
            f"Section {number} of the guide describes packaging rules for fragile goods."
            for number in range(8)
        ]
        + ["Express parcels to Canada arrive in two business days with DHL Express."]
    )
    source = KnowledgeSource.objects.create(
        organization=tenant.organization,
        kind=KnowledgeSource.Kind.FILE,
        title="Long shipping guide",
        file_name="long.txt",
        file_type=KnowledgeSource.FileType.TEXT,
        status=KnowledgeSource.Status.READY,
    )
    document_store(
        source=source,
        key="file",
        title="Long shipping guide",
        drafts=[ChunkDraft(content=long_guide)],
        text_hash=content_hash(long_guide),
    )
    question = "How fast do express parcels to Canada arrive?"
    evidence, relevant = grounding.evidence_gather(
        organization=tenant.organization, assistant=None, question=question, rules=CompanyRules()
    )
    (passage,) = [item for item in evidence if item.kind == "file"]
    assert passage.number in relevant
    (searched,) = chunk_search(organization=tenant.organization, query=question, k=1)
    assert len(long_guide) > 300 and passage.source["snippet"] == searched.snippet
    assert searched.snippet.startswith("Express parcels to Canada")
    unsnipped = grounding.knowledge_search(
        organization=tenant.organization, assistant=None, query=question, snippets=False
    )
    assert [item.source["snippet"] for item in unsnipped] == [""]


def test_a_qa_pairs_question_vector_comes_from_its_chunk_exactly(tenant, monkeypatch):
    """A process seeing a Q&A pair for the first time reads its question's stored vector (read back
    as the exact float32 values) instead of a forward pass: the same vector, bitwise."""
    from knowledge.services import qa_create

    pair = "How do I reset my password?"
    qa_create(organization=tenant.organization, question=pair, answer="Use the link on the login page.")
    grounding._vector_cache.clear()
    embeddings._query_cache.clear()
    embedded: list[str] = []
    encode = embeddings.LocalEmbedder._encode

    def counting(model, texts):
        embedded.extend(texts)
        return encode(model, texts)

    monkeypatch.setattr(embeddings.LocalEmbedder, "_encode", staticmethod(counting))
    question = "I cannot remember my password, how do I reset it?"
    evidence, relevant = grounding.evidence_gather(
        organization=tenant.organization, assistant=None, question=question, rules=CompanyRules()
    )
    (item,) = [item for item in evidence if item.kind == "qa"]
    assert item.number in relevant
    assert question in embedded and pair not in embedded
    key = (
        embeddings.LOCAL_MODEL_NAME,
        "query",
        hashlib.sha1(pair.encode(), usedforsecurity=False).hexdigest(),
    )
    monkeypatch.setattr(embeddings.LocalEmbedder, "_encode", staticmethod(encode))
    assert list(grounding._vector_cache[key]) == embeddings.embedder_get().embed_queries([pair])[0]
