"""chunk_search over Q&A pairs: lexical, semantic, fused; scoped by organization and assistant."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from core import timing
from core.errors import ValidationFailed
from knowledge import retrieval, services
from knowledge.models import Chunk, CorpusStatistic, KnowledgeSource, TermStatistic
from knowledge.tests.factories import FAQ, assistant_make

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["exact", "hnsw"])
def vector_search(request, settings):
    """Both ways the semantic side can run: a small organization's own rows, or the HNSW index."""
    settings.KNOWLEDGE_VECTOR_EXACT_MAX_CHUNKS = 10**9 if request.param == "exact" else -1
    return request.param


@pytest.fixture
def faq(tenant):
    return [
        services.qa_create(organization=tenant.organization, question=q, answer=a, tags=["faq"])
        for q, a in FAQ
    ]


def test_qa_create_is_live_at_once(tenant):
    source = services.qa_create(
        organization=tenant.organization,
        question="Where is my parcel?",
        answer="Track it from your account page.",
    )
    assert source.status == KnowledgeSource.Status.READY
    assert source.chunk_count == 1
    chunk = Chunk.objects.for_organization(tenant.organization).get(source=source)
    assert chunk.embedding_model == "local/all-MiniLM-L6-v2"
    assert chunk.embedding_dimensions == 384
    assert len(list(chunk.embedding)) == 384
    passages = retrieval.chunk_search(organization=tenant.organization, query="where is my parcel")
    assert passages[0].source_id == source.pk
    assert passages[0].question == "Where is my parcel?"
    assert passages[0].answer == "Track it from your account page."


def test_qa_create_validates(tenant):
    with pytest.raises(ValidationFailed) as error:
        services.qa_create(organization=tenant.organization, question="  ", answer="x")
    assert "question" in error.value.details
    with pytest.raises(ValidationFailed):
        services.qa_create(organization=tenant.organization, question="q?", answer="x" * 20_001)
    assert not KnowledgeSource.objects.for_organization(tenant.organization).exists()


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "vector"])
@pytest.mark.usefixtures("vector_search")
def test_each_mode_finds_the_literal_question(tenant, faq, mode):
    passages = retrieval.chunk_search(
        organization=tenant.organization, query="reset my password", k=3, mode=mode
    )
    assert passages[0].question == "How can I reset my password?"
    assert passages == sorted(passages, key=lambda passage: -passage.score)


@pytest.mark.usefixtures("vector_search")
def test_paraphrase_is_found_by_the_default_hybrid_search(tenant, faq):
    # No word in common with the stored question except stop words: only semantics can match.
    passages = retrieval.chunk_search(organization=tenant.organization, query="I want my money back", k=3)
    assert passages[0].question == "How do I get a refund?"
    assert (
        retrieval.chunk_search(organization=tenant.organization, query="I want my money back", mode="lexical")
        == []
    )


def test_passage_as_source_is_json(tenant, faq):
    passage = retrieval.chunk_search(organization=tenant.organization, query="ship abroad")[0]
    source = passage.as_source()
    assert set(source) == {"source_id", "type", "title", "url", "file", "page", "snippet", "score"}
    assert source["type"] == "qa"
    assert source["source_id"] == str(passage.source_id)
    json.dumps(source)
    assert len(passage.snippet) <= 300


CARE_PAGE = (
    "Lamp care and warranty\n\n"
    "Cleaning\n"
    "Unplug the lamp and let the bulb cool. Wipe the shade with a dry microfiber cloth. Do not use "
    "water or cleaning sprays on fabric shades.\n"
    "Bulbs\n"
    "All our lamps take standard E26 LED bulbs up to 10 watts. Bulbs are not included.\n"
    "Warranty\n"
    "Every lamp has a 2-year warranty against electrical and manufacturing defects. The warranty "
    "does not cover damage from drops or misuse."
)


def test_a_snippet_keeps_the_passage_s_lines():
    """Found on a new-user walk: the inbox showed a source as "…on fabric shades. Bulbs All our
    lamps take…", the passage's headings glued into the sentences around them. A heading, list
    item or table row starts a line of the snippet, as in the passage; sentences of one paragraph
    stay on one line; the limit holds."""
    snippet = retrieval.snippet_make(content=CARE_PAGE, query="fabric shade cleaning sprays")
    assert snippet == CARE_PAGE[CARE_PAGE.index("Do not use") :]
    assert "\nBulbs\nAll our lamps" in snippet and "\nWarranty\nEvery lamp" in snippet
    assert len(snippet) <= retrieval.SNIPPET_CHARS
    assert retrieval.snippet_make(content=CARE_PAGE, query="fabric shade cleaning sprays", limit=100) == (
        "Do not use water or cleaning sprays on fabric shades.\nBulbs"
    )
    short = "Payment options\nWe accept:\n- PayPal\n-   Visa  and Mastercard"
    assert retrieval.snippet_make(content=short, query="paypal") == (
        "Payment options\nWe accept:\n- PayPal\n- Visa and Mastercard"
    )


@pytest.mark.usefixtures("vector_search")
def test_other_organizations_knowledge_is_never_returned(tenant, other_tenant, faq):
    services.qa_create(
        organization=other_tenant.organization,
        question="How do I get a refund?",
        answer="Globex secret refund policy.",
    )
    for mode in ("hybrid", "lexical", "vector"):
        passages = retrieval.chunk_search(organization=tenant.organization, query="refund", k=10, mode=mode)
        assert passages
        assert all("Globex" not in passage.content for passage in passages)
    other = retrieval.chunk_search(organization=other_tenant.organization, query="refund", k=10)
    assert [passage.answer for passage in other] == ["Globex secret refund policy."]


@pytest.mark.usefixtures("vector_search")
def test_assistant_scoping(tenant, faq):
    billing = assistant_make(organization=tenant.organization, name="Billing")
    sales = assistant_make(organization=tenant.organization, name="Sales")
    own = services.qa_create(
        organization=tenant.organization,
        question="What is the invoice due date?",
        answer="Invoices are due 30 days after issue.",
        assistant=billing,
    )
    found = retrieval.chunk_search(
        organization=tenant.organization, assistant=billing, query="invoice due date"
    )
    assert found[0].source_id == own.pk
    for assistant in (None, sales):
        passages = retrieval.chunk_search(
            organization=tenant.organization, assistant=assistant, query="invoice due date", k=10
        )
        assert own.pk not in {passage.source_id for passage in passages}
    # Organization-wide knowledge stays visible to a scoped assistant.
    scoped = retrieval.chunk_search(
        organization=tenant.organization, assistant=billing, query="reset password"
    )
    assert scoped[0].question == "How can I reset my password?"


def test_assistant_of_another_organization_is_refused(tenant, other_tenant):
    foreign = assistant_make(organization=other_tenant.organization)
    with pytest.raises(ValidationFailed):
        services.qa_create(organization=tenant.organization, question="q?", answer="a", assistant=foreign)


def test_term_statistics_follow_creates_and_deletes(tenant, faq):
    organization = tenant.organization
    statistics = CorpusStatistic.objects.for_organization(organization).get()
    assert statistics.chunk_count == len(FAQ)
    before = dict(
        TermStatistic.objects.for_organization(organization).values_list("term", "document_frequency")
    )
    extra = services.qa_create(
        organization=organization, question="Refund for a gift?", answer="Gift refunds go to the giver."
    )
    services.source_delete(source=extra)
    after = dict(
        TermStatistic.objects.for_organization(organization).values_list("term", "document_frequency")
    )
    assert after == before
    statistics.refresh_from_db()
    assert statistics.chunk_count == len(FAQ)
    for source in faq:
        services.source_delete(source=source)
    assert not TermStatistic.objects.for_organization(organization).exists()
    assert not Chunk.objects.for_organization(organization).exists()
    assert retrieval.chunk_search(organization=organization, query="refund") == []


def test_search_validates_and_handles_empty_input(tenant, faq):
    with pytest.raises(ValidationFailed):
        retrieval.chunk_search(organization=tenant.organization, query="refund", mode="fuzzy")
    assert retrieval.chunk_search(organization=tenant.organization, query="   ") == []
    # Only stop words: nothing lexical to match; the semantic side still answers something.
    assert retrieval.chunk_search(organization=tenant.organization, query="the and of", mode="lexical") == []


def test_search_records_embed_and_retrieve_phases(tenant, faq):
    token = timing.start()
    retrieval.chunk_search(organization=tenant.organization, query="opening hours")
    phases = timing.stop(token)
    assert phases["embed"] > 0
    assert phases["retrieve"] > 0


def test_small_organizations_are_searched_exactly_large_ones_through_hnsw(tenant, faq, settings):
    from django.test.utils import CaptureQueriesContext

    def statements(query: str) -> str:
        with CaptureQueriesContext(connection) as captured:
            retrieval.chunk_search(organization=tenant.organization, query=query, mode="vector")
        return " ; ".join(item["sql"] for item in captured.captured_queries)

    def plan(statement: str) -> str:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + statement)
            return " ".join(row[0] for row in cursor.fetchall())

    exact = statements("how long do refunds take")
    # One statement (no transaction, no SET LOCAL) over the narrow half-precision copies,
    # ordered by an expression HNSW cannot serve (a Q&A pair's blend of its two vectors).
    assert "hnsw" not in exact and "SET LOCAL" not in exact
    (vector_statement,) = [part for part in exact.split(" ; ") if "<=>" in part]
    assert "knowledge_chunkvector" in vector_statement and "UNION ALL" not in vector_statement
    with connection.cursor() as cursor:  # even where the planner would prefer the HNSW index
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_bitmapscan = off")
        try:
            assert "chunk_embedding_384_hnsw" not in plan(vector_statement)
        finally:
            cursor.execute("RESET enable_seqscan")
            cursor.execute("RESET enable_bitmapscan")
    settings.KNOWLEDGE_VECTOR_EXACT_MAX_CHUNKS = len(FAQ) - 1  # the organization is now "large"
    walked = statements("how long do refunds take")
    # Two walks: the full vectors' index and the Q&A questions' one, on the chunks themselves.
    (vector_statement,) = [part for part in walked.split(" ; ") if "<=>" in part]
    assert "hnsw.iterative_scan" in walked and "UNION ALL" in vector_statement
    assert "knowledge_chunkvector" not in walked


def test_search_with_an_empty_knowledge_base(tenant):
    assert retrieval.chunk_search(organization=tenant.organization, query="anything at all") == []


def test_large_organizations_rank_only_chunks_with_the_rarest_query_terms(tenant, settings):
    organization = tenant.organization
    common = " ".join(["account"] * 3)
    for number in range(30):
        services.qa_create(
            organization=organization,
            question=f"Topic {number} {common} billing?",
            answer=f"Answer {number}.",
        )
    target = services.qa_create(
        organization=organization, question="Where is the zeppelin hangar?", answer="North."
    )
    exact = retrieval.chunk_search(organization=organization, query="zeppelin account", k=40, mode="lexical")
    settings.KNOWLEDGE_LEXICAL_PRUNE_MIN_CHUNKS = 10
    settings.KNOWLEDGE_LEXICAL_CANDIDATES = 5  # "zeppelin" (1 chunk) fits, "account" (30) does not
    lexical_query = retrieval.query_vector_lexical(organization=organization, query="zeppelin account")
    assert len(lexical_query.rare_terms) == 1
    pruned = retrieval.chunk_search(organization=organization, query="zeppelin account", k=40, mode="lexical")
    assert pruned[0].source_id == target.pk == exact[0].source_id
    assert len(pruned) == 1 < len(exact)
    # Rarest first while the budget lasts: with room for both terms, both are candidates.
    settings.KNOWLEDGE_LEXICAL_CANDIDATES = 31
    assert (
        len(retrieval.query_vector_lexical(organization=organization, query="zeppelin account").rare_terms)
        == 2
    )
    assert (
        len(retrieval.chunk_search(organization=organization, query="zeppelin account", k=40, mode="lexical"))
        == 31
    )
    # A query made only of common terms still ranks the chunks holding its rarest term.
    settings.KNOWLEDGE_LEXICAL_CANDIDATES = 5
    assert (
        len(retrieval.query_vector_lexical(organization=organization, query="account billing").rare_terms)
        == 1
    )
    assert len(retrieval.chunk_search(organization=organization, query="account", k=40, mode="lexical")) == 30


def test_statistics_drift_from_a_cascaded_delete_is_repaired(tenant, faq):
    organization = tenant.organization
    assistant = assistant_make(organization=organization)
    services.qa_create(
        organization=organization, question="Scoped question?", answer="Scoped answer.", assistant=assistant
    )
    before = dict(
        TermStatistic.objects.for_organization(organization).values_list("term", "document_frequency")
    )
    # A source row deleted outside `source_delete`: the cascade removes its chunks, not their
    # statistics (an assistant's deletion no longer can: test_assistant_deletion.py tests every
    # way of deleting one).
    KnowledgeSource.objects.for_organization(organization).filter(assistant=assistant).delete()
    assert services.lexical_statistics_rebuild(organization=organization) is True
    after = dict(
        TermStatistic.objects.for_organization(organization).values_list("term", "document_frequency")
    )
    assert after != before
    assert CorpusStatistic.objects.for_organization(organization).get().chunk_count == len(FAQ)
    assert services.lexical_statistics_rebuild(organization=organization) is False


def _long_answer(seed: int) -> str:
    words = [f"term{seed}x{number}" for number in range(220)]  # ~2 kB of distinct terms
    return "Our warranty covers " + " ".join(words) + "."


def _vectors_out_of_line(organization) -> list[bool]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_toast_chunk_id(embedding) IS NOT NULL FROM knowledge_chunk "
            "WHERE organization_id = %s AND pg_column_size(knowledge_chunk.*) > 2032",
            [organization.pk],
        )
        return [row[0] for row in cursor.fetchall()]


def test_chunk_vectors_stay_in_the_row_even_when_the_row_is_over_the_toast_threshold(tenant):
    organization = tenant.organization
    services.qa_create(
        organization=organization, question="What does the warranty cover?", answer=_long_answer(1)
    )
    assert _vectors_out_of_line(organization) == [False]  # a wide row, its vector inline
    # The check can fail: with pgvector's default storage the same row's vector goes to TOAST.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending foreign-key checks before DDL
        cursor.execute("ALTER TABLE knowledge_chunk ALTER COLUMN embedding SET STORAGE EXTERNAL")
    services.qa_create(
        organization=organization, question="And the extended warranty?", answer=_long_answer(2)
    )
    assert sorted(_vectors_out_of_line(organization)) == [False, True]


def test_passages_carry_the_chunks_stored_vector_exactly(tenant):
    """Read in pgvector's binary form: each component is the stored float32, not the nearest
    double to its shortest decimal; another embedder's vector is not brought along."""
    import numpy

    source = services.qa_create(
        organization=tenant.organization, question="Where is my parcel?", answer="Track it."
    )
    chunk = Chunk.objects.for_organization(tenant.organization).get(source=source)
    ranked = [(str(chunk.pk), 1.0)]
    (passage,) = retrieval.passages_build(
        organization=tenant.organization, ranked=ranked, query="parcel", embedder_name=chunk.embedding_model
    )
    stored = numpy.asarray(chunk.embedding, dtype=numpy.float32)
    assert passage.embedding.dtype == numpy.float32 and passage.embedding.shape == (384,)
    assert passage.embedding.tobytes() == stored.tobytes()  # bit for bit
    assert not passage.embedding.flags.writeable  # shared through the gate's vector cache
    assert (
        passage.question_embedding.tobytes()
        == numpy.asarray(chunk.question_embedding, dtype=numpy.float32).tobytes()
    )
    (passage,) = retrieval.passages_build(
        organization=tenant.organization, ranked=ranked, query="parcel", embedder_name="other/model"
    )
    assert passage.embedding is None


def test_passages_are_built_only_from_the_organizations_own_chunks(tenant, other_tenant):
    """`passages_build` read chunks by id alone: safe only while every caller passed ids its
    own organization's search had ranked. It reads them through the scoped manager now, so
    another organization's chunk id gives nothing, next to the organization's own."""
    own = services.qa_create(
        organization=tenant.organization, question="Where is my parcel?", answer="Track it."
    )
    foreign = services.qa_create(
        organization=other_tenant.organization, question="Where is my parcel?", answer="Their secret answer."
    )
    own_chunk = Chunk.objects.for_organization(tenant.organization).get(source=own)
    foreign_chunk = Chunk.objects.for_organization(other_tenant.organization).get(source=foreign)
    ranked = [(str(foreign_chunk.pk), 2.0), (str(own_chunk.pk), 1.0)]

    passages = retrieval.passages_build(organization=tenant.organization, ranked=ranked, query="parcel")
    assert [passage.chunk_id for passage in passages] == [own_chunk.pk]
    assert passages[0].answer == "Track it."
    assert retrieval.passages_build(organization=tenant.organization, ranked=ranked[:1], query="parcel") == []
    (theirs,) = retrieval.passages_build(
        organization=other_tenant.organization, ranked=ranked[:1], query="parcel"
    )
    assert theirs.answer == "Their secret answer."


def test_the_query_vectors_literal_gives_the_database_the_same_vector_as_its_shortest_repr():
    """`vector_literal` writes nine significant digits of each component's float32: pgvector must
    read bit for bit the vector the shortest double repr gave it, for an embedder's float32
    values, a provider's float64 ones (rounded to the nearest float32 either way) and the odd
    component (negative zero, a subnormal, the float32 extremes)."""
    import numpy

    rng = numpy.random.default_rng(14)
    vectors = []
    for _ in range(100):
        unit = rng.standard_normal(384)
        unit /= numpy.linalg.norm(unit)
        vectors.append(unit.astype(numpy.float32).tolist())  # MiniLM / e5: float32 values
        vectors.append(unit.tolist())  # a provider's normalised doubles
    odd = [-0.0, 0.0, 1e-40, -1e-45, 3.4028234663852886e38, -1.1754943508222875e-38, 1.0, -1.0, 0.1, 1 / 3]
    vectors.append(odd * 2)
    with connection.cursor() as cursor:
        for vector in vectors:
            shortest = "[" + ",".join(map(repr, map(float, vector))) + "]"
            literal = retrieval.vector_literal(vector)
            assert len(literal) < len(shortest) or vector is vectors[-1]
            cursor.execute("SELECT vector_send(%s::vector), vector_send(%s::vector)", [literal, shortest])
            ours, theirs = cursor.fetchone()
            assert bytes(ours) == bytes(theirs), (literal[:80], shortest[:80])
