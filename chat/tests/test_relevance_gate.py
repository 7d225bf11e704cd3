"""The relevance gate decides (issue 19): an out-of-scope question that shares words with the
knowledge ("pick up my order at your Denver store" against "change or cancel my order") is
refused by the offline answerer and reaches a model without passages, told that nothing
relevant was found; the unanswered turn is stored as such, counts towards the unanswered
handoff and shows in the overview's figures; questions the knowledge answers still are."""

from __future__ import annotations

import pytest

from chat import selectors, services
from chat.models import Conversation
from chat.prompts import NOTHING_RELEVANT_MARKER, no_answer_text

pytestmark = pytest.mark.django_db

DENVER = "Can I pick up my order at your Denver store?"
SHOP = [
    (
        "How do I change or cancel my order?",
        "You can change or cancel an order within 1 hour of placing it. Go to Account > Orders and "
        "click Cancel order or Edit order. After an hour the order is packed and can only be returned.",
    ),
    (
        "How can I track my order?",
        "Once your order ships we email you a tracking link. You can also find the tracking number "
        "under Account > Orders.",
    ),
    (
        "How long does delivery take?",
        "Standard delivery takes 3-5 business days within the US. Express delivery takes 1-2 business days.",
    ),
    ("How much does shipping cost?", "Standard shipping is $5.95 and free on orders over $50."),
    (
        "What is your return policy?",
        "You can return unused items within 30 days of delivery for a full refund.",
    ),
    (
        "How do I return an item?",
        "Start a return under Account > Orders > Return items, print the prepaid label and drop the "
        "parcel at any UPS location.",
    ),
    (
        "Which payment methods do you accept?",
        "We accept Visa, Mastercard, American Express, PayPal and Apple Pay.",
    ),
    ("Do you sell gift cards?", "Yes, digital gift cards from $25 to $500 are available. They never expire."),
]
# Visitor wording, and the Q&A pair that answers it.
ANSWERABLE = [
    ("Is it possible to cancel something I just bought?", "How do I change or cancel my order?"),
    ("trackng number for my parcel?", "How can I track my order?"),
    ("how long do I have to return stuff", "What is your return policy?"),
]


@pytest.fixture
def shop(tenant):
    from knowledge.services import qa_create

    return {
        question: qa_create(organization=tenant.organization, question=question, answer=answer)
        for question, answer in SHOP
    }


def _ask(tenant, assistant, text):
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    return services.message_post(conversation=session, content=text)


def test_offline_the_denver_question_is_refused_and_stored_as_unanswered(tenant, assistant, shop, offline):
    answer = _ask(tenant, assistant, DENVER)
    assert answer.content == no_answer_text("en")
    assert answer.answered is False
    assert answer.sources == []


@pytest.mark.parametrize(("question", "expected"), ANSWERABLE)
def test_offline_questions_the_knowledge_answers_still_are(
    tenant, assistant, shop, offline, question, expected
):
    answer = _ask(tenant, assistant, question)
    assert answer.answered is True
    assert answer.sources[0]["source_id"] == str(shop[expected].pk)
    assert answer.content == shop[expected].answer


def _system(llm) -> str:
    return next(message["content"] for message in llm.last_request["messages"] if message["role"] == "system")


def test_llm_gets_no_passage_and_is_told_nothing_relevant_was_found(tenant, assistant, shop, llm):
    answer = _ask(tenant, assistant, DENVER)
    system = _system(llm)
    assert NOTHING_RELEVANT_MARKER in system
    assert "<source number=" not in system
    assert "Cancel order" not in system  # the unrelated Q&A never reaches the model
    assert answer.answered is False
    assert answer.sources == []


@pytest.mark.parametrize(("question", "expected"), ANSWERABLE)
def test_llm_gets_the_passage_that_answers(tenant, assistant, shop, llm, question, expected):
    answer = _ask(tenant, assistant, question)
    system = _system(llm)
    assert NOTHING_RELEVANT_MARKER not in system
    assert f"Q: {expected}" in system.split('<source number="1"', 1)[1].split("</source>", 1)[0]
    assert answer.answered is True
    assert answer.sources[0]["source_id"] == str(shop[expected].pk)


def test_a_greeting_is_not_told_nothing_was_found(tenant, assistant, shop, llm):
    _ask(tenant, assistant, "Hello!")
    assert NOTHING_RELEVANT_MARKER not in _system(llm)


def test_unanswered_turns_hand_the_conversation_over_and_show_in_the_overview(
    tenant, assistant, shop, offline
):
    assistant.handoff_after_unanswered = 2
    assistant.save(update_fields=["handoff_after_unanswered"])
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    services.message_post(conversation=session, content=DENVER)
    session.refresh_from_db()
    assert session.handoff_status == Conversation.HandoffStatus.BOT
    services.message_post(
        conversation=session, content="Do you have a showroom in Chicago where I can see the sofas?"
    )
    session.refresh_from_db()
    assert session.handoff_status == Conversation.HandoffStatus.WAITING
    assert session.handoff_trigger == Conversation.HandoffTrigger.UNANSWERED

    other = services.session_create(organization=tenant.organization, assistant=assistant)
    services.message_post(conversation=other, content="trackng number for my parcel?")
    stats = selectors.chat_stats(organization=tenant.organization)
    assert (stats.answers, stats.answered, stats.unanswered) == (3, 1, 2)
    assert DENVER in [row["question"] for row in stats.top_unanswered]


# The clinic knowledge base of bench/data/support_kbs.json (its Q&A pairs and help pages).
def _clinic() -> dict:
    import json
    from pathlib import Path

    data = json.loads(
        (Path(__file__).resolve().parents[2] / "bench" / "data" / "support_kbs.json").read_text()
    )
    return next(kb for kb in data["knowledge_bases"] if kb["id"] == "clinic")


@pytest.fixture
def clinic(tenant):
    from testkit.answer_quality import knowledge_build

    return knowledge_build(organization=tenant.organization, data=_clinic())


GLASSES = "Can I get a refill of my glasses prescription?"


def test_a_near_miss_naming_what_the_knowledge_never_mentions_is_refused(tenant, assistant, clinic, offline):
    # "refill" and "prescription" are the refill Q&A's own words, and the question sits close
    # to it (cosine 0.73 to its question, far ahead of every other entry: the gate before the
    # unknown-word signals answered it, relevance 0.92). "glasses" is in no chunk of this
    # knowledge, and without it the question lands on the Q&A: a near-miss.
    from chat import grounding

    assert [
        word for word, _rest in grounding._unknown_words(organization=tenant.organization, question=GLASSES)
    ] == ["glasses"]
    answer = _ask(tenant, assistant, GLASSES)
    assert answer.answered is False
    assert answer.sources == []


@pytest.mark.parametrize(
    ("question", "expected", "unknown"),
    [
        ("prescription renewal", "refill", ["renewal"]),
        ("Do I need an appointment for the influenza vaccine?", "flu", ["influenza"]),
        ("is there handicapped parking", "parking", ["handicapped"]),
    ],
)
def test_a_paraphrase_with_words_the_knowledge_lacks_still_is_answered(
    tenant, assistant, clinic, offline, question, expected, unknown
):
    from chat import grounding

    found = grounding._unknown_words(organization=tenant.organization, question=question)
    assert [word for word, _rest in found] == unknown
    answer = _ask(tenant, assistant, question)
    assert answer.answered is True
    assert answer.sources[0]["source_id"] == clinic[expected]


def test_a_token_with_a_digit_is_never_an_unknown_word(tenant, assistant, clinic, offline):
    # Order numbers, ticket ids and prices are identifiers: no chunk contains "48213", but that
    # is no topic the knowledge lacks, and each unknown word costs a forward pass.
    from chat import grounding

    question = "prescription renewal for ticket 48213, is it $40 or 2x?"
    found = grounding._unknown_words(organization=tenant.organization, question=question)
    assert [word for word, _rest in found] == ["renewal", "ticket"]
    answer = _ask(tenant, assistant, "prescription renewal 48213")
    assert answer.answered is True
    assert answer.sources[0]["source_id"] == clinic["refill"]


def test_the_gate_reads_the_term_statistics_retrieval_just_looked_up(
    tenant, clinic, django_assert_num_queries
):
    from knowledge import retrieval

    retrieval.chunk_search(organization=tenant.organization, query=GLASSES)
    with django_assert_num_queries(0):
        _count, frequencies = retrieval.term_document_frequencies(
            organization=tenant.organization, terms=["glass", "refil", "prescript"]
        )
    assert frequencies["glass"] == 0 and frequencies["refil"] > 0
    with django_assert_num_queries(1):  # other terms: looked up
        retrieval.term_document_frequencies(organization=tenant.organization, terms=["dentist"])


def test_a_question_refused_whatever_its_unknown_words_costs_no_embedding_for_them(tenant, clinic):
    # Far from every entry: even the most favourable unknown-word signals cannot lift a
    # candidate to the threshold, so the question without each unknown word is never embedded.
    import hashlib

    from chat import grounding

    question = "Can you recommend a good pizza recipe for my kids?"
    unknown = grounding._unknown_words(organization=tenant.organization, question=question)
    assert unknown  # "pizza", "recipe", ...
    candidates = grounding.knowledge_search(organization=tenant.organization, assistant=None, query=question)
    scored = grounding.candidates_score(
        question=question, candidates=candidates, organization=tenant.organization
    )
    assert all(item.relevance < 0.5 for item in scored)
    name = grounding._embedder(tenant.organization).name
    for _word, rest in unknown:
        key = (name, "query", hashlib.sha1(rest.encode(), usedforsecurity=False).hexdigest())
        assert key not in grounding._vector_cache

    # A question that may be answered computes them (and is answered).
    question = "Do I need an appointment for the influenza vaccine?"
    ((_word, rest),) = grounding._unknown_words(organization=tenant.organization, question=question)
    candidates = grounding.knowledge_search(organization=tenant.organization, assistant=None, query=question)
    scored = grounding.candidates_score(
        question=question, candidates=candidates, organization=tenant.organization
    )
    assert scored[0].relevance >= 0.5
    assert (
        name,
        "query",
        hashlib.sha1(rest.encode(), usedforsecurity=False).hexdigest(),
    ) in grounding._vector_cache


def test_a_pair_asked_word_for_word_is_answered_however_unlike_its_answer_is(tenant, assistant, offline):
    """The floor reads a pair's question-and-answer cosine (a short question is close to any
    question worded alike), but a visitor who asks the pair's own question is answered even when
    the answer is mostly markup and barely resembles it; a question merely worded alike is not."""
    from chat import grounding
    from knowledge.services import qa_create

    answer = (
        "Two years. <img src=x> <svg></svg> [x](javascript:void(0)) [ref][evil]\n\n[evil]: javascript:void(0)"
    )
    qa_create(organization=tenant.organization, question="What is your warranty?", answer=answer)
    qa_create(
        organization=tenant.organization,
        question="Do you ship internationally?",
        answer="Yes, to 40 countries.",
    )
    evidence = grounding.knowledge_search(
        organization=tenant.organization, assistant=assistant, query="What is your warranty?"
    )
    signals = grounding.candidate_signals(
        question="What is your warranty?", candidates=evidence, organization=tenant.organization
    )
    warranty = next(s for item, s in zip(evidence, signals, strict=True) if "Two years" in item.content)
    assert warranty["full"] < 0.4 <= 0.8 <= warranty["key"]  # what the case is about
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    reply = services.message_post(conversation=session, content="What is your warranty?")
    assert reply.answered and "Two years." in reply.content
    session = services.session_create(organization=tenant.organization, assistant=assistant)
    assert not services.message_post(conversation=session, content="Do you sell submarines?").answered


def test_offline_a_misspelt_question_is_answered_from_the_pair_it_names(tenant, assistant, shop, offline):
    # "pasword" is no word: searched as written, the question is only "change my ...", as close
    # to the change-or-cancel pair as to the password one. Corrected to the word the knowledge
    # uses, retrieval and the gate both see "change my password".
    from knowledge.services import qa_create

    password = qa_create(
        organization=tenant.organization,
        question="How do I reset my password?",
        answer="Click Forgot password on the sign-in page and follow the link we email you.",
    )
    answer = _ask(tenant, assistant, "how do I change my pasword")
    assert answer.answered is True
    assert answer.sources[0]["source_id"] == str(password.pk)
    assert answer.content == password.answer
