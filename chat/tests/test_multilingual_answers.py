"""Issue 19 "any language", end to end: an organization that searches with the multilingual
embedder answers a Spanish question from English knowledge with the offline answerer (saying
in Spanish that it can only quote the knowledge, then quoting it); with the English-only
default the same question finds nothing it trusts."""

from __future__ import annotations

import pytest

from chat import services
from knowledge import services as knowledge_services
from knowledge.chunking import text_chunk
from knowledge.models import KnowledgeSource
from knowledge.services.indexing import content_hash, document_store

pytestmark = pytest.mark.django_db

SHIPPING = (
    "Shipping: we ship to the United States, Canada and Mexico. Orders leave our warehouse within two "
    "business days and arrive in 3 to 7 days; international customers pay any import duties."
)
OTHERS = [
    "Returns: you can return any item within 30 days of delivery, unused and in its original packaging.",
    "Payment: we accept Visa, Mastercard, American Express and PayPal.",
    "Password reset: click Forgot password on the sign-in page and follow the link we email you.",
]


def _knowledge(organization) -> KnowledgeSource:
    sources = []
    for number, text in enumerate([SHIPPING, *OTHERS]):
        source = KnowledgeSource.objects.create(
            organization=organization,
            kind=KnowledgeSource.Kind.FILE,
            title=text.split(":", 1)[0],
            file_name=f"help-{number}.txt",
            file_type=KnowledgeSource.FileType.TEXT,
            status=KnowledgeSource.Status.READY,
        )
        document_store(
            source=source, key="doc", title="", drafts=text_chunk(text), text_hash=content_hash(text)
        )
        sources.append(source)
    return sources[0]


def _ask(organization, assistant, question: str):
    session = services.session_create(organization=organization, assistant=assistant)
    return services.message_post(conversation=session, content=question)


def test_a_spanish_question_is_answered_from_english_knowledge_once_the_organization_is_multilingual(
    tenant, assistant, offline
):
    organization = tenant.organization
    shipping = _knowledge(organization)
    before = _ask(organization, assistant, "¿Hacen envíos a Canadá?")
    assert not before.answered  # MiniLM: nothing relevant enough in English-only vectors

    assert (
        knowledge_services.embedder_switch_start(organization=organization, choice="multilingual")
        == "started"
    )
    assert knowledge_services.embedder_switch_run(organization_id=organization.pk) == "switched"
    organization.refresh_from_db()
    answer = _ask(organization, assistant, "¿Hacen envíos a Canadá?")
    assert answer.answered
    assert answer.sources[0]["source_id"] == str(shipping.pk)
    assert answer.content.startswith("Solo puedo citar nuestra base de conocimientos")
    assert "Canada and Mexico" in answer.content
    # Out of scope stays out of scope in any language.
    assert not _ask(organization, assistant, "¿Tienen una tienda física en Denver?").answered


def test_the_gate_knows_when_the_question_is_not_in_the_passages_language(tenant):
    from chat import grounding

    organization = tenant.organization
    _knowledge(organization)
    for question, other in (("¿Hacen envíos a Canadá?", 1.0), ("Do you ship to Canada?", 0.0)):
        candidates = grounding.knowledge_search(organization=organization, assistant=None, query=question)
        signals = grounding.candidate_signals(
            question=question, candidates=candidates, organization=organization
        )
        assert {signal["other_language"] for signal in signals} == {other}
