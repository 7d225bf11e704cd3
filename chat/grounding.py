"""What an answer may be grounded on, and how relevant each piece is.

Candidates come from the knowledge base (`knowledge.retrieval.chunk_search`, hybrid
retrieval scoped to the organization and assistant) and from the request itself (the
widget chat API's company description, policies and scraped data). Retrieval *ranks*; this module
decides whether a candidate is relevant at all, combining lexical coverage of the
question (chat.relevance) with semantic similarity from the same embedder retrieval
uses. The question's vector is the one retrieval computed (knowledge's query cache), and a
knowledge passage brings the vector stored with its chunk, so a turn embeds the question
once; Q&A questions and the request's own rules are embedded through a per-process cache.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import replace

from django.conf import settings

from chat import relevance
from chat.llm.types import Evidence
from chat.prompts import CompanyRules
from core import timing

logger = logging.getLogger(__name__)

# Cosine similarity (MiniLM, normalised) mapped to 0..1 relevance: FLOOR maps to 0,
# CEILING to 1, so the default threshold (0.5) sits at their midpoint (0.46 for a Q&A
# question, 0.50 for a passage). A Q&A pair is compared on its question, which
# paraphrases match far better than they match a paragraph. Tuned on
# bench/data/answer_quality.json: unrelated questions about the same shop ("Can I pay
# with Bitcoin?") stay at or below 0.44 against their nearest FAQ question.
COSINE_FLOOR = {"qa": 0.30, "default": 0.30}
COSINE_CEILING = {"qa": 0.62, "default": 0.70}
# Word overlap alone proves relevance only when most of the question's words match;
# "Do you have a store in Tokyo?" shares "store" with the Berlin store page and nothing else.
LEXICAL_ALONE = 0.75
LEXICAL_PARTIAL_WEIGHT = 0.6
# In the LLM's prompt, loosely related passages are kept (the model is a better judge
# than a threshold); the offline answerer uses only relevant ones.
PROMPT_RELEVANCE_FACTOR = 0.5
MAX_PROMPT_EVIDENCE = 12
# What the request itself supplies (the widget chat API's context) always reaches the model.
REQUEST_KINDS = frozenset({"policy", "company", "scraped"})

_vector_cache: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
_vector_lock = threading.Lock()


def _embedder():
    try:
        from knowledge.embeddings import embedder_get

        return embedder_get()
    except Exception:  # no embedder available: lexical relevance only
        logger.warning("no embedder available for relevance scoring", exc_info=True)
        return None


def _vectors(embedder, texts: list[str]) -> list[list[float]] | None:
    """Embeds texts with a per-process cache keyed by the embedder and the text."""
    if embedder is None:
        return None
    keys = [(embedder.name, hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()) for text in texts]
    found: dict[int, list[float]] = {}
    with _vector_lock:
        for index, key in enumerate(keys):
            if key in _vector_cache:
                _vector_cache.move_to_end(key)
                found[index] = _vector_cache[key]
    missing = [index for index in range(len(texts)) if index not in found]
    if missing:
        try:
            with timing.phase("embed"):
                fresh = embedder.embed([texts[index] for index in missing])
        except Exception:
            logger.warning("embedding for relevance failed; using lexical relevance only")
            return None
        with _vector_lock:
            for index, vector in zip(missing, fresh, strict=True):
                found[index] = vector
                _vector_cache[keys[index]] = vector
            while len(_vector_cache) > 20000:
                _vector_cache.popitem(last=False)
    return [found[index] for index in range(len(texts))]


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm_a = sum(x * x for x in a) ** 0.5 or 1.0
    norm_b = sum(y * y for y in b) ** 0.5 or 1.0
    return dot / (norm_a * norm_b)


def _cosines(vectors: list) -> list[float]:
    """Cosine of the question's vector (vectors[0]) with each candidate's (vectors[1:]).

    One matrix product: in pure Python, 384-dimension dot products and norms for a dozen
    candidates were a tenth of a chat turn's CPU (issue 14's profile)."""
    import numpy

    try:
        matrix = numpy.asarray(vectors, dtype=numpy.float64)
    except ValueError:  # vectors of different lengths: compare them pairwise, as before
        return [_cosine(vectors[0], vector) for vector in vectors[1:]]
    norms = numpy.linalg.norm(matrix, axis=1)
    norms[norms == 0] = 1.0
    return ((matrix[1:] @ matrix[0]) / (norms[1:] * norms[0])).tolist()


def _semantic(kind: str, cosine: float) -> float:
    floor = COSINE_FLOOR.get(kind, COSINE_FLOOR["default"])
    ceiling = COSINE_CEILING.get(kind, COSINE_CEILING["default"])
    return max(0.0, min(1.0, (cosine - floor) / (ceiling - floor)))


def _key_text(item: Evidence) -> str:
    if item.kind == "qa" and item.question:
        return item.question
    if item.kind == "policy":
        return f"{item.title}: {item.content}"
    return item.content[:1500]


def _lexical(question: str, item: Evidence) -> float:
    if item.kind == "qa":
        return relevance.coverage(question, f"{item.question} {item.answer}", emphasis=item.question)
    return relevance.coverage(question, f"{item.title} {item.content}", emphasis=item.title)


def _question_vector(embedder, question: str) -> list[float] | None:
    """The question's vector from the query cache retrieval just filled (not a second embedding)."""
    from knowledge.embeddings import query_embed

    try:
        with timing.phase("embed"):
            return query_embed(embedder=embedder, text=question)
    except Exception:
        logger.warning("embedding the question for relevance failed; using lexical relevance only")
        return None


def _candidate_vectors(embedder, question: str, candidates: list[Evidence]) -> list[list[float]] | None:
    """[question, candidate…] vectors. A knowledge passage brings its stored vector; Q&A pairs
    (compared on their question) and the request's own rules are embedded, through the cache."""
    if embedder is None:
        return None
    question_vector = _question_vector(embedder, question)
    if question_vector is None:
        return None
    to_embed = [index for index, item in enumerate(candidates) if not _stored_vector_usable(item)]
    embedded = _vectors(embedder, [_key_text(candidates[index]) for index in to_embed]) if to_embed else []
    if embedded is None:
        return None
    fresh = dict(zip(to_embed, embedded, strict=True))
    return [question_vector] + [
        fresh[index] if index in fresh else list(item.vector) for index, item in enumerate(candidates)
    ]


def _stored_vector_usable(item: Evidence) -> bool:
    # A Q&A pair is stored as question + answer but compared on its question alone.
    return item.vector is not None and item.kind not in ("qa", *REQUEST_KINDS)


def candidates_score(*, question: str, candidates: list[Evidence]) -> list[Evidence]:
    """Sets each candidate's relevance (0..1); returns them best first, renumbered 1..n."""
    if not candidates:
        return []
    vectors = _candidate_vectors(_embedder(), question, candidates)
    cosines = _cosines(vectors) if vectors else None
    scored = []
    for index, item in enumerate(candidates):
        lexical = _lexical(question, item)
        if lexical < LEXICAL_ALONE:
            lexical *= LEXICAL_PARTIAL_WEIGHT
        semantic = _semantic(item.kind, cosines[index]) if cosines else 0.0
        # Either signal alone can establish relevance; agreement of both raises it.
        score = max(lexical, semantic) + 0.3 * min(lexical, semantic)
        scored.append((min(1.0, score), -index, item))
    scored.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    result = []
    for number, (score, _rank, item) in enumerate(scored, start=1):
        source = dict(item.source, relevance=round(score, 4))
        result.append(replace(item, number=number, relevance=round(score, 4), source=source))
    return result


def _passage_evidence(passage) -> Evidence:
    return Evidence(
        number=0,
        kind=passage.source_type,
        title=passage.title or "",
        content=passage.content or "",
        relevance=0.0,
        question=passage.question or "",
        answer=passage.answer or "",
        source=passage.as_source(),
        language=passage.language,
        vector=passage.embedding,
    )


def _request_evidence(rules: CompanyRules) -> list[Evidence]:
    items = []
    for title, content in rules.policies:
        items.append(
            Evidence(
                number=0,
                kind="policy",
                title=title,
                content=content,
                relevance=0.0,
                source={
                    "type": "policy",
                    "title": title,
                    "url": "",
                    "file": "",
                    "page": None,
                    "snippet": content[:300],
                },
            )
        )
    if rules.company_description:
        title = f"About {rules.company_name}" if rules.company_name else "About the company"
        items.append(
            Evidence(
                number=0,
                kind="company",
                title=title,
                content=rules.company_description,
                relevance=0.0,
                source={
                    "type": "company",
                    "title": title,
                    "url": "",
                    "file": "",
                    "page": None,
                    "snippet": rules.company_description[:300],
                },
            )
        )
    if rules.scraped_data:
        items.append(
            Evidence(
                number=0,
                kind="scraped",
                title="Website content",
                content=rules.scraped_data,
                relevance=0.0,
                source={
                    "type": "scraped",
                    "title": "Website content",
                    "url": "",
                    "file": "",
                    "page": None,
                    "snippet": rules.scraped_data[:300],
                },
            )
        )
    return items


def knowledge_search(*, organization, assistant, query: str) -> list[Evidence]:
    from knowledge.retrieval import chunk_search

    passages = chunk_search(
        organization=organization, assistant=assistant, query=query, k=settings.CHAT_RETRIEVAL_K
    )
    return [_passage_evidence(passage) for passage in passages]


def evidence_gather(
    *, organization, assistant, question: str, rules: CompanyRules, previous_question: str = ""
) -> tuple[tuple[Evidence, ...], tuple[int, ...]]:
    """(evidence for the prompt, numbers of the relevant items, best first)."""
    threshold = settings.CHAT_RELEVANCE_THRESHOLD
    request_items = _request_evidence(rules)
    candidates = knowledge_search(organization=organization, assistant=assistant, query=question)
    scored = candidates_score(question=question, candidates=request_items + candidates)
    if previous_question and not any(item.relevance >= threshold for item in scored):
        # A follow-up ("and on weekends?") often only makes sense with the previous turn.
        combined = f"{previous_question} {question}"
        extra = knowledge_search(organization=organization, assistant=assistant, query=combined)
        rescored = candidates_score(question=combined, candidates=request_items + extra)
        if any(item.relevance >= threshold for item in rescored):
            scored = rescored
    evidence = [
        item
        for item in scored
        if item.kind in REQUEST_KINDS or item.relevance >= threshold * PROMPT_RELEVANCE_FACTOR
    ][:MAX_PROMPT_EVIDENCE]
    evidence = [replace(item, number=number) for number, item in enumerate(evidence, start=1)]
    relevant = tuple(item.number for item in evidence if item.relevance >= threshold)
    return tuple(evidence), relevant
