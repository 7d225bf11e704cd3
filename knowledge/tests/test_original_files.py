"""Privacy: an uploaded original is deleted once parsed, unless the organization keeps originals."""

from __future__ import annotations

import pytest
from django.db import transaction

from knowledge import retrieval, services
from knowledge.models import KnowledgeSource
from knowledge.tests.conftest import upload
from testkit.documents import pdf_make

pytestmark = pytest.mark.django_db(transaction=True)

MANUAL = ["Warranty. The Acme router has a three year warranty covering hardware faults."]


def _ingested(tenant):
    with transaction.atomic():
        source = services.file_source_create(
            organization=tenant.organization,
            title="",
            file_type="pdf",
            uploaded_file=upload("m.pdf", pdf_make(MANUAL)),
        )
    stored_name, storage = source.file.name, source.file.storage
    assert storage.exists(stored_name)
    assert services.source_ingest(source_id=source.pk) == "ready"
    source.refresh_from_db()
    return source, stored_name, storage


def test_the_original_is_deleted_once_parsed_and_the_knowledge_stays(tenant):
    source, stored_name, storage = _ingested(tenant)
    assert not storage.exists(stored_name)
    assert (
        source.file.name == ""
        and source.file_name == "m.pdf"
        and source.status == KnowledgeSource.Status.READY
    )
    passages = retrieval.chunk_search(organization=tenant.organization, query="how long is the warranty")
    assert passages and "three year warranty" in passages[0].content


def test_keep_original_files_keeps_it(tenant):
    tenant.organization.keep_original_files = True
    tenant.organization.save(update_fields=["keep_original_files"])
    source, stored_name, storage = _ingested(tenant)
    assert storage.exists(stored_name) and source.file.name == stored_name
    storage.delete(stored_name)
