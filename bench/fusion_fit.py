"""Chooses an embedder's own hybrid fusion (`knowledge.retrieval.FUSION_BY_EMBEDDER`) on dev
questions only, by leave-one-knowledge-base-out cross-validation.

`FUSION` (MiniLM's) was chosen on SciFact, where the embedding is MiniLM's; another embedder's
cosines have another scale (multilingual-e5's sit between ~0.7 and ~0.9 whatever the text), so
the same arithmetic weighs its vector side differently. This script collects, for each dev
question, both retrievers' rankings exactly as `chunk_search` computes them in an organization
set to `--embedder` (`bench/fusion_cv.rankings_collect`, depth 50 as chat fuses), and scores
every candidate fusion by the product's own `rank_fuse`: right entry first (ties broken by the
reciprocal rank of the right entry within the top 10).

The dev questions (the held-out `test` split and `bench/data/multilingual.json`, the set the
multilingual figures are reported on, are never read):
- `bench/data/support_kbs.json`, dev split: the paraphrases of each Q&A pair and the help-page
  questions of its three knowledge bases (shop, saas, clinic; English);
- `bench/data/support_kbs_translated.json`: the shop's dev questions written in Spanish and
  German, against the same English shop knowledge (in the shop's fold).
Each against the knowledge in two shapes: as the set has it (Q&A pairs and two help pages,
where a Q&A pair's lexical vote is never below its vector one, see `rank_fuse`), and as help
pages only (each Q&A pair a one-page document, its question as the title and first line): a
help centre of pages is what most organizations index, and there the fusion alone decides.

Candidates: `bench/fusion_cv.candidates_make` (rank fusions and score fusions under each
normalisation) plus divide-by-best score fusions with the cosines taken above a floor
(`Fusion.vector_floor`). Folds: one per knowledge base (the shop's with its translated
questions), both shapes of a question in the same fold; in each fold the candidate best on the
other two is scored on it, so the held-out figure measures the choice as well. The entry to
use is the candidate best on all dev questions; the script prints it with the dev figures of
the lexical and vector retrievers, of `FUSION` and of the choice, per shape and language.

`--scifact DOCS` adds a check on English scientific text, reported and not used for the choice:
a SciFact subset (the documents of the 300 test queries' qrels and others drawn at random, seed
19, up to DOCS) ingested through the product in a throw-away organization on the embedder;
nDCG@10 of the retrievers, of `FUSION`, of the dev choice, and of 10-fold cross-validation over
the same candidates on those queries (what `FUSION` was chosen by, on MiniLM and the whole
corpus). A subset holds every relevant document and fewer distractors, so its figures are
higher than the whole corpus's; they compare fusions, not corpora.

Run: `.venv/bin/python bench/fusion_fit.py --embedder multilingual [--rankings FILE]
[--scifact DOCS]` (`--rankings`: the collected rankings, read if the file exists, else written).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.relevance_gate import DATA, _setup, questions  # noqa: E402

MEASURE = False  # a tool run by hand (bench/results.py)
TRANSLATED = Path(__file__).resolve().parent / "data" / "support_kbs_translated.json"
SHAPES = ("qa", "pages")
DEPTH = 50  # what chat and the API fuse (knowledge.retrieval.CANDIDATES)
FLOORS = (0.5, 0.6, 0.65, 0.7, 0.75, 0.8)


def dev_questions() -> dict[str, list[dict]]:
    """{knowledge base id: [{text, expect, language}]}: every answerable dev question."""
    data = json.loads(DATA.read_text())
    translated = json.loads(TRANSLATED.read_text())
    assert translated["split"] == "dev"
    found: dict[str, list[dict]] = {}
    for knowledge_base in data["knowledge_bases"]:
        found[knowledge_base["id"]] = [
            {"text": row["text"], "expect": row["expect"], "language": "en"}
            for row in questions(knowledge_base)
            if row["split"] == "dev" and row["kind"] != "unanswerable"
        ]
    for item in translated["questions"]:
        if item["expect"] is None:
            continue
        for language in ("es", "de"):
            found[translated["knowledge_base"]].append(
                {"text": item[language], "expect": item["expect"], "language": language}
            )
    return found


def _pages_build(*, organization, knowledge_base: dict) -> dict[str, str]:
    """The knowledge base as help pages only: each Q&A pair a one-page document."""
    from testkit.answer_quality import text_source_add

    pages = [
        {"id": pair["id"], "title": pair["question"], "content": f"{pair['question']}\n{pair['answer']}"}
        for pair in knowledge_base["qa"]
    ] + knowledge_base["documents"]
    return {
        page["id"]: text_source_add(
            organization=organization, key=page["id"], title=page["title"], text=page["content"]
        )
        for page in pages
    }


def collect(*, choice: str) -> dict:
    """{"queries": {query id: {kb, shape, language, relevant source id}}, "rankings": {query id:
    fusion_cv.rankings_collect's entry}, "document_of": {chunk id: source id}}."""
    from bench.fusion_cv import rankings_collect
    from knowledge.models import Chunk
    from organizations.services import organization_create
    from testkit.answer_quality import knowledge_build

    data = {kb["id"]: kb for kb in json.loads(DATA.read_text())["knowledge_bases"]}
    collected: dict = {"embedder": choice, "queries": {}, "rankings": {}, "document_of": {}}
    for kb_id, rows in dev_questions().items():
        for shape in SHAPES:
            stamp = uuid.uuid4().hex[:8]
            organization = organization_create(
                name=f"bench fusion fit {stamp}", slug=f"bench-fusion-fit-{stamp}",
                owner_email=f"fusion-fit-{stamp}@example.com", owner_password=uuid.uuid4().hex,
            )  # fmt: skip
            try:
                organization.knowledge_embedder = choice
                organization.save(update_fields=["knowledge_embedder"])
                if shape == "qa":
                    ids = knowledge_build(organization=organization, data=data[kb_id])
                else:
                    ids = _pages_build(organization=organization, knowledge_base=data[kb_id])
                collected["document_of"].update(
                    (str(chunk_id), str(source_id))
                    for chunk_id, source_id in Chunk.objects.for_organization(organization).values_list(
                        "id", "source_id"
                    )
                )
                texts = {}
                for number, row in enumerate(rows):
                    query_id = f"{kb_id}:{shape}:{row['language']}:{number}"
                    texts[query_id] = row["text"]
                    collected["queries"][query_id] = {
                        "kb": kb_id, "shape": shape, "language": row["language"], "relevant": ids[row["expect"]],
                    }  # fmt: skip
                collected["rankings"].update(
                    rankings_collect(organization=organization, queries=texts, depth=DEPTH)
                )
                print(f"  {kb_id} / {shape}: {len(texts)} questions", flush=True)
            finally:
                organization.delete()
    return collected


def candidates_make() -> dict:
    from bench import fusion_cv
    from knowledge.retrieval import Fusion

    candidates = fusion_cv.candidates_make()
    for floor in FLOORS:
        for share in range(20, 85, 5):
            fusion = Fusion(method="score", normalise="max", lexical_weight=share / 100, vector_floor=floor)
            candidates[fusion.label()] = fusion
    return candidates


def _reciprocal_rank(ranked: list[str], relevant: str) -> float:
    return next((1.0 / rank for rank, doc in enumerate(ranked[:10], start=1) if doc == relevant), 0.0)


def scores_make(*, collected: dict, candidates: dict) -> dict[str, dict[str, tuple[float, float]]]:
    """{label: {query id: (right first, reciprocal rank within the top 10)}}; the single
    retrievers under "lexical" and "vector"."""
    from bench.fusion_cv import documents_rank, ranked_documents

    document_of = collected["document_of"]
    scores: dict[str, dict[str, tuple[float, float]]] = {}

    def score(ranked: list[str], relevant: str) -> tuple[float, float]:
        return float(bool(ranked) and ranked[0] == relevant), _reciprocal_rank(ranked, relevant)

    for mode in ("lexical", "vector"):
        scores[mode] = {
            qid: score(documents_rank(ranking[mode], document_of), collected["queries"][qid]["relevant"])
            for qid, ranking in collected["rankings"].items()
        }
    for label, fusion in candidates.items():
        scores[label] = {
            qid: score(
                ranked_documents(ranking=ranking, fusion=fusion, document_of=document_of, depth=DEPTH),
                collected["queries"][qid]["relevant"],
            )
            for qid, ranking in collected["rankings"].items()
        }
    return scores


def _means(values: dict[str, tuple[float, float]], ids: list[str]) -> tuple[float, float]:
    return (
        statistics.mean(values[qid][0] for qid in ids),
        statistics.mean(values[qid][1] for qid in ids),
    )


def best(scores: dict, ids: list[str], labels: list[str]) -> str:
    """The candidate with the most right entries first on `ids`, then the best reciprocal rank,
    then the label that sorts first (deterministic)."""
    return min(labels, key=lambda label: (*(-value for value in _means(scores[label], ids)), label))


def cross_validate(*, collected: dict, scores: dict, labels: list[str]) -> dict:
    queries = collected["queries"]
    knowledge_bases = sorted({query["kb"] for query in queries.values()})
    rows, pooled = [], {}
    for kb in knowledge_bases:
        held = [qid for qid in queries if queries[qid]["kb"] == kb]
        training = [qid for qid in queries if queries[qid]["kb"] != kb]
        chosen = best(scores, training, labels)
        pooled.update((qid, scores[chosen][qid]) for qid in held)
        rows.append(
            {
                "held_out": kb,
                "questions": len(held),
                "chosen": chosen,
                "training_right_first": round(_means(scores[chosen], training)[0], 3),
                "held_out_right_first": round(_means(scores[chosen], held)[0], 3),
            }
        )
    return {"folds": rows, "held_out_right_first": round(_means(pooled, list(queries))[0], 3)}


def breakdown(*, collected: dict, values: dict[str, tuple[float, float]]) -> dict[str, str]:
    """Right first per shape and question language, as counts."""
    groups: dict[str, list[str]] = {}
    for qid, query in collected["queries"].items():
        groups.setdefault(f"{query['shape']} {query['language']}", []).append(qid)
    return {
        name: f"{sum(values[qid][0] for qid in ids):.0f}/{len(ids)}" for name, ids in sorted(groups.items())
    }


def scifact_check(*, choice: str, documents: int, labels: dict[str, str], candidates: dict) -> dict:
    """`--scifact`: nDCG@10 on a SciFact subset (see the module's docstring)."""
    import random

    from bench import fusion_cv, retrieval_scifact
    from knowledge.models import Chunk
    from organizations.services import organization_create

    corpus, queries, qrels = retrieval_scifact._load()
    relevant = {doc for grades in qrels.values() for doc in grades}
    others = sorted(doc["_id"] for doc in corpus if doc["_id"] not in relevant)
    random.Random(fusion_cv.SEED).shuffle(others)
    chosen = relevant | set(others[: max(0, documents - len(relevant))])
    stamp = uuid.uuid4().hex[:8]
    organization = organization_create(
        name=f"bench fusion scifact {stamp}", slug=f"bench-fusion-scifact-{stamp}",
        owner_email=f"fusion-scifact-{stamp}@example.com", owner_password=uuid.uuid4().hex,
    )  # fmt: skip
    try:
        organization.knowledge_embedder = choice
        organization.save(update_fields=["knowledge_embedder"])
        ingested = retrieval_scifact._ingest(organization, [doc for doc in corpus if doc["_id"] in chosen])
        depth = 100  # as bench/retrieval_scifact.py evaluates (chunk_search with k=100)
        rankings = fusion_cv.rankings_collect(organization=organization, queries=queries, depth=depth)
        document_of = {
            str(chunk_id): file_name.removesuffix(".txt")
            for chunk_id, file_name in Chunk.objects.for_organization(organization).values_list(
                "id", "source__file_name"
            )
        }
    finally:
        organization.delete()
    scores = fusion_cv.per_query_scores(
        candidates=candidates, rankings=rankings, qrels=qrels, document_of=document_of, depth=depth
    )
    for mode in ("lexical", "vector"):
        scores[mode] = {
            qid: fusion_cv.ndcg_at_10(
                fusion_cv.documents_rank(ranking[mode][:depth], document_of), qrels[qid]
            )
            for qid, ranking in rankings.items()
        }
    validated = fusion_cv.cross_validate(
        scores={label: scores[label] for label in candidates}, folds=fusion_cv.folds_make(list(rankings))
    )
    return {
        "documents": len(chosen),
        "chunks": ingested["chunks"],
        "queries": len(rankings),
        "ndcg_at_10": {
            name: {"label": label, "ndcg_at_10": round(statistics.mean(scores[label].values()), 4)}
            for name, label in {"lexical": "lexical", "vector": "vector", **labels}.items()
        },
        "cross_validated": {key: validated[key] for key in ("held_out_mean", "chosen_on_all_queries")}
        | {"fold_choices": [row["chosen"] for row in validated["folds"]]},
    }


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--embedder", default="multilingual", help="the organizations' knowledge embedder")
    parser.add_argument(
        "--scifact", type=int, help="also the SciFact check, on a subset of this many documents"
    )
    parser.add_argument(
        "--rankings", help="a JSON file of collected rankings: read if it exists, else written"
    )
    arguments = parser.parse_args()
    _setup()
    from knowledge.embeddings import embedder_get
    from knowledge.retrieval import FUSION, fusion_for

    path = Path(arguments.rankings) if arguments.rankings else None
    if path and path.exists():
        collected = json.loads(path.read_text())
        assert collected["embedder"] == arguments.embedder, "rankings collected for another embedder"
    else:
        collected = collect(choice=arguments.embedder)
        if path:
            path.write_text(json.dumps(collected))
    candidates = candidates_make()
    candidates.setdefault(FUSION.label(), FUSION)
    scores = scores_make(collected=collected, candidates=candidates)
    labels = sorted(candidates)
    result = cross_validate(collected=collected, scores=scores, labels=labels)
    everything = list(collected["queries"])
    chosen = best(scores, everything, labels)
    in_force = fusion_for(embedder_get(choice=arguments.embedder).name).label()
    result["chosen_on_all_dev"] = chosen
    result["dev"] = {}
    for name, label in (
        ("lexical", "lexical"),
        ("vector", "vector"),
        ("FUSION (MiniLM's)", FUSION.label()),
        ("in force", in_force),
        ("chosen", chosen),
    ):
        right_first, reciprocal = _means(scores[label], everything)
        result["dev"][name] = {
            "label": label,
            "right_first": round(right_first, 3),
            "mrr_at_10": round(reciprocal, 3),
            **breakdown(collected=collected, values=scores[label]),
        }
    ranked = sorted(labels, key=lambda label: tuple(-value for value in _means(scores[label], everything)))
    result["top_on_all_dev"] = [
        {"label": label, "right_first": round(_means(scores[label], everything)[0], 3)}
        for label in ranked[:15]
    ]
    if arguments.scifact:
        result["scifact"] = scifact_check(
            choice=arguments.embedder,
            documents=arguments.scifact,
            labels={"FUSION (MiniLM's)": FUSION.label(), "in force": in_force, "chosen": chosen},
            candidates=candidates,
        )
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
