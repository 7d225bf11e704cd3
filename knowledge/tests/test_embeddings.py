"""EMBEDDING_MODEL switches to a litellm provider (a real OpenAI-compatible server on
loopback here); the model is recorded per chunk, so vector spaces never mix."""

from __future__ import annotations

import pytest

from knowledge import retrieval, services
from knowledge.models import Chunk
from knowledge.tests.embedding_server import DIMENSIONS, EmbeddingServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider(settings):
    server = EmbeddingServer()
    settings.EMBEDDING_MODEL = "openai/toy-embedding"
    settings.EMBEDDING_API_BASE = server.url
    settings.EMBEDDING_API_KEY = "sk-provider-test"
    settings.EMBEDDING_TIMEOUT = 5
    yield server
    server.close()


def test_litellm_provider_embeds_and_is_recorded_per_chunk(tenant, provider):
    source = services.qa_create(
        organization=tenant.organization, question="When is the warehouse open?", answer="From dawn to dusk."
    )
    chunk = Chunk.objects.for_organization(tenant.organization).get(source=source)
    assert chunk.embedding_model == "openai/toy-embedding"
    assert chunk.embedding_dimensions == DIMENSIONS
    assert provider.requests[0]["auth"] == "Bearer sk-provider-test"
    assert provider.requests[0]["path"].endswith("/embeddings")
    passages = retrieval.chunk_search(organization=tenant.organization, query="warehouse open", mode="vector")
    assert passages[0].source_id == source.pk


def test_a_model_change_never_mixes_vector_spaces_and_reembeds(tenant, provider, settings):
    services.qa_create(
        organization=tenant.organization, question="When is the warehouse open?", answer="At dawn."
    )
    settings.EMBEDDING_MODEL = ""  # back to the local MiniLM
    assert (
        retrieval.chunk_search(organization=tenant.organization, query="warehouse hours", mode="vector") == []
    )
    # Lexical retrieval still answers while the vectors are stale.
    assert retrieval.chunk_search(organization=tenant.organization, query="warehouse hours")
    assert services.chunks_reembed(organization=tenant.organization) == 1
    chunk = Chunk.objects.for_organization(tenant.organization).get()
    assert chunk.embedding_model == "local/all-MiniLM-L6-v2" and chunk.embedding_dimensions == 384
    assert retrieval.chunk_search(organization=tenant.organization, query="warehouse hours", mode="vector")


def test_provider_outage_degrades_to_lexical_and_is_repaired_later(tenant, provider):
    provider.fail = True
    source = services.qa_create(
        organization=tenant.organization, question="Is parking free?", answer="Yes, for customers."
    )
    chunk = Chunk.objects.for_organization(tenant.organization).get(source=source)
    assert chunk.embedding_model == "" and chunk.embedding is None  # stored, searchable lexically
    passages = retrieval.chunk_search(organization=tenant.organization, query="free parking")
    assert passages[0].source_id == source.pk
    from core.errors import UpstreamError

    with pytest.raises(UpstreamError):
        retrieval.chunk_search(organization=tenant.organization, query="free parking", mode="vector")
    provider.fail = False
    assert services.chunks_reembed(organization=tenant.organization) == 1
    assert Chunk.objects.for_organization(tenant.organization).get().embedding_model == "openai/toy-embedding"
