"""Choosing the hybrid fusion without choosing it on the queries it is scored on.

`rankings_collect` runs each query through the product's own retrievers
(`knowledge.retrieval`: `query_prepare`, `lexical_ranking`, `vector_candidates`, the same
calls `chunk_search` makes) and keeps both best-first lists with their scores, deeper than
the product fuses, so that every fusion candidate is scored offline on identical inputs by
the product's own `rank_fuse`. `cross_validate` splits the queries into folds (fixed seed),
chooses the candidate with the best mean nDCG@10 on the other folds, scores it on the
held-out fold, and reports the held-out mean and spread; the family of the fusion (rank or
score) and its parameters are chosen inside each fold, so the held-out figure measures the
whole procedure, choice included.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Iterable

DEPTH = 200  # each retriever's list as collected; candidates fuse their own prefix of it
FOLDS = 10
SEED = 19  # issue 19; fixed so the folds are the same on every run


def rankings_collect(*, organization, queries: dict[str, str], depth: int = DEPTH) -> dict[str, dict]:
    """{query id: {"lexical": [(chunk id, score)], "vector": [(chunk id, score)]}}, best first,
    from the product's retrievers exactly as `chunk_search` calls them (the organization's
    embedder), `depth` deep."""
    from django.conf import settings

    from knowledge import retrieval
    from knowledge.embeddings import embedder_get, query_embed

    embedder = embedder_get(organization=organization)
    collected = {}
    for query_id, text in queries.items():
        prepared = retrieval.query_prepare(organization=organization, query=text)
        analysed, chunk_count, frequencies = prepared.analysed, prepared.chunk_count, prepared.frequencies
        lexical_query = retrieval.lexical_query_build(
            counts=analysed.counts, chunk_count=chunk_count, frequencies=frequencies
        )
        lexical = retrieval.lexical_ranking(
            organization=organization, assistant=None, lexical_query=lexical_query, limit=depth
        )
        vector, questions = retrieval.vector_candidates(
            organization=organization,
            assistant=None,
            vector=query_embed(embedder=embedder, text=analysed.text),
            model=embedder.name,
            limit=depth,
            exact=chunk_count <= settings.KNOWLEDGE_VECTOR_EXACT_MAX_CHUNKS,
        )
        collected[query_id] = {
            "lexical": lexical,
            "vector": vector,
            "vector_led": sorted(questions),  # Q&A chunks: see rank_fuse
        }
    return collected


def ndcg_at_10(ranked: list[str], relevant: dict[str, int]) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(grade / math.log2(rank + 2) for rank, grade in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def documents_rank(fused: Iterable[tuple[str, float]], document_of: dict[str, str]) -> list[str]:
    """Documents in the order of their best chunk."""
    return list(dict.fromkeys(document_of[chunk_id] for chunk_id, _score in fused))


def folds_make(query_ids: list[str], *, folds: int = FOLDS, seed: int = SEED) -> list[list[str]]:
    shuffled = sorted(query_ids)
    random.Random(seed).shuffle(shuffled)
    return [shuffled[number::folds] for number in range(folds)]


def candidates_make() -> dict[str, object]:
    """The fusions the cross-validation chooses among, by label: weighted reciprocal rank over
    a grid of k and lexical weights, and convex score combinations under each normalisation
    over a grid of lexical shares. Today's default (rank, k=60, weight 1) is one of them."""
    from knowledge.retrieval import Fusion

    fusions = [
        Fusion(method="rank", k=k, lexical_weight=weight)
        for k in (10, 20, 30, 60, 100)
        for weight in (0.5, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0)
    ]
    fusions += [
        Fusion(method="score", normalise=normalise, lexical_weight=share / 100)
        for normalise in ("minmax", "zscore", "max")
        for share in range(20, 85, 5)
    ]
    return {fusion.label(): fusion for fusion in fusions}


def ranked_documents(*, ranking: dict, fusion, document_of: dict[str, str], depth: int) -> list[str]:
    """The documents of one query in the order the product's `rank_fuse` gives them, from both
    lists cut at `depth` (what `chunk_search` fuses for k = depth)."""
    from knowledge.retrieval import rank_fuse

    fused = rank_fuse(
        ranking["lexical"][:depth],
        ranking["vector"][:depth],
        fusion=fusion,
        vector_led=frozenset(ranking["vector_led"]),
    )
    return documents_rank(fused, document_of)


def per_query_scores(
    *,
    candidates: dict[str, object],
    rankings: dict[str, dict],
    qrels: dict,
    document_of: dict[str, str],
    depth: int,
    metric: Callable[[list[str], dict[str, int]], float] = None,
) -> dict[str, dict[str, float]]:
    """{candidate label: {query id: metric (default nDCG@10)}}: each candidate scored once per
    query, so the folds only average."""
    metric = metric or ndcg_at_10
    return {
        label: {
            qid: metric(
                ranked_documents(ranking=rankings[qid], fusion=fusion, document_of=document_of, depth=depth),
                qrels[qid],
            )
            for qid in rankings
        }
        for label, fusion in candidates.items()
    }


def right_first(ranked: list[str], relevant: dict[str, int]) -> float:
    return float(bool(ranked) and relevant.get(ranked[0], 0) > 0)


def cross_validate(*, scores: dict[str, dict[str, float]], folds: list[list[str]]) -> dict:
    """For each fold: the candidate with the best mean on the other folds (ties: the name
    that sorts first, so the choice is deterministic), scored on the held-out fold."""
    rows = []
    for number, held_out in enumerate(folds):
        held = set(held_out)
        training = [qid for fold in folds for qid in fold if qid not in held]
        chosen = min(scores, key=lambda name: (-_mean(scores[name], training), name))
        rows.append(
            {
                "fold": number + 1,
                "queries": len(held_out),
                "chosen": chosen,
                "training_ndcg_at_10": round(_mean(scores[chosen], training), 4),
                "held_out_ndcg_at_10": round(_mean(scores[chosen], held_out), 4),
            }
        )
    held_scores = [row["held_out_ndcg_at_10"] for row in rows]
    pooled = {qid: scores[row["chosen"]][qid] for row, fold in zip(rows, folds, strict=True) for qid in fold}
    everything = [qid for fold in folds for qid in fold]
    consensus = min(scores, key=lambda name: (-_mean(scores[name], everything), name))
    return {
        "folds": rows,
        "held_out_mean": round(statistics.mean(pooled.values()), 4),
        "fold_mean": round(statistics.mean(held_scores), 4),
        "fold_stdev": round(statistics.stdev(held_scores), 4) if len(held_scores) > 1 else 0.0,
        "fold_min": min(held_scores),
        "fold_max": max(held_scores),
        "chosen_on_all_queries": consensus,
        "chosen_on_all_queries_ndcg_at_10": round(_mean(scores[consensus], everything), 4),
    }


def _mean(values: dict[str, float], ids: list[str]) -> float:
    return sum(values[qid] for qid in ids) / len(ids)


def faq_rankings_collect(*, split: str = "dev", depth: int = 50) -> tuple[dict, dict, dict]:
    """The paraphrase questions of `bench/data/support_kbs.json`'s `split`, each knowledge base
    built in a throw-away organization as `bench/faq_matching.py` does: (rankings, qrels,
    document_of) with Q&A sources as the documents. Depth 50: what chat's searches fuse."""
    import json

    from bench.faq_matching import SUPPORT_KBS, _organization
    from knowledge.models import Chunk
    from testkit.answer_quality import knowledge_build

    data = json.loads(SUPPORT_KBS.read_text())
    rankings, qrels, document_of = {}, {}, {}
    for number, knowledge_base in enumerate(data["knowledge_bases"]):
        organization = _organization()
        try:
            ids = knowledge_build(organization=organization, data=knowledge_base)
            document_of.update(
                (str(chunk_id), str(source_id))
                for chunk_id, source_id in Chunk.objects.for_organization(organization).values_list(
                    "id", "source_id"
                )
            )
            questions = {}
            for pair in knowledge_base["qa"]:
                for index, paraphrase in enumerate(pair["paraphrases"]):
                    if paraphrase["split"] == split:
                        query_id = f"{number}-{pair['id']}-{index}"
                        questions[query_id] = paraphrase["text"]
                        qrels[query_id] = {ids[pair["id"]]: 1}
            rankings.update(rankings_collect(organization=organization, queries=questions, depth=depth))
        finally:
            organization.delete()
    return rankings, qrels, document_of


def faq_constraint(*, candidates: dict[str, object]) -> dict:
    """Which candidates keep paraphrased FAQ questions (support_kbs, dev split: the held-out
    test split is not looked at) matched at least as often as the previous default fusion,
    plain reciprocal rank (k=60, equal weights), and the figures behind it."""
    from knowledge.retrieval import Fusion

    rankings, qrels, document_of = faq_rankings_collect(split="dev")
    reference = Fusion(method="rank", k=60, lexical_weight=1.0)
    pool = {**candidates, reference.label(): reference}
    scores = per_query_scores(
        candidates=pool, rankings=rankings, qrels=qrels, document_of=document_of, depth=50, metric=right_first
    )
    means = {label: statistics.mean(values.values()) for label, values in scores.items()}
    single = {
        mode: statistics.mean(
            right_first(documents_rank(ranking[mode], document_of), qrels[qid])
            for qid, ranking in rankings.items()
        )
        for mode in ("lexical", "vector")
    }
    floor = means[reference.label()]
    return {
        "admissible": [label for label in candidates if means[label] >= floor - 1e-9],
        "right_first": {label: round(value, 3) for label, value in means.items()},
        "summary": {
            "questions": len(rankings),
            "lexical": round(single["lexical"], 3),
            "vector": round(single["vector"], 3),
            "previous_default": round(floor, 3),
        },
    }
