"""The one text analyser: how a question, a chunk or a passage becomes terms.

Retrieval (BM25 in `knowledge.retrieval`) and the relevance gate (`chat.relevance`) both use
it, so a word the gate looks for is the word retrieval matched: lower-cased words, stop words
of the text's language dropped, each word reduced by that language's Snowball stemmer.

`terms` is what BM25 indexes and searches. `content_terms` drops, on top, the words a
visitor wraps a question in ("please", "tell me", "I need", "hola", "bitte"): they say
nothing about what is asked, so the gate does not look for them in a passage.

`language_detect` says which of the analyser's languages a text is written in (each chunk
when it is indexed, each question when it is searched): py3langid (langid.py's naive Bayes
model over byte n-grams, shipped in its wheel, nothing downloaded) restricted to LANGUAGES.
Below MIN_CONFIDENCE ("ok", "PayPal?", a number) the text gets the default, English.

`spelling_suspects` finds the words of an English question that look misspelt (not English
words, "pasword", "trackng") and the English words one edit away from each; retrieval keeps
the candidate the organization's knowledge uses (`knowledge.retrieval.spelling_correct`).
"""

from __future__ import annotations

import json
import re
import threading
from functools import lru_cache
from pathlib import Path

import snowballstemmer

DEFAULT_LANGUAGE = "en"
# ISO 639-1 code -> Snowball stemmer name. The languages whose stop words ship in stopwords/.
SNOWBALL_STEMMERS = {
    "en": "english",
    "es": "spanish",
    "de": "german",
    "fr": "french",
    "pt": "portuguese",
}
LANGUAGES = tuple(SNOWBALL_STEMMERS)
# The detector's probability (over LANGUAGES) below which a text counts as the default
# language. On the multilingual bench set (100 questions) the lowest right answer scores 0.63;
# texts with nothing to go on ("ok", "1234") score 0.2, an even split over five languages.
MIN_CONFIDENCE = 0.5
_STOP_WORD_FILES = Path(__file__).resolve().parent / "stopwords"


def _stop_words_load(language: str) -> frozenset[str]:
    return frozenset((_STOP_WORD_FILES / f"{language}.txt").read_text(encoding="utf-8").split())


STOP_WORDS: dict[str, frozenset[str]] = {language: _stop_words_load(language) for language in LANGUAGES}

# Words a visitor wraps a question in: dropped by `content_terms` (the relevance gate) only.
_QUESTION_WRAPPERS = {
    "en": """
        can't cannot could he'd he'll he's here's how's i'd i'll i'm i've let's ought she'd she'll
        that's there's they'd they'll they're they've we'd we'll we're we've what's when's where's
        who's why's would please hi hello hey thanks thank tell know want need get got also just
        like could would will shall may might must much many way ok okay yes anything something
        someone anyone us
    """,
    "es": """
        hola gracias por favor quiero quisiera necesito saber puedo puede pueden podría podrían
        decir dime díganme algún alguien cómo
    """,
    "de": """
        hallo danke bitte möchte möchten brauche wissen sagen können kannst könnten gibt es
        irgendwie jemand
    """,
    "fr": """
        bonjour salut merci plaît voudrais veux besoin savoir dire pouvez peux puis pourriez
        quelquun quelque comment
    """,
    "pt": """
        olá ola obrigado obrigada favor quero queria preciso saber dizer posso pode podem poderia
        alguém algum como
    """,
}
QUESTION_WRAPPERS: dict[str, frozenset[str]] = {
    language: frozenset(words.split()) for language, words in _QUESTION_WRAPPERS.items()
}

# Countries and regions a shop's visitors name by their abbreviation ("do you ship to the UK?")
# where its shipping table says "United Kingdom", or the other way round. Each group's forms
# (abbreviations, with or without dots, and the full name) are analysed alike: any of them
# becomes the group's full name and its abbreviation term ("UK", "U.K." and "United Kingdom"
# all give "unit kingdom uk"), in documents and questions, so either form finds the other and a
# chunk indexed before this (which has only the form it wrote) is still found by both.
# Per language, in that language's words: a question not in English is also analysed as
# English (`knowledge.retrieval.query_analyse`). Abbreviations that are also words are matched
# only as written in capitals: "US" (not "us"; nor in a line of capitals, "CONTACT US"), "EU"
# (Portuguese "eu", I), "USA" (Spanish "usa", uses), "UE", "UAE"; "UK" in any case.
# Forms: (pattern, case-sensitive). Only these common few: a shop's table of countries says
# "Canada" or "Germany", which nobody abbreviates in a question.
_REGIONS: dict[str, list[tuple[str, list[tuple[str, bool]]]]] = {
    "en": [
        ("united kingdom uk", [(r"U\.K\.|UK", False), (r"united\s+kingdom", False)]),
        (
            "united states usa",
            [
                (r"U\.S\.A\.|USA|U\.S\.|(?<![A-Z]\s)US(?!\s[A-Z]{2})", True),
                (r"united\s+states(?:\s+of\s+america)?", False),
            ],
        ),
        ("european union eu", [(r"E\.U\.|EU", True), (r"european\s+union", False)]),
        ("united arab emirates uae", [(r"U\.A\.E\.|UAE", True), (r"united\s+arab\s+emirates", False)]),
    ],
    "es": [
        ("estados unidos eeuu", [(r"EE\.\s?UU\.?|EEUU|USA", True), (r"estados\s+unidos", False)]),
        ("unión europea ue", [(r"UE", True), (r"unión\s+europea", False)]),
        ("reino unido uk", [(r"UK", False), (r"reino\s+unido", False)]),
    ],
    "de": [
        ("vereinigte staaten usa", [(r"USA", False), (r"vereinigten?\s+staaten", False)]),
        ("europäische union eu", [(r"EU", True), (r"europäischen?\s+union", False)]),
        ("vereinigtes königreich uk", [(r"UK", False), (r"vereinigte[sn]?\s+königreich", False)]),
    ],
    "fr": [
        ("états-unis usa", [(r"É\.-U\.|USA", True), (r"états-unis", False)]),
        ("union européenne ue", [(r"UE", True), (r"union\s+européenne", False)]),
        ("royaume-uni uk", [(r"R\.-U\.|UK", True), (r"royaume-uni", False)]),
    ],
    "pt": [
        ("estados unidos eua", [(r"EUA|USA", True), (r"estados\s+unidos", False)]),
        ("união europeia ue", [(r"UE", True), (r"união\s+europeia", False)]),
        ("reino unido uk", [(r"UK", False), (r"reino\s+unido", False)]),
    ],
}


def _region_patterns(language: str) -> list[tuple[re.Pattern, str]]:
    """One pattern per group (all its forms at once, so a name put in is never matched again)."""
    patterns = []
    for expansion, forms in _REGIONS.get(language, []):
        alternatives = "|".join(form if case_sensitive else f"(?i:{form})" for form, case_sensitive in forms)
        # Whole words only: not the "uk" of "ukulele", nor a dotted form inside another ("UK-based" is).
        patterns.append((re.compile(rf"(?<![\w.])(?:{alternatives})(?!\w)"), f" {expansion} "))
    return patterns


_REGION_PATTERNS = {language: _region_patterns(language) for language in SNOWBALL_STEMMERS}


def regions_expand(text: str, language: str) -> str:
    """`text` with each form of a country or region in `_REGIONS` (for `language`) replaced by
    its group's full name and abbreviation, as the analyser reads it."""
    for pattern, expansion in _REGION_PATTERNS.get(language, []):
        text = pattern.sub(expansion, text)
    return text


_WORD = re.compile(r"\w+(?:'\w+)?", re.UNICODE)
# French and Portuguese elide before a vowel (l'heure, d'achat, qu'il, d'água): the word is
# what follows the apostrophe. English keeps the apostrophe's word whole (don't, customer's).
_ELIDED = re.compile(r"^(?:l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu|quoiqu)'", re.UNICODE)
_ELIDING_LANGUAGES = frozenset({"fr", "pt"})
# A Snowball stemmer keeps the word being stemmed in its own fields: one shared by a web
# process's threads raised IndexError (a 500) on concurrent chat turns. One per thread.
_stemmers = threading.local()


_identifier = None
_identifier_lock = threading.Lock()


def _identifier_get():
    """py3langid's model restricted to LANGUAGES, loaded once per process (about 1 s, 50 MB)."""
    global _identifier
    if _identifier is None:
        with _identifier_lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages(list(LANGUAGES))
                # Drop the other 92 languages' columns it keeps to undo set_languages (~25 MB).
                identifier._full_model = (identifier.nb_ptc, identifier.nb_pc, identifier.nb_classes)
                _identifier = identifier
    return _identifier


@lru_cache(maxsize=4096)
def language_detect(text: str, default: str = DEFAULT_LANGUAGE) -> str:
    """The language of `text` (ISO 639-1, one of LANGUAGES); `default` when unsure."""
    sample = (text or "")[:2000]
    if not any(character.isalpha() for character in sample):
        return default
    language, confidence = _classified(sample)
    return language if confidence >= MIN_CONFIDENCE else default


@lru_cache(maxsize=1024)
def _classified(sample: str) -> tuple[str, float]:
    """The identifier's verdict, remembered: `language_detect` is cached per (text, default),
    and a chat turn asks about its question with two defaults (retrieval's analysis and the
    answer's language)."""
    return _identifier_get().classify(sample)


def language_supported(language: str | None) -> str:
    """`language` if the analyser has its stemmer and stop words, else the default (English)."""
    return language if language in SNOWBALL_STEMMERS else DEFAULT_LANGUAGE


@lru_cache(maxsize=200_000)
def stem(word: str, language: str = DEFAULT_LANGUAGE) -> str:
    """`word` (lower-case) reduced by `language`'s Snowball stemmer: refunds, refunded -> refund."""
    stemmers = getattr(_stemmers, "by_language", None)
    if stemmers is None:
        stemmers = _stemmers.by_language = {}
    stemmer = stemmers.get(language)
    if stemmer is None:
        stemmer = stemmers[language] = snowballstemmer.stemmer(SNOWBALL_STEMMERS[language])
    return stemmer.stemWord(word)


def _words(text: str, language: str) -> list[tuple[str, str]]:
    """(token, word) for each word of `text` that is not one of `language`'s stop words: the
    lower-cased token as written (it's) and the word without apostrophes (its)."""
    stop_words = STOP_WORDS[language]
    lowered = (text or "").lower()
    if language != DEFAULT_LANGUAGE:
        lowered = lowered.replace("’", "'")
    words = []
    for match in _WORD.finditer(lowered):
        token = match.group()
        if language in _ELIDING_LANGUAGES and "'" in token:
            token = _ELIDED.sub("", token)
        word = token.replace("'", "")
        if token in stop_words or word in stop_words:
            continue
        if word.isdigit() and len(word) > 12:
            continue  # long numbers (ids, phone numbers) only add noise
        words.append((token, word))
    return words


# Analysed texts are remembered per process, up to this many of at most ANALYSED_MAX_CHARS: a
# chat turn analyses its question again for every candidate and sentence it scores, and the
# passages it retrieves, scores and quotes come back turn after turn (analysis was ~7 % of a
# turn's CPU, issue 14). An analysis is pure in its text and language. At most ~10 MB.
ANALYSED_CACHE = 1024
ANALYSED_MAX_CHARS = 4000


def _analysis(text: str, language: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(terms, content terms) of `text` in a supported `language`."""
    wrappers = QUESTION_WRAPPERS[language]
    every, content = [], []
    for token, word in _words(regions_expand(text, language), language):
        term = stem(word, language)
        every.append(term)
        if token not in wrappers and word not in wrappers:
            content.append(term)
    return tuple(every), tuple(content)


_analysis_remembered = lru_cache(maxsize=ANALYSED_CACHE)(_analysis)


def _analysed(text: str, language: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    language = language_supported(language)
    text = text or ""
    if len(text) > ANALYSED_MAX_CHARS:  # a whole document being indexed: not worth keeping
        return _analysis(text, language)
    return _analysis_remembered(text, language)


def terms(text: str, *, language: str = DEFAULT_LANGUAGE) -> list[str]:
    """Stemmed terms of `text` in order, stop words dropped: what BM25 indexes and searches."""
    return list(_analysed(text, language)[0])


def content_terms(text: str, *, language: str = DEFAULT_LANGUAGE) -> list[str]:
    """`terms` without the words a question is wrapped in (greetings, please, I need, tell me)."""
    return list(_analysed(text, language)[1])


# --- spelling -----------------------------------------------------------------------------
# Visitors misspell ("how do I change my pasword", "trackng number"): a misspelt word matches no
# term for BM25 and the embedder cuts it into word pieces ("pas", "##word"), so the question
# lands near whatever its other words say (the password paraphrase above scored 0.320 against
# its pair and 0.318 against the cancel-order one; spelt right, 0.694 against 0.312). A word is
# a suspect when it is not an English word and is at least SPELLING_MIN_LENGTH letters (shorter
# words have too many neighbours one edit away); its candidates are the English words one edit
# (a letter deleted, inserted, replaced, or two swapped) away. Whether a suspect is corrected,
# and to which candidate, is the organization's knowledge's to say (retrieval).
SPELLING_MIN_LENGTH = 5
# English words: the whole-word entries of MiniLM's WordPiece vocabulary (bert-base-uncased's,
# ~22,000 words; shipped in this repository for the default embedder). A word outside it is one
# the tokenizer has to cut into pieces: a misspelling, or a rare word or name (which the
# knowledge then uses, or which has no English word one edit away).
_ENGLISH_WORDS_FILE = Path(__file__).resolve().parent / "assets" / "all-MiniLM-L6-v2" / "tokenizer.json"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_ASCII_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Lower-case English words (see _ENGLISH_WORDS_FILE), read once per process."""
    vocabulary = json.loads(_ENGLISH_WORDS_FILE.read_text(encoding="utf-8"))["model"]["vocab"]
    return frozenset(word for word in vocabulary if word.isascii() and word.isalpha())


def _one_edit(word: str) -> set[str]:
    splits = [(word[:index], word[index:]) for index in range(len(word) + 1)]
    deleted = {left + right[1:] for left, right in splits if right}
    swapped = {left + right[1] + right[0] + right[2:] for left, right in splits if len(right) > 1}
    replaced = {left + letter + right[1:] for left, right in splits if right for letter in _LETTERS}
    inserted = {left + letter + right for left, right in splits for letter in _LETTERS}
    return (deleted | swapped | replaced | inserted) - {word}


@lru_cache(maxsize=4096)
def spelling_candidates(word: str) -> tuple[str, ...]:
    """The English words one edit away from `word` (lower-case), sorted; () when `word` is
    an English word itself or shorter than SPELLING_MIN_LENGTH."""
    if len(word) < SPELLING_MIN_LENGTH or not word.isalpha() or word in english_words():
        return ()
    return tuple(sorted(_one_edit(word) & english_words()))


def spelling_suspects(text: str) -> dict[str, tuple[str, ...]]:
    """{suspect word (lower-case): its candidates} for the words of `text` (read as English)
    that are not English words and have English words one edit away."""
    suspects = {}
    for match in _ASCII_WORD.finditer(text or ""):
        word = match.group().lower()
        if "'" in word or word in suspects:
            continue
        candidates = spelling_candidates(word)
        if candidates:
            suspects[word] = candidates
    return suspects


def spelling_apply(text: str, corrections: dict[str, str]) -> str:
    """`text` with each word in `corrections` (lower-case keys) replaced, a capital kept."""
    if not corrections:
        return text

    def replace(match: re.Match) -> str:
        written = match.group()
        corrected = corrections.get(written.lower())
        if corrected is None:
            return written
        return corrected.capitalize() if written[0].isupper() else corrected

    return _ASCII_WORD.sub(replace, text)
