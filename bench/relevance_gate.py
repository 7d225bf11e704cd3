"""The relevance gate, measured (issue 19): does the assistant refuse what its knowledge does
not answer, and answer what it does? Three knowledge bases of `bench/data/support_kbs.json`
(a shop, a SaaS product, a clinic: Q&A pairs and help pages), each built in a throw-away
organization; every question is asked through `chat.services.message_post`, the service the
API and the widget use, in two modes:
- offline: the built-in extractive answerer (no LLM configured);
- LLM: an OpenAI-compatible server on loopback (`testkit.llm_server`, the tests' fake
  provider). What is measured is what the gate hands the model: the knowledge passages, or
  none and the instruction that nothing relevant was found (the fake model quotes passage
  [1] when it has one and says it does not know otherwise).
False-answer rate: out-of-scope questions answered (offline) or handed passages (LLM).
False-refusal rate: answerable questions (visitor-worded paraphrases of a Q&A pair, questions
a help page answers) refused. Wrong source: answerable questions answered from another
entry than the expected one. Thresholds were chosen on the `dev` split; `test` is held out.
Reported apart: a help centre whose pages have headings (`bench/data/support_headed.json`:
several short sections per page, merged into a passage as the chunker merges them; never read
by the fitting script), where a passage also passes the cosine floor by its closest section.
Run: `.venv/bin/python bench/relevance_gate.py`.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "support_kbs.json"
# Held out from fitting and tuning: help pages with headings (every question's split "headed").
HEADED = Path(__file__).resolve().parent / "data" / "support_headed.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODES = ("offline", "llm")
SPLITS = ("dev", "test")


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    import django

    from supportai.startup import process_start

    process_start()  # the embedded Postgres, as every process starts

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def questions(knowledge_base: dict) -> list[dict]:
    """Every question of a knowledge base: {text, kind, expect (set id or None), split, near}."""
    rows = []
    for pair in knowledge_base["qa"]:
        for paraphrase in pair["paraphrases"]:
            rows.append(
                {
                    "text": paraphrase["text"],
                    "kind": "paraphrase",
                    "expect": pair["id"],
                    "split": paraphrase["split"],
                }
            )
    for item in knowledge_base["document_questions"]:
        rows.append(
            {"text": item["text"], "kind": "document", "expect": item["expect"], "split": item["split"]}
        )
    for item in knowledge_base["unanswerable"]:
        rows.append(
            {
                "text": item["text"],
                "kind": "unanswerable",
                "expect": None,
                "split": item["split"],
                "near": item.get("near"),
            }
        )
    return rows


def knowledge_build(*, organization, knowledge_base: dict) -> dict[str, str]:
    """Creates the knowledge base's Q&A pairs and help pages; returns {set id: source id}."""
    from testkit.answer_quality import knowledge_build as build

    return build(organization=organization, data=knowledge_base)


def _ask(*, organization, assistant, row: dict, mode: str, llm, ids: dict[str, str]) -> dict:
    from chat import services
    from chat.prompts import NOTHING_RELEVANT_MARKER

    session = services.session_create(organization=organization, assistant=assistant)
    before = len(llm.requests) if llm else 0
    started, cpu = time.perf_counter(), time.process_time()
    answer = services.message_post(conversation=session, content=row["text"])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    first = answer.sources[0]["source_id"] if answer.sources else None
    result = {
        **row,
        "answered": bool(answer.answered),
        "right_source": row["expect"] is not None and first == ids.get(row["expect"]),
        "answer": answer.content[:160],
        "ms": elapsed * 1000,
        "cpu_ms": cpu * 1000,
    }
    if mode == "llm":
        request = llm.requests[before] if len(llm.requests) > before else {}
        system = next((m["content"] for m in request.get("messages", []) if m.get("role") == "system"), "")
        result["passages_handed"] = "<source number=" in system
        result["told_nothing_relevant"] = NOTHING_RELEVANT_MARKER in system
        # The gate's decision, as the model sees it: passages to answer from, or none.
        result["answered"] = result["passages_handed"] and not result["told_nothing_relevant"]
    return result


def _rates(rows: list[dict]) -> dict:
    unanswerable = [row for row in rows if row["kind"] == "unanswerable"]
    near = [row for row in unanswerable if row.get("near")]
    answerable = [row for row in rows if row["kind"] != "unanswerable"]
    answered = [row for row in answerable if row["answered"]]

    def share(part, whole):
        return round(len(part) / len(whole), 3) if whole else None

    return {
        "unanswerable": len(unanswerable),
        "answerable": len(answerable),
        "false_answer_rate": share([row for row in unanswerable if row["answered"]], unanswerable),
        "false_answer_rate_near_misses": share([row for row in near if row["answered"]], near),
        "false_refusal_rate": share([row for row in answerable if not row["answered"]], answerable),
        "wrong_source_rate": share([row for row in answered if not row["right_source"]], answerable),
    }


def knowledge_base_ask(*, knowledge_base: dict, llm, choice: str = "default") -> dict[str, list[dict]]:
    """Every question of one knowledge base, asked in each mode in a throw-away organization
    on the knowledge embedder `choice`: {mode: rows}."""
    from django.conf import settings

    from assistants.models import Assistant
    from organizations.services import organization_create

    rows: dict[str, list[dict]] = {mode: [] for mode in MODES}
    saved = (settings.LLM_MODEL, settings.LLM_PROVIDER, settings.LLM_API_BASE, settings.LLM_API_KEY)
    suffix = uuid.uuid4().hex[:8]
    organization = organization_create(
        name=f"Relevance gate bench {suffix}",
        slug=f"bench-gate-{suffix}",
        owner_email=f"bench-gate-{suffix}@example.com",
        owner_password=uuid.uuid4().hex,
    )
    try:
        organization.knowledge_embedder = choice
        organization.save(update_fields=["knowledge_embedder"])
        assistant = Assistant.objects.create(organization=organization, name=knowledge_base["name"][:100])
        ids = knowledge_build(organization=organization, knowledge_base=knowledge_base)
        for mode in MODES:
            if mode == "offline":
                settings.LLM_MODEL, settings.LLM_PROVIDER = "", ""
            else:
                settings.LLM_MODEL, settings.LLM_PROVIDER = "openai/loopback-model", ""
                settings.LLM_API_BASE, settings.LLM_API_KEY = llm.api_base, "sk-loopback"
            for row in questions(knowledge_base):
                result = _ask(
                    organization=organization,
                    assistant=assistant,
                    row=row,
                    mode=mode,
                    llm=llm if mode == "llm" else None,
                    ids=ids,
                )
                rows[mode].append({"kb": knowledge_base["id"], **result})
            settings.LLM_MODEL, settings.LLM_PROVIDER, settings.LLM_API_BASE, settings.LLM_API_KEY = saved
    finally:
        settings.LLM_MODEL, settings.LLM_PROVIDER, settings.LLM_API_BASE, settings.LLM_API_KEY = saved
        organization.delete()
    return rows


def headed_rates(rows: list[dict]) -> dict:
    """The headed help centre's figures, and which questions the gate got wrong (by text)."""
    headed = [row for row in rows if row["split"] == "headed"]
    return {
        **_rates(headed),
        "false_answers": [row["text"] for row in headed if row["kind"] == "unanswerable" and row["answered"]],
        "false_refusals": [
            row["text"] for row in headed if row["kind"] != "unanswerable" and not row["answered"]
        ],
        "wrong_source": [
            row["text"]
            for row in headed
            if row["kind"] != "unanswerable" and row["answered"] and not row["right_source"]
        ],
    }


def run(*, verbose: bool = False, choice: str = "default") -> dict:
    """The figures for organizations on the knowledge embedder `choice` (`make bench` measures
    the default; `run(choice="multilingual")` is the per-organization opt-in, run by hand)."""
    from testkit.llm_server import LoopbackLLM

    data = json.loads(DATA.read_text())
    headed = json.loads(HEADED.read_text())
    llm = LoopbackLLM().start()
    rows: dict[str, list[dict]] = {mode: [] for mode in MODES}
    try:
        for knowledge_base in data["knowledge_bases"] + headed["knowledge_bases"]:
            for mode, asked in knowledge_base_ask(
                knowledge_base=knowledge_base, llm=llm, choice=choice
            ).items():
                rows[mode] += asked
            print(f"  {knowledge_base['id']}: done", flush=True)
    finally:
        llm.stop()
    figures: dict = {}
    for mode in MODES:
        figures[mode] = {
            split: _rates([row for row in rows[mode] if row["split"] == split]) for split in SPLITS
        }
        figures[mode]["per_kb_test"] = {
            kb["id"]: _rates([row for row in rows[mode] if row["split"] == "test" and row["kb"] == kb["id"]])
            for kb in data["knowledge_bases"]
        }
        figures[mode]["headed"] = headed_rates(rows[mode])
    # CPU per turn (this process: the whole turn, retrieval, gate and answer; the database
    # server's own CPU not included), offline mode where no loopback server shares the process.
    cpu = sorted(row["cpu_ms"] for row in rows["offline"] if row["split"] != "headed")
    figures["offline_turn_cpu_ms"] = {
        "mean": round(sum(cpu) / len(cpu), 2),
        "p50": round(cpu[len(cpu) // 2], 2),
        "p90": round(cpu[int(len(cpu) * 0.9)], 2),
    }
    denver = next(
        row for row in rows["offline"] if row["text"].startswith("Can I pick up my order at your Denver")
    )
    figures["denver_offline_answer"] = denver["answer"]
    if verbose:
        for mode in MODES:
            for row in rows[mode]:
                wrong = (row["kind"] == "unanswerable") == row["answered"]
                if wrong:
                    print(
                        f"BAD {mode:7} {row['kb']:6} {row['split']:4} [{row['kind'][:5]}] {row['text'][:60]:60} -> {row['answer'][:60]}"
                    )
    return figures


def main() -> dict:
    _setup()
    figures = run(verbose=True)
    print(json.dumps(figures, indent=2))
    return figures


def tables(result: dict) -> list[dict]:
    """Answer trust (issue 19): false answers and false refusals per answer mode and split."""
    from bench.results import table

    rows = [
        [
            mode,
            split,
            result[mode][split]["unanswerable"],
            result[mode][split]["answerable"],
            result[mode][split]["false_answer_rate"],
            result[mode][split]["false_answer_rate_near_misses"],
            result[mode][split]["false_refusal_rate"],
            result[mode][split]["wrong_source_rate"],
        ]
        for mode in MODES
        for split in SPLITS
    ]
    per_kb = [
        [mode, kb, row["false_answer_rate"], row["false_refusal_rate"], row["wrong_source_rate"]]
        for mode in MODES
        for kb, row in result[mode]["per_kb_test"].items()
    ]
    headed = [
        [
            mode,
            result[mode]["headed"]["unanswerable"],
            result[mode]["headed"]["answerable"],
            result[mode]["headed"]["false_answer_rate"],
            result[mode]["headed"]["false_answer_rate_near_misses"],
            result[mode]["headed"]["false_refusal_rate"],
            result[mode]["headed"]["wrong_source_rate"],
        ]
        for mode in MODES
        if "headed" in result[mode]
    ]
    return [
        table(
            title="Relevance gate: false answers (goal ≤ 0.05) and false refusals (goal ≤ 0.10)",
            columns=[
                "answer mode",
                "split",
                "out-of-scope",
                "answerable",
                "false answers",
                "of near-misses",
                "false refusals",
                "wrong source",
            ],
            rows=rows,
            note="Thresholds chosen on `dev`; `test` is held out.",
        ),
        table(
            title="Held-out (test) split per knowledge base",
            columns=["answer mode", "knowledge base", "false answers", "false refusals", "wrong source"],
            rows=per_kb,
        ),
        *(
            [
                table(
                    title="Help pages with headings (`support_headed.json`, held out: never fitted)",
                    columns=[
                        "answer mode",
                        "out-of-scope",
                        "answerable",
                        "false answers",
                        "of near-misses",
                        "false refusals",
                        "wrong source",
                    ],
                    rows=headed,
                    note="Five pages of three or four short sections each; a passage merges several.",
                )
            ]
            if headed
            else []
        ),
    ]


def report(result: dict) -> str:
    lines = []
    if "offline_turn_cpu_ms" in result:
        cpu = result["offline_turn_cpu_ms"]
        lines.append(
            f"CPU of an offline chat turn in the benchmark process (retrieval, gate and answer; "
            f"not the database server), ms: mean {cpu['mean']}, p50 {cpu['p50']}, p90 {cpu['p90']}."
        )
        lines.append("")
    lines.append(
        f'"Can I pick up my order at your Denver store?" (shop, offline): "{result["denver_offline_answer"]}"'
    )
    return "\n".join(lines)


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
