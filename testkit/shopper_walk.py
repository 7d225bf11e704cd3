"""Shopper questions to the offline answerer, read as a shopper reads them (issue 19).

Builds a small shop's knowledge in a throw-away organization the way a new customer loads it:
the demo that `make run` seeds (`supportai.demo`: its Q&A pairs, and its handbook uploaded as a
Markdown file), a help-centre page uploaded as HTML, a PDF guide and a few more Q&A pairs
(`bench/data/shopper_questions.json`), every file through the real ingestion
(`file_source_create`, then `source_ingest` as the worker runs it). Then asks the set's
conversations through `chat.services.message_post` (no LLM configured: the offline answerer)
and prints each answer with its sources and a mechanical verdict: whether the expected kind of
reply came (an answer from the expected source, a refusal, a reply to small talk, a person
called) and whether the text carries debris a reader should never see (Markdown or HTML marks,
table pipes, a bullet inside a line, a heading glued to a sentence). Reading the transcript is the real
judgement; the verdict catches regressions.

Run: `.venv/bin/python -m testkit.shopper_walk` (`--json` for the rows; `--multilingual` for an
organization that chose the multilingual embedder in Settings > Knowledge).
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data" / "shopper_questions.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# What a visitor should never read in an answer.
DEBRIS = (
    ("markdown heading", re.compile(r"(^|\n)\s*#{1,6}\s")),
    ("markdown emphasis", re.compile(r"\*\*|__|(?<!\w)\*\w")),
    ("markdown link", re.compile(r"\]\(")),
    ("html", re.compile(r"</?[a-zA-Z][^>]*>|&[a-z]+;")),
    ("table pipe", re.compile(r"\s\|\s")),
    # A list item on a line of its own ("- PayPal") is Markdown the widget shows as a list; a
    # bullet inside a line is debris.
    ("stray bullet", re.compile(r"\S[ \t]+[•▪◦][ \t]")),
)
MAX_ANSWER_CHARS = 600


def _file_add(*, organization, title: str, file_name: str, file_type: str, data: bytes) -> str:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from knowledge.services import file_source_create
    from knowledge.services.ingestion import source_ingest

    source = file_source_create(
        organization=organization,
        title=title,
        file_type=file_type,
        uploaded_file=SimpleUploadedFile(file_name, data),
    )
    status = source_ingest(source_id=source.pk)
    if status != "ready":
        raise RuntimeError(f"{file_name} was not ingested: {status}")
    return str(source.pk)


def knowledge_build(*, organization, data: dict) -> None:
    from knowledge.services import qa_create
    from supportai.demo import DEMO_FAQ, DEMO_HANDBOOK
    from testkit.documents import pdf_make

    for question, answer, tags in DEMO_FAQ:
        qa_create(organization=organization, question=question, answer=answer, tags=tags, source="demo")
    for pair in data["qa"]:
        qa_create(organization=organization, question=pair["question"], answer=pair["answer"])
    _file_add(
        organization=organization,
        title="Customer handbook",
        file_name="customer-handbook.md",
        file_type="markdown",
        data=DEMO_HANDBOOK.encode(),
    )
    page = data["html_page"]
    _file_add(
        organization=organization,
        title=page["title"],
        file_name=page["file_name"],
        file_type="html",
        data=page["html"].encode(),
    )
    pdf = data["pdf"]
    _file_add(
        organization=organization,
        title=pdf["title"],
        file_name=pdf["file_name"],
        file_type="pdf",
        data=pdf_make(pdf["pages"], title=pdf["title"]),
    )


def debris_in(text: str) -> list[str]:
    return [name for name, pattern in DEBRIS if pattern.search(text)]


def _verdict(*, expect: str, answer, question) -> tuple[str, list[str]]:
    from chat.models import Message
    from chat.prompts import says_no_answer

    problems = []
    if answer.role == Message.Role.USER:
        return ("ok" if expect == "person" else "person called"), problems
    small_talk = bool((answer.metadata or {}).get("small_talk"))
    refused = not answer.answered or says_no_answer(answer.content)
    titles = [source.get("title", "") for source in answer.sources or []]
    if expect == "small_talk":
        outcome = "ok" if small_talk else "small talk missed"
    elif expect == "refuse":
        outcome = "ok" if refused and not small_talk else "false answer"
    elif expect == "person":
        outcome = "no person"
    elif refused or small_talk:
        outcome = "false refusal"
    elif not titles or titles[0] not in expect.split("|"):
        outcome = "wrong source"
    else:
        outcome = "ok"
    if not refused and not small_talk:
        problems = debris_in(answer.content)
        if len(answer.content) > MAX_ANSWER_CHARS:
            problems.append(f"long ({len(answer.content)} chars)")
    return outcome, problems


def walk(*, organization, assistant, data: dict) -> list[dict]:
    from chat import services

    rows = []
    for conversation in data["conversations"]:
        session = services.session_create(organization=organization, assistant=assistant)
        for question, expect in conversation:
            answer = services.message_post(conversation=session, content=question)
            outcome, problems = _verdict(expect=expect, answer=answer, question=question)
            rows.append(
                {
                    "question": question,
                    "expect": expect,
                    "answer": answer.content if answer.role != "user" else "(handed to a person)",
                    "sources": [source.get("title", "") for source in answer.sources or []],
                    "outcome": outcome,
                    "problems": problems,
                }
            )
    return rows


def run(*, multilingual: bool = False) -> list[dict]:
    from django.conf import settings

    from assistants.services import assistant_create
    from organizations.services import organization_create

    saved = (settings.LLM_MODEL, settings.LLM_PROVIDER)
    settings.LLM_MODEL, settings.LLM_PROVIDER = "", ""  # the offline answerer
    data = json.loads(DATA.read_text())
    suffix = uuid.uuid4().hex[:8]
    organization = organization_create(
        name=f"Shopper walk {suffix}",
        slug=f"shopper-walk-{suffix}",
        owner_email=f"shopper-{suffix}@example.com",
        owner_password=uuid.uuid4().hex,
    )
    try:
        assistant = assistant_create(organization=organization, name="Demo Support", language="en")
        if multilingual:  # Settings > Knowledge's opt-in embedder, chosen before anything is indexed
            from knowledge.embeddings import MULTILINGUAL
            from knowledge.services.embedder_switch import embedder_switch_start

            embedder_switch_start(organization=organization, choice=MULTILINGUAL)
        knowledge_build(organization=organization, data=data)
        return walk(organization=organization, assistant=assistant, data=data)
    finally:
        organization.delete()
        settings.LLM_MODEL, settings.LLM_PROVIDER = saved


def main() -> None:
    from collections import Counter

    from testkit.answer_quality import setup

    setup()
    rows = run(multilingual="--multilingual" in sys.argv)
    if "--json" in sys.argv:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    for row in rows:
        flag = row["outcome"] if row["outcome"] != "ok" or not row["problems"] else "unreadable"
        print(f"[{flag}{': ' + ', '.join(row['problems']) if row['problems'] else ''}] {row['question']}")
        print("   > " + row["answer"].replace("\n", "\n     "))
        if row["sources"]:
            print("   sources: " + "; ".join(row["sources"]))
    counts = Counter(row["outcome"] for row in rows)
    counts["of them with debris or too long"] = sum(bool(row["problems"]) for row in rows)
    print(json.dumps({"questions": len(rows), **counts}, indent=1))


if __name__ == "__main__":
    main()
