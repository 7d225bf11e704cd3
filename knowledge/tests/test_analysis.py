"""Stemming from many threads at once, as a web process's threads do on concurrent turns."""

from __future__ import annotations

import sys
import threading

import pytest
import snowballstemmer

from knowledge import analysis


def test_stemming_from_many_threads_at_once_gives_the_single_threaded_stems():
    words = [
        f"{stem}{suffix}"
        for stem in ("connect", "generaliz", "happi", "runn", "nation")
        for suffix in ("", "s", "ing", "ed", "ation", "ational", "ousness", "ively", "ement", "ies")
    ]
    words = [f"{word}{'x' * (index % 7)}{word}" for index, word in enumerate(words * 40)]
    reference = snowballstemmer.stemmer("english")
    expected = {word: reference.stemWord(word) for word in words}
    failures: list[BaseException] = []
    results: list[dict[str, str]] = []

    def stem_all() -> None:
        try:
            results.append({word: analysis.stem.__wrapped__(word) for word in words})
        except BaseException as error:  # noqa: BLE001  (reported below, with the thread's error)
            failures.append(error)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show at once
    try:
        threads = [threading.Thread(target=stem_all) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures, failures[:3]
    assert all(result == expected for result in results)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("How many days do I have to send something back?", "en"),
        ("¿Cuántos días tengo para devolver un producto?", "es"),
        ("Wie lange habe ich Zeit, etwas zurückzuschicken?", "de"),
        ("Combien de jours ai-je pour renvoyer un produit ?", "fr"),
        ("Quantos dias eu tenho para devolver um produto?", "pt"),
    ],
)
def test_the_language_of_a_short_question_is_detected(text, language):
    assert analysis.language_detect(text) == language


@pytest.mark.parametrize("text", ["ok", "1234", "PayPal?", "", "   "])
def test_a_text_with_nothing_to_go_on_gets_the_default_language(text):
    assert analysis.language_detect(text) == "en"
    assert analysis.language_detect(text, default="") == ""


def test_each_language_has_its_own_stop_words_and_stemmer():
    assert analysis.terms("¿Cuánto cuesta el envío de los pedidos?", language="es") == [
        "cuant",
        "cuest",
        "envi",
        "ped",
    ]
    assert analysis.terms("Wie lange dauert die Lieferung der Bestellungen?", language="de") == [
        "lang",
        "dauert",
        "liefer",
        "bestell",
    ]
    # French elides before a vowel: the word is what follows the apostrophe.
    assert analysis.terms("Quelle est l'heure d'ouverture ?", language="fr") == ["quel", "heur", "ouvertur"]
    assert analysis.terms("Qual é o prazo de entrega dos pedidos?", language="pt") == [
        "praz",
        "entreg",
        "ped",
    ]
    # An unsupported language is analysed as English, the default.
    assert analysis.terms("refunds", language="it") == analysis.terms("refunds") == ["refund"]


def test_content_terms_drop_the_words_a_question_is_wrapped_in():
    assert analysis.content_terms("Hello, can you please tell me how to get a refund?") == ["refund"]
    assert analysis.content_terms("Hola, quisiera saber cómo pedir un reembolso", language="es") == [
        "ped",
        "reembols",
    ]
    assert analysis.terms("We'll see how well it works") == ["well", "see", "well", "work"]
    assert analysis.content_terms("We'll see how well it works") == ["see", "well", "work"]


@pytest.mark.parametrize(
    ("abbreviation", "name", "language"),
    [
        ("UK", "United Kingdom", "en"),
        ("u.k.", "united kingdom", "en"),
        ("US", "United States", "en"),
        ("U.S.A.", "United States of America", "en"),
        ("USA", "united states", "en"),
        ("EU", "European Union", "en"),
        ("UAE", "United Arab Emirates", "en"),
        ("EE. UU.", "Estados Unidos", "es"),
        ("UE", "Unión Europea", "es"),
        ("EU", "Europäische Union", "de"),
        ("R.-U.", "Royaume-Uni", "fr"),
        ("EUA", "Estados Unidos", "pt"),
    ],
)
def test_a_country_s_abbreviation_and_its_name_are_analysed_alike(abbreviation, name, language):
    """Found on a new-user walk: "UK" never matched the shipping table's "United Kingdom". Both
    forms give the same terms, in questions and in the knowledge alike."""
    assert analysis.terms(abbreviation, language=language) == analysis.terms(name, language=language)
    question = analysis.terms(f"Do you ship to the {abbreviation}?", language=language)
    row = analysis.terms(f"{name}: 8-12 business days, $20.", language=language)
    assert set(analysis.terms(name, language=language)) <= set(question) & set(row)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Contact us", "en"),
        ("CONTACT US", "en"),
        ("Eu quero devolver", "pt"),
        ("¿Cómo se usa?", "es"),
        ("a ukulele", "en"),
    ],
)
def test_a_word_that_looks_like_an_abbreviation_is_left_alone(text, language):
    """A pronoun ("us", Portuguese "eu"), a verb (Spanish "usa"), a line of capitals: not countries."""
    assert analysis.regions_expand(text, language) == text
    assert not {"unit", "unid", "eeuu", "european", "europeia"} & set(analysis.terms(text, language=language))
