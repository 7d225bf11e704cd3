"""A visitor's misspelt word is corrected to the word the organization's knowledge uses, one
edit away ("pasword" -> "password"), before both retrievers see the question: a misspelling
matches no BM25 term and the embedder cuts it into word pieces, so the question lands near
whatever its other words say. Only words that are not English words are suspects; the
knowledge decides (a name it uses stays, and another organization's knowledge never counts);
questions in other languages are left as written."""

from __future__ import annotations

import pytest

from knowledge import analysis, retrieval, services

pytestmark = pytest.mark.django_db

SHOP = [
    ("How do I reset my password?", "Click Forgot password on the sign-in page and follow the emailed link."),
    ("How do I cancel my order?", "Orders can be cancelled within 1 hour under Account > Orders."),
    ("Can I change my shipping address?", "Yes, until the order ships: Account > Orders > Edit address."),
    ("How can I track my order?", "Once your order ships we email you a tracking link."),
]


@pytest.fixture
def shop(tenant):
    return {
        question: services.qa_create(organization=tenant.organization, question=question, answer=answer)
        for question, answer in SHOP
    }


def _first(organization, query: str, mode: str) -> str | None:
    passages = retrieval.chunk_search(organization=organization, query=query, k=3, mode=mode)
    return passages[0].question if passages else None


def test_suspects_are_words_outside_english_with_english_words_one_edit_away():
    assert analysis.spelling_suspects("How do I change my pasword?") == {"pasword": ("password",)}
    assert analysis.spelling_suspects("Can I cancle my order") == {"cancle": ("cancel", "candle")}
    assert analysis.spelling_suspects("recieve") == {"recieve": ("receive", "relieve")}
    # English words, short words and words with nothing one edit away are not suspects.
    assert analysis.spelling_suspects("How do I change my password?") == {}
    assert analysis.spelling_suspects("ordr stuf") == {}
    assert analysis.spelling_suspects("add a coworker") == {}


def test_apply_replaces_whole_words_and_keeps_a_capital():
    corrections = {"pasword": "password", "cancle": "cancel"}
    assert analysis.spelling_apply("Pasword? cancle, paswords", corrections) == "Password? cancel, paswords"


@pytest.mark.parametrize("mode", ["hybrid", "vector", "lexical"])
def test_a_misspelt_question_finds_the_pair_the_word_names(tenant, shop, mode):
    organization = tenant.organization
    query = "I forgot my pasword"
    # "forgot" and "pasword" as written match no term: lexical search would find nothing.
    assert _first(organization, query, mode) == "How do I reset my password?"
    assert retrieval.query_as_searched(organization=organization, query=query) == "I forgot my password"
    passage = retrieval.chunk_search(organization=organization, query="trackng my parcel", k=1, mode=mode)[0]
    assert passage.question == "How can I track my order?"
    assert "tracking" in passage.snippet  # the snippet is made for the question as searched


def test_the_candidate_is_the_one_the_knowledge_uses(tenant, shop):
    # "cancle" is one edit from "cancel" and from "candle"; only "cancel" is in this shop's knowledge.
    organization = tenant.organization
    retrieval.chunk_search(organization=organization, query="Can I cancle my order?", k=1)
    assert retrieval.query_as_searched(organization=organization, query="Can I cancle my order?") == (
        "Can I cancel my order?"
    )


def test_a_word_the_knowledge_uses_is_never_corrected(tenant):
    # "Trackr" is not an English word and "tracker" is one edit away, in the same knowledge.
    services.qa_create(
        organization=tenant.organization,
        question="What is Trackr?",
        answer="Trackr is our parcel tracker app: it shows where every order is.",
    )
    retrieval.chunk_search(organization=tenant.organization, query="Does Trackr work offline?", k=1)
    assert retrieval.query_as_searched(
        organization=tenant.organization, query="Does Trackr work offline?"
    ) == ("Does Trackr work offline?")


def test_another_organizations_knowledge_never_corrects(tenant, other_tenant, shop):
    services.qa_create(organization=other_tenant.organization, question="Opening hours?", answer="9 to 5.")
    query = "I forgot my pasword"
    retrieval.chunk_search(organization=other_tenant.organization, query=query, k=1)
    assert retrieval.query_as_searched(organization=other_tenant.organization, query=query) == query
    # The last search was the other organization's: for this one the question is as written.
    assert retrieval.query_as_searched(organization=tenant.organization, query=query) == query


def test_questions_in_other_languages_are_left_as_written(tenant):
    # "producto" is one edit from "product", which this knowledge uses; the question is Spanish.
    services.qa_create(
        organization=tenant.organization, question="Can I return a product?", answer="Yes, within 30 days."
    )
    query = "¿Puedo devolver el producto que compré?"
    retrieval.chunk_search(organization=tenant.organization, query=query, k=1)
    assert retrieval.query_as_searched(organization=tenant.organization, query=query) == query
