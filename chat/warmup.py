"""Loads what the first chat turn would otherwise pay for (the local embedder, the
multilingual one when an organization uses it, the language detector, litellm).

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
        from knowledge.analysis import language_detect

        language_detect("warm up the language detector")
        if settings.LLM_MODEL:
            from chat.llm.litellm_provider import _lib

            _lib()
    except Exception:
        logger.warning("engine warm-up failed; the first question will load it", exc_info=True)


def _multilingual_in_use() -> bool:
    """Whether some organization searches with the multilingual embedder; False when the
    database cannot say (starting, restarting): the first question that needs the model loads
    it, and an outage the web tier answers with 503s is not logged here as a crash."""
    from django.db import DatabaseError

    from organizations.models import Organization

    try:
        return Organization.objects.filter(knowledge_embedder="multilingual").exists()
    except DatabaseError as error:
        logger.warning(
            "engine warm-up skipped the multilingual model: database unavailable (%s)", type(error).__name__
        )
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
