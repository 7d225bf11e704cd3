"""The knowledge base the chat benchmarks answer from: one organization ("bench-kb") with
one assistant, a few support Q&A pairs and 10,000 chunks of real text (BEIR SciFact
abstracts from /work/shared/bench), a widget, an API key and sessions to post into.

Chunks are written through the knowledge app's own indexing service
(`knowledge.services.indexing.document_store`: BM25 sparse vectors, per-organization term
statistics, pgvector embeddings), in-process — not through the ingestion queue — for speed:
50 abstracts per document. The Q&A pairs get real embeddings; the 10,000 filler chunks get
deterministic pseudo-random unit vectors under the embedder's name (embedding 10k passages
on these 2 shared cores takes tens of minutes). Vector search costs the same for any unit
vectors; answer quality is not what this bench measures. Every query embedding during the
bench is real. The organization is reused by later runs."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import requests

from bench.common import ROOT, UNLIMITED

SLUG = "bench-kb"
TARGET_CHUNKS = int(os.environ.get("BENCH_KB_CHUNKS", 10_000))
CORPUS = Path(os.environ.get("BENCH_CORPUS", "/work/shared/bench/scifact/corpus.jsonl"))
SESSIONS = 64
FAQ = [
    (
        "How do I reset my password?",
        'Go to Settings > Security and click "Reset Password"; a link arrives by email.',
    ),
    ("What are your business hours?", "We are open Monday to Friday, 9 AM to 6 PM EST."),
    ("Do you ship internationally?", "Yes, we ship to over 40 countries; delivery takes 5-10 business days."),
    ("What is your refund policy?", "You can get a full refund within 30 days of purchase."),
    (
        "How do I cancel my subscription?",
        "Open Billing, choose your plan and click Cancel; it ends at the period's end.",
    ),
]


class FillerEmbedder:
    """Unit vectors seeded by the text, under the real embedder's name and dimensions."""

    def __init__(self, inner) -> None:
        self.name = inner.name
        self.dimensions = len(inner.embed(["dimension probe"])[0])

    def embed(self, texts: list[str]) -> list[list[float]]:
        import numpy

        vectors = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")
            vector = numpy.random.default_rng(seed).standard_normal(self.dimensions)
            vectors.append((vector / numpy.linalg.norm(vector)).tolist())
        return vectors


def _django() -> None:
    import sys

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    from supportai.startup import process_start

    process_start()  # the embedded Postgres, as every process starts

    django.setup()


def knowledge_base_ensure() -> dict:
    """The bench organization with its 10k-chunk knowledge base (built once, then reused)."""
    _django()
    from assistants.services import assistant_create
    from knowledge.chunking import text_chunk
    from knowledge.embeddings import embedder_get
    from knowledge.models import Chunk, KnowledgeSource
    from knowledge.services.indexing import content_hash, document_store, source_counts_refresh
    from knowledge.services.sources import qa_create
    from organizations.models import Organization
    from organizations.services import api_key_create, organization_create
    from widget.services import widget_create

    organization = Organization.objects.filter(slug=SLUG).first()
    if organization is None:
        organization = organization_create(
            name="Bench knowledge base", slug=SLUG, rate_limit_per_hour=UNLIMITED
        )
    organization.rate_limit_per_hour = UNLIMITED
    organization.save(update_fields=["rate_limit_per_hour"])
    from assistants.models import Assistant

    assistant = Assistant.objects.for_organization(organization).first() or assistant_create(
        organization=organization, name="Bench assistant"
    )
    # The benches measure answered turns: unanswered ones in a row must not hand the
    # conversation to a person (which stops the assistant answering in it).
    Assistant.objects.for_organization(organization).filter(pk=assistant.pk).update(
        handoff_after_unanswered=0
    )
    if (
        not KnowledgeSource.objects.for_organization(organization)
        .filter(kind=KnowledgeSource.Kind.QA)
        .exists()
    ):
        for question, answer in FAQ:
            qa_create(organization=organization, question=question, answer=answer, assistant=assistant)
    chunks = Chunk.objects.for_organization(organization)
    started = time.monotonic()
    if chunks.count() < TARGET_CHUNKS:
        source = (
            KnowledgeSource.objects.for_organization(organization)
            .filter(kind=KnowledgeSource.Kind.FILE)
            .first()
        )
        if source is None:
            source = KnowledgeSource.objects.create(
                organization=organization,
                assistant=assistant,
                kind=KnowledgeSource.Kind.FILE,
                title="SciFact abstracts",
                file_name="scifact-corpus.jsonl",
                file_type=KnowledgeSource.FileType.TEXT,
                status=KnowledgeSource.Status.READY,
            )
        embedder = FillerEmbedder(embedder_get())
        have = chunks.count()
        done_keys = set(source.documents.values_list("key", flat=True))
        batch: list[dict] = []

        def store(records: list[dict]) -> int:
            key = f"scifact-{records[0]['_id']}-{records[-1]['_id']}"
            if key in done_keys:
                return 0
            text = "\n\n".join(f"{record['title']}\n\n{record['text']}" for record in records)
            drafts = text_chunk(text, max_chars=600)[: TARGET_CHUNKS - have]
            if drafts:
                document_store(
                    source=source,
                    key=key,
                    title=records[0]["title"],
                    drafts=drafts,
                    text_hash=content_hash(text),
                    embedder=embedder,
                )
            return len(drafts)

        with CORPUS.open() as corpus:
            for line in corpus:
                if have >= TARGET_CHUNKS:
                    break
                batch.append(json.loads(line))
                if len(batch) == 50:
                    have += store(batch)
                    batch = []
            if batch and have < TARGET_CHUNKS:
                have += store(batch)
        source_counts_refresh(source=source)
    from widget.models import Widget

    widget = Widget.objects.for_organization(organization).first() or widget_create(
        organization=organization, assistant_id=assistant.id, title="Bench widget"
    )
    api_key, secret = api_key_create(organization=organization, name=f"bench {int(time.time())}")
    return {
        "organization_id": str(organization.id),
        "assistant_id": str(assistant.id),
        "widget_id": str(widget.id),
        "client_id": api_key.client_id,
        "client_secret": secret,
        "chunks": chunks.count(),
        "build_seconds": round(time.monotonic() - started, 1),
    }


def chat_ready(context: dict) -> dict | str:
    """Prepared ids for the chat scenarios (cached in `context`), or why they cannot run."""
    if "chat_prepared" in context:
        return context["chat_prepared"]
    probe = requests.post(
        context["base_url"] + "/api/v1/sessions", json={}, headers=context["headers"], timeout=30
    )
    if (
        probe.status_code == 404
        and "not found" in probe.text.lower()
        and "assistant" not in probe.text.lower()
    ):
        context["chat_prepared"] = "the sessions API is not in this build (chat branch not merged)"
        return context["chat_prepared"]
    kb = knowledge_base_ensure()
    key = {"client_id": kb["client_id"], "client_secret": kb["client_secret"]}
    headers = {"X-API-Key": key["client_id"], "X-API-Secret": key["client_secret"]}
    session_ids = []
    for index in range(SESSIONS):
        response = requests.post(
            context["base_url"] + "/api/v1/sessions",
            json={"assistant_id": kb["assistant_id"], "visitor_id": f"bench-{index}"},
            headers=headers,
            timeout=30,
        )
        response.raise_for_status()
        session_ids.append(response.json()["data"]["id"])
    prepared = {**kb, "session_ids": session_ids, "key": key, "headers": headers}
    context["chat_prepared"] = prepared
    print(f"knowledge base: {kb['chunks']} chunks (built in {kb['build_seconds']} s)", flush=True)
    return prepared
