"""Knowledge writes. Other apps import from here: `from knowledge import services`."""

from knowledge.services.embedder_switch import (
    embedder_switch_progress,
    embedder_switch_run,
    embedder_switch_start,
)
from knowledge.services.indexing import (
    chunks_reanalyse,
    chunks_reembed,
    document_store,
    documents_remove,
    documents_store,
    lexical_statistics_rebuild,
)
from knowledge.services.ingestion import (
    ScrapedPage,
    TransientIngestionError,
    files_ingest,
    page_scrape,
    source_fail,
    source_ingest,
    source_sync,
    sources_due_for_sync,
    sources_lost,
    sources_stuck,
)
from knowledge.services.sources import (
    SourceExists,
    assistant_sources_delete,
    file_source_create,
    qa_create,
    qa_update,
    source_delete,
    source_retry,
    url_source_create,
)

__all__ = [
    "ScrapedPage",
    "SourceExists",
    "assistant_sources_delete",
    "TransientIngestionError",
    "chunks_reanalyse",
    "chunks_reembed",
    "document_store",
    "embedder_switch_progress",
    "embedder_switch_run",
    "embedder_switch_start",
    "documents_remove",
    "documents_store",
    "files_ingest",
    "lexical_statistics_rebuild",
    "file_source_create",
    "page_scrape",
    "qa_create",
    "qa_update",
    "source_delete",
    "source_fail",
    "source_ingest",
    "source_retry",
    "source_sync",
    "sources_due_for_sync",
    "sources_lost",
    "sources_stuck",
    "url_source_create",
]
