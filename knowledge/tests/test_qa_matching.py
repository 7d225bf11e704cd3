"""Q&A pairs are matched question-to-question as well as question-to-(question and answer):
the question's own vector is stored with the pair's chunk, kept current on edit and by the
re-embed job, scoped like every chunk, and a pair's missing words never sink it in fusion."""

from __future__ import annotations

import math

import pytest
from django.core.management import call_command

from knowledge import retrieval, services
from knowledge.embeddings import embedder_get
from knowledge.models import Chunk, KnowledgeSource
from knowledge.services.indexing import content_hash, document_store, source_counts_refresh
from knowledge.types import ChunkDraft

pytestmark = pytest.mark.django_db

# A software product's billing questions. "How do I move to a cheaper plan?" is a paraphrase of
# "How do I upgrade or downgrade my plan?", but that pair's answer is about billing dates and
# proration, and on question and answer together the free-trial pair is closer to it.
BILLING = [
    (
        "How much does Tasklane cost?",
        "Tasklane is free for up to 3 users. The Team plan costs $8 per user per month billed "
        "annually ($10 billed monthly), and Business costs $16 per user per month.",
    ),
    (
        "Is there a free trial?",
        "Every paid plan starts with a 14-day free trial. No credit card is required.",
    ),
    (
        "How do I cancel my subscription?",
        "Workspace owners can cancel under Settings > Billing > Cancel plan. The workspace stays on "
        "the paid plan until the end of the billing period, then moves to Free.",
    ),
    (
        "Where can I download my invoices?",
        "Settings > Billing > Invoices lists every invoice as a PDF. Invoices are also emailed to the "
        "billing contact.",
    ),
    (
        "How do I upgrade or downgrade my plan?",
        "Go to Settings > Billing > Change plan. Upgrades take effect immediately with a prorated "
        "charge; downgrades apply at the next billing date.",
    ),
    (
        "Do you offer discounts for nonprofits?",
        "Registered nonprofits get 50% off the Team and Business plans. Email sales@tasklane.example "
        "with proof of your status.",
    ),
]
PARAPHRASE = "how do I move to a cheaper plan?"
EXPECTED = "How do I upgrade or downgrade my plan?"


@pytest.fixture(params=["exact", "hnsw"])
def vector_search(request, settings):
    """Both ways the semantic side can run: a small organization's own rows, or the HNSW indexes."""
    settings.KNOWLEDGE_VECTOR_EXACT_MAX_CHUNKS = 10**9 if request.param == "exact" else -1
    return request.param


@pytest.fixture
def billing(tenant):
    return [
        services.qa_create(organization=tenant.organization, question=question, answer=answer)
        for question, answer in BILLING
    ]


def _cosine(left, right) -> float:
    dot = sum(a * b for a, b in zip(left, right, strict=True))
    return dot / math.sqrt(sum(a * a for a in left) * sum(b * b for b in right))


def _first_question(organization, mode: str) -> str:
    return retrieval.chunk_search(organization=organization, query=PARAPHRASE, k=3, mode=mode)[0].question


@pytest.mark.usefixtures("vector_search")
@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_a_paraphrase_finds_its_pair_through_the_question_vector(tenant, billing, mode):
    assert _first_question(tenant.organization, mode) == EXPECTED
    # Matched on question and answer alone (as before question vectors), another pair came first:
    # the free-trial pair semantically; in hybrid, the cancel pair, which shares "plan" with the
    # question (BM25 holds 0.55 of the fused score).
    Chunk.objects.for_organization(tenant.organization).update(question_embedding=None)
    wrong = {"vector": "Is there a free trial?", "hybrid": "How do I cancel my subscription?"}
    assert _first_question(tenant.organization, mode) == wrong[mode]


def test_a_pair_stores_its_question_vector_and_documents_none(tenant):
    source = services.qa_create(
        organization=tenant.organization, question="Is parking free?", answer="Yes, for customers."
    )
    page = KnowledgeSource.objects.create(
        organization=tenant.organization, kind=KnowledgeSource.Kind.FILE, title="Parking", file_name="p.txt"
    )
    document_store(
        source=page,
        key="p.txt",
        title="Parking",
        drafts=[ChunkDraft(content="Parking is free for customers for two hours.")],
        text_hash=content_hash("parking"),
    )
    source_counts_refresh(source=page)
    embedder = embedder_get()
    qa_chunk = Chunk.objects.for_organization(tenant.organization).get(source=source)
    assert _cosine(qa_chunk.question_embedding, embedder.embed(["Is parking free?"])[0]) > 0.999
    assert _cosine(qa_chunk.embedding, embedder.embed(["Is parking free?\nYes, for customers."])[0]) > 0.999
    assert Chunk.objects.for_organization(tenant.organization).get(source=page).question_embedding is None


def test_editing_a_pair_re_embeds_its_question(tenant):
    source = services.qa_create(
        organization=tenant.organization, question="Is parking free?", answer="Yes, for customers."
    )
    services.qa_update(source=source, question="Do you deliver on Sundays?", answer="No, Monday to Saturday.")
    chunk = Chunk.objects.for_organization(tenant.organization).get(source=source)
    assert _cosine(chunk.question_embedding, embedder_get().embed(["Do you deliver on Sundays?"])[0]) > 0.999
    # Re-saving the same text keeps the chunk (and its vectors) as it is...
    services.qa_update(source=source, question="Do you deliver on Sundays?", answer="No, Monday to Saturday.")
    assert Chunk.objects.for_organization(tenant.organization).get(source=source).pk == chunk.pk
    # ...unless the pair was stored before questions had a vector: then saving it embeds it.
    Chunk.objects.for_organization(tenant.organization).update(question_embedding=None)
    services.qa_update(source=source, question="Do you deliver on Sundays?", answer="No, Monday to Saturday.")
    chunk = Chunk.objects.for_organization(tenant.organization).get(source=source)
    assert _cosine(chunk.question_embedding, embedder_get().embed(["Do you deliver on Sundays?"])[0]) > 0.999


def test_the_re_embed_job_backfills_pairs_stored_before_question_vectors(tenant, other_tenant, billing):
    other = services.qa_create(
        organization=other_tenant.organization, question="Is parking free?", answer="Yes, for customers."
    )
    Chunk.objects.unscoped().update(question_embedding=None)  # as the migration leaves existing pairs
    assert services.chunks_reembed(organization=tenant.organization) == len(BILLING)
    assert not Chunk.objects.for_organization(tenant.organization).filter(question_embedding=None).exists()
    assert (
        Chunk.objects.for_organization(other_tenant.organization).get(source=other).question_embedding is None
    )
    assert services.chunks_reembed(organization=tenant.organization) == 0  # nothing left to do
    assert _first_question(tenant.organization, "hybrid") == EXPECTED
    call_command("knowledge_reembed", "--organization", other_tenant.organization.slug)
    assert (
        Chunk.objects.for_organization(other_tenant.organization).get(source=other).question_embedding
        is not None
    )


def test_the_re_embed_command_refuses_an_unknown_organization():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("knowledge_reembed", "--organization", "no-such-organization")


@pytest.mark.usefixtures("vector_search")
@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_another_organizations_question_vectors_never_match(tenant, other_tenant, billing, mode):
    # The other organization holds the paraphrase itself as a question: the closest question
    # vector in the table, which must not reach this organization's results.
    foreign = services.qa_create(
        organization=other_tenant.organization,
        question=PARAPHRASE,
        answer="Globex: call your account manager.",
    )
    passages = retrieval.chunk_search(organization=tenant.organization, query=PARAPHRASE, k=10, mode=mode)
    assert passages and passages[0].question == EXPECTED
    assert all(passage.source_id != foreign.pk for passage in passages)
    assert all("Globex" not in passage.content for passage in passages)
    theirs = retrieval.chunk_search(organization=other_tenant.organization, query=PARAPHRASE, k=10, mode=mode)
    assert [passage.source_id for passage in theirs] == [foreign.pk]


def test_vector_candidates_flag_the_chunks_that_are_pairs(tenant, billing):
    page = KnowledgeSource.objects.create(
        organization=tenant.organization, kind=KnowledgeSource.Kind.FILE, title="Plans", file_name="plans.txt"
    )
    document_store(
        source=page,
        key="plans.txt",
        title="Plans",
        drafts=[ChunkDraft(content="Plans: Free, Team and Business. Change plan under Settings > Billing.")],
        text_hash=content_hash("plans"),
    )
    ranking, questions = retrieval.vector_candidates(
        organization=tenant.organization,
        assistant=None,
        vector=embedder_get().embed([PARAPHRASE])[0],
        model=embedder_get().name,
        limit=50,
        exact=True,
    )
    pairs = {
        str(pk)
        for pk in Chunk.objects.for_organization(tenant.organization)
        .filter(source__in=billing)
        .values_list("pk", flat=True)
    }
    assert questions == pairs and len(ranking) == len(BILLING) + 1


def test_rank_fuse_never_lets_a_pairs_missing_words_sink_it():
    # "qa" is the vector retriever's first but shares no word with the question; "doc" is first
    # lexically and third semantically. Counted plainly, "doc" wins (1/61 + 1/63 against
    # 1/62 + 1/61); a pair's lexical vote is never worse than its vector one, so "qa" wins.
    # (Reciprocal-rank form; the score form's analogue is in test_fusion.py.)
    rrf = retrieval.Fusion(method="rank", k=60, lexical_weight=1.0)
    lexical = [("doc", 5.0), ("other", 2.0)]
    semantic = [("qa", 0.8), ("other", 0.7), ("doc", 0.6)]
    assert retrieval.rank_fuse(lexical, semantic, fusion=rrf)[0][0] == "doc"
    fused = dict(retrieval.rank_fuse(lexical, semantic, fusion=rrf, vector_led={"qa"}))
    assert fused["qa"] == pytest.approx(2 / 61)
    assert fused["doc"] == pytest.approx(1 / 61 + 1 / 63)  # documents are fused as before
    # Words a pair does share still count: lexically first, semantically second.
    fused = dict(
        retrieval.rank_fuse([("qa", 5.0)], [("doc", 0.9), ("qa", 0.8)], fusion=rrf, vector_led={"qa"})
    )
    assert fused["qa"] == pytest.approx(1 / 61 + 1 / 62)
    # Ids not among the candidates change nothing.
    assert retrieval.rank_fuse(lexical, semantic, fusion=rrf, vector_led={"absent"}) == retrieval.rank_fuse(
        lexical, semantic, fusion=rrf
    )
