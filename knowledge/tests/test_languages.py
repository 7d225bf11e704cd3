"""Knowledge in any language: chunks analysed in the language they are written in, questions
in theirs, old English-analysed chunks re-analysed by `knowledge_reanalyse`."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from pgvector import SparseVector

from knowledge import retrieval, services
from knowledge.chunking import text_chunk
from knowledge.models import LEXICAL_DIMENSIONS, Chunk, KnowledgeSource, TermStatistic
from knowledge.services.indexing import chunk_text_for_index, content_hash, document_store

pytestmark = pytest.mark.django_db

PASSAGES = {
    "es-returns": "Devoluciones: puedes devolver cualquier artículo en un plazo de 30 días desde la entrega. "
    "Debe estar sin usar y en su embalaje original.",
    "es-shipping": "Gastos de envío: el envío es gratuito en pedidos de más de 50 euros. Los pedidos más "
    "pequeños pagan una tarifa fija de 4,90 euros.",
    "de-returns": "Rücksendungen: Sie können jeden Artikel innerhalb von 30 Tagen nach der Lieferung "
    "zurückgeben. Er muss unbenutzt und in der Originalverpackung sein.",
    "en-returns": "Returns: you can return any item within 30 days of delivery. It must be unused and in "
    "its original packaging.",
}


def _document(organization, key: str, text: str) -> KnowledgeSource:
    source = KnowledgeSource.objects.create(
        organization=organization,
        kind=KnowledgeSource.Kind.FILE,
        title=key,
        file_name=f"{key}.txt",
        file_type=KnowledgeSource.FileType.TEXT,
        status=KnowledgeSource.Status.READY,
    )
    document_store(source=source, key=key, title="", drafts=text_chunk(text), text_hash=content_hash(text))
    return source


@pytest.fixture
def knowledge(tenant):
    return {key: _document(tenant.organization, key, text) for key, text in PASSAGES.items()}


def test_each_chunk_is_analysed_in_the_language_it_is_written_in(tenant, knowledge):
    languages = {
        source.title: Chunk.objects.for_organization(tenant.organization).get(source=source).language
        for source in knowledge.values()
    }
    assert languages == {"es-returns": "es", "es-shipping": "es", "de-returns": "de", "en-returns": "en"}
    spanish = Chunk.objects.for_organization(tenant.organization).get(source=knowledge["es-shipping"])
    # Spanish stems and no Spanish stop words: "pedidos" and "pedido" are one term, "de" is none.
    assert retrieval.term_dimension("ped") in spanish.terms
    assert retrieval.term_dimension("de") not in spanish.terms


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("¿Cuánto cuesta el envío de mi pedido?", "es-shipping"),
        ("¿Puedo devolver un artículo usado?", "es-returns"),
        ("Kann ich einen Artikel zurückgeben?", "de-returns"),
        ("Can I return an item after 30 days?", "en-returns"),
    ],
)
def test_a_question_finds_the_passage_in_its_own_language_by_its_words(tenant, knowledge, question, expected):
    passages = retrieval.chunk_search(organization=tenant.organization, query=question, k=3, mode="lexical")
    assert passages[0].source_id == knowledge[expected].pk
    assert passages[0].language == expected.split("-")[0]


def test_query_analysis_adds_the_english_terms_of_a_question_in_another_language():
    analysed = retrieval.query_analyse("¿Aceptan pagos con PayPal y tarjetas Visa?")
    assert analysed.language == "es"
    spanish = retrieval.term_counts(analysed.text, language="es")
    english = retrieval.term_counts(analysed.text, language="en")
    assert analysed.counts == spanish | english
    assert analysed.counts[retrieval.term_dimension("paypal")] == 1  # once, although both analyses give it
    english_question = retrieval.query_analyse("Do you accept PayPal and Visa cards?")
    assert english_question.language == "en"
    assert english_question.counts == retrieval.term_counts(english_question.text)


def _as_before_languages(chunk: Chunk) -> None:
    """Make `chunk` look indexed before languages were detected: English terms and weights."""
    counts = retrieval.term_counts(chunk_text_for_index(title=chunk.title, content=chunk.content))
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM knowledge_termstatistic WHERE organization_id = %s", [chunk.organization_id]
        )
    Chunk.objects.for_organization(chunk.organization).filter(pk=chunk.pk).update(
        language="en",
        lexical=SparseVector(
            retrieval.document_weights(counts, average_length=chunk.lexical_avgdl), LEXICAL_DIMENSIONS
        ),
        lexical_length=sum(counts.values()),
        terms=sorted(counts),
    )


def _term_statistics(organization) -> dict[int, int]:
    return dict(
        TermStatistic.objects.for_organization(organization).values_list("term", "document_frequency")
    )


def _term_statistics_recounted(organization) -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT term, count(*) FROM knowledge_chunk, unnest(terms) AS term WHERE organization_id = %s "
            "GROUP BY term",
            [organization.pk],
        )
        return dict(cursor.fetchall())


def test_knowledge_reanalyse_re_weights_chunks_indexed_as_english(tenant, knowledge):
    organization = tenant.organization
    spanish = Chunk.objects.for_organization(organization).get(source=knowledge["es-shipping"])
    _as_before_languages(spanish)
    services.lexical_statistics_rebuild(organization=organization)
    # Rebuilt from English-analysed terms: "pedidos" is not "ped" there.
    assert retrieval.term_dimension("ped") not in Chunk.objects.unscoped().get(pk=spanish.pk).terms
    assert services.chunks_reanalyse(organization=organization) == 1
    spanish.refresh_from_db()
    assert spanish.language == "es" and retrieval.term_dimension("ped") in spanish.terms
    assert _term_statistics(organization) == _term_statistics_recounted(organization)
    passages = retrieval.chunk_search(
        organization=organization, query="¿Cuánto cuesta el envío de mi pedido?", k=1, mode="lexical"
    )
    assert passages[0].source_id == knowledge["es-shipping"].pk
    # Nothing left to do: a second run changes nothing.
    assert services.chunks_reanalyse(organization=organization) == 0


def test_knowledge_reanalyse_command(tenant, other_tenant, knowledge, capsys):
    spanish = Chunk.objects.for_organization(tenant.organization).get(source=knowledge["es-returns"])
    _as_before_languages(spanish)
    services.lexical_statistics_rebuild(organization=tenant.organization)
    call_command("knowledge_reanalyse", "--organization", other_tenant.organization.slug)
    assert Chunk.objects.unscoped().get(pk=spanish.pk).language == "en"  # another organization's run
    call_command("knowledge_reanalyse")
    assert Chunk.objects.unscoped().get(pk=spanish.pk).language == "es"
    assert "1 chunk(s) re-analysed" in capsys.readouterr().out
    with pytest.raises(Exception, match="no organization with the slug"):
        call_command("knowledge_reanalyse", "--organization", "no-such-organization")
