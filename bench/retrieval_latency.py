"""Retrieval latency at 10k and 100k chunks in one organization (one organization per size),
with 20 other organizations' chunks (2,500 each) and the other size's organization in the same
table. Generating 100k+ MiniLM embeddings on
2 cores would take about an hour, so this benchmark INSERTS SYNTHETIC DATA directly:
Zipf-distributed synthetic words weighted with the product's own BM25 code (and the
matching per-organization term statistics), and random unit vectors as embeddings,
labelled with the default model so queries use the HNSW index. Queries then go through
`chunk_search` with their embeddings pre-computed (the query-embedding cache), so the
figures are retrieval only; the local embedder's query cost is measured separately.
The data is kept between runs (BENCH_LATENCY_FRESH=1 rebuilds it)."""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
VOCABULARY = 30_000
OTHER_ORGS = 20
OTHER_CHUNKS = 2_500
QUERIES = 200
SEED = 7


def _django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    import django

    from supportai.startup import process_start

    process_start()  # the embedded Postgres, as every process starts

    django.setup()


class Generator:
    def __init__(self) -> None:
        import numpy

        self.numpy = numpy
        self.random = numpy.random.default_rng(SEED)
        ranks = numpy.arange(1, VOCABULARY + 1)
        weights = 1.0 / ranks**1.07
        self.probabilities = weights / weights.sum()

    def words(self, count: int) -> list[str]:
        return [f"w{index}" for index in self.random.choice(VOCABULARY, size=count, p=self.probabilities)]

    def documents(self, lengths) -> list[list[str]]:
        flat = self.words(int(sum(lengths)))
        documents, position = [], 0
        for length in lengths:
            documents.append(flat[position : position + length])
            position += length
        return documents

    def vectors(self, count: int):
        vectors = self.random.standard_normal((count, 384)).astype("float32")
        return vectors / self.numpy.linalg.norm(vectors, axis=1, keepdims=True)


def _organization(slug: str):
    from organizations.models import Organization
    from organizations.services import organization_create

    existing = Organization.objects.filter(slug=slug).first()
    return existing or organization_create(
        name=slug, slug=slug, owner_email=f"{slug}@example.com", owner_password=os.urandom(16).hex()
    )


def _fill(organization, target: int, generator: Generator) -> float:
    """Add synthetic chunks until `organization` has `target`; returns seconds spent."""
    from django.db import transaction
    from pgvector import SparseVector

    from knowledge import retrieval
    from knowledge.embeddings import LOCAL_MODEL_NAME
    from knowledge.models import (
        LEXICAL_DIMENSIONS,
        Chunk,
        CorpusStatistic,
        KnowledgeDocument,
        KnowledgeSource,
    )
    from knowledge.services.indexing import _statistics_lock, _term_frequencies_apply

    have = Chunk.objects.for_organization(organization).count()
    if have >= target:
        return 0.0
    started = time.monotonic()
    source = KnowledgeSource.objects.for_organization(organization).filter(title="synthetic").first()
    if source is None:
        source = KnowledgeSource.objects.create(
            organization=organization,
            kind="file",
            title="synthetic",
            file_name="synthetic.txt",
            status="ready",
        )
    document, _ = KnowledgeDocument.objects.for_organization(organization).get_or_create(
        source=source, key="synthetic", defaults={"organization": organization, "content_hash": "synthetic"}
    )
    average_length = 120.0
    number = have
    while number < target:
        batch = min(2000, target - number)
        lengths = [max(5, int(length)) for length in generator.random.poisson(average_length, size=batch)]
        vectors = generator.vectors(batch)
        documents = generator.documents(lengths)
        rows, delta, total = [], Counter(), 0
        for index in range(batch):
            words = documents[index]
            counts = Counter(retrieval.term_dimension(word) for word in words)
            delta.update(counts.keys())
            total += len(words)
            rows.append(
                Chunk(
                    organization=organization,
                    source=source,
                    document=document,
                    chunk_no=number + index,
                    title="synthetic",
                    content=" ".join(words[:60]),
                    lexical=SparseVector(
                        retrieval.document_weights(counts, average_length=average_length), LEXICAL_DIMENSIONS
                    ),
                    lexical_length=len(words),
                    lexical_avgdl=average_length,
                    terms=sorted(counts),
                    embedding=vectors[index].tolist(),
                    embedding_model=LOCAL_MODEL_NAME,
                    embedding_dimensions=384,
                )
            )
        with transaction.atomic():
            statistics_row = _statistics_lock(organization=organization)
            Chunk.objects.unscoped().bulk_create(rows, batch_size=500)
            _term_frequencies_apply(organization=organization, delta=delta)
            CorpusStatistic.objects.for_organization(organization).filter(pk=statistics_row.pk).update(
                chunk_count=statistics_row.chunk_count + batch,
                total_length=statistics_row.total_length + total,
            )
        number += batch
        print(f"  {organization.slug}: {number}/{target} chunks", flush=True)
    KnowledgeSource.objects.for_organization(organization).filter(pk=source.pk).update(chunk_count=number)
    return time.monotonic() - started


def _fill_needed(organization, target: int) -> bool:
    from knowledge.models import Chunk

    return Chunk.objects.for_organization(organization).count() < target


def _percentiles(values: list[float]) -> dict:
    values = sorted(values)
    return {
        "p50_ms": round(statistics.median(values), 2),
        "p99_ms": round(values[max(0, int(len(values) * 0.99) - 1)], 2),
        "max_ms": round(values[-1], 2),
    }


def _measure(organization, generator: Generator) -> dict:
    from django.db import connection

    from knowledge import embeddings
    from knowledge.retrieval import chunk_search

    rng = random.Random(SEED)
    queries = [" ".join(f"w{rng.randint(30, 3000)}" for _ in range(4)) for _ in range(QUERIES)]
    embedder = embeddings.embedder_get()
    for text, vector in zip(queries, generator.vectors(len(queries)), strict=True):
        embeddings._query_cache[(embedder.name, text)] = vector.tolist()  # retrieval only, no model call
    connection.cursor().execute("ANALYZE knowledge_chunk")
    result = {}
    for mode in ("lexical", "vector", "hybrid"):
        for text in queries[:10]:
            chunk_search(organization=organization, query=text, k=5, mode=mode)  # warm the cache pages
        timings, empty = [], 0
        for text in queries:
            started = time.perf_counter()
            passages = chunk_search(organization=organization, query=text, k=5, mode=mode)
            timings.append((time.perf_counter() - started) * 1000)
            empty += not passages
        result[mode] = {**_percentiles(timings), "empty_results": empty}
        print(f"    {mode}: {result[mode]}", flush=True)
    return result


def _query_embedding_cost() -> dict:
    from knowledge.embeddings import LocalEmbedder

    embedder = LocalEmbedder()
    embedder.embed(["warm up"])
    timings = []
    for number in range(50):
        started = time.perf_counter()
        embedder.embed([f"how do I reset the router number {number} after a power cut?"])
        timings.append((time.perf_counter() - started) * 1000)
    return _percentiles(timings)


def _plans(organization) -> dict:
    from django.db import connection

    from knowledge import embeddings
    from knowledge.retrieval import scope_sql

    scope, params = scope_sql(organization=organization, assistant=None)
    vector = "[" + ",".join("0.05" for _ in range(384)) + "]"
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(
            f"EXPLAIN SELECT id FROM knowledge_chunk WHERE {scope} AND embedding_model = %s AND "  # noqa: S608
            "embedding_dimensions = 384 ORDER BY (embedding::vector(384)) <=> %s::vector(384) LIMIT 50",
            [*params, embeddings.LOCAL_MODEL_NAME, vector],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("COMMIT")
    return {"vector_plan_uses_hnsw": "chunk_embedding_384_hnsw" in plan}


def main() -> dict:
    _django()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    if os.environ.get("BENCH_LATENCY_FRESH") == "1":
        from organizations.models import Organization

        Organization.objects.filter(slug__startswith="bench-latency-").delete()
    generator = Generator()
    seconds = 0.0
    # Bulk loading: build the HNSW index once afterwards instead of maintaining it per row
    # (the same definition as knowledge/migrations/0001_initial.py).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS chunk_embedding_384_hnsw")
    for number in range(OTHER_ORGS):
        seconds += _fill(_organization(f"bench-latency-other-{number:02d}"), OTHER_CHUNKS, generator)
    result = {"other_organizations": OTHER_ORGS, "chunks_per_other_organization": OTHER_CHUNKS}
    stages = [int(value) for value in os.environ.get("BENCH_LATENCY_STAGES", "10000,100000").split(",")]
    # One organization per stage (all in the same table), so each is measured at its own size.
    stage_orgs = {target: _organization(f"bench-latency-main-{target // 1000}k") for target in stages}
    if any(_fill_needed(organization, target) for target, organization in stage_orgs.items()):
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS chunk_embedding_384_hnsw")
    for target, organization in stage_orgs.items():
        seconds += _fill(organization, target, generator)
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("DROP INDEX IF EXISTS chunk_embedding_384_hnsw")
        cursor.execute(
            "CREATE INDEX chunk_embedding_384_hnsw ON knowledge_chunk "
            "USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE embedding_dimensions = 384"
        )
    result["hnsw_build_seconds"] = round(time.monotonic() - started, 1)
    from knowledge.models import Chunk

    result["rows_in_table"] = Chunk.objects.unscoped().count()
    for target, organization in stage_orgs.items():
        print(f"  measuring at {target} chunks", flush=True)
        result[f"at_{target // 1000}k"] = _measure(organization, generator)
    result["synthetic_insert_seconds_this_run"] = round(seconds, 1)
    result["query_embedding_local_minilm"] = _query_embedding_cost()
    result.update(_plans(stage_orgs[stages[-1]]))
    return result


def report(result: dict) -> str:
    lines = ["| chunks in the org | mode | p50 ms | p99 ms | empty |", "|---|---|---|---|---|"]
    for size in [key for key in ("at_10k", "at_100k") if key in result]:
        for mode in ("lexical", "vector", "hybrid"):
            row = result[size][mode]
            lines.append(
                f"| {size[3:]} | {mode} | {row['p50_ms']} | {row['p99_ms']} | {row['empty_results']} |"
            )
    embed = result["query_embedding_local_minilm"]
    lines += [
        "",
        f"Plus the local query embedding: p50 {embed['p50_ms']} ms, p99 {embed['p99_ms']} ms. "
        f"{result['other_organizations']} other organizations x {result['chunks_per_other_organization']} chunks "
        f"in the same table ({result.get('rows_in_table', '?')} rows). Synthetic data (see above).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
