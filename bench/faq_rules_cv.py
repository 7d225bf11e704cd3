"""Q&A matching rules compared by cross-validation on support_kbs' dev split (a tool run by
hand, not a measure: `make bench` passes it over).

Why hybrid search ties vector search on paraphrased FAQ questions instead of beating it, and
whether another rule would do better, asked of the dev split only: the three knowledge bases
of `bench/data/support_kbs.json` are built in throw-away organizations (as
`bench/faq_matching.py` builds them), each *dev* paraphrase is run through the product's own
retrievers (`knowledge.retrieval`: `query_prepare`, `lexical_ranking`, `vector_candidates`, the
calls `chunk_search` makes), and each family of rules below is scored offline on those inputs
(right Q&A pair first). The held-out `test` split is never read.

Families (the product's rule is one member of each, marked in the output):
- `tau`: a Q&A pair's lexical vote is the better of its own and tau x its vector vote (the
  product: tau = 1, `knowledge.retrieval.rank_fuse`'s `vector_led`; tau = 0: plain fusion);
- `gamma`: the product's rule plus gamma x the pair's own lexical vote (lexical evidence
  counted on top of the vector-led vote);
- `question_weight`: `knowledge.retrieval.QUESTION_WEIGHT`, the share of a pair's vector score
  from its question alone (the retrievers are re-run for each value);
- `question_field`: the lexical side also matches the pair's question on its own: a pair's
  lexical vote is (1 - u) x its BM25 over question and answer + u x its BM25 over the question
  alone (IDF and average length from the organization's Q&A questions, a field of its own),
  each divided by its list's best, then the product's rule;
- `bm25f`: field-aware BM25 (BM25F): the question's terms counted beta times in the pair's
  term frequencies and length (beta = 1: plain BM25, recomputed here with today's average
  length), then the product's rule.

For each family: right Q&A first for every value on all dev paraphrases (in-sample), and two
cross-validated figures that include the choice: 10 folds (`bench.fusion_cv.folds_make`, fixed
seed) and leave-one-knowledge-base-out; in each fold the value with the most right-first on the
other folds is chosen (ties: the product's value, then the first listed) and scored on the
held-out fold. Then the same dev paraphrases against each knowledge base with half its pairs
as help pages (twice, the halves swapped: every pair asked for once as a Q&A pair and once as a
page), right first by what the right entry is, for the single retrievers, the product's hybrid,
its fusion without the Q&A rule and smaller lexical shares. (`bench/faq_matching.py` lists
the dev paraphrases vector or hybrid search misses, with the right pair's rank in each mode,
and how often lexical and vector search disagree on the first pair and which was right.)

Run: `.venv/bin/python bench/faq_rules_cv.py` (~35 s at load average 3). Figures and what they
mean: docs/benchmarks.md, "Why hybrid ties vector on paraphrases"."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MEASURE = False  # a tool run by hand (bench/results.py)
QUESTION_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def _shapes(knowledge_base: dict, shape: str) -> list[tuple[dict, set[str]]]:
    """The knowledge base as built for `shape`, with the ids of the pairs kept as Q&A pairs:
    "qa", as the set has it; "mixed", twice, every other pair a help page (its question as the
    title and first line, as `bench/fusion_fit.py` makes one) and the rest Q&A pairs, then the
    other way round, so every pair is asked for once as a Q&A pair and once as a page."""
    if shape == "qa":
        return [(knowledge_base, {pair["id"] for pair in knowledge_base["qa"]})]
    built = []
    for half in (0, 1):
        kept = [pair for number, pair in enumerate(knowledge_base["qa"]) if number % 2 == half]
        pages = [
            {
                "id": pair["id"],
                "title": pair["question"],
                "content": f"{pair['question']}\n{pair['answer']}",
                "paraphrases": pair["paraphrases"],
            }
            for number, pair in enumerate(knowledge_base["qa"])
            if number % 2 != half
        ]
        shaped = {**knowledge_base, "qa": kept, "documents": knowledge_base["documents"] + pages}
        built.append((shaped, {pair["id"] for pair in kept}))
    return built


def _collect(shape: str = "qa", weights: tuple[float, ...] = QUESTION_WEIGHTS) -> list[dict]:
    """One record per dev paraphrase (per build of its knowledge base, `_shapes`): its knowledge
    base, whether the right entry is a Q&A pair or a page, the right source, the lexical
    ranking, a vector ranking per `weights` value, the Q&A chunk ids, and what the BM25 variants
    need (query term weights, each chunk's field term counts)."""
    from bench.faq_matching import SUPPORT_KBS, _organization
    from knowledge import retrieval
    from knowledge.embeddings import embedder_get, query_embed
    from knowledge.models import Chunk
    from testkit.answer_quality import knowledge_build

    data = json.loads(SUPPORT_KBS.read_text())
    records = []
    product_weight = retrieval.QUESTION_WEIGHT
    builds = [built for original in data["knowledge_bases"] for built in _shapes(original, shape)]
    for knowledge_base, as_pairs in builds:
        organization = _organization()
        try:
            ids = knowledge_build(organization=organization, data=knowledge_base)
            embedder = embedder_get(organization=organization)
            chunks = {}
            for chunk_id, source_id, question, answer, content, language in Chunk.objects.for_organization(
                organization
            ).values_list("id", "source_id", "source__question", "source__answer", "content", "language"):
                is_qa = bool(question)
                chunks[str(chunk_id)] = {
                    "source": str(source_id),
                    "qa": is_qa,
                    "question": retrieval.term_counts(question, language=language) if is_qa else Counter(),
                    "rest": retrieval.term_counts(answer if is_qa else content, language=language),
                }
            for pair in knowledge_base["qa"] + [
                document for document in knowledge_base["documents"] if "paraphrases" in document
            ]:
                for paraphrase in pair["paraphrases"]:
                    if paraphrase["split"] != "dev":
                        continue
                    prepared = retrieval.query_prepare(organization=organization, query=paraphrase["text"])
                    analysed, chunk_count = prepared.analysed, prepared.chunk_count
                    frequencies = prepared.frequencies
                    lexical_query = retrieval.lexical_query_build(
                        counts=analysed.counts, chunk_count=chunk_count, frequencies=frequencies
                    )
                    lexical = retrieval.lexical_ranking(
                        organization=organization, assistant=None, lexical_query=lexical_query, limit=50
                    )
                    vector_embedding = query_embed(embedder=embedder, text=analysed.text)
                    vectors, questions = {}, set()
                    for weight in weights:
                        retrieval.QUESTION_WEIGHT = weight
                        try:
                            vectors[weight], questions = retrieval.vector_candidates(
                                organization=organization,
                                assistant=None,
                                vector=vector_embedding,
                                model=embedder.name,
                                limit=50,
                                exact=True,
                            )
                        finally:
                            retrieval.QUESTION_WEIGHT = product_weight
                    records.append(
                        {
                            "knowledge_base": knowledge_base["id"],
                            "target": "qa" if pair["id"] in as_pairs else "page",
                            "text": paraphrase["text"],
                            "expect": ids[pair["id"]],
                            "lexical": lexical,
                            "vectors": vectors,
                            "questions": questions,
                            "counts": dict(analysed.counts),
                            "frequencies": frequencies,
                            "chunk_count": chunk_count,
                            "chunks": chunks,
                        }
                    )
        finally:
            organization.delete()
    return records


def _fuse(lexical, vector, *, qa: set[str], vote, share: float) -> list[str]:
    """The product's score fusion (each list divided by its best; a chunk a list lacks votes its
    lowest score; lexical `share`) with a Q&A chunk's lexical vote given by
    `vote(own lexical vote, its vector vote)`; chunk ids best first."""
    lexical_scores, vector_scores = dict(lexical), dict(vector)
    lexical_top = max(lexical_scores.values(), default=0.0)
    vector_top = max(vector_scores.values())
    lexical_low = min(lexical_scores.values()) / lexical_top if lexical_scores else 0.0
    vector_low = min(vector_scores.values()) / vector_top
    fused = {}
    for chunk_id in lexical_scores.keys() | vector_scores.keys():
        vector_vote = vector_scores[chunk_id] / vector_top if chunk_id in vector_scores else vector_low
        if not lexical_scores:
            fused[chunk_id] = vector_vote
            continue
        lexical_vote = lexical_scores[chunk_id] / lexical_top if chunk_id in lexical_scores else lexical_low
        if chunk_id in qa:
            lexical_vote = vote(lexical_vote, vector_vote)
        fused[chunk_id] = share * lexical_vote + (1 - share) * vector_vote
    return sorted(fused, key=lambda chunk_id: (-round(fused[chunk_id], 12), chunk_id))


def _bm25(record: dict, *, beta: float = 1.0, question_only: bool = False) -> list[tuple[str, float]]:
    """BM25 of the record's question over its organization's chunks, best first: BM25F with the
    Q&A question's terms counted `beta` times, or (`question_only`) over Q&A questions alone,
    IDF and average length taken over them."""
    from knowledge import retrieval

    chunks = record["chunks"]
    if question_only:
        fields = {chunk_id: chunk["question"] for chunk_id, chunk in chunks.items() if chunk["qa"]}
        count = len(fields)
        frequency = {term: sum(1 for terms in fields.values() if term in terms) for term in record["counts"]}
    else:
        fields = {
            chunk_id: Counter({term: beta * tf for term, tf in chunk["question"].items()}) + chunk["rest"]
            for chunk_id, chunk in chunks.items()
        }
        count, frequency = record["chunk_count"], record["frequencies"]
    idf = {
        term: weight
        * retrieval.inverse_document_frequency(chunk_count=count, document_frequency=frequency[term])
        for term, weight in record["counts"].items()
        if frequency.get(term)
    }
    average = sum(sum(terms.values()) for terms in fields.values()) / max(1, len(fields))
    scored = []
    for chunk_id, terms in fields.items():
        weights = retrieval.document_weights(Counter(terms), average_length=average)
        score = sum(idf[term] * weights[term] for term in idf if term in weights)
        if score > 0:
            scored.append((chunk_id, score))
    return sorted(scored, key=lambda item: (-item[1], item[0]))


def _max_rule(tau: float = 1.0, gamma: float = 0.0):
    return lambda own, vector: max(own, tau * vector) + gamma * own


def _question_field_lexical(record: dict, u: float) -> list[tuple[str, float]]:
    """The lexical ranking with each Q&A chunk's score (1 - u) x its BM25 over question and
    answer + u x its BM25 over the question field, each over its list's best (on the lexical
    list's scale); other chunks as they were."""
    question_scores = dict(_bm25(record, question_only=True))
    question_top = max(question_scores.values(), default=0.0) or 1.0
    lexical_scores = dict(record["lexical"])
    lexical_top = max(lexical_scores.values(), default=0.0) or 1.0
    lexical = {}
    for chunk_id in lexical_scores.keys() | question_scores.keys():
        score = lexical_scores.get(chunk_id, 0.0)
        if record["chunks"][chunk_id]["qa"]:
            score = (1 - u) * score + u * lexical_top * question_scores.get(chunk_id, 0.0) / question_top
        if score > 0:
            lexical[chunk_id] = score
    return sorted(lexical.items(), key=lambda item: (-item[1], item[0]))


def families(records: list[dict]) -> dict[str, dict]:
    """{family: {"product": its product value, "values": {value: [right first, per record]}}}."""
    from knowledge.retrieval import FUSION, QUESTION_WEIGHT

    def right_first(*, tau=1.0, gamma=0.0, question_weight=QUESTION_WEIGHT, lexical=None) -> list[bool]:
        hits = []
        for record in records:
            ranked = _fuse(
                lexical(record) if lexical else record["lexical"],
                record["vectors"][question_weight],
                qa=record["questions"],
                vote=_max_rule(tau=tau, gamma=gamma),
                share=FUSION.lexical_weight,
            )
            sources = dict.fromkeys(record["chunks"][chunk_id]["source"] for chunk_id in ranked)
            hits.append(next(iter(sources), None) == record["expect"])
        return hits

    return {
        "tau": {
            "product": 1.0,
            "values": {t: right_first(tau=t) for t in (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)},
        },
        "gamma": {
            "product": 0.0,
            "values": {g: right_first(gamma=g) for g in (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)},
        },
        "question_weight": {
            "product": QUESTION_WEIGHT,
            "values": {w: right_first(question_weight=w) for w in QUESTION_WEIGHTS},
        },
        "question_field": {
            "product": 0.0,
            "values": {
                u: right_first(lexical=lambda record, u=u: _question_field_lexical(record, u))
                for u in (0.0, 0.25, 0.5, 0.75, 1.0)
            },
        },
        "bm25f": {
            "product": 1.0,
            "values": {
                beta: right_first(lexical=lambda record, beta=beta: _bm25(record, beta=beta))
                for beta in (1.0, 2.0, 3.0, 5.0)
            },
        },
    }


def cross_validate(family: dict, records: list[dict]) -> dict:
    """In-sample right-first per value, and held-out right-first of the whole procedure (choose
    on the other folds, score the held-out one) over 10 folds and over knowledge bases."""
    from bench.fusion_cv import folds_make

    keys = [str(index) for index in range(len(records))]
    values = family["values"]
    order = list(values)

    def choose(training: list[int]):
        return max(
            order,
            key=lambda value: (
                sum(values[value][index] for index in training),
                value == family["product"],
                -order.index(value),
            ),
        )

    def held_out(splits: list[list[int]]):
        hits, chosen = 0, []
        for held in splits:
            excluded = set(held)
            value = choose([index for index in range(len(records)) if index not in excluded])
            chosen.append(value)
            hits += sum(values[value][index] for index in held)
        return hits, chosen

    folds = [[int(key) for key in fold] for fold in folds_make(keys)]
    by_base = [
        [index for index, record in enumerate(records) if record["knowledge_base"] == base]
        for base in dict.fromkeys(record["knowledge_base"] for record in records)
    ]
    ten, ten_chosen = held_out(folds)
    loko, loko_chosen = held_out(by_base)
    return {
        "in_sample": {value: sum(hits) for value, hits in values.items()},
        "ten_fold": ten,
        "ten_fold_chosen": ten_chosen,
        "by_knowledge_base": loko,
        "by_knowledge_base_chosen": loko_chosen,
    }


def main() -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    import django

    from supportai.startup import process_start

    process_start()
    django.setup()
    from django.core.management import call_command

    from knowledge.retrieval import FUSION, QUESTION_WEIGHT, rank_fuse

    call_command("migrate", "--noinput", verbosity=0)
    records = _collect()
    # The tool's fusion is the product's: with the product's rule, the same order everywhere.
    for record in records:
        lexical, vector = record["lexical"], record["vectors"][QUESTION_WEIGHT]
        product = [chunk_id for chunk_id, _ in rank_fuse(lexical, vector, vector_led=record["questions"])]
        tool = _fuse(lexical, vector, qa=record["questions"], vote=_max_rule(), share=FUSION.lexical_weight)
        assert product[:10] == tool[:10], record["text"]
    total = len(records)
    print(f"support_kbs dev paraphrases: {total}")
    result = {"questions": total, "families": {}}
    for name, family in families(records).items():
        figures = cross_validate(family, records)
        result["families"][name] = {"product": family["product"], **figures}
        values = ", ".join(
            f"{value:g}{'*' if value == family['product'] else ''}: {hits / total:.3f}"
            for value, hits in figures["in_sample"].items()
        )
        print(f"{name}: in-sample {values}")
        print(
            f"    10-fold held-out {figures['ten_fold'] / total:.3f} (chosen {figures['ten_fold_chosen']}), "
            f"by knowledge base {figures['by_knowledge_base'] / total:.3f} "
            f"(chosen {figures['by_knowledge_base_chosen']})"
        )
    result["mixed"] = mixed(_collect("mixed", weights=(QUESTION_WEIGHT,)))
    return result


def mixed(records: list[dict]) -> dict:
    """Right first on the dev paraphrases with half the pairs as help pages (`_shapes`), by what
    the right entry is: the single retrievers, the product's hybrid, the product's fusion without
    its Q&A rule, and score fusions with a smaller lexical share (what pages would need)."""
    from knowledge.retrieval import FUSION, QUESTION_WEIGHT

    rows = {
        "lexical": lambda record: [chunk_id for chunk_id, _ in record["lexical"]],
        "vector": lambda record: [chunk_id for chunk_id, _ in record["vectors"][QUESTION_WEIGHT]],
        "hybrid (product)": lambda record: _fuse(
            record["lexical"], record["vectors"][QUESTION_WEIGHT], qa=record["questions"],
            vote=_max_rule(), share=FUSION.lexical_weight,
        ),
        "hybrid without the Q&A rule": lambda record: _fuse(
            record["lexical"], record["vectors"][QUESTION_WEIGHT], qa=set(),
            vote=_max_rule(), share=FUSION.lexical_weight,
        ),
        **{
            f"hybrid, lexical share {share:g}": lambda record, share=share: _fuse(
                record["lexical"], record["vectors"][QUESTION_WEIGHT], qa=record["questions"],
                vote=_max_rule(), share=share,
            )
            for share in (0.2, 0.3, 0.4)
        },
    }  # fmt: skip
    result = {}
    for target in ("qa", "page"):
        chosen = [record for record in records if record["target"] == target]
        result[target] = {"questions": len(chosen)}
        for name, rank in rows.items():
            hits = 0
            for record in chosen:
                sources = dict.fromkeys(record["chunks"][chunk_id]["source"] for chunk_id in rank(record))
                hits += next(iter(sources), None) == record["expect"]
            result[target][name] = round(hits / len(chosen), 3)
        print(f"mixed shape, right entry a {'Q&A pair' if target == 'qa' else 'help page'}: {result[target]}")
    return result


if __name__ == "__main__":
    main()
