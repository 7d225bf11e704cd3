"""Does a visitor's message ask for a person? A small phrase set per language, no LLM call.

Deliberately narrow: a false positive silences the assistant and pages the team, so each
pattern needs both an intent verb or marker ("talk to", "speak with", "want", "real") and
a word for a person. "Are you a human?" is a question about the bot, not a request, and
does not match. English always applies (visitors switch to it), plus the assistant's or
conversation's language.
"""

from __future__ import annotations

import re
import unicodedata

_PERSON_EN = (
    r"(?:real |live |actual |human )?"
    r"(?:person|human|humans|agent|representative|rep|operator|someone|somebody|staff|"
    r"team member|customer service|support team|support agent)(?! resources)"
)

PATTERNS: dict[str, tuple[str, ...]] = {
    "en": (
        rf"\b(?:talk|speak|chat|connect|transfer|put)\w*\s+(?:me\s+)?(?:to|with|through to)\s+(?:a |an |the |some |your )?{_PERSON_EN}\b",
        r"\b(?:want|need|get|give)\s+(?:me\s+)?(?:a |an |to a )?(?:real |live |actual )?(?:person|human|agent|representative|operator)\b",
        r"\b(?:real|live|actual)\s+(?:person|human|agent)\b",
        r"\bhuman\s+(?:agent|support|help|operator)\b",
    ),
    "de": (
        r"\b(?:mit|einen?|einem)\s+(?:echten\s+|richtigen\s+)?(?:menschen|mitarbeiter\w*|berater\w*|person|kundendienst)\s+(?:sprechen|reden|verbinden)\b",
        r"\becht\w*\s+(?:menschen|person|mitarbeiter)\b",
        r"\bmenschliche\w*\s+(?:hilfe|mitarbeiter\w*|ansprechpartner)\b",
    ),
    "fr": (
        r"\bparler\s+(?:a|avec)\s+(?:quelqu'un|quelqu un|(?:un|une|le|la)\s+(?:vrai\w*\s+)?(?:humain|personne|conseiller\w*|agent|operateur\w*|service client))\b",
        r"\b(?:vrai\w*|veritable)\s+(?:humain|personne|conseiller\w*)\b",
    ),
    "es": (
        r"\bhablar\s+con\s+(?:alguien|(?:un|una|el|la)\s+(?:persona|humano|agente|asesor\w*|operador\w*))\b",
        r"\b(?:persona|agente)\s+(?:real|humano)\b",
    ),
    "nl": (
        r"\b(?:met\s+)?(?:een\s+)?(?:echt\w*\s+)?(?:mens|medewerker|persoon)\s+(?:spreken|praten)\b",
        r"\becht\w*\s+(?:mens|persoon|medewerker)\b",
    ),
    "it": (
        r"\bparlare\s+con\s+(?:qualcuno|(?:un|una|l')\s*(?:persona|umano|operatore|operatrice|agente))\b",
        r"\b(?:persona|operatore)\s+(?:reale|vero)\b",
    ),
    "pt": (
        r"\bfalar\s+com\s+(?:alguem|(?:um|uma|o|a)\s+(?:pessoa|humano|atendente|agente))\b",
        r"\b(?:pessoa|atendente)\s+(?:real|humano)\b",
    ),
}
_COMPILED = {
    language: [re.compile(pattern) for pattern in patterns] for language, patterns in PATTERNS.items()
}


def _normalise(text: str) -> str:
    # Accents off ("à" = "a", "alguém" = "alguem") and one spelling of apostrophes, so a
    # visitor typing on a keyboard without accents matches the same patterns.
    folded = unicodedata.normalize("NFKD", text.casefold().replace("’", "'"))
    return " ".join("".join(char for char in folded if not unicodedata.combining(char)).split())


def asks_for_person(*, text: str, languages: tuple[str, ...] = ()) -> bool:
    """True when `text` asks to talk to a person, in English or one of `languages`."""
    normalised = _normalise(text or "")
    if not normalised:
        return False
    codes = ["en"] + [(language or "").split("-")[0].split("_")[0].lower() for language in languages]
    for code in dict.fromkeys(codes):
        for pattern in _COMPILED.get(code, ()):
            if pattern.search(normalised):
                return True
    return False


# "Yes" to the assistant's own offer ("Would you like me to connect you with a human agent?",
# said with every answer that found nothing): the whole message is an affirmative, in any of
# the languages the offer is made in, optionally with a polite word or two. Only ever read
# right after such an offer (`chat.services.reply`), so a "yes" anywhere else is a message.
_YES = {
    "yes", "yeah", "yep", "yup", "sure", "please", "si", "claro", "vale", "ja",
    "jawohl", "gerne", "oui", "sim", "certo", "graag", "certamente",
}  # fmt: skip
_YES_TAIL = {
    "please", "pls", "plz", "do", "thanks", "thank", "you", "that", "would", "be", "great", "go",
    "ahead", "por", "favor", "bitte", "gerne", "danke", "s'il", "vous", "plait", "merci", "d'accord",
    "grazie", "obrigado", "obrigada", "graag", "dank", "u", "yes", "sure", "ok", "okay", "gracias",
}  # fmt: skip


def accepts_offer(*, text: str) -> bool:
    """True when the whole message says yes (at most six words): the answer to an offer. "OK"
    alone, or "ok thanks", is an acknowledgement (small talk), not a yes."""
    words = [word.strip(".,!?¡¿;:") for word in _normalise(text or "").split()]
    words = [word for word in words if word]
    if not words or len(words) > 6 or words[0] not in _YES:
        return False
    return all(word in _YES_TAIL or word in _YES for word in words[1:])
