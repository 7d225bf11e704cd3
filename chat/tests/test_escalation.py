"""The "asks for a person" phrase set: what must trigger a handoff, and what must not."""

import pytest

from chat.escalation import asks_for_person

ASKS = [
    "I want to talk to a person",
    "Can I speak with a human?",
    "talk to someone please",
    "Please connect me to an agent",
    "I need a real person",
    "get me a human",
    "Is there a live agent?",
    "I'd like to speak to customer service",
    "Can I chat with your support team",
    "HUMAN AGENT",
    "transfer me to a representative",
]
DOES_NOT_ASK = [
    "Are you a human?",
    "What are your business hours?",
    "How do I reset my password?",
    "Can a person share one account?",
    "Does it connect to a human resources system?",
    "How do I add a team member to my plan?",
    "",
]
OTHER_LANGUAGES = [
    ("de", "Ich möchte mit einem Menschen sprechen"),
    ("de", "Bitte einen echten Mitarbeiter"),
    ("fr", "Je veux parler à un conseiller"),
    ("fr", "je voudrais parler a quelqu’un"),
    ("es", "Quiero hablar con una persona"),
    ("es", "¿Puedo hablar con alguien?"),
    ("nl", "Kan ik met een medewerker spreken?"),
    ("it", "Vorrei parlare con un operatore"),
    ("pt", "Quero falar com um atendente"),
    ("pt-BR", "Posso falar com alguém?"),
]


@pytest.mark.parametrize("text", ASKS)
def test_english_requests_match_in_any_assistant_language(text):
    assert asks_for_person(text=text, languages=("de",))


@pytest.mark.parametrize("text", DOES_NOT_ASK)
def test_ordinary_questions_do_not_match(text):
    assert not asks_for_person(text=text, languages=("en", "fr", "de"))


@pytest.mark.parametrize(("language", "text"), OTHER_LANGUAGES)
def test_the_assistants_language_matches_only_when_it_is_that_language(language, text):
    assert asks_for_person(text=text, languages=(language,))
    assert not asks_for_person(text=text, languages=("en",))


def test_french_talking_to_a_friend_is_not_a_request():
    assert not asks_for_person(text="Comment parler à un ami de votre produit ?", languages=("fr",))
