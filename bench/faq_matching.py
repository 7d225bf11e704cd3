"""FAQ matching at the retrieval level: how often `chunk_search` puts the right Q&A pair
first, per retrieval mode, on two sets: the visitor-worded (paraphrase) and FAQ-worded
(direct) questions of the in-repo answer-quality set (`bench/data/answer_quality.json`, 20
Q&A pairs), and the paraphrase set of `bench/data/support_kbs.json` (224 visitor-worded
paraphrases of 56 Q&A pairs in three knowledge bases, each with its help pages, split dev /
held-out test), with the same knowledge bases' help-page questions (right help page first: Q&A
matching must not cost documents). Q&A pairs are created with `qa_create` in throw-away
organizations. Parameters of Q&A matching (`knowledge.retrieval.QUESTION_WEIGHT`, the fusion's
per-kind rule, the correction of misspelt words, `knowledge.retrieval.spelling_correct`) were
chosen on support_kbs' dev split; its test split and the in-repo set are held
out. For the dev split only, the questions vector or hybrid search misses are listed with the
right source's rank in each mode, with how often lexical and vector search put different
sources first and which of them was right (`bench/faq_rules_cv.py` compares other Q&A
matching rules on the same split)."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "answer_quality.json"
SUPPORT_KBS = Path(__file__).resolve().parent / "data" / "support_kbs.json"
MODES = ("lexical", "vector", "hybrid")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _organization():
    from organizations.services import organization_create

    stamp = uuid.uuid4().hex[:8]
    return organization_create(
        name=f"bench faq {stamp}", slug=f"bench-faq-{stamp}", owner_email=f"faq-{stamp}@example.com",
        owner_password=uuid.uuid4().hex,
    )  # fmt: skip


def _ranks(*, organization, questions: list[dict], ids: dict[str, str]) -> dict[str, list[tuple]]:
    """{mode: [(the right source's rank within the top 10 or None, the source ranked first or
    None) per question]} for questions [{question, expect}]."""
    from knowledge import retrieval

    result = {}
    for mode in MODES:
        result[mode] = []
        for question in questions:
            passages = retrieval.chunk_search(
                organization=organization, query=question["question"], k=10, mode=mode
            )
            ranked = list(dict.fromkeys(str(passage.source_id) for passage in passages))
            expected = ids[question["expect"]]
            rank = ranked.index(expected) + 1 if expected in ranked else None
            result[mode].append((rank, ranked[0] if ranked else None))
    return result


def _hits(ranks: dict[str, list[tuple]]) -> dict[str, tuple[int, float]]:
    """{mode: (questions with the right source first, summed reciprocal rank within the top 10)}."""
    return {
        mode: (sum(rank == 1 for rank, _first in rows), sum(1 / rank for rank, _first in rows if rank))
        for mode, rows in ranks.items()
    }


def _disagreements(questions: list[dict], ranks: dict[str, list[tuple]]) -> dict:
    """Questions whose first source differs between lexical and vector retrieval, and which of
    the two (if either) was right: what fusion has to decide."""
    counts = {"questions": 0, "lexical_right": 0, "vector_right": 0, "neither": 0}
    for index, _question in enumerate(questions):
        (lexical_rank, lexical_first), (vector_rank, vector_first) = (
            ranks["lexical"][index],
            ranks["vector"][index],
        )
        if lexical_first == vector_first:
            continue
        counts["questions"] += 1
        key = "lexical_right" if lexical_rank == 1 else "vector_right" if vector_rank == 1 else "neither"
        counts[key] += 1
    return counts


def _rates(hits: tuple[int, float], count: int) -> dict:
    first, reciprocal = hits
    return {"right_first": round(first / count, 3), "mrr_at_10": round(reciprocal / count, 3)}


def _measure(*, organization, questions: list[dict], ids: dict[str, str]) -> dict:
    """{mode: {right_first, mrr_at_10}} for questions [{question, expect}]."""
    hits = _hits(_ranks(organization=organization, questions=questions, ids=ids))
    return {mode: _rates(hits[mode], len(questions)) for mode in MODES}


def _in_repo() -> dict:
    from knowledge import services

    data = json.loads(DATA.read_text())
    organization = _organization()
    try:
        ids = {
            item["id"]: str(
                services.qa_create(
                    organization=organization, question=item["question"], answer=item["answer"]
                ).pk
            )
            for item in data["qa"]
        }
        result: dict = {"qa_pairs": len(ids)}
        for kind in ("paraphrase", "direct"):
            questions = [q for q in data["questions"] if q["kind"] == kind and q.get("expect") in ids]
            result[kind] = {
                "questions": len(questions),
                **_measure(organization=organization, questions=questions, ids=ids),
            }
            print(f"  in-repo {kind}: {result[kind]}", flush=True)
        return result
    finally:
        organization.delete()


def _support_kbs() -> dict:
    """Each knowledge base (Q&A pairs and help pages) in its own organization; figures pooled
    over the three, per split."""
    from testkit.answer_quality import knowledge_build

    data = json.loads(SUPPORT_KBS.read_text())
    groups = ("dev", "test", "documents_dev", "documents_test")
    hits: dict[str, dict[str, list[tuple[int, float]]]] = {group: {} for group in groups}
    counts = dict.fromkeys(groups, 0)
    misses: list[dict] = []
    disagree: dict[str, int] = {}
    for knowledge_base in data["knowledge_bases"]:
        organization = _organization()
        try:
            ids = knowledge_build(organization=organization, data=knowledge_base)
            for split in ("dev", "test"):
                paraphrases = [
                    {"question": paraphrase["text"], "expect": pair["id"]}
                    for pair in knowledge_base["qa"]
                    for paraphrase in pair["paraphrases"]
                    if paraphrase["split"] == split
                ]
                pages = [
                    {"question": question["text"], "expect": question["expect"]}
                    for question in knowledge_base.get("document_questions", [])
                    if question["split"] == split
                ]
                for group, questions in ((split, paraphrases), (f"documents_{split}", pages)):
                    if not questions:
                        continue
                    counts[group] += len(questions)
                    ranks = _ranks(organization=organization, questions=questions, ids=ids)
                    for mode, counted in _hits(ranks).items():
                        hits[group].setdefault(mode, []).append(counted)
                    if split == "dev":  # the split parameters are chosen on: where each mode fails
                        misses.extend(_misses(knowledge_base["id"], questions, ranks))
                        if group == split:
                            found = _disagreements(questions, ranks)
                            disagree = {key: disagree.get(key, 0) + value for key, value in found.items()}
        finally:
            organization.delete()
    result: dict = {"qa_pairs": sum(len(kb["qa"]) for kb in data["knowledge_bases"])}
    for group in groups:
        if not counts[group]:
            continue
        result[group] = {"questions": counts[group]}
        for mode in MODES:
            pooled = (sum(first for first, _ in hits[group][mode]), sum(mrr for _, mrr in hits[group][mode]))
            result[group][mode] = _rates(pooled, counts[group])
        print(f"  support_kbs {group}: {result[group]}", flush=True)
    result["dev_misses"] = misses
    result["dev_disagreements"] = disagree
    for miss in misses:
        print(f"  dev miss {miss}", flush=True)
    print(f"  dev paraphrases, lexical and vector first differ: {disagree}", flush=True)
    return result


def _misses(knowledge_base: str, questions: list[dict], ranks: dict[str, list[tuple]]) -> list[dict]:
    """The questions some mode does not answer with the right source first, with each mode's
    rank of it (None: not in the top 10)."""
    return [
        {
            "knowledge_base": knowledge_base,
            "question": question["question"],
            "expect": question["expect"],
            **{mode: ranks[mode][index][0] for mode in MODES},
        }
        for index, question in enumerate(questions)
        if any(ranks[mode][index][0] != 1 for mode in ("vector", "hybrid"))
    ]


def main() -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    import django

    from supportai.startup import process_start

    process_start()  # the embedded Postgres, as every process starts

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    return {**_in_repo(), "support_kbs": _support_kbs()}


def tables(result: dict) -> list[dict]:
    """Answer trust (issue 19): right Q&A first and MRR@10 per retrieval mode on both sets."""
    from bench.results import table

    rows = []
    for kind in ("paraphrase", "direct"):
        for mode in MODES:
            row = result[kind][mode]
            rows.append(
                [f"in-repo, {kind}", result[kind]["questions"], mode, row["right_first"], row["mrr_at_10"]]
            )
    support = result.get("support_kbs")
    for split in ("dev", "test") if support else ():
        for mode in MODES:
            row = support[split][mode]
            rows.append(
                [
                    f"support_kbs ({support['qa_pairs']} Q&A pairs), paraphrase, {split}",
                    support[split]["questions"],
                    mode,
                    row["right_first"],
                    row["mrr_at_10"],
                ]
            )
    for split in ("dev", "test") if support else ():
        group = support.get(f"documents_{split}")
        for mode in MODES if group else ():
            row = group[mode]
            rows.append(
                [
                    f"support_kbs help pages, help-page questions, {split}",
                    group["questions"],
                    mode,
                    row["right_first"],
                    row["mrr_at_10"],
                ]
            )
    result_tables = [
        table(
            title="FAQ matching: right Q&A first (goal ≥ 0.95 on paraphrases) and MRR@10",
            columns=["set", "questions", "retrieval mode", "right Q&A first", "MRR@10"],
            rows=rows,
        )
    ]
    if support and "dev_misses" in support:
        disagree = support["dev_disagreements"]
        result_tables.append(
            table(
                title="support_kbs dev split: questions vector or hybrid search misses (rank of the right source; - = not in the top 10)",
                columns=["knowledge base", "question", "right source", *MODES],
                rows=[
                    [
                        miss["knowledge_base"],
                        miss["question"],
                        miss["expect"],
                        *("-" if miss[mode] is None else miss[mode] for mode in MODES),
                    ]
                    for miss in support["dev_misses"]
                ],
                note=(
                    f"Dev paraphrases on which lexical and vector search put different sources first: "
                    f"{disagree.get('questions', 0)}; lexical right {disagree.get('lexical_right', 0)}, "
                    f"vector right {disagree.get('vector_right', 0)}, neither {disagree.get('neither', 0)}."
                ),
            )
        )
    return result_tables


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
