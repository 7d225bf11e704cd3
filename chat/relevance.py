"""How well a piece of text matches a question, in plain Python (no corpus statistics).

Retrieval ranks candidates; this module decides whether the best of them is relevant
at all, and scores request-supplied context (the widget chat API's policies and scraped data) that
never enters the knowledge base. The lexical part is a coverage score over stemmed
content words; the engine combines it with semantic similarity where available.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

_WORD = re.compile(r"[0-9a-zà-ÿ]+(?:['’][a-z]+)?", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9À-Ý\"'(])|\n+")

STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't
    down during each few for from further had hadn't has hasn't have haven't having he he'd he'll he's
    her here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it
    it's its itself let's me more most mustn't my myself no nor not of off on once only or other ought
    our ours ourselves out over own same shan't she she'd she'll she's should shouldn't so some such
    than that that's the their theirs them themselves then there there's these they they'd they'll
    they're they've this those through to too under until up very was wasn't we we'd we'll we're we've
    were weren't what what's when when's where where's which while who who's whom why why's with won't
    would wouldn't you you'd you'll you're you've your yours yourself yourselves
    please hi hello hey thanks thank tell know want need get got also just like could would will
    shall may might must much many way ok okay yes anything something someone anyone us
    """.split()
)

_SUFFIXES = (
    ("ational", "ate"),
    ("tional", "tion"),
    ("iveness", "ive"),
    ("fulness", "ful"),
    ("ousness", "ous"),
    ("ization", "ize"),
    ("ation", "ate"),
    ("ments", "ment"),
    ("ingly", ""),
    ("edly", ""),
    ("ies", "y"),
    ("ied", "y"),
    ("ing", ""),
    ("ly", ""),
    ("ed", ""),
    ("es", ""),
    ("s", ""),
)


@lru_cache(maxsize=20000)
def stem(word: str) -> str:
    """A small suffix-stripping stemmer: 'refunds'/'refunded'/'refunding' -> 'refund'."""
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) <= 3:
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix in {"es", "s"} and word.endswith(("ss", "us", "is")):
                return word
            stemmed = word[: -len(suffix)] + replacement
            if (
                suffix in {"ing", "ed"}
                and len(stemmed) > 3
                and stemmed[-1] == stemmed[-2]
                and stemmed[-1] not in "lsz"
            ):
                stemmed = stemmed[:-1]
            return stemmed
    return word


def terms(text: str) -> list[str]:
    """Stemmed content words, in order (stop words dropped)."""
    return [stem(word) for word in _WORD.findall(text or "") if word.lower() not in STOP_WORDS]


def coverage(question: str, text: str, *, emphasis: str = "") -> float:
    """Share of the question's content words found in `text` (0..1).

    Longer words weigh more (they carry more meaning than 'buy' or 'use'); words found
    in `emphasis` (a Q&A pair's own question, a policy's title) count fully, words found
    only in the body count 0.85.
    """
    wanted = list(dict.fromkeys(terms(question)))
    if not wanted:
        return 0.0
    body = set(terms(text))
    emphasised = set(terms(emphasis))
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


def best_sentences(question: str, text: str, *, limit: int = 3, max_chars: int = 600) -> str:
    """The passage's sentences that best answer `question`, in their original order.

    An extractive answer reads as a sentence or three from the source, not a whole chunk:
    the best-matching sentences (ties go to the earlier one), plus the sentence after the
    best one when that is short context ("It is open ...").
    """
    parts = sentences(text)
    if len(parts) <= 1:
        return (text or "").strip()[:max_chars]
    scored = sorted(
        ((coverage(question, part), index) for index, part in enumerate(parts)),
        key=lambda item: (-item[0], item[1]),
    )
    if scored[0][0] == 0:
        chosen = {0}
    else:
        chosen = {index for score, index in scored[:limit] if score > 0}
    answer = ""
    for index in sorted(chosen):
        candidate = f"{answer} {parts[index]}".strip()
        if len(candidate) > max_chars and answer:
            break
        answer = candidate
    if len(answer) > max_chars:
        answer = answer[:max_chars].rsplit(" ", 1)[0] + "…"
    return answer
