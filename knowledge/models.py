"""Knowledge sources, the documents they produced, their chunks, and the per-organization
term statistics that make BM25 ranking possible inside Postgres.

A source is what an operator added (a Q&A pair, a file, a URL or a crawled site). Ingesting
it yields documents (one per file, one per fetched page, one per Q&A pair), and each
document is cut into chunks. A chunk carries two vectors:

- `lexical`: BM25 term weights of its text as a `sparsevec` (terms hashed into 2^20
  dimensions). The query side multiplies by each term's IDF, read from `TermStatistic`,
  so ranking by inner product is BM25 (see `knowledge.retrieval`).
- `embedding`: the semantic vector of the configured embedder, stored with the model's
  name and dimension count so vectors of different models are never compared; a Q&A
  pair's chunk also holds `question_embedding`, its question's vector alone.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from pgvector.django import HalfVectorField, SparseVectorField, VectorField

from core.tenancy import TenantManager, TenantModel

LEXICAL_DIMENSIONS = 2**20
DEFAULT_EMBEDDING_DIMENSIONS = 384


def upload_path(instance, filename: str) -> str:
    # Stored under a random name: the operator's file name is kept only as data.
    return f"knowledge/{instance.organization_id}/{uuid.uuid4().hex}"


class KnowledgeSource(TenantModel):
    class Kind(models.TextChoices):
        QA = "qa", "Q&A pair"
        FILE = "file", "File"
        URL = "url", "Web page"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    class FileType(models.TextChoices):
        PDF = "pdf", "PDF"
        TEXT = "text", "Plain text"
        MARKDOWN = "markdown", "Markdown"
        HTML = "html", "HTML"
        DOCX = "docx", "Word (DOCX)"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    # None = organization-wide knowledge (every assistant answers from it); set = only
    # that assistant's.
    assistant = models.ForeignKey(
        "assistants.Assistant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    title = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True, default="")
    chunk_count = models.PositiveIntegerField(default=0)
    document_count = models.PositiveIntegerField(default=0)

    # Q&A pairs
    question = models.TextField(blank=True, default="")
    answer = models.TextField(blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    origin = models.CharField(max_length=100, blank=True, default="", help_text="Q&A `source` field")
    made_from_question = models.TextField(
        blank=True, default="", help_text="the visitor's question this Q&A pair was made from (overview)"
    )

    # Files
    file = models.FileField(upload_to=upload_path, blank=True, default="")
    file_name = models.CharField(max_length=255, blank=True, default="")
    file_type = models.CharField(max_length=10, choices=FileType.choices, blank=True, default="")
    file_size = models.PositiveBigIntegerField(default=0)
    page_count = models.PositiveIntegerField(default=0)

    # URLs
    url = models.URLField(max_length=2000, blank=True, default="")
    canonical_url = models.URLField(max_length=2000, blank=True, default="")
    crawl = models.BooleanField(default=False)
    max_pages = models.PositiveIntegerField(default=1)
    sync_interval_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="Re-fetch every N hours; empty = never"
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)

    # sha256 of what makes two sources the same (`knowledge.duplicates`): a file's bytes, a
    # page's normalised URL (and whether it is crawled), a Q&A pair's question and answer.
    # Adding one whose fingerprint a source of the same scope already has returns that source.
    fingerprint = models.CharField(max_length=64, blank=True, default="")

    # Worker bookkeeping
    attempts = models.PositiveIntegerField(default=0)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "kind", "-created_at"], name="ks_org_kind_created"),
            models.Index(
                fields=["organization", "fingerprint"],
                name="ks_org_fingerprint",
                condition=~models.Q(fingerprint=""),
            ),
        ]

    def __str__(self) -> str:
        return self.title or self.question[:80] or self.url or self.file_name

    @property
    def display_title(self) -> str:
        return self.title or self.question or self.url or self.file_name

    @property
    def unpicked(self) -> bool:
        """Pending for longer than any healthy worker takes to start it: its message was lost,
        or no worker is connected to the broker (issue 12: it used to spin forever)."""
        from django.conf import settings
        from django.utils import timezone

        if self.status != self.Status.PENDING or self.updated_at is None:
            return False
        waited = (timezone.now() - self.updated_at).total_seconds()
        return waited > settings.KNOWLEDGE_UNPICKED_AFTER_SECONDS

    @property
    def display_error(self) -> str:
        """What the operator should read: the failure, or why a pending source is not moving."""
        if self.unpicked:
            from django.conf import settings

            minutes = max(1, round(settings.KNOWLEDGE_UNPICKED_AFTER_SECONDS / 60))
            return (
                f"No worker has picked this up in over {minutes} minute{'s' if minutes != 1 else ''}: "
                "check that the Celery worker is running and can reach its broker (see /readyz), "
                "then Retry."
            )
        return self.error


class KnowledgeDocument(TenantModel):
    """One unit a source produced: the Q&A pair, the file, or one fetched page."""

    source = models.ForeignKey(KnowledgeSource, on_delete=models.CASCADE, related_name="documents")
    key = models.CharField(max_length=2000, help_text="page URL, file name or 'qa'")
    title = models.CharField(max_length=500, blank=True, default="")
    url = models.CharField(max_length=2000, blank=True, default="")
    content_hash = models.CharField(max_length=64, help_text="sha256 of the extracted text")
    # `knowledge.chunking.PARSER_VERSION` when its chunks were cut (0: before versions were
    # recorded); `manage.py knowledge_reparse` cuts older ones again.
    parser_version = models.PositiveSmallIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "key"], name="unique_document_key_per_source")
        ]


class Chunk(TenantModel):
    source = models.ForeignKey(KnowledgeSource, on_delete=models.CASCADE, related_name="chunks")
    document = models.ForeignKey(KnowledgeDocument, on_delete=models.CASCADE, related_name="chunks")
    # Copied from the source so retrieval filters organization and assistant without a join.
    assistant = models.ForeignKey(
        "assistants.Assistant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    chunk_no = models.PositiveIntegerField()
    title = models.CharField(max_length=500, blank=True, default="")
    heading = models.CharField(max_length=500, blank=True, default="")
    url = models.CharField(max_length=2000, blank=True, default="")
    page = models.PositiveIntegerField(null=True, blank=True)
    content = models.TextField()

    lexical = SparseVectorField(dimensions=LEXICAL_DIMENSIONS)
    lexical_length = models.PositiveIntegerField(help_text="BM25 document length (terms)")
    lexical_avgdl = models.FloatField(help_text="organization's average length when weighted")
    # The same term dimensions as an array: BM25 ranks only the chunks that contain one of the
    # query's terms (in a large organization, one of its rarer terms), found through the GIN
    # index on the narrow copy `ChunkLexical.terms` that a trigger keeps from this column.
    terms = ArrayField(models.IntegerField(), default=list, blank=True)
    # The language the chunk's terms were analysed in (knowledge.analysis: stop words, stemmer),
    # detected from its text when it was indexed. Chunks indexed before languages were
    # detected are English, as they were analysed.
    language = models.CharField(max_length=8, default="en")

    # Untyped `vector` column: each row says which model (and so which dimension count)
    # produced it; the HNSW index is a partial expression index per dimension count.
    embedding = VectorField(null=True, blank=True)
    embedding_model = models.CharField(max_length=200, blank=True, default="")
    embedding_dimensions = models.PositiveSmallIntegerField(default=0)
    # A Q&A pair's question on its own, by the same embedder as `embedding` (so the one
    # `embedding_model` covers both and re-embedding rewrites both): retrieval scores a Q&A
    # chunk by the better of question-to-question and question-to-(question+answer), since a
    # visitor's paraphrase is closest to the pair's question. Null on every other chunk.
    question_embedding = VectorField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["document", "chunk_no"], name="unique_chunk_no_per_document")
        ]
        indexes = [
            models.Index(fields=["organization", "assistant"], name="chunk_org_assistant"),
            models.Index(fields=["organization", "embedding_model"], name="chunk_org_model"),
        ]


class ChunkEmbeddingStage(TenantModel):
    """A chunk's vector from the embedder its organization is switching to, kept aside until
    every chunk has one (`knowledge.services.embedder_switch`): search keeps ranking the
    chunks' current vectors meanwhile, and one transaction then swaps all of them in, so no
    search ever compares vectors of two models."""

    chunk = models.OneToOneField(Chunk, on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=200)
    embedding = VectorField()
    question_embedding = VectorField(null=True, blank=True)  # a Q&A pair's question (Chunk's)

    class Meta:
        indexes = [models.Index(fields=["organization", "model"], name="chunk_stage_org_model")]


class ChunkCopy(models.Model):
    """What a narrow, trigger-kept copy of a chunk (`ChunkVector`, `ChunkLexical`) holds
    besides its own columns: the chunk it copies (its primary key; the row goes with the chunk
    through an ON DELETE CASCADE key the migration adds, Django's own constraint left out) and
    the organization and assistant that scope a search. Each copy's organization index is in
    its Meta."""

    chunk = models.OneToOneField(
        Chunk, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    organization = models.ForeignKey(
        "organizations.Organization",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # each copy's Meta.indexes has one that leads with it
        related_name="+",
    )
    assistant_id = models.UUIDField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        abstract = True


class ChunkVector(ChunkCopy):
    """A narrow, half-precision copy of each embedded chunk's vector, for exact vector search.

    An exact search compares the question with every chunk of the organization, and a chunk
    row is wide (text, BM25 sparse vector, term array and the float32 vector: ~2.8 kB), so the
    scan read ~2,850 buffers for 10,000 chunks and most of its time went into walking rows,
    not into distances. These rows hold only what that search filters and orders by (~0.8 kB;
    a Q&A pair's also its question's vector),
    so it reads ~1,150; the few best are then re-scored with the chunk's own float32 vector
    (`knowledge.retrieval.vector_ranking`; when a bound on half precision's error cannot prove
    that window held the top, every chunk is ranked in float32), so scores and order are exactly
    the full-precision ones (docs/knowledge.md, "Exact search reads narrow copies").

    Postgres keeps this table in step with `Chunk` (a trigger on insert, and on update of the
    vector, its model, the organization or the assistant; rows go with their chunk through an
    ON DELETE CASCADE key): every writer of chunks, including bulk and raw SQL ones, keeps it
    right without knowing it exists. Application code only reads it. Migration
    `knowledge/0008_chunk_vector` creates the trigger and fills the table.
    """

    embedding_model = models.CharField(max_length=200)
    embedding_dimensions = models.PositiveSmallIntegerField()
    embedding = HalfVectorField()
    question_embedding = HalfVectorField(null=True, blank=True)  # a Q&A pair's question (Chunk's)

    class Meta:
        indexes = [models.Index(fields=["organization", "embedding_model"], name="chunkvector_org_model")]

    def __str__(self) -> str:
        return f"{self.embedding_model} vector of chunk {self.chunk_id}"


class ChunkLexical(ChunkCopy):
    """A narrow copy of each chunk's BM25 side, for lexical search: its term array (GIN-indexed)
    and its sparse BM25 vector, with the organization and assistant that scope a search.

    The BM25 statement scores every chunk that holds one of the query's terms, and a chunk
    row is wide (text, float32 vectors, ~2.8 kB), its sparse vector compressed inline, so the
    statement visited a heap page and decompressed the vector for nearly every candidate, and
    the `terms` GIN index on the chunks could only narrow the candidates in large
    organizations. These rows hold only what that statement filters and scores by (~0.6 kB,
    stored uncompressed), so it reads ~14 rows a page with no decompression, and every search,
    small organization or large, looks its candidates up through the GIN index here. Scores
    are the same expression on the same values (`knowledge.retrieval.lexical_ranking`).

    Postgres keeps this table in step with `Chunk` (a trigger on insert, and on update of the
    sparse vector, the terms, the organization or the assistant; rows go with their chunk
    through an ON DELETE CASCADE key), as for `ChunkVector`: every writer of chunks keeps it
    right without knowing it exists. Application code only reads it. Migration
    `knowledge/0009_chunk_lexical` creates the trigger and fills the table.
    """

    terms = ArrayField(models.IntegerField())
    lexical = SparseVectorField(dimensions=LEXICAL_DIMENSIONS)

    class Meta:
        indexes = [
            GinIndex(fields=["terms"], name="chunklexical_terms_gin"),
            # Lets the planner intersect the GIN lookup with the organization where a term is
            # common in other organizations' knowledge.
            models.Index(fields=["organization"], name="chunklexical_org"),
        ]

    def __str__(self) -> str:
        return f"BM25 terms of chunk {self.chunk_id}"


class TermStatistic(TenantModel):
    """How many chunks of an organization contain a (hashed) term: BM25's document frequency."""

    term = models.IntegerField(help_text="hashed term = sparse vector dimension")
    document_frequency = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "term"], name="unique_term_per_org")]


class CorpusStatistic(TenantModel):
    """Chunk count and total length of an organization's chunks (BM25's N and avgdl)."""

    chunk_count = models.BigIntegerField(default=0)
    total_length = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="unique_corpus_statistic_per_org")
        ]

    @property
    def average_length(self) -> float:
        return self.total_length / self.chunk_count if self.chunk_count else 0.0
