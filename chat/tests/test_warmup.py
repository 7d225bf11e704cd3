"""The web worker's warm-up loads the embedders the organizations use."""

from __future__ import annotations

import pytest

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
