"""After upgrading: knowledge cut by an older parser or chunker is cut again
(`manage.py knowledge_reparse`, `services.source_reparse`), from the kept original of a file or
the site of a URL, never losing what is stored, and never touching Q&A pairs."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from knowledge import retrieval, services
from knowledge.chunking import PARSER_VERSION
from knowledge.models import Chunk, KnowledgeDocument, KnowledgeSource
from knowledge.tests.conftest import upload
from testkit.documents import pdf_make, pdf_malformed
from testkit.sites import html_page

pytestmark = pytest.mark.django_db

BODY = "Every lamp comes with a three-year warranty covering the LED and the switch."
MANUAL = [
    [
        ("Aria desk lamp", 15, True),
        "The Aria has a dimmable warm-white LED and a USB-C port for charging a phone.",
        ("Warranty", 15, True),
        BODY,
    ]
]


def _keep_originals(organization, keep: bool = True) -> None:
    organization.keep_original_files = keep
    organization.save(update_fields=["keep_original_files"])


def _file(organization, name: str = "lamp.pdf") -> KnowledgeSource:
    source = services.file_source_create(
        organization=organization,
        title="",
        file_type="pdf",
        uploaded_file=upload(name, pdf_make(MANUAL, title=name)),
    )
    assert services.source_ingest(source_id=source.pk) == "ready"
    source.refresh_from_db()
    return source


def _cut_by_an_older_parser(source: KnowledgeSource) -> None:
    """What a release before PDF headings stored: the same text, chunks without headings, and
    documents of version 0 (as the migration marks every document stored before it)."""
    KnowledgeDocument.objects.for_organization(source.organization_id).filter(source=source).update(
        parser_version=0
    )
    Chunk.objects.for_organization(source.organization_id).filter(source=source).update(heading="")


def _chunks(source) -> list[tuple]:
    return list(
        Chunk.objects.for_organization(source.organization_id)
        .filter(source=source)
        .order_by("chunk_no")
        .values_list("id", "heading")
    )


def _versions(source) -> set[int]:
    return set(
        KnowledgeDocument.objects.for_organization(source.organization_id)
        .filter(source=source)
        .values_list("parser_version", flat=True)
    )


def test_new_documents_record_the_current_parser_version(tenant):
    source = _file(tenant.organization)
    assert _versions(source) == {PARSER_VERSION}
    pair = services.qa_create(
        organization=tenant.organization, question="Lamp warranty?", answer="Three years."
    )
    assert _versions(pair) == {PARSER_VERSION}


def test_a_kept_original_is_cut_again_and_a_second_run_does_nothing(
    tenant, django_capture_on_commit_callbacks
):
    organization = tenant.organization
    _keep_originals(organization)
    source = _file(organization)
    current = _chunks(source)
    assert [heading for _id, heading in current] == ["Aria desk lamp", "Warranty"]
    _cut_by_an_older_parser(source)
    assert services.sources_reparse_due(organization=organization) == services.ReparseDue(
        due=[source.pk], not_kept=[]
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert services.source_reparse(source_id=source.pk) == "ready"

    again = _chunks(source)
    assert [heading for _id, heading in again] == ["Aria desk lamp", "Warranty"]
    assert {chunk_id for chunk_id, _ in again}.isdisjoint(chunk_id for chunk_id, _ in current)  # replaced
    assert _versions(source) == {PARSER_VERSION}
    source.refresh_from_db()
    assert source.status == KnowledgeSource.Status.READY and source.error == "" and source.file
    assert services.lexical_statistics_rebuild(organization=organization) is False
    best = retrieval.chunk_search(organization=organization, query="lamp warranty")[0]
    assert Chunk.objects.for_organization(organization).get(pk=best.chunk_id).heading == "Warranty"

    assert services.sources_reparse_due(organization=organization).due == []
    assert services.source_reparse(source_id=source.pk) == "skipped"  # a duplicate delivery
    assert _chunks(source) == again


def test_the_original_goes_after_the_re_parse_when_the_organization_no_longer_keeps_originals(
    tenant, django_capture_on_commit_callbacks
):
    organization = tenant.organization
    _keep_originals(organization)
    source = _file(organization)
    stored, storage = source.file.name, source.file.storage
    _cut_by_an_older_parser(source)
    _keep_originals(organization, keep=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.source_reparse(source_id=source.pk) == "ready"
    source.refresh_from_db()
    assert not source.file and not storage.exists(stored)
    assert _versions(source) == {PARSER_VERSION}


def test_a_file_whose_original_was_not_kept_is_reported_and_left_as_it_is(tenant):
    organization = tenant.organization
    source = _file(organization)  # by default the original is deleted once parsed
    _cut_by_an_older_parser(source)
    before = _chunks(source)
    assert services.sources_reparse_due(organization=organization) == services.ReparseDue(
        due=[], not_kept=[source.pk]
    )
    assert services.source_reparse(source_id=source.pk) == "skipped"
    assert _chunks(source) == before and _versions(source) == {0}


@pytest.mark.parametrize("damage", ["no longer parses", "missing from storage"])
def test_a_failed_re_parse_keeps_every_stored_chunk(tenant, damage):
    organization = tenant.organization
    _keep_originals(organization)
    source = _file(organization)
    _cut_by_an_older_parser(source)
    before = _chunks(source)
    storage, stored = source.file.storage, source.file.name
    storage.delete(stored)
    if damage == "no longer parses":
        storage.save(stored, io.BytesIO(pdf_malformed()))

    assert services.source_reparse(source_id=source.pk) == "failed"

    assert _chunks(source) == before and _versions(source) == {0}
    source.refresh_from_db()
    assert source.status == KnowledgeSource.Status.READY
    assert source.error.startswith("Last re-parse failed (the previous chunks are kept)")
    assert retrieval.chunk_search(organization=organization, query="lamp warranty")
    assert services.sources_reparse_due(organization=organization).due == [source.pk]  # tried again next run


def test_a_page_is_read_again_and_a_re_sync_no_longer_keeps_an_older_cut(tenant, site):
    organization = tenant.organization
    site.page("/lamp", html_page("Lamp", f"<h2>Warranty</h2><p>{BODY}</p>"))
    source = services.url_source_create(organization=organization, url=site.url("/lamp"))
    assert services.source_ingest(source_id=source.pk) == "ready"
    current = _chunks(source)
    assert "Warranty" in [heading for _id, heading in current]
    _cut_by_an_older_parser(source)

    assert services.sources_reparse_due(organization=organization).due == [source.pk]
    assert services.source_reparse(source_id=source.pk) == "ready"
    assert [heading for _id, heading in _chunks(source)] == [heading for _id, heading in current]
    assert _versions(source) == {PARSER_VERSION}
    assert services.source_reparse(source_id=source.pk) == "skipped"

    # The scheduled re-sync alone: the page's text is unchanged, but it was cut by an older
    # parser, so it is cut again (it used to be kept as it was).
    _cut_by_an_older_parser(source)
    assert services.source_sync(source_id=source.pk) == "ready"
    assert [heading for _id, heading in _chunks(source)] == [heading for _id, heading in current]


def test_the_command_counts_per_organization_and_leaves_q_and_a_pairs_alone(tenant, other_tenant):
    organization = tenant.organization
    _keep_originals(organization)
    kept = _file(organization, "kept.pdf")
    _cut_by_an_older_parser(kept)
    _keep_originals(organization, keep=False)
    gone = _file(organization, "gone.pdf")
    _cut_by_an_older_parser(gone)
    pair = services.qa_create(organization=organization, question="Lamp warranty?", answer="Three years.")
    KnowledgeDocument.objects.for_organization(organization).filter(source=pair).update(parser_version=0)
    pair_chunks = _chunks(pair)
    theirs = _file(other_tenant.organization)
    _cut_by_an_older_parser(theirs)

    out = io.StringIO()
    call_command("knowledge_reparse", "--dry-run", "--organization", organization.slug, stdout=out)
    text = out.getvalue()
    assert f"{organization.slug}: 1 source(s) to queue for re-parsing" in text
    assert (
        "1 file source(s) cannot be re-parsed, their originals were not kept" in text and str(gone.pk) in text
    )
    assert other_tenant.organization.slug not in text
    assert text.endswith("1 source(s) to queue for re-parsing; 1 file source(s) without an original\n")

    out = io.StringIO()
    call_command("knowledge_reparse", "--dry-run", stdout=out)
    assert out.getvalue().endswith(
        "1 source(s) to queue for re-parsing; 2 file source(s) without an original\n"
    )
    assert (
        _chunks(pair) == pair_chunks and _chunks(kept) and _versions(kept) == {0}
    )  # a dry run changes nothing

    with pytest.raises(CommandError, match="no organization with the slug"):
        call_command("knowledge_reparse", "--organization", "nobody")
