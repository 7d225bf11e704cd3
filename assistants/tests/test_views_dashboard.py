"""Dashboard: assistants pages and the playground (Django test client, offline answerer)."""

import pytest
from django.urls import reverse

from assistants.models import Assistant
from chat.models import Conversation, Message
from knowledge import services as knowledge_services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

PERSONA = {
    "name": "Acme Helper",
    "description": "Answers shoppers",
    "tone": "friendly",
    "language": "en",
    "default_tasks": "answer_questions\nprovide_support",
    "instructions": "Be brief.",
    "model": "",
    "temperature": "0.3",
    "is_active": "on",
}


@pytest.fixture
def assistant(tenant):
    return Assistant.objects.create(organization=tenant.organization, name="Helper")


def test_anonymous_and_foreign(client, foreign_client, assistant):
    assert client.get(reverse("assistants")).status_code == 302
    for name in ["assistant-edit", "assistant-delete", "assistant-playground"]:
        assert foreign_client.get(reverse(name, args=[assistant.pk])).status_code == 404
    assert foreign_client.post(reverse("assistant-edit", args=[assistant.pk]), PERSONA).status_code == 404
    assert foreign_client.post(reverse("assistant-delete", args=[assistant.pk])).status_code == 404
    assert (
        foreign_client.post(
            reverse("assistant-playground", args=[assistant.pk]), {"content": "hi"}
        ).status_code
        == 404
    )
    assistant.refresh_from_db()
    assert assistant.name == "Helper"
    assert not Conversation.objects.unscoped().exists()
    assert b"Helper" not in foreign_client.get(reverse("assistants")).content


def test_empty_state_then_create_with_every_persona_field(owner_client, tenant):
    assert b"No assistants yet" in owner_client.get(reverse("assistants")).content
    response = owner_client.post(reverse("assistant-create"), PERSONA)
    assistant = Assistant.objects.for_organization(tenant.organization).get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "assistant-playground", args=[assistant.pk]
    )
    assert assistant.name == "Acme Helper" and assistant.description == "Answers shoppers"
    assert assistant.tone == "friendly" and assistant.language == "en"
    assert assistant.default_tasks == ["answer_questions", "provide_support"]
    assert assistant.instructions == "Be brief." and assistant.temperature == 0.3 and assistant.is_active


def test_create_validation(owner_client, tenant):
    response = owner_client.post(reverse("assistant-create"), {**PERSONA, "name": "", "temperature": "9"})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"name", "temperature"}
    assert not Assistant.objects.for_organization(tenant.organization).exists()


def test_edit_persona(owner_client, assistant, settings):
    settings.LLM_ALLOWED_MODELS = ["openai/gpt-4o-mini"]
    page = owner_client.get(reverse("assistant-edit", args=[assistant.pk]))
    assert page.status_code == 200 and b'value="Helper"' in page.content
    owner_client.post(
        reverse("assistant-edit", args=[assistant.pk]),
        {**PERSONA, "name": "Renamed", "model": "openai/gpt-4o-mini", "is_active": ""},
    )
    assistant.refresh_from_db()
    assert assistant.name == "Renamed" and assistant.model == "openai/gpt-4o-mini" and not assistant.is_active
    refused = owner_client.post(
        reverse("assistant-edit", args=[assistant.pk]),
        {**PERSONA, "name": "Renamed", "model": "ollama/llama3"},
    )
    assert refused.status_code == 200 and "model" in refused.context["form"].errors
    assistant.refresh_from_db()
    assert assistant.model == "openai/gpt-4o-mini"


def test_agent_cannot_create_edit_or_delete(agent_client, tenant, assistant):
    assert agent_client.get(reverse("assistant-create")).status_code == 403
    assert agent_client.post(reverse("assistant-create"), PERSONA).status_code == 403
    agent_client.post(reverse("assistant-edit", args=[assistant.pk]), {**PERSONA, "name": "Agent edit"})
    assert agent_client.post(reverse("assistant-delete", args=[assistant.pk])).status_code == 403
    assistant.refresh_from_db()
    assert assistant.name == "Helper"
    assert Assistant.objects.for_organization(tenant.organization).count() == 1


def test_delete_assistant(owner_client, tenant, assistant):
    owner_client.post(reverse("assistant-delete", args=[assistant.pk]))
    assert not Assistant.objects.for_organization(tenant.organization).exists()


def test_playground_answers_with_sources(owner_client, tenant, assistant):
    knowledge_services.qa_create(
        organization=tenant.organization,
        question="What is your refund policy?",
        answer="Refunds are possible within 30 days of purchase.",
    )
    url = reverse("assistant-playground", args=[assistant.pk])
    assert b"Start a conversation" in owner_client.get(url).content
    turn = owner_client.post(url, {"content": "Can I get a refund?"}, HTTP_HX_REQUEST="true")
    assert turn.status_code == 200
    assert b"Can I get a refund?" in turn.content and b"within 30 days" in turn.content
    assert b'data-testid="sources"' in turn.content and b"What is your refund policy?" in turn.content
    conversation = Conversation.objects.for_organization(tenant.organization).get()
    assert conversation.metadata["source"] == "playground"
    # The page keeps the conversation; a second turn continues it.
    owner_client.post(url, {"content": "And shipping?"}, HTTP_HX_REQUEST="true")
    assert (
        Message.objects.for_organization(tenant.organization).filter(conversation=conversation).count() == 4
    )
    assert b"within 30 days" in owner_client.get(url).content
    owner_client.post(reverse("assistant-playground-reset", args=[assistant.pk]))
    assert b"Start a conversation" in owner_client.get(url).content


def test_playground_says_when_the_assistant_stays_quiet_for_a_person(owner_client, tenant, assistant):
    """Found on a new-user walk: "I want to talk to a human" in the playground put the
    conversation in the waiting queue and every later question got no reply at all, with
    nothing on the page saying why."""
    url = reverse("assistant-playground", args=[assistant.pk])
    page = owner_client.get(url)
    assert b'data-testid="playground-handoff"' not in page.content
    turn = owner_client.post(url, {"content": "Hello there"}, HTTP_HX_REQUEST="true")
    assert b'data-testid="playground-handoff"' not in turn.content
    turn = owner_client.post(url, {"content": "I want to talk to a human"}, HTTP_HX_REQUEST="true")
    assert turn.status_code == 200 and b"I want to talk to a human" in turn.content
    assert b'id="playground-handoff" hx-swap-oob="innerHTML"' in turn.content
    assert b"waiting for a person</strong> (visitor asked for a person)" in turn.content
    conversation = Conversation.objects.for_organization(tenant.organization).get()
    assert reverse("inbox-conversation", args=[conversation.pk]).encode() in turn.content
    # Still quiet on the next question, and the page says so when opened again.
    turn = owner_client.post(url, {"content": "How long does shipping take?"}, HTTP_HX_REQUEST="true")
    assert b"waiting for a person" in turn.content
    assert b"waiting for a person" in owner_client.get(url).content
    conversation.handoff_status = Conversation.HandoffStatus.HUMAN
    conversation.save(update_fields=["handoff_status"])
    assert b"A person has taken this conversation over" in owner_client.get(url).content
    # A new conversation answers again, without the note.
    owner_client.post(reverse("assistant-playground-reset", args=[assistant.pk]))
    turn = owner_client.post(url, {"content": "Hello there"}, HTTP_HX_REQUEST="true")
    assert b'id="playground-handoff" hx-swap-oob="innerHTML"' in turn.content  # emptied
    assert b'data-testid="playground-handoff"' not in turn.content
    assert b'data-testid="playground-handoff"' not in owner_client.get(url).content


def test_playground_says_when_a_question_found_nothing_for_its_language(owner_client, tenant, assistant):
    """Found on a new-user walk: "¿Cuánto tarda el envío?" against English knowledge that
    answers it got "Lo siento, no tengo información sobre eso", and nothing said that the
    knowledge language (Settings › Knowledge) decides whether it can be found."""
    knowledge_services.qa_create(
        organization=tenant.organization,
        question="How long does shipping take?",
        answer="Standard shipping takes 3 to 5 business days.",
    )
    url = reverse("assistant-playground", args=[assistant.pk])
    turn = owner_client.post(url, {"content": "¿Cuánto tarda el envío a mi casa?"}, HTTP_HX_REQUEST="true")
    assert b"Lo siento" in turn.content
    assert b'data-testid="language-hint"' in turn.content and b"This question is in Spanish." in turn.content
    assert reverse("settings-knowledge").encode() in turn.content
    for question in ("How long does shipping take?", "Do you rent rockets on weekends?", "Hola"):
        turn = owner_client.post(url, {"content": question}, HTTP_HX_REQUEST="true")
        assert b"language-hint" not in turn.content, question  # answered, English, or a greeting
    organization = tenant.organization
    organization.knowledge_embedder_next = "multilingual"  # switching already
    organization.save(update_fields=["knowledge_embedder_next"])
    turn = owner_client.post(url, {"content": "¿Cuánto tarda el envío a mi casa?"}, HTTP_HX_REQUEST="true")
    assert b"Lo siento" in turn.content and b"language-hint" not in turn.content


def test_playground_on_an_inactive_assistant_explains_the_error(owner_client, assistant):
    assistant.is_active = False
    assistant.save()
    turn = owner_client.post(
        reverse("assistant-playground", args=[assistant.pk]), {"content": "Hello?"}, HTTP_HX_REQUEST="true"
    )
    assert turn.status_code == 200 and turn["X-Form-Error"] == "1" and b"not active" in turn.content


def test_list_is_paginated(owner_client, tenant):
    for number in range(21):
        Assistant.objects.create(organization=tenant.organization, name=f"A{number}")
    page = owner_client.get(reverse("assistants"))
    assert page.context["page_obj"].paginator.num_pages == 2


def test_the_handoff_settings_are_on_the_assistant_form(owner_client, tenant, assistant):
    """Found on a desk walk: docs/support-desk.md sends owners to the assistant's
    `handoff_after_unanswered` and `handoff_on_thumbs_down`, and the dashboard had neither
    (API only)."""
    page = owner_client.get(reverse("assistant-edit", args=[assistant.pk])).content.decode()
    assert 'name="handoff_after_unanswered"' in page and 'value="2"' in page
    assert 'name="handoff_on_thumbs_down"' in page
    owner_client.post(
        reverse("assistant-edit", args=[assistant.pk]),
        {**PERSONA, "handoff_after_unanswered": "0", "handoff_on_thumbs_down": "on"},
    )
    assistant.refresh_from_db()
    assert assistant.handoff_after_unanswered == 0 and assistant.handoff_on_thumbs_down
    from organizations.models import AuditEvent

    event = AuditEvent.objects.for_organization(tenant.organization).filter(action="assistant.updated").last()
    assert event.changes["handoff_after_unanswered"] == [2, 0]
    # A post without the number (an older form) keeps it; out of range is a form error.
    owner_client.post(reverse("assistant-edit", args=[assistant.pk]), PERSONA)
    assistant.refresh_from_db()
    assert assistant.handoff_after_unanswered == 0 and not assistant.handoff_on_thumbs_down
    refused = owner_client.post(
        reverse("assistant-edit", args=[assistant.pk]), {**PERSONA, "handoff_after_unanswered": "21"}
    )
    assert refused.status_code == 200 and "handoff_after_unanswered" in refused.context["form"].errors
    created = owner_client.post(
        reverse("assistant-create"), {**PERSONA, "name": "Quiet", "handoff_after_unanswered": "3"}
    )
    assert created.status_code == 302
    quiet = Assistant.objects.for_organization(tenant.organization).get(name="Quiet")
    assert quiet.handoff_after_unanswered == 3 and not quiet.handoff_on_thumbs_down
    default = owner_client.post(reverse("assistant-create"), {**PERSONA, "name": "Default"})
    assert default.status_code == 302
    assert (
        Assistant.objects.for_organization(tenant.organization).get(name="Default").handoff_after_unanswered
        == 2
    )
