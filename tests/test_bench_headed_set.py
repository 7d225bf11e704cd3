"""The relevance gate's held-out help centre with headed pages (bench/data/support_headed.json):
never read by what fits or tunes, its pages merged from several sections as the chunker merges
them, and reported by bench/relevance_gate.py apart from the dev/test splits."""

import json
import subprocess
import sys
from pathlib import Path

from chat import relevance
from knowledge.chunking import text_chunk

ROOT = Path(__file__).resolve().parent.parent
HEADED = json.loads((ROOT / "bench" / "data" / "support_headed.json").read_text())


def test_the_headed_set_is_held_out_from_fitting():
    (knowledge_base,) = HEADED["knowledge_bases"]
    rows = knowledge_base["document_questions"] + knowledge_base["unanswerable"]
    assert {row["split"] for row in rows} == {"headed"}
    for script in ("relevance_gate_fit.py", "faq_matching.py", "fusion_fit.py", "faq_rules_cv.py"):
        assert "support_headed" not in (ROOT / "bench" / script).read_text()


def test_every_passage_of_a_headed_page_merges_sections_and_every_question_names_one():
    (knowledge_base,) = HEADED["knowledge_bases"]
    headings = {}
    for document in knowledge_base["documents"]:
        chunks = text_chunk(document["content"])
        assert all(len(relevance.sections_of(chunk.content)) >= 2 for chunk in chunks)
        headings[document["id"]] = {h for chunk in chunks for h, _ in relevance.sections_of(chunk.content)}
    for question in knowledge_base["document_questions"]:
        assert question["section"] in headings[question["expect"]]
    ids = set(headings) | {pair["id"] for pair in knowledge_base["qa"]}
    assert {row["near"] for row in knowledge_base["unanswerable"]} - {None} <= ids


# Run as a subprocess: tests never import bench (tests/test_architecture.py).
_REPORT = """
import json
from bench import relevance_gate

rows = [
    {"split": "headed", "kind": "document", "answered": True, "right_source": True, "text": "a"},
    {"split": "headed", "kind": "document", "answered": False, "right_source": False, "text": "b"},
    {"split": "headed", "kind": "unanswerable", "answered": True, "right_source": False, "near": "x", "text": "c"},
    {"split": "test", "kind": "unanswerable", "answered": True, "right_source": False, "text": "d"},
]
rates = relevance_gate.headed_rates(rows)
split = {
    "unanswerable": 1,
    "answerable": 1,
    **dict.fromkeys(
        ("false_answer_rate", "false_answer_rate_near_misses", "false_refusal_rate", "wrong_source_rate"), 0.0
    ),
}
result = {
    mode: {"dev": split, "test": split, "per_kb_test": {}, "headed": rates} for mode in relevance_gate.MODES
}
titles = [table["title"] for table in relevance_gate.tables(result)]
print(json.dumps({"rates": rates, "titles": titles}))
"""


def test_the_bench_reports_the_headed_set_apart():
    completed = subprocess.run(
        [sys.executable, "-c", _REPORT],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    rates = report["rates"]
    assert (rates["false_answer_rate"], rates["false_refusal_rate"]) == (1.0, 0.5)
    assert (rates["false_answers"], rates["false_refusals"]) == (["c"], ["b"])
    assert any("headings" in title for title in report["titles"])
