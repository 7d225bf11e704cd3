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
    language = analysis.language_detect(question)
    wanted = list(dict.fromkeys(terms(question, language=language)))
    if not wanted:
        return 0.0
    body = set(terms(text, language=language))
    emphasised = set(terms(emphasis, language=language))
    total = matched = 0.0
    for term in wanted:
        weight = math.log(2 + len(term))
        total += weight
        if term in emphasised:
            matched += weight
        elif term in body:
            matched += 0.85 * weight
    return matched / total if total else 0.0


def sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE.split(text or "") if part and part.strip()]


def is_heading(part: str) -> bool:
    """A heading or label on its own line ("Returns and refunds"): short, no closing punctuation."""
    return len(part) <= 80 and not part.rstrip().endswith((".", "!", "?", ":", ";", ")", "…"))


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


def best_sentences(question: str, text: str, *, limit: int = 3, max_chars: int = 600) -> str:
    """The passage's sentences that answer `question`, in their original order.

    An extractive answer reads as the sentence or few of the source that answer, not a whole
    chunk: the best-matching sentence and, up to `limit` in all, the others that match at
    least half as well (ties go to the earlier one), the best one's siblings first
    (`_siblings`: the sentences beside it that give the same kind of figure about the same
    thing, "Standard shipping takes 5 to 7 business days" beside "Express shipping ... arrives
    in 1 to 2 business days"). Headings on their own line are left out (the answer cites its
    source, which names the page); a passage where nothing matches gives its first sentence.
    """
    parts = sentences(text)
    if len(parts) <= 1:
        return (text or "").strip()[:max_chars]
    language = analysis.language_detect(question)
    wanted = set(terms(question, language=language))
    body = [
        index
        for index, part in enumerate(parts)
        if not is_heading(part) and not _restates(part, wanted, language)
    ] or list(range(len(parts)))
    scored = sorted(
        ((coverage(question, parts[index]), index) for index in body),
        key=lambda item: (-item[0], item[1]),
    )
    best = scored[0][0]
    if best == 0:
        chosen = {body[0]}
    else:
        ranked = [scored[0][1], *_siblings(question, parts, body, scored[0][1])]
        ranked += [index for score, index in scored[1:] if score >= best / 2 and index not in ranked]
        chosen = set(ranked[:limit])
    answer = ""
    for index in sorted(chosen):
        candidate = f"{answer} {parts[index]}".strip()
        if len(candidate) > max_chars and answer:
            break
        answer = candidate
    if len(answer) > max_chars:
        answer = answer[:max_chars].rsplit(" ", 1)[0] + "…"
    return answer


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
