"""The narrow copies of chunks' BM25 side (`ChunkLexical`) that lexical search ranks: Postgres
keeps them in step with every chunk write, and the search they serve returns exactly the ranking
that scoring every chunk's own sparse vector gives, within the organization and assistant asked
for, in small organizations (every chunk holding a query term) and large ones (rare terms)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pgvector import SparseVector

from knowledge import retrieval, services
from knowledge.models import LEXICAL_DIMENSIONS, Chunk, ChunkLexical
from knowledge.tests.factories import assistant_make

pytestmark = pytest.mark.django_db


def _copy(chunk: Chunk) -> ChunkLexical | None:
    return ChunkLexical.objects.for_organization(chunk.organization_id).filter(chunk_id=chunk.pk).first()


def _same(copy: ChunkLexical, chunk: Chunk) -> bool:
    return (
        copy.terms == chunk.terms
        and copy.lexical.to_text() == chunk.lexical.to_text()
        and (copy.organization_id, copy.assistant_id) == (chunk.organization_id, chunk.assistant_id)
    )


def test_every_chunk_has_its_copy_and_it_follows_the_chunk(tenant):
    organization = tenant.organization
    source = services.qa_create(organization=organization, question="Where is my parcel?", answer="Track it.")
    chunk = Chunk.objects.for_organization(organization).get(source=source)
    assert chunk.terms and _same(_copy(chunk), chunk)

    # Re-weighted (re-analysis writes the vector and its terms through a queryset update).
    Chunk.objects.for_organization(organization).filter(pk=chunk.pk).update(
        lexical=SparseVector({7: 1.5, 11: 0.25}, LEXICAL_DIMENSIONS), terms=[7, 11]
    )
    chunk.refresh_from_db()
    copy = _copy(chunk)
    assert copy.terms == [7, 11] and _same(copy, chunk)

    # The source moves to an assistant: so does the copy.
    assistant = assistant_make(organization=organization)
    Chunk.objects.for_organization(organization).filter(pk=chunk.pk).update(assistant=assistant)
    assert _copy(chunk).assistant_id == assistant.pk

    # Deleting the source deletes its chunks, and their copies with them.
    services.source_delete(source=source)
    assert not ChunkLexical.objects.for_organization(organization).exists()


def test_a_chunk_written_by_raw_sql_has_its_copy(tenant):
    source = services.qa_create(
        organization=tenant.organization, question="Do you ship abroad?", answer="Yes."
    )
    chunk = Chunk.objects.for_organization(tenant.organization).get(source=source)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO knowledge_chunk (id, organization_id, created_at, source_id, document_id, chunk_no, "
            "title, heading, url, content, lexical, lexical_length, lexical_avgdl, terms, language, "
            "embedding_model, embedding_dimensions) SELECT gen_random_uuid(), organization_id, now(), "
            "source_id, document_id, chunk_no + 1, title, heading, url, content, lexical, lexical_length, "
            "lexical_avgdl, terms, language, '', 0 FROM knowledge_chunk WHERE id = %s RETURNING id",
            [chunk.pk],
        )
        (written,) = cursor.fetchone()
    assert _same(_copy(Chunk.objects.for_organization(tenant.organization).get(pk=written)), chunk)


def _every_chunk_ranking(*, organization, assistant, lexical_query, limit: int) -> list[tuple[str, float]]:
    """BM25 of every chunk in scope from the chunks' own sparse vectors (what the search did
    before the copies), candidates limited only as `rare_terms` says; equal scores by id."""
    scope, params = retrieval.scope_sql(organization=organization, assistant=assistant)
    prune = "AND terms && %s::int[] " if lexical_query.rare_terms else ""
    rare = [lexical_query.rare_terms] if lexical_query.rare_terms else []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id::text, (lexical <#> %s::sparsevec) * -1 AS score FROM knowledge_chunk "  # noqa: S608
            f"WHERE {scope} {prune}ORDER BY score DESC, id LIMIT %s",
            [lexical_query.vector.to_text(), *params, *rare, limit],
        )
        return [(chunk_id, score) for chunk_id, score in cursor.fetchall() if score > 0]


QUESTIONS = [
    ("How do I reset my password?", "Use the reset link on the sign-in page."),
    ("Can I change my password by email?", "No, only from your account settings."),
    ("Where do I see my invoices?", "Billing lists every invoice of your account."),
    ("Do you ship to Canada?", "Yes, shipping to Canada takes a week."),
    ("How long does shipping take?", "Three to five days, tracked."),
    ("What is the refund policy?", "Refunds within 30 days, to your card."),
]


@pytest.mark.parametrize("large", [False, True], ids=["small organization", "large organization"])
def test_lexical_ranking_is_every_chunks_bm25_in_scope(tenant, other_tenant, settings, large):
    organization = tenant.organization
    helper, other_helper = (
        assistant_make(organization=organization),
        assistant_make(organization=organization),
    )
    for index, (question, answer) in enumerate(QUESTIONS):
        assistant = (None, helper, other_helper)[index % 3]
        services.qa_create(organization=organization, question=question, answer=answer, assistant=assistant)
        # Another organization holds the same words, scored higher by its own statistics.
        services.qa_create(organization=other_tenant.organization, question=question, answer=question)
    if large:  # "large": candidates hold one of the query's rare terms only
        settings.KNOWLEDGE_LEXICAL_PRUNE_MIN_CHUNKS = 2
        settings.KNOWLEDGE_LEXICAL_CANDIDATES = 1
    queries = ["reset password", "password email account", "shipping canada refund", "account", "zebra"]
    pruned = 0
    for query in queries:
        lexical_query = retrieval.query_vector_lexical(organization=organization, query=query)
        if lexical_query is None:
            continue
        pruned += bool(lexical_query.rare_terms)
        for assistant in (None, helper, other_helper):
            scope = {"organization": organization, "assistant": assistant}
            found = retrieval.lexical_ranking(**scope, lexical_query=lexical_query, limit=50)
            assert found == _every_chunk_ranking(**scope, lexical_query=lexical_query, limit=50), (
                query,
                assistant,
            )
            own = {
                str(pk) for pk in Chunk.objects.for_organization(organization).values_list("pk", flat=True)
            }
            assert {chunk_id for chunk_id, _ in found} <= own
    assert (pruned > 0) is large


def test_the_search_reads_the_copies_of_chunks_holding_a_query_term(tenant):
    for question, answer in QUESTIONS:
        services.qa_create(organization=tenant.organization, question=question, answer=answer)
    with CaptureQueriesContext(connection) as captured:
        found = retrieval.chunk_search(
            organization=tenant.organization, query="reset password", mode="lexical"
        )
    assert [passage.question for passage in found[:2]] == [
        "How do I reset my password?",
        "Can I change my password by email?",
    ]
    (statement,) = [item["sql"] for item in captured.captured_queries if "<#>" in item["sql"]]
    # A small organization too: only the chunks holding one of the query's terms (GIN-indexed).
    assert "FROM knowledge_chunklexical" in statement and "terms && " in statement
    assert "knowledge_chunk " not in statement
