"""Answer quality of the offline answerer on the in-repo set (`bench/data/answer_quality.json`).

Builds the set's knowledge base in a throw-away organization of the local database, asks
every question through the same service the API uses (`chat.services.message_post`, no
LLM configured), and reports:
- fact recall: share of the expected facts found in the answers to answerable questions;
- false-answer rate: share of unanswerable questions answered instead of "I don't know";
- right Q&A first: how often the expected Q&A pair is the answer's first source;
- false refusals: answerable questions answered with "I don't know".
Shared by `chat/tests/test_answer_quality.py` (regression floors) and
`bench/answer_quality.py` (run: `.venv/bin/python bench/answer_quality.py`, or `make bench`).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data" / "answer_quality.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    import django

    from supportai.startup import process_start

    process_start()  # the embedded Postgres, as every process starts

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def text_source_add(*, organization, key: str, title: str, text: str, file_name: str = "") -> str:
    """A ready text document made of `text`, chunked and embedded as an upload of it would be;
    returns its knowledge source id."""
    from knowledge.chunking import text_chunk
    from knowledge.models import KnowledgeSource
    from knowledge.services.indexing import content_hash, document_store, source_counts_refresh

    source = KnowledgeSource.objects.create(
        organization=organization,
        kind=KnowledgeSource.Kind.FILE,
        title=title,
        file_name=file_name or f"{key}.txt",
        file_type=KnowledgeSource.FileType.TEXT,
        status=KnowledgeSource.Status.READY,
    )
    document_store(source=source, key=key, title=title, drafts=text_chunk(text), text_hash=content_hash(text))
    source_counts_refresh(source=source)
    return str(source.id)


def knowledge_build(*, organization, data: dict) -> dict[str, str]:
    """Creates the set's Q&A pairs and documents; returns {set id: knowledge source id}."""
    from knowledge.services import qa_create

    ids = {}
    for pair in data["qa"]:
        source = qa_create(organization=organization, question=pair["question"], answer=pair["answer"])
        ids[pair["id"]] = str(source.id)
    for document in data["documents"]:
        ids[document["id"]] = text_source_add(
            organization=organization, key=document["id"], title=document["title"], text=document["content"]
        )
    return ids


def evaluate(*, organization, assistant, data: dict, ids: dict[str, str]) -> dict:
    from chat import services
    from chat.prompts import says_no_answer

    rows = []
    for item in data["questions"]:
        session = services.session_create(organization=organization, assistant=assistant)
        started = time.perf_counter()
        answer = services.message_post(conversation=session, content=item["question"])
        elapsed = time.perf_counter() - started
        refused = (not answer.answered) or says_no_answer(answer.content)
        first = answer.sources[0]["source_id"] if answer.sources else None
        found = [fact for fact in item["facts"] if fact.lower() in answer.content.lower()]
        rows.append(
            {
                "question": item["question"],
                "kind": item["kind"],
                "answer": answer.content,
                "refused": refused,
                "facts": len(item["facts"]),
                "found": len(found),
                "right_first": item["expect"] is not None and first == ids.get(item["expect"]),
                "qa_expected": item["expect"] in {pair["id"] for pair in data["qa"]},
                "seconds": elapsed,
            }
        )
    answerable = [row for row in rows if row["kind"] != "unanswerable"]
    unanswerable = [row for row in rows if row["kind"] == "unanswerable"]
    qa_rows = [row for row in answerable if row["qa_expected"]]
    paraphrased = [row for row in qa_rows if row["kind"] == "paraphrase"]
    total_facts = sum(row["facts"] for row in answerable)
    figures = {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "fact_recall": round(sum(row["found"] for row in answerable) / total_facts, 3)
        if total_facts
        else 0.0,
        "false_answer_rate": round(sum(not row["refused"] for row in unanswerable) / len(unanswerable), 3),
        "false_refusal_rate": round(sum(row["refused"] for row in answerable) / len(answerable), 3),
        "right_qa_first": round(sum(row["right_first"] for row in qa_rows) / len(qa_rows), 3),
        "right_qa_first_paraphrased": round(
            sum(row["right_first"] for row in paraphrased) / len(paraphrased), 3
        )
        if paraphrased
        else 0.0,
        "median_answer_ms": round(sorted(row["seconds"] for row in rows)[len(rows) // 2] * 1000, 1),
    }
    return {"figures": figures, "rows": rows}


def run(*, verbose: bool = True) -> dict:
    from django.conf import settings

    from assistants.models import Assistant
    from organizations.services import organization_create

    saved = (settings.LLM_MODEL, settings.LLM_PROVIDER)
    settings.LLM_MODEL, settings.LLM_PROVIDER = "", ""  # the offline answerer
    data = json.loads(DATA.read_text())
    suffix = uuid.uuid4().hex[:8]
    organization = organization_create(
        name=f"Answer quality bench {suffix}",
        slug=f"bench-answer-quality-{suffix}",
        owner_email=f"bench-{suffix}@example.com",
        owner_password=uuid.uuid4().hex,
    )
    try:
        assistant = Assistant.objects.create(organization=organization, name="Brightwave Support")
        ids = knowledge_build(organization=organization, data=data)
        result = evaluate(organization=organization, assistant=assistant, data=data, ids=ids)
    finally:
        organization.delete()
        settings.LLM_MODEL, settings.LLM_PROVIDER = saved
    if verbose:
        for row in result["rows"]:
            mark = (
                "ok "
                if (row["kind"] == "unanswerable") == row["refused"] and row["found"] == row["facts"]
                else "BAD"
            )
            print(f"{mark} [{row['kind'][:5]}] {row['question'][:60]:60} -> {row['answer'][:70]}")
    return result
