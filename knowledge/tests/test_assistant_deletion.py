"""Every way an assistant can be deleted removes the knowledge only it answered from as
`knowledge.services.assistant_sources_delete` does: the sources, their chunks, their weight in
the term statistics and their stored files; the organization's shared knowledge and the other
assistants' stay. Django's `pre_delete` of the assistant drives it (`knowledge/apps.py`), so a
path cannot forget to."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.actions import delete_selected
from django.contrib.auth import get_user_model
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory

from assistants import services as assistant_services
from assistants.models import Assistant
from knowledge import retrieval, services
from knowledge.models import Chunk, CorpusStatistic, KnowledgeSource
from knowledge.tests.conftest import upload
from knowledge.tests.factories import FAQ, assistant_make
from organizations.models import Organization

pytestmark = pytest.mark.django_db


def _admin_delete_selected(assistant: Assistant) -> None:
    """The admin's "Delete selected" action, confirmed, as a superuser (assistants are not
    registered with the admin today; this is what registering them would offer)."""
    user = get_user_model().objects.create_superuser("root@example.com", "root@example.com", "pw")
    request = RequestFactory().post("/admin/assistants/assistant/", {"post": "yes"})
    request.user, request.session = user, {}
    request._messages = FallbackStorage(request)
    model_admin = admin.ModelAdmin(Assistant, admin.site)
    assert delete_selected(model_admin, request, Assistant.all_organizations.filter(pk=assistant.pk)) is None


PATHS = {
    "service": lambda assistant: assistant_services.assistant_delete(assistant=assistant),
    "instance delete()": lambda assistant: assistant.delete(),
    "scoped queryset delete()": lambda assistant: (
        Assistant.objects.for_organization(assistant.organization_id).filter(pk=assistant.pk).delete()
    ),
    "plain manager delete()": lambda assistant: Assistant.all_organizations.filter(pk=assistant.pk).delete(),
    "admin delete selected": _admin_delete_selected,
}


@pytest.fixture
def knowledge(tenant, other_tenant):
    """An organization that keeps originals, with its FAQ (shared), an assistant with a Q&A
    pair and an ingested file, another assistant with a pair; and another organization's FAQ."""
    organization = tenant.organization
    organization.keep_original_files = True
    organization.save(update_fields=["keep_original_files"])
    for question, answer in FAQ:
        services.qa_create(organization=organization, question=question, answer=answer)
    doomed, kept = assistant_make(organization=organization), assistant_make(organization=organization)
    services.qa_create(
        organization=organization, question="Scoped question?", answer="Scoped.", assistant=doomed
    )
    services.qa_create(
        organization=organization, question="Kept question?", answer="Kept answer.", assistant=kept
    )
    notes = services.file_source_create(
        organization=organization,
        title="Scoped notes",
        file_type="text",
        uploaded_file=upload("notes.txt", b"Gift wrapping is five dollars an item."),
        assistant=doomed,
    )
    assert services.source_ingest(source_id=notes.pk) == "ready"
    notes.refresh_from_db()
    services.qa_create(organization=other_tenant.organization, question="Scoped question?", answer="Theirs.")
    assert notes.file.storage.exists(notes.file.name)
    return doomed, kept, notes


@pytest.mark.parametrize("path", list(PATHS))
def test_every_deletion_of_an_assistant_removes_its_knowledge_as_the_service_does(
    path, tenant, other_tenant, knowledge, django_capture_on_commit_callbacks
):
    organization = tenant.organization
    doomed, kept, notes = knowledge
    doomed_id = doomed.pk  # `delete()` clears the instance's
    theirs = CorpusStatistic.objects.for_organization(other_tenant.organization).get().chunk_count

    with django_capture_on_commit_callbacks(execute=True):
        PATHS[path](doomed)

    assert not Assistant.all_organizations.filter(pk=doomed_id).exists()
    sources = KnowledgeSource.objects.for_organization(organization)
    assert not sources.filter(assistant_id=doomed_id).exists()
    assert not Chunk.objects.for_organization(organization).filter(assistant_id=doomed_id).exists()
    assert not notes.file.storage.exists(notes.file.name)  # the uploaded original went too
    # The statistics count exactly what is left, the FAQ and the kept assistant's pair: nothing
    # for the rebuild to repair (the database's cascade alone left them counting the chunks).
    assert CorpusStatistic.objects.for_organization(organization).get().chunk_count == len(FAQ) + 1
    assert services.lexical_statistics_rebuild(organization=organization) is False
    assert sources.filter(assistant__isnull=True).count() == len(FAQ)
    found = retrieval.chunk_search(
        organization=organization, assistant=kept, query="kept question", mode="lexical"
    )
    assert found and found[0].question == "Kept question?"
    assert CorpusStatistic.objects.for_organization(other_tenant.organization).get().chunk_count == theirs


def test_deleting_an_organization_deletes_its_knowledge_files_too(
    tenant, other_tenant, knowledge, django_capture_on_commit_callbacks
):
    """The organization's cascade deletes its assistants, each through the same removal, and
    its other sources: no stored file is left behind and the deletion is not refused."""
    _doomed, _kept, notes = knowledge
    shared = services.file_source_create(
        organization=tenant.organization,
        title="Shared notes",
        file_type="text",
        uploaded_file=upload("shared.txt", b"Returns are free within thirty days."),
    )
    assert services.source_ingest(source_id=shared.pk) == "ready"
    shared.refresh_from_db()
    assert shared.file.storage.exists(shared.file.name)
    theirs = CorpusStatistic.objects.for_organization(other_tenant.organization).get().chunk_count

    with django_capture_on_commit_callbacks(execute=True):
        tenant.organization.delete()

    assert not Organization.objects.filter(pk=tenant.organization.pk).exists()
    assert not KnowledgeSource.objects.unscoped().filter(organization_id=tenant.organization.pk).exists()
    assert not notes.file.storage.exists(notes.file.name)
    assert not shared.file.storage.exists(shared.file.name)  # organization-wide knowledge's too
    assert CorpusStatistic.objects.for_organization(other_tenant.organization).get().chunk_count == theirs
    assert services.lexical_statistics_rebuild(organization=other_tenant.organization) is False


def test_a_source_row_deleted_outside_the_service_takes_its_file_and_a_rolled_back_one_keeps_it(
    tenant, knowledge, django_capture_on_commit_callbacks
):
    from django.db import transaction

    _doomed, _kept, notes = knowledge
    storage, stored = notes.file.storage, notes.file.name
    rows = KnowledgeSource.objects.for_organization(tenant.organization).filter(pk=notes.pk)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            rows.delete()
            raise RuntimeError("rolled back")
    assert rows.exists() and storage.exists(stored)
    with django_capture_on_commit_callbacks(execute=True):
        rows.delete()
    assert not storage.exists(stored)
