"""Server time of a chat turn with the offline answerer (no LLM configured).

Builds the answer-quality knowledge base in a throw-away organization, then sends
`BENCH_CHAT_REQUESTS` (default 60) questions each to seed 000's `POST /api/widget/chat`
and to `POST /api/v1/sessions/{id}/messages`, in process through Django's full stack
(middleware, authentication, rate limit, retrieval, answer, storage). The figure is the
`Server-Timing: app` duration each response reports (server time, no network), with the
median of each phase (embed, retrieve, db, llm) to show where it goes.
Run: `.venv/bin/python bench/chat_latency.py` (or `make bench`).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_PHASE = re.compile(r"(\w+);dur=([\d.]+)")


def _phases(header: str) -> dict[str, float]:
    return {name: float(value) for name, value in _PHASE.findall(header or "")}


def _summary(samples: list[dict[str, float]]) -> dict:
    app = sorted(sample["app"] for sample in samples)
    names = sorted({name for sample in samples for name in sample} - {"app"})
    return {
        "requests": len(samples),
        "median_ms": round(statistics.median(app), 1),
        "p95_ms": round(app[int(len(app) * 0.95) - 1], 1),
        "phases_median_ms": {
            name: round(statistics.median(s.get(name, 0.0) for s in samples), 1) for name in names
        },
    }


def run(*, requests: int) -> dict:
    from django.conf import settings
    from django.test import Client

    from assistants.models import Assistant
    from knowledge import embeddings
    from organizations.services import api_key_create, organization_create
    from testkit.answer_quality import DATA, knowledge_build
    from widget.models import Widget

    saved = (settings.LLM_MODEL, settings.LLM_PROVIDER)
    settings.LLM_MODEL, settings.LLM_PROVIDER = "", ""  # the offline answerer
    data = json.loads(DATA.read_text())
    questions = [item["question"] for item in data["questions"]]
    suffix = uuid.uuid4().hex[:8]
    organization = organization_create(
        name=f"Chat latency bench {suffix}",
        slug=f"bench-chat-latency-{suffix}",
        owner_email=f"bench-latency-{suffix}@example.com",
        owner_password=uuid.uuid4().hex,
        rate_limit_per_hour=1_000_000,
    )
    try:
        _api_key, secret = api_key_create(organization=organization, name="bench")
        assistant = Assistant.objects.create(organization=organization, name="Bench Support")
        widget = Widget.objects.create(organization=organization, assistant=assistant)
        knowledge_build(organization=organization, data=data)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

        def widget_chat(question: str, number: int):
            body = {"message": question, "widgetId": str(widget.id), "sessionId": f"bench-{number % 10}"}
            return client.post("/api/widget/chat", body, content_type="application/json")

        session = client.post(
            "/api/v1/sessions/", {"assistant_id": str(assistant.id)}, content_type="application/json"
        ).json()["data"]

        def session_message(question: str, number: int):
            return client.post(
                f"/api/v1/sessions/{session['id']}/messages",
                {"content": question},
                content_type="application/json",
            )

        for number, question in enumerate(questions):  # warm caches (embedder, candidate vectors)
            widget_chat(question, number)
        results = {}
        for name, call in (("widget_chat", widget_chat), ("session_message", session_message)):
            samples = []
            for number in range(requests):
                # Visitors rarely repeat a question word for word: embed every query afresh.
                embeddings._query_cache.clear()
                response = call(questions[number % len(questions)], number)
                if response.status_code >= 300:
                    raise RuntimeError(f"{name}: {response.status_code} {response.content[:200]!r}")
                samples.append(_phases(response["Server-Timing"]))
            results[name] = _summary(samples)
        return results
    finally:
        organization.delete()
        settings.LLM_MODEL, settings.LLM_PROVIDER = saved


def main() -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    import django

    from supportai.startup import process_start

    process_start()  # the embedded Postgres, as every process starts

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    results = run(requests=int(os.environ.get("BENCH_CHAT_REQUESTS", "60")))
    figures = {
        "widget_chat_median_ms": results["widget_chat"]["median_ms"],
        "widget_chat_p95_ms": results["widget_chat"]["p95_ms"],
        "session_message_median_ms": results["session_message"]["median_ms"],
        "session_message_p95_ms": results["session_message"]["p95_ms"],
        "widget_chat_phases_median_ms": results["widget_chat"]["phases_median_ms"],
        "session_message_phases_median_ms": results["session_message"]["phases_median_ms"],
    }
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
