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
