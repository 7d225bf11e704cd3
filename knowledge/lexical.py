"""BM25 inside Postgres, as sparse vectors.

A chunk's `lexical` vector holds, for each (hashed) term, its BM25 term weight
    tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avgdl))
and a query's vector holds each query term's IDF from the organization's term statistics
    ln(1 + (N - df + 0.5) / (df + 0.5)).
Their inner product is the BM25 score, which pgvector ranks with `<#>`. IDF lives on the
query side so it follows the corpus as it grows; avgdl is fixed when a chunk is weighted
(the organization's average at that time), which is BM25 with a slightly stale
normaliser, and `lexical_reweight` refreshes it when the average drifts.
"""

from __future__ import annotations

import math
import re
import threading
import zlib
from collections import Counter
from functools import lru_cache

import snowballstemmer

from knowledge.models import LEXICAL_DIMENSIONS

K1 = 1.5
B = 0.75

# NLTK's English stop-word list (the one BM25 baselines such as bm25s use).
STOP_WORDS = frozenset(
    """
    i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them
    their theirs themselves what which who whom this that that'll these those am is are was
    were be been being have has had having do does did doing a an the and but if or because
    as until while of at by for with about against between into through during before after
    above below to from up down in out on off over under again further then once here there
    when where why how all any both each few more most other some such no nor not only own
    same so than too very s t can will just don don't should should've now d ll m o re ve y
    ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven
    haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn
    shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
    """.split()
)

_WORD = re.compile(r"\w+(?:'\w+)?", re.UNICODE)
# A Snowball stemmer keeps the word being stemmed in its own fields: one shared by a web
# process's threads raised IndexError (a 500) on concurrent chat turns. One per thread.
_stemmers = threading.local()


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        stemmer = _stemmers.english = snowballstemmer.stemmer("english")
    return stemmer.stemWord(word)


@lru_cache(maxsize=200_000)
def term_dimension(term: str) -> int:
    return zlib.crc32(term.encode("utf-8")) % LEXICAL_DIMENSIONS


def terms_tokenize(text: str) -> list[str]:
    """Lower-cased, stop words removed, Snowball-stemmed terms of `text`."""
    terms = []
    for match in _WORD.finditer(text.lower()):
        word = match.group().replace("'", "")
        if match.group() in STOP_WORDS or word in STOP_WORDS:
            continue
        if word.isdigit() and len(word) > 12:
            continue  # long numbers (ids, phone numbers) only add noise
        terms.append(_stem(word))
    return terms


def term_counts(text: str) -> Counter[int]:
    """Hashed term frequencies of `text` (term dimension -> count)."""
    return Counter(term_dimension(term) for term in terms_tokenize(text))


def document_weights(counts: Counter[int], *, average_length: float) -> dict[int, float]:
    length = sum(counts.values())
    if not length:
        return {}
    average_length = average_length or float(length)
    norm = K1 * (1 - B + B * length / average_length)
    return {dimension: tf * (K1 + 1) / (tf + norm) for dimension, tf in counts.items()}


def inverse_document_frequency(*, chunk_count: int, document_frequency: int) -> float:
    return math.log(1 + (chunk_count - document_frequency + 0.5) / (document_frequency + 0.5))
