"""What makes two knowledge sources the same, as one sha256 per source
(`KnowledgeSource.fingerprint`): an operator who uploads the same file twice, adds the same page
again or types the same Q&A pair twice gets the source already there, not a second copy.

Why it matters beyond a tidy list: identical passages fill two of the few places retrieval
hands the answerer, and the relevance gate measures how much closer a candidate is than the
closest *other* one (chat/grounding.py): an identical copy is exactly as close, so the margin
collapses and an answer became a refusal (docs/knowledge.md, "Duplicate sources").

The migration that added the field (knowledge/0010) fills it with these same functions, so
keep them stable: a change here makes older sources look different from new uploads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from urllib.parse import urlsplit

_READ_BYTES = 1024 * 1024


def file_fingerprint(chunks: Iterable[bytes]) -> str:
    """A file's bytes (read in pieces: uploads may be spooled to disk)."""
    digest = hashlib.sha256(b"file\n")
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def uploaded_file_fingerprint(uploaded_file) -> str:
    uploaded_file.seek(0)
    fingerprint = file_fingerprint(iter(lambda: uploaded_file.read(_READ_BYTES), b""))
    uploaded_file.seek(0)
    return fingerprint


def url_normalise(url: str) -> str:
    """A URL the fetcher checked (`core.fetcher.url_check(...).url`: scheme and host already
    lower-case, no fragment) as one spelling: the default port left out, "/help/" read as
    "/help", an empty path as "/"; the query kept (it may select another page)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    authority = host if port in (None, {"http": 80, "https": 443}.get(scheme)) else f"{host}:{port}"
    path = parts.path.rstrip("/") or "/"
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{authority}{path}{query}"


def url_fingerprint(*, normalised_url: str, crawl: bool) -> str:
    """A page, or a crawl from it: a crawl that starts at a page already added on its own is
    not the same source (it adds the site's other pages)."""
    kind = "crawl" if crawl else "page"
    return hashlib.sha256(f"url\n{kind}\n{normalised_url}".encode()).hexdigest()


def qa_fingerprint(*, question: str, answer: str) -> str:
    """A Q&A pair's question and answer as stored (normalised by `text_normalise`), case
    ignored. The same question with another answer is another pair."""
    text = json.dumps([question.casefold(), answer.casefold()], ensure_ascii=False)
    return hashlib.sha256(f"qa\n{text}".encode()).hexdigest()
