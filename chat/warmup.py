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
        from organizations.models import Organization

        # The multilingual model (its file's hash is checked on load) when some organization uses it.
        if Organization.objects.filter(knowledge_embedder="multilingual").exists():
            embedder_get(choice="multilingual").embed_queries(["warm up"])
        from knowledge.analysis import language_detect

        language_detect("warm up the language detector")
        if settings.LLM_MODEL:
            from chat.llm.litellm_provider import _lib

            _lib()
    except Exception:
        logger.warning("engine warm-up failed; the first question will load it", exc_info=True)


def engine_warm_in_background() -> threading.Thread:
    thread = threading.Thread(target=engine_warm, name="engine-warmup", daemon=True)
    thread.start()
    return thread
