"""Any-language retrieval: how often `chunk_search` puts the right passage first when the
visitor writes English, Spanish, German, French or Portuguese, against English knowledge
(cross-language for all but English) and against knowledge written in the visitor's own
language. The set (`bench/data/multilingual.json`, written for this project): 20 help-centre
topics of a shop, each a passage in the five languages and one visitor question per language
worded differently from the passage. Each knowledge base (one per language, 20 documents)
is built through the product's indexing code in a throw-away organization."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "multilingual.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
MODES = ("lexical", "vector", "hybrid")


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    import django

    from supportai.startup import process_start

    process_start()  # the embedded Postgres, as every process starts

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def knowledge_build(*, organization, data: dict, language: str) -> dict[str, str]:
    """The set's passages in `language` as one document each; returns {topic id: source id}."""
    from knowledge.chunking import text_chunk
    from knowledge.models import KnowledgeSource
    from knowledge.services.indexing import content_hash, document_store, source_counts_refresh

    ids = {}
    for topic in data["topics"]:
        text = topic["passages"][language]
        title = text.split(":", 1)[0]
        source = KnowledgeSource.objects.create(
            organization=organization,
            kind=KnowledgeSource.Kind.FILE,
            title=title,
            file_name=f"{topic['id']}-{language}.txt",
            file_type=KnowledgeSource.FileType.TEXT,
            status=KnowledgeSource.Status.READY,
        )
        document_store(
            source=source, key=topic["id"], title=title, drafts=text_chunk(text), text_hash=content_hash(text)
        )
        source_counts_refresh(source=source)
        ids[topic["id"]] = str(source.id)
    return ids


def _right_first(*, organization, data: dict, ids: dict[str, str], language: str) -> dict:
    from knowledge.retrieval import chunk_search

    figures = {}
    for mode in MODES:
        first = 0
        for topic in data["topics"]:
            passages = chunk_search(
                organization=organization, query=topic["questions"][language], k=5, mode=mode
            )
            first += bool(passages) and str(passages[0].source_id) == ids[topic["id"]]
        figures[mode] = first
    return figures


def _organization():
    from organizations.services import organization_create

    stamp = uuid.uuid4().hex[:8]
    return organization_create(
        name=f"bench multilingual {stamp}", slug=f"bench-multilingual-{stamp}",
        owner_email=f"multilingual-{stamp}@example.com", owner_password=uuid.uuid4().hex,
    )  # fmt: skip


def run() -> dict:
    from knowledge.embeddings import embedder_get

    data = json.loads(DATA.read_text())
    languages = data["languages"]
    result: dict = {"topics": len(data["topics"]), "rows": {}}
    organizations = {}
    try:
        ids = {}
        for language in languages:
            organizations[language] = _organization()
            ids[language] = knowledge_build(
                organization=organizations[language], data=data, language=language
            )
        result["embedder"] = embedder_get().name
        for language in languages:
            row = {
                "english_knowledge": _right_first(
                    organization=organizations["en"], data=data, ids=ids["en"], language=language
                ),
                "same_language_knowledge": _right_first(
                    organization=organizations[language], data=data, ids=ids[language], language=language
                ),
            }
            result["rows"][language] = row
            print(f"  {language}: {row}", flush=True)
    finally:
        for organization in organizations.values():
            organization.delete()
    return result


def main() -> dict:
    _setup()
    return {"default": run()}


def tables(result: dict) -> list[dict]:
    """Answer trust (issue 19): right passage first per question language, knowledge language,
    retrieval mode and embedder (the default, and the per-organization opt-in when measured)."""
    from bench.results import table

    rows = []
    for key in ("default", "opt_in"):
        figures = result.get(key)
        for language, row in (figures or {}).get("rows", {}).items():
            for knowledge, label in (
                ("english_knowledge", "English"),
                ("same_language_knowledge", "same language"),
            ):
                if language == "en" and knowledge == "same_language_knowledge":
                    continue  # the same knowledge base as the row above
                rows.append(
                    [
                        f"{figures['embedder']} ({'default' if key == 'default' else 'opt-in'})",
                        language,
                        label,
                        *(f"{row[knowledge][mode]}/{figures['topics']}" for mode in MODES),
                    ]
                )
    return [
        table(
            title="Any language: right passage first",
            columns=["embedder", "question language", "knowledge language", *MODES],
            rows=rows,
        )
    ]


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
