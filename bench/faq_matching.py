"""FAQ matching at the retrieval level: how often `chunk_search` puts the right Q&A pair
first, for the visitor-worded (paraphrase) and FAQ-worded (direct) questions of the
in-repo answer-quality set (`bench/data/answer_quality.json`), per retrieval mode. The
set's Q&A pairs are created with `qa_create` in a throw-away organization."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "answer_quality.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from knowledge import retrieval, services
    from organizations.services import organization_create

    call_command("migrate", "--noinput", verbosity=0)
    data = json.loads(DATA.read_text())
    stamp = uuid.uuid4().hex[:8]
    organization = organization_create(
        name=f"bench faq {stamp}", slug=f"bench-faq-{stamp}", owner_email=f"faq-{stamp}@example.com",
        owner_password=uuid.uuid4().hex,
    )  # fmt: skip
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
            result[kind] = {"questions": len(questions)}
            for mode in ("lexical", "vector", "hybrid"):
                first, reciprocal = 0, 0.0
                for question in questions:
                    passages = retrieval.chunk_search(
                        organization=organization, query=question["question"], k=10, mode=mode
                    )
                    ranked = [str(passage.source_id) for passage in passages]
                    expected = ids[question["expect"]]
                    first += bool(ranked) and ranked[0] == expected
                    reciprocal += 1 / (ranked.index(expected) + 1) if expected in ranked else 0.0
                result[kind][mode] = {
                    "right_first": round(first / len(questions), 3),
                    "mrr_at_10": round(reciprocal / len(questions), 3),
                }
            print(f"  {kind}: {result[kind]}", flush=True)
        return result
    finally:
        organization.delete()


def report(result: dict) -> str:
    lines = ["| questions | mode | right Q&A first | MRR@10 |", "|---|---|---|---|"]
    for kind in ("paraphrase", "direct"):
        for mode in ("lexical", "vector", "hybrid"):
            row = result[kind][mode]
            lines.append(
                f"| {kind} ({result[kind]['questions']}) | {mode} | {row['right_first']} | {row['mrr_at_10']} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
