"""Any-language retrieval: how often `chunk_search` puts the right passage first when the
visitor writes English, Spanish, German, French or Portuguese, against English knowledge
(cross-language for all but English) and against knowledge written in the visitor's own
language. The set (`bench/data/multilingual.json`, written for this project): 20 help-centre
topics of a shop, each a passage in the five languages and one visitor question per language
worded differently from the passage. Each knowledge base (one per language, 20 documents)
is built through the product's indexing code in a throw-away organization.

Measured for both embedders an organization can choose (Settings › Knowledge): the default
(MiniLM, English) and the opt-in multilingual-e5-small. Also per embedder: whether the
relevance gate lets the offline answerer answer (hybrid retrieval, the right passage first
and judged relevant, as a chat turn decides), what indexing costs (passages per CPU second of
this process, which embeds) and a question's embedding time (p50 of wall and CPU ms, one
question at a time). Nothing here was tuned on this set: the gate's parameters were fitted on
support_kbs.json's dev split and the shop's dev questions in Spanish and German
(bench/relevance_gate_fit.py --cross-language), and the multilingual embedder's own hybrid
fusion (`knowledge.retrieval.FUSION_BY_EMBEDDER`) was chosen on the same dev questions
(bench/fusion_fit.py); MiniLM's is `FUSION`, chosen on SciFact. French and Portuguese are in no
dev set."""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "multilingual.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
MODES = ("lexical", "vector", "hybrid")


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    import django

    from supportai.startup import process_start

    process_start()  # the embedded Postgres, as every process starts

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def knowledge_build(*, organization, data: dict, language: str) -> dict[str, str]:
    """The set's passages in `language` as one document each; returns {topic id: source id}."""
    from testkit.answer_quality import text_source_add

    ids = {}
    for topic in data["topics"]:
        text = topic["passages"][language]
        ids[topic["id"]] = text_source_add(
            organization=organization,
            key=topic["id"],
            title=text.split(":", 1)[0],
            text=text,
            file_name=f"{topic['id']}-{language}.txt",
        )
    return ids


def _right_first(*, organization, data: dict, ids: dict[str, str], language: str) -> dict:
    from knowledge.retrieval import chunk_search

    figures = {}
    for mode in MODES:
        first = 0
        for topic in data["topics"]:
            passages = chunk_search(
                organization=organization, query=topic["questions"][language], k=5, mode=mode
            )
            first += bool(passages) and str(passages[0].source_id) == ids[topic["id"]]
        figures[mode] = first
    return figures


def _gate_answers(*, organization, data: dict, ids: dict[str, str], language: str) -> int:
    """Questions the offline answerer would answer from the right passage: hybrid retrieval's
    first passage is the right one and the relevance gate judges it relevant."""
    from django.conf import settings

    from chat import grounding

    answered = 0
    for topic in data["topics"]:
        question = topic["questions"][language]
        candidates = grounding.knowledge_search(organization=organization, assistant=None, query=question)
        scored = grounding.candidates_score(
            question=question, candidates=candidates, organization=organization
        )
        answered += bool(scored) and (
            scored[0].relevance >= settings.CHAT_RELEVANCE_THRESHOLD
            and scored[0].source.get("source_id") == ids[topic["id"]]
        )
    return answered


def _organization(*, choice: str):
    from organizations.services import organization_create

    stamp = uuid.uuid4().hex[:8]
    organization = organization_create(
        name=f"bench multilingual {stamp}", slug=f"bench-multilingual-{stamp}",
        owner_email=f"multilingual-{stamp}@example.com", owner_password=uuid.uuid4().hex,
    )  # fmt: skip
    organization.knowledge_embedder = choice
    organization.save(update_fields=["knowledge_embedder"])
    return organization


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _query_cost(*, embedder, data: dict) -> dict:
    """A question's embedding, one at a time (the embedder loaded), without the query cache."""
    wall, cpu = [], []
    for topic in data["topics"]:
        for question in topic["questions"].values():
            started, started_cpu = time.perf_counter(), _cpu()
            embedder.embed_queries([question])
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((_cpu() - started_cpu) * 1000)
    return {
        "query_p50_ms": round(statistics.median(wall), 1),
        "query_p50_cpu_ms": round(statistics.median(cpu), 1),
    }


def run(*, choice: str = "default") -> dict:
    from knowledge.embeddings import embedder_get

    data = json.loads(DATA.read_text())
    languages = data["languages"]
    embedder = embedder_get(choice=choice)
    embedder.embed(["load the model before timing"])
    result: dict = {"topics": len(data["topics"]), "rows": {}, "embedder": embedder.name}
    organizations = {}
    try:
        ids = {}
        started, started_cpu = time.perf_counter(), _cpu()
        for language in languages:
            organizations[language] = _organization(choice=choice)
            ids[language] = knowledge_build(
                organization=organizations[language], data=data, language=language
            )
        passages = len(languages) * len(data["topics"])
        result["index_passages_per_second"] = round(passages / (time.perf_counter() - started), 1)
        result["index_passages_per_cpu_second"] = round(passages / (_cpu() - started_cpu), 1)
        result.update(_query_cost(embedder=embedder, data=data))
        result["load_average"] = round(os.getloadavg()[0], 1)
        for language in languages:
            row = {
                "english_knowledge": _right_first(
                    organization=organizations["en"], data=data, ids=ids["en"], language=language
                ),
                "same_language_knowledge": _right_first(
                    organization=organizations[language], data=data, ids=ids[language], language=language
                ),
                "gate_english_knowledge": _gate_answers(
                    organization=organizations["en"], data=data, ids=ids["en"], language=language
                ),
            }
            result["rows"][language] = row
            print(f"  {language}: {row}", flush=True)
    finally:
        for organization in organizations.values():
            organization.delete()
    return result


def main() -> dict:
    _setup()
    return {"default": run(choice="default"), "opt_in": run(choice="multilingual")}


def tables(result: dict) -> list[dict]:
    """Answer trust (issue 19): right passage first per question language, knowledge language,
    retrieval mode and embedder (the default, and the per-organization opt-in when measured)."""
    from bench.results import table

    rows = []
    for key in ("default", "opt_in"):
        figures = result.get(key)
        for language, row in (figures or {}).get("rows", {}).items():
            for knowledge, label in (
                ("english_knowledge", "English"),
                ("same_language_knowledge", "same language"),
            ):
                if language == "en" and knowledge == "same_language_knowledge":
                    continue  # the same knowledge base as the row above
                rows.append(
                    [
                        f"{figures['embedder']} ({'default' if key == 'default' else 'opt-in'})",
                        language,
                        label,
                        *(f"{row[knowledge][mode]}/{figures['topics']}" for mode in MODES),
                    ]
                )
    gate_rows, cost_rows = [], []
    for key in ("default", "opt_in"):
        figures = result.get(key) or {}
        if not figures.get("rows") or "gate_english_knowledge" not in next(iter(figures["rows"].values())):
            continue
        name = f"{figures['embedder']} ({'default' if key == 'default' else 'opt-in'})"
        gate_rows.append(
            [
                name,
                *(f"{row['gate_english_knowledge']}/{figures['topics']}" for row in figures["rows"].values()),
            ]
        )
        cost_rows.append(
            [
                name,
                figures["index_passages_per_cpu_second"],
                figures["index_passages_per_second"],
                figures["query_p50_cpu_ms"],
                figures["query_p50_ms"],
                figures["load_average"],
            ]
        )
    specs = [
        table(
            title="Any language: right passage first",
            columns=["embedder", "question language", "knowledge language", *MODES],
            rows=rows,
        )
    ]
    if gate_rows:
        specs.append(
            table(
                title="Any language: the offline answerer answers from the right English passage "
                "(hybrid first passage, judged relevant by the gate)",
                columns=["embedder", *(result.get("default") or result["opt_in"])["rows"].keys()],
                rows=gate_rows,
            )
        )
        specs.append(
            table(
                title="Embedder cost (this process embeds; one thread)",
                columns=[
                    "embedder",
                    "indexing passages / CPU s",
                    "indexing passages / s (wall)",
                    "question p50 CPU ms",
                    "question p50 wall ms",
                    "load average",
                ],
                rows=cost_rows,
            )
        )
    return specs


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
