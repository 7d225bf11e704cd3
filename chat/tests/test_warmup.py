"""The web worker's warm-up loads the embedders the organizations use, and litellm when some
model may answer."""

from __future__ import annotations

import pytest

from assistants.models import ModelConnection
from chat.llm import litellm_provider
from chat.warmup import engine_warm
from knowledge import embeddings

pytestmark = pytest.mark.django_db


def test_the_multilingual_model_is_loaded_only_when_an_organization_uses_it(tenant, monkeypatch):
    fresh = embeddings.MultilingualEmbedder()
    monkeypatch.setattr(embeddings, "_multilingual", fresh)
    engine_warm()
    assert fresh._model is None
    tenant.organization.knowledge_embedder = "multilingual"
    tenant.organization.save(update_fields=["knowledge_embedder"])
    engine_warm()
    assert fresh._model is not None


def test_a_database_outage_skips_the_multilingual_model_without_a_traceback(tenant, monkeypatch, caplog):
    """The warm-up runs in each web worker's background thread; a database that is restarting
    (the chaos test's Postgres restart) is a warning line, not a logged crash."""
    from django.db import OperationalError, connection

    tenant.organization.knowledge_embedder = "multilingual"
    tenant.organization.save(update_fields=["knowledge_embedder"])
    fresh = embeddings.MultilingualEmbedder()
    monkeypatch.setattr(embeddings, "_multilingual", fresh)

    def closed(execute, sql, params, many, context):
        raise OperationalError("consuming input failed: server closed the connection unexpectedly")

    with connection.execute_wrapper(closed), caplog.at_level("WARNING", logger="chat.warmup"):
        engine_warm()
    assert fresh._model is None
    assert "database unavailable (OperationalError)" in caplog.text
    assert not any(record.exc_info for record in caplog.records)


def test_litellm_is_loaded_when_an_organization_added_its_own_model(tenant, monkeypatch, settings):
    """Found on a walk: with no LLM_MODEL on the server and a model added in Settings › AI
    model, each web worker's first answer by that model waited ~4-6 s for litellm's import."""
    settings.LLM_MODEL = ""
    settings.LLM_ALLOWED_MODELS = []
    monkeypatch.setattr(litellm_provider, "_litellm", None)
    engine_warm()
    assert litellm_provider._litellm is None  # the offline answerer alone needs no litellm
    ModelConnection.objects.create(
        organization=tenant.organization, provider="openai", model="gpt-4o-mini", name="openai/gpt-4o-mini"
    )
    engine_warm()
    assert litellm_provider._litellm is not None


def test_the_misspelling_word_list_is_read_by_the_warm_up(db):
    from knowledge import analysis

    analysis.english_words.cache_clear()
    engine_warm()
    assert analysis.english_words.cache_info().currsize == 1
    assert "password" in analysis.english_words()
