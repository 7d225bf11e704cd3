"""Loads what the first chat turn would otherwise pay for (the local embedder, the language
detector, litellm).

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
