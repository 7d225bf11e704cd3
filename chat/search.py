"""The inbox's search of message text: Postgres full-text search, served by the GIN index
`chat_msg_search` (`Message.Meta.indexes`).

The embedded Postgres has no pg_trgm, so no index serves a substring match (`icontains`) of
message text. Full-text search matches words instead, with the 'simple' configuration: no
stemming and no stop words, lower-cased, any language whose words are separated by spaces
(a run of Chinese or Japanese characters is one word: found by its beginning only).

Order numbers and emails: the default parser keeps "jo@example.com" as one token and reads
"A-1042" as 'a' and '-1042' (a negative number), so "example.com" or "1042" would not find
them. Both sides therefore read every ASCII punctuation character as a space first: the
message "jo@example.com, order A-1042" holds the words jo example com order a 1042, and a
search term with punctuation inside is the phrase of its parts ("A-1042" = 'a' <-> '1042',
"jo@example.com" = 'jo' <-> 'example' <-> 'com'), so each is found whole or by a part.

A query: every term must match (AND), in any order; "a quoted phrase" matches those words in
that order; the last word is a prefix (the operator may still be typing it) unless it ends a
closed quote.
"""

from __future__ import annotations

import re
import string

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.models import F, Func, TextField, Value

PUNCTUATION = string.punctuation
_SPACES = " " * len(PUNCTUATION)
_TO_SPACES = str.maketrans(PUNCTUATION, _SPACES)
# A quoted phrase (its closing quote may not be typed yet) or a run of non-space characters.
_TERM = re.compile(r'"([^"]*)("?)|(\S+)')


def message_document() -> SearchVector:
    """A message's words as the index holds them. A query must use this very expression for
    Postgres to read the index (an expression index is matched expression for expression)."""
    return SearchVector(
        Func(
            F("content"), Value(PUNCTUATION), Value(_SPACES), function="translate", output_field=TextField()
        ),
        config="simple",
    )


def _words(text: str) -> list[str]:
    return text.translate(_TO_SPACES).split()


def message_query(text: str) -> SearchQuery | None:
    """The tsquery for what an operator typed; None when it has no word (only punctuation)."""
    raw = tsquery_text(text)
    return None if raw is None else SearchQuery(raw, search_type="raw", config="simple")


def tsquery_text(text: str) -> str | None:
    """`message_query`'s tsquery, as the text `to_tsquery` reads."""
    terms: list[list[str]] = []
    prefix = True
    for match in _TERM.finditer(text):
        phrase, closed, bare = match.groups()
        words = _words(bare if bare is not None else phrase)
        if words:
            terms.append(words)
            prefix = bare is not None or not closed
    if not terms:
        return None
    # Each word is quoted ('…': the punctuation is gone, so no quote or backslash is left in
    # it); to_tsquery lower-cases it and splits it further where the parser does (symbols).
    quoted = [[f"'{word}'" for word in words] for words in terms]
    if prefix:
        quoted[-1][-1] += ":*"
    return " & ".join("(" + " <-> ".join(words) + ")" for words in quoted)
