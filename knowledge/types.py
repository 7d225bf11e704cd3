"""What retrieval returns to the answering engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    import numpy


@dataclass(frozen=True)
class Passage:
    source_id: UUID
    chunk_id: UUID
    source_type: str  # "qa" | "file" | "url"
    title: str
    url: str  # "" if none
    file_name: str  # "" if none
    page: int | None
    content: str  # the full chunk text; for a Q&A pair, the question and the answer
    snippet: str  # a short excerpt (<= 300 characters)
    score: float
    question: str = ""  # Q&A pairs only
    answer: str = ""  # Q&A pairs only
    language: str = "en"  # the chunk's language (ISO 639-1), as knowledge.analysis detected it
    # The chunk's stored vector (of `chunk_text_for_index`) when it is the current embedder's, as
    # a read-only numpy float32 array (its stored values exactly): the answering engine scores
    # relevance with it instead of embedding the chunk again.
    embedding: numpy.ndarray | None = field(default=None, repr=False, compare=False)
    # A Q&A pair's question's stored vector (`Chunk.question_embedding`), likewise, when it is
    # the current embedder's.
    question_embedding: numpy.ndarray | None = field(default=None, repr=False, compare=False)

    def as_source(self) -> dict:
        return {
            "source_id": str(self.source_id),
            "type": self.source_type,
            "title": self.title,
            "url": self.url,
            "file": self.file_name,
            "page": self.page,
            "snippet": self.snippet,
            "score": round(float(self.score), 6),
        }


@dataclass(frozen=True)
class ChunkDraft:
    """A piece of a document before it is weighted, embedded and stored."""

    content: str
    heading: str = ""
    page: int | None = None
    # A Q&A pair's question: embedded on its own as well (`Chunk.question_embedding`).
    question: str = ""
