"""Loads what the first chat turn would otherwise pay for (the local embedder, the
multilingual one when an organization uses it, the language detector, litellm when the server
has a model or an organization added one in Settings › AI model).

Called from gunicorn's `post_worker_init` hook in a background thread: the worker serves
at once, and a question arriving during the load simply waits for it (the embedder
loads under a lock) instead of each worker's first visitor waiting ~10 s.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)


def engine_warm() -> None:
    from django.conf import settings

    try:
        from knowledge.embeddings import embedder_get

        if not settings.EMBEDDING_MODEL:  # a remote embedder has nothing to load
            embedder_get().embed(["warm up"])
        # The multilingual model (its file's hash is checked on load) when some organization uses it.
        if _multilingual_in_use():
            embedder_get(choice="multilingual").embed_queries(["warm up"])
        from knowledge.analysis import english_words, language_detect

        language_detect("warm up the language detector")
        english_words()  # the misspelling check's word list (~20 ms to read)
        # litellm takes ~4 s to import: the first answer by an organization's own model (with no
        # LLM_MODEL on the server) would otherwise wait for it in every web worker.
        if settings.LLM_MODEL or settings.LLM_ALLOWED_MODELS or _model_connections_exist():
            from chat.llm.litellm_provider import _lib

            _lib()
    except Exception:
        logger.warning("engine warm-up failed; the first question will load it", exc_info=True)


def _multilingual_in_use() -> bool:
    """Whether some organization searches with the multilingual embedder; False when the
    database cannot say (starting, restarting): the first question that needs the model loads
    it, and an outage the web tier answers with 503s is not logged here as a crash."""
    from organizations.models import Organization

    return _exists(Organization.objects.filter(knowledge_embedder="multilingual"), "the multilingual model")


def _model_connections_exist() -> bool:
    """Whether some organization added its own model (Settings › AI model); False when the
    database cannot say, like `_multilingual_in_use`."""
    from assistants.models import ModelConnection

    return _exists(ModelConnection.all_organizations.all(), "litellm")


def _exists(queryset, what: str) -> bool:
    from django.db import DatabaseError

    try:
        return queryset.exists()
    except DatabaseError as error:
        logger.warning("engine warm-up skipped %s: database unavailable (%s)", what, type(error).__name__)
        return False


def _warm_and_close() -> None:
    from django.db import connections

    try:
        engine_warm()
    finally:
        connections.close_all()  # this thread's own connection, not kept open for the worker's life


def engine_warm_in_background() -> threading.Thread:
    thread = threading.Thread(target=_warm_and_close, name="engine-warmup", daemon=True)
    thread.start()
    return thread
