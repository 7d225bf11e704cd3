"""How well a piece of text matches a question, in plain Python (no corpus statistics).

Retrieval ranks candidates; this module decides whether the best of them is relevant
at all, and scores request-supplied context (the widget chat API's policies and scraped data)
that never enters the knowledge base. The lexical part is a coverage score over the content
words of `knowledge.analysis` (the analyser retrieval indexes and searches with, so the gate
looks for the terms BM25 matched); the engine combines it with semantic similarity where
available.
"""

from __future__ import annotations

import math
import re

from knowledge import analysis

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9À-Ý\"'(])|\n+")


def terms(text: str, *, language: str = analysis.DEFAULT_LANGUAGE) -> list[str]:
    """The content words of `text` as the knowledge analyser stems them in `language` (stop
    words and the words a question is wrapped in dropped), in order."""
    return analysis.content_terms(text, language=language)


def coverage(question: str, text: str, *, emphasis: str = "") -> float:
    """Share of the question's content words found in `text` (0..1).

    Longer words weigh more (they carry more meaning than 'buy' or 'use'); words found
    in `emphasis` (a Q&A pair's own question, a policy's title) count fully, words found
    only in the body count 0.85. Both sides are analysed in the question's language.
    """
    return _layered_coverage(question, ((emphasis, 1.0), (text, 0.85)))


def _layered_coverage(question: str, layers: tuple[tuple[str, float], ...]) -> float:
    """`coverage` over texts in layers: each of the question's content words (weighing
    log(2 + its length)) counts at the factor of the first layer whose text has it."""
    language = analysis.language_detect(question)
    wanted = list(dict.fromkeys(terms(question, language=language)))
    if not wanted:
        return 0.0
    found = [(set(terms(text, language=language)), factor) for text, factor in layers]
    total = matched = 0.0
    for term in wanted:
        weight = math.log(2 + len(term))
        total += weight
        for words, factor in found:
            if term in words:
                matched += factor * weight
                break
    return matched / total


def sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE.split(text or "") if part and part.strip()]


# A list item's line, as extraction leaves it ("- PayPal", "• PayPal", "2. Print the label").
_LIST_ITEM = re.compile(r"^(?:[-*+•▪◦·‣–]|\d{1,3}[.)])\s+\S")


def _units(text: str) -> tuple[list[str], set[int], set[int]]:
    """(the passage's sentences, in order, with each list item whole as one of them; the
    positions of the list items; the positions that start a line of the passage). A list item
    is never split into sentences ("- Portland - 415 NW 11th Ave, Portland, OR. Open every day,
    11 AM to 7 PM." says when *Portland* opens)."""
    parts: list[str] = []
    items: set[int] = set()
    starts: set[int] = set()
    for line in (text or "").split("\n"):
        line = line.strip()
        if not line:
            continue
        starts.add(len(parts))
        if _LIST_ITEM.match(line):
            items.add(len(parts))
            parts.append(line)
        else:
            parts.extend(sentences(line))
    return parts, items, starts


def _list_of(index: int, parts: list[str], items: set[int]) -> list[int]:
    """The list `parts[index]` belongs to: its run of items and the lead-in line before the run
    when it ends with a colon ("We accept:"), or the run after `index` when it is that lead-in;
    [] when it is neither."""
    if index not in items:
        if not parts[index].rstrip().endswith(":") or index + 1 not in items:
            return []
        start = index + 1
    else:
        start = index
        while start - 1 in items:
            start -= 1
    end = start
    while end + 1 in items:
        end += 1
    lead = (
        [start - 1]
        if start > 0 and start - 1 not in items and parts[start - 1].rstrip().endswith(":")
        else []
    )
    return [*lead, *range(start, end + 1)]


def is_heading(part: str) -> bool:
    """A heading or label on its own line ("Returns and refunds"): short, no closing punctuation,
    and no row of figures (`_is_figure_row`)."""
    return (
        len(part) <= 80
        and not part.rstrip().endswith((".", "!", "?", ":", ";", ")", "…"))
        and not _is_figure_row(part)
    )


# A number as a line writes it ("7-10" is two, "$5.95" one), and a price.
_PRICE_FIGURE = re.compile(r"[$€£]\s?\d|\d\s?(?:USD|EUR|GBP|dollars?|euros?)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _is_figure_row(part: str) -> bool:
    """A line that gives a price or three numbers or more: a table row as a PDF's text gives it
    ("Canada 7-10 business days, $14 3-4 business days, $32", its cells joined by spaces, no
    closing punctuation). Found on a new-user walk: every row of a PDF's shipping table was taken
    for a heading and left out of the answer, and "How much does shipping to Canada cost?" was
    answered with the sentence above the table ("We ship from our warehouse in Portland")."""
    return bool(_PRICE_FIGURE.search(part)) or len(_NUMBER.findall(part)) >= 3


_CONJUNCTIONS = {"and", "or", "&", "y", "o", "e", "und", "oder", "et", "ou"}


def _restates(part: str, wanted: set[str], language: str) -> bool:
    """A run-in heading ("Payment methods. We accept Visa, …"): at most four words, each of
    them one of the question's content words (or "and"), no figure. It matched the question
    best and was the whole answer to "Which payment methods do you accept?" (found on a
    new-user walk), though it says nothing the question did not. "PayPal is accepted." is a
    sentence, not a label: "is" is no content word."""
    words = re.findall(r"[^\W_]+(?:['’-][^\W_]+)*|&", part)
    if not words or len(words) > 4 or any(character.isdigit() for character in part):
        return False
    content = [word for word in words if word.lower() not in _CONJUNCTIONS]
    if not content:
        return False
    for word in content:
        own = terms(word, language=language)
        if not own or not set(own) <= wanted:
            return False
    return True


def best_sentences(
    question: str, text: str, *, limit: int = 3, max_chars: int = 600, lead: int | None = None
) -> str:
    """The passage's sentences that answer `question`, in their original order.

    An extractive answer reads as the sentence or few of the source that answer, not a whole
    chunk: the best-matching sentence and, up to `limit` in all, the others that match at
    least half as well (ties go to the earlier one), the best one's siblings first
    (`_siblings`: the sentences beside it that give the same kind of figure about the same
    thing, "Standard shipping takes 5 to 7 business days" beside "Express shipping ... arrives
    in 1 to 2 business days"). Headings on their own line are left out (the answer cites its
    source, which names the page); a passage where nothing matches gives its first sentence.

    `lead`: the position (in `passage_units`) of the sentence that answers, chosen by the caller
    (by meaning: `chat.grounding`); the answer is that sentence, its siblings and the others
    that match at least half as well as it does.
    """
    parts, items, starts = _units(text)
    if len(parts) <= 1:
        return (text or "").strip()[:max_chars]
    scored, body = _ranked(question, parts, items)
    led = lead is not None and lead in body
    if led:
        lead_score = next(score for score, index in scored if index == lead)
        scored = [(lead_score, lead), *((score, index) for score, index in scored if index != lead)]
    best = scored[0][0]
    if best == 0 and not led:
        chosen = {body[0]}
    elif _list_of(scored[0][1], parts, items):
        chosen = {scored[0][1]}  # the list it belongs to is the answer (`_with_lists`)
    else:
        ranked = [scored[0][1], *_siblings(question, parts, body, scored[0][1])]
        # The others come from the best one's section, or from a section whose heading matches
        # the question better: under a heading that matches it less, a sentence is another topic
        # that shares a word ("Unplug the lamp and let the bulb cool." under "Cleaning" led the
        # answer to "What bulbs do the lamps take?" from under "Bulbs", found on a new-user walk),
        # while "We accept:" under "Payment methods" still joins a sentence about refunds to
        # "the original payment method" for "Which payment methods?".
        headings = _headings_over(parts, items)
        section = headings.get(scored[0][1], "")
        section_match = coverage(question, section) if section else 0.0
        ranked += [
            index
            for score, index in scored[1:]
            if 0 < best / 2 <= score
            and index not in ranked
            and (
                headings.get(index, "") == section
                or coverage(question, headings.get(index, "")) > section_match
            )
        ]
        chosen = set(ranked[:limit]) | _rows_alike(parts, starts, scored)
        chosen |= _figure_after(question, parts, items, starts, body, scored[0][1], chosen)
        chosen -= _rows_not_named(question, parts, scored[0][1], chosen)
    return quote(parts, items, chosen, max_chars=max_chars, starts=starts)


# What a question asks a figure of: a price ("how much is shipping to Canada?", "what does it
# cost?") or a time ("how long does delivery take?"), in English.
_ASKS_PRICE = re.compile(r"\b(?:how much|cost|costs|price|prices|fee|fees|charge|charges)\b", re.IGNORECASE)
_ASKS_TIME = re.compile(r"\b(?:how long|how many (?:days|weeks|hours)|how soon)\b", re.IGNORECASE)
_PRICE = re.compile(rf"{_PRICE_FIGURE.pattern}|\bfree\b", re.IGNORECASE)
_TIME = re.compile(
    r"\d+\s*(?:(?:to|-|–)\s*\d+\s*)?(?:business\s+|working\s+)?(?:days?|weeks?|hours?|months?|years?)\b",
    re.IGNORECASE,
)


def _figure_after(
    question: str,
    parts: list[str],
    items: set[int],
    starts: set[int],
    body: list[int],
    lead: int,
    chosen: set[int],
) -> set[int]:
    """The sentence after `lead` in its paragraph that gives the figure the question asks for,
    when no chosen sentence gives one; else nothing. Found on a new-user walk: "how much is
    shipping to canada?" was answered "We ship to Canada, the United Kingdom and the European
    Union." (the sentence naming Canada) without the next one, "International delivery takes 7
    to 14 business days and costs $24.95.", which shares no word with the question."""
    figure = _PRICE if _ASKS_PRICE.search(question) else _TIME if _ASKS_TIME.search(question) else None
    if figure is None or lead in items or any(figure.search(parts[index]) for index in chosen):
        return set()
    in_body = set(body)
    position = lead + 1
    while position < len(parts) and position not in starts and position in in_body and position not in items:
        if figure.search(parts[position]):
            return {position}
        position += 1
    return set()


def _ranked(question: str, parts: list[str], items: set[int]) -> tuple[list[tuple[float, int]], list[int]]:
    """([(score, position)] of the passage's answering units for `question`, best first (ties:
    earlier); the positions of those units: list items, sentences that are no heading nor a
    restatement of the question)."""
    language = analysis.language_detect(question)
    wanted = set(terms(question, language=language))
    body = [
        index
        for index, part in enumerate(parts)
        if index in items or (not is_heading(part) and not _restates(part, wanted, language))
    ] or list(range(len(parts)))
    headings = _headings_over(parts, items)
    scored = sorted(
        (
            (
                _unit_score(
                    question, parts[index], headings.get(index, ""), lead_in=_leads_list(index, parts, items)
                ),
                index,
            )
            for index in body
        ),
        key=lambda item: (-item[0], item[1]),
    )
    return scored, body


def best_lead(question: str, text: str) -> tuple[int | None, float]:
    """(the position, in `passage_units`, of the sentence `best_sentences` leads with, or None
    when nothing in the passage shares a word with the question or it is one sentence; its
    score, 0..1)."""
    parts, items, _starts = _units(text)
    if len(parts) <= 1:
        return None, 0.0
    scored, _body = _ranked(question, parts, items)
    return (scored[0][1], scored[0][0]) if scored[0][0] > 0 else (None, 0.0)


def passage_units(text: str) -> tuple[list[str], set[int], set[int]]:
    """(the passage's sentences, with each list item whole as one; the list items' positions;
    the positions that start a line)."""
    return _units(text)


def quote(
    parts: list[str],
    items: set[int],
    chosen: set[int],
    *,
    max_chars: int = 600,
    starts: set[int] = frozenset(),
) -> str:
    """The `chosen` sentences of a passage (`passage_units`) in their order, each chosen list item
    or lead-in with its list (`_with_lists`), within `max_chars`. A sentence that starts a line of
    the passage (another paragraph, a table row) starts a line of the quote: three shipping-table
    rows ran together as one paragraph."""
    headers = _table_headers(chosen, parts, items, starts)
    chosen = _with_lists(chosen, parts, items, max_chars=max_chars) | headers
    answer = ""
    previous = None
    for index in sorted(chosen):
        # A list item is a line of its own, as is the line after a list, and a new paragraph.
        separator = "\n" if index in items or previous in items or index in starts else " "
        candidate = f"{answer}{separator}{parts[index]}".strip()
        if len(candidate) > max_chars and answer:
            break
        answer, previous = candidate, index
    if len(answer) > max_chars:
        answer = answer[:max_chars].rsplit(" ", 1)[0] + "…"
    return answer


# A table row read under its header ("Destination: Canada; Standard: …"): its first column's name.
_ROW_LABEL = re.compile(r"^([^:;.]{1,40}): ")


def _row_named(question: str, part: str) -> bool:
    """Whether `part` is a table row whose first cell the question names, every word of it
    ("the UK" names "Destination: United Kingdom; …", not "Destination: United States; …")."""
    label = _ROW_LABEL.match(part)
    if label is None:
        return False
    language = analysis.language_detect(question)
    cell = set(terms(part[label.end() :].split(";", 1)[0], language=language))
    return bool(cell) and cell <= set(terms(question, language=language))


def _rows_not_named(question: str, parts: list[str], best: int, chosen: set[int]) -> set[int]:
    """When the best unit is a table row the question names, the other rows of its table among
    `chosen` that it does not name: other cases than the one asked about ("How much is express
    shipping to the UK?" quoted the Germany and Canada rows with the United Kingdom one, for
    their like figures, and the United States one, for "United")."""
    if not _row_named(question, parts[best]):
        return set()
    label = _ROW_LABEL.match(parts[best]).group(1)
    return {
        index
        for index in chosen
        if index != best
        and (match := _ROW_LABEL.match(parts[index])) is not None
        and match.group(1) == label
        and not _row_named(question, parts[index])
    }


def _rows_alike(parts: list[str], starts: set[int], scored: list[tuple[float, int]]) -> set[int]:
    """When the best unit is a table row, the rows of its table (their first column named alike)
    that match the question exactly as well: a question that tells no row apart gets them all,
    within the quote's length, not the first three. Found on a new-user walk: "How much is express
    shipping to the UK?" ("UK": the table says "United Kingdom") got the United States, Canada and
    Germany rows, as if those were the answer."""
    best_score, lead = scored[0]
    label = _ROW_LABEL.match(parts[lead]) if lead in starts else None
    if label is None:
        return set()
    return {
        index
        for score, index in scored
        if score == best_score
        and index in starts
        and (match := _ROW_LABEL.match(parts[index])) is not None
        and match.group(1) == label.group(1)
    }


def _bare_row(index: int, parts: list[str], items: set[int], starts: set[int]) -> bool:
    """A line of figures without closing punctuation: a table row as a PDF's text gives it."""
    part = parts[index]
    return (
        index in starts
        and index not in items
        and _is_figure_row(part)
        and not part.rstrip().endswith((".", "!", "?", ":", ";", ")", "…"))
    )


def _table_headers(chosen: set[int], parts: list[str], items: set[int], starts: set[int]) -> set[int]:
    """The header line over each chosen table row of a PDF (the line of no figures right above
    its run of rows, "Destination Standard Express"): a row quoted alone, "Canada 7-10 business
    days, $14 3-4 business days, $32", does not say which price is which (found on a new-user
    walk)."""
    headers = set()
    for index in chosen:
        if not _bare_row(index, parts, items, starts):
            continue
        position = index - 1
        while position >= 0 and _bare_row(position, parts, items, starts):
            position -= 1
        if position >= 0 and position in starts and position not in items and is_heading(parts[position]):
            headers.add(position)
    return headers


# What a question's word found only in the heading over a sentence counts, against 0.85 for
# one in the sentence (`coverage`): enough to choose "We accept:" under "Payment methods" over a
# sentence elsewhere that names "the original payment method", too little to bring a section's
# every sentence into the answer ("Returns and refunds" over a sentence about the warehouse).
HEADING_WORD_WEIGHT = 0.5


def _headings_over(parts: list[str], items: set[int]) -> dict[int, str]:
    """{position: the heading line over it} for the sentences under a heading."""
    over: dict[int, str] = {}
    current = ""
    for index, part in enumerate(parts):
        if index not in items and is_heading(part):
            current = part
        elif current:
            over[index] = current
    return over


def sections_of(text: str) -> list[tuple[str, str]]:
    """(heading, its text) for each section of a passage under a heading line of its own (a
    passage that merged a page's short sections: "Cleaning", "Bulbs", "Warranty"), in order;
    sentences before the first heading and headings without a sentence under them are left out."""
    parts, items, _starts = _units(text)
    sections: dict[str, list[str]] = {}
    for index, heading in _headings_over(parts, items).items():
        if index in items or not is_heading(parts[index]):
            sections.setdefault(heading, []).append(parts[index])
    return [(heading, " ".join(body)) for heading, body in sections.items()]


def _leads_list(index: int, parts: list[str], items: set[int]) -> bool:
    return index not in items and bool(_list_of(index, parts, items))


def _unit_score(question: str, part: str, heading: str, *, lead_in: bool = False) -> float:
    """`coverage` of the question by `part`, with the question's words that only the heading
    over it has counted at HEADING_WORD_WEIGHT: the heading says what the sentences under it are
    about ("Payment methods" over "We accept:"). It confirms, it does not make a match: a sentence
    sharing no word with the question scores 0 whatever its heading ("Our warehouse is in Ohio"
    under "Returns and refunds" is no answer to "how long do refunds take?"), except a list's
    lead-in ("We accept:"), which says nothing on its own."""
    own = coverage(question, part)
    if not heading or (own == 0 and not lead_in):
        return own
    return _layered_coverage(question, ((part, 0.85), (heading, HEADING_WORD_WEIGHT)))


def _with_lists(chosen: set[int], parts: list[str], items: set[int], *, max_chars: int) -> set[int]:
    """`chosen` with the list around each chosen list item or lead-in: "PayPal" alone does not
    answer "can I pay with PayPal?", "We accept:" followed by the list does (found walking the
    demo shop: the items, short lines without end punctuation, were taken for headings and
    left out, and "what payment methods do you accept" was answered with a sentence about
    refunds). A list longer than `max_chars` brings only its lead-in."""
    result = set(chosen)
    for index in sorted(chosen):
        members = _list_of(index, parts, items)
        if not members or set(members) <= result:
            continue
        if sum(len(parts[member]) + 1 for member in set(members) | result) <= max_chars:
            result.update(members)
        elif members[0] not in items:
            result.add(members[0])
    return result


def _figures(terms_: list[str], wanted: set[str]) -> set[str]:
    """The question's words that `terms_` gives a figure in: a word right after a number, or
    one word after it ("5 to 7 business days", "30 days"): the unit of the figure."""
    units = set()
    for position, term in enumerate(terms_):
        if term[:1].isdigit():
            units.update(unit for unit in terms_[position + 1 : position + 3] if unit in wanted)
    return units


def _siblings(question: str, parts: list[str], body: list[int], best: int) -> list[int]:
    """The sentences beside `parts[best]` (a run on either side, nearest first) that are other
    cases of its answer: each gives a figure in the same unit the question asks about and shares
    a word with it beyond the question's words and the figures' own words (the thing both are
    about: "shipping" in "Standard shipping takes 5 to 7 business days" beside "Express
    shipping ... arrives in 1 to 2 business days").

    Word overlap alone quoted only the express sentence for "how many days until my package
    arrives?" (found on a new-user walk, issue 19): it shares "package" and "arrives", the
    standard one says "takes" and shares only "days", below half the best's score. A figure
    in the same unit about something else ("Refunds reach your card within 5 business days"
    beside a 30-day return window) is no sibling, nor is a sentence without a figure."""
    language = analysis.language_detect(question)
    wanted = set(terms(question, language=language))
    best_terms = terms(parts[best], language=language)
    units = _figures(best_terms, wanted)
    if not units:
        return []

    def topic(terms_: list[str]) -> set[str]:
        # The words of a figure ("within 30 days", "takes 5 to 7 business days") say how much,
        # not of what: the word before the number, the number and its unit are left out.
        figure_words = set()
        for position, term in enumerate(terms_):
            if term[:1].isdigit():
                figure_words.update(terms_[max(position - 1, 0) : position + 3])
        return set(terms_) - wanted - figure_words

    best_topic = topic(best_terms)
    in_body = set(body)
    found = []
    for step in (-1, 1):
        position = best + step
        while position in in_body:  # a heading ends the run: the next section is another topic
            part_terms = terms(parts[position], language=language)
            if not (_figures(part_terms, wanted) & units and topic(part_terms) & best_topic):
                break
            found.append(position)
            position += step
    return sorted(found, key=lambda index: abs(index - best))
