"""Settings › Knowledge: the organization's knowledge language (embedder), for owners and
admins; the switch runs in the real Celery worker while the page shows its progress."""

from __future__ import annotations

import pytest
from django.urls import reverse

from knowledge import retrieval, services
from knowledge.embeddings import MULTILINGUAL_MODEL_NAME
from knowledge.models import Chunk
from knowledge.tests.conftest import wait_for
from organizations.audit import audit_event_list
from testkit.fixtures import member_add
from tests.conftest import assert_error_shape

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

URL = "settings-knowledge"


def _qa(organization, question: str, answer: str):
    return services.qa_create(organization=organization, question=question, answer=answer, tags=[])


@pytest.mark.django_db
def test_owners_and_admins_switch_agents_cannot_and_the_page_shows_the_progress(
    owner_client, agent_client, tenant
):
    organization = tenant.organization
    _qa(organization, "Do you ship to Canada?", "Yes, to Canada and Mexico in 5-7 days.")
    page = owner_client.get(reverse(URL))
    assert page.status_code == 200
    assert b"English (fast)" in page.content and b"In use: <strong>English (fast)" in page.content
    # The trust cost is said where the choice is made (a new-user walk switched and got confident
    # answers to "Do you have a discount code?" from an unrelated Q&A pair; the page had said
    # only that it "ranks English questions a little less well").
    assert b"it more often answers a question your knowledge does not cover" in page.content
    # The choices are a group named by its legend; no label points at nothing.
    assert b"<legend>Knowledge language</legend>" in page.content and b'for=""' not in page.content

    assert agent_client.get(reverse(URL)).status_code == 403
    assert agent_client.post(reverse(URL), {"knowledge_embedder": "multilingual"}).status_code == 403
    organization.refresh_from_db()
    assert organization.knowledge_embedder_next == ""

    response = owner_client.post(reverse(URL), {"knowledge_embedder": "multilingual"})
    assert response.status_code == 302
    organization.refresh_from_db()
    assert (organization.knowledge_embedder, organization.knowledge_embedder_next) == (
        "default",
        "multilingual",
    )
    event = audit_event_list(organization=organization, action="knowledge.embedder_changed").get()
    assert event.actor == tenant.owner.email
    assert event.changes == {"knowledge_embedder": ["default", "multilingual"], "outcome": "started"}
    progress = owner_client.get(reverse("settings-knowledge-progress"))
    assert (
        b"0 of 1 passage re-embedded (0 %)" in progress.content
        and b'hx-trigger="every 2s"' in progress.content
    )

    admin = member_add(tenant, role="admin")
    owner_client.force_login(admin)
    assert owner_client.post(reverse(URL), {"knowledge_embedder": "default"}).status_code == 302
    organization.refresh_from_db()
    assert (organization.knowledge_embedder, organization.knowledge_embedder_next) == ("default", "")
    assert b"hx-trigger" not in owner_client.get(reverse("settings-knowledge-progress")).content


@pytest.mark.django_db
def test_bad_input_is_a_form_error_and_changes_nothing(owner_client, tenant):
    for data in ({"knowledge_embedder": "klingon"}, {}, {"knowledge_embedder": MULTILINGUAL_MODEL_NAME}):
        response = owner_client.post(reverse(URL), data)
        assert response.status_code == 200 and b"field__error" in response.content
    tenant.organization.refresh_from_db()
    assert (tenant.organization.knowledge_embedder, tenant.organization.knowledge_embedder_next) == (
        "default",
        "",
    )
    assert not audit_event_list(
        organization=tenant.organization, action="knowledge.embedder_changed"
    ).exists()


@pytest.mark.django_db
def test_another_organizations_owner_changes_only_their_own(foreign_client, tenant, other_tenant):
    _qa(tenant.organization, "Do you ship to Canada?", "Yes.")
    assert foreign_client.post(reverse(URL), {"knowledge_embedder": "multilingual"}).status_code == 302
    tenant.organization.refresh_from_db()
    other_tenant.organization.refresh_from_db()
    assert (
        tenant.organization.knowledge_embedder_next == ""
        and tenant.organization.knowledge_embedder == "default"
    )
    # Theirs had no knowledge: switched at once; the page counts only their passages.
    assert other_tenant.organization.knowledge_embedder == "multilingual"
    assert b"(0 passages)" in foreign_client.get(reverse(URL)).content


def test_the_celery_worker_re_embeds_and_search_switches_when_it_is_done(worker, owner_client, tenant):
    organization = tenant.organization
    for number in range(6):
        _qa(organization, f"Question {number} about parcels?", f"Answer {number}: parcels leave on weekdays.")
    shipping = _qa(
        organization, "Do you ship to Canada?", "Yes, we ship to Canada and Mexico in 5 to 7 days."
    )
    assert owner_client.post(reverse(URL), {"knowledge_embedder": "multilingual"}).status_code == 302
    worker.start()

    def switched():
        organization.refresh_from_db()
        return organization.knowledge_embedder == "multilingual"

    wait_for(switched, timeout=120, message="the worker switched the embedder")
    models = set(Chunk.objects.for_organization(organization).values_list("embedding_model", flat=True))
    assert models == {MULTILINGUAL_MODEL_NAME} and organization.knowledge_embedder_next == ""
    found = retrieval.chunk_search(
        organization=organization, query="Liefern Sie nach Kanada?", k=1, mode="vector"
    )
    assert found[0].source_id == shipping.pk
    assert "embedder_switch" in worker.log_text()


# --- the API: /api/v1/knowledge/settings ---------------------------------------------------
SETTINGS_API = "/api/v1/knowledge/settings"


@pytest.mark.django_db
def test_the_api_reads_and_switches_the_knowledge_language_and_refuses_bad_input(api, tenant):
    organization = tenant.organization
    _qa(organization, "Do you ship to Canada?", "Yes.")
    response = api.get(SETTINGS_API)
    assert response.status_code == 200
    assert response.json()["data"] == {
        "knowledge_embedder": "default",
        "knowledge_embedder_next": "",
        "embedding_model": "local/all-MiniLM-L6-v2",
        "chunks": 1,
        "chunks_ready": 1,
    }
    for body in ({"knowledge_embedder": "klingon"}, {}, {"knowledge_embedder": ["multilingual"]}):
        response = api.patch(SETTINGS_API, body, format="json")
        assert "knowledge_embedder" in str(assert_error_shape(response, 400))
    response = api.patch(SETTINGS_API, {"knowledge_embedder": "multilingual"}, format="json")
    assert response.status_code == 200
    assert response.json()["data"] | {"chunks_ready": None} == {
        "knowledge_embedder": "default",
        "knowledge_embedder_next": "multilingual",
        "embedding_model": "local/all-MiniLM-L6-v2",
        "chunks": 1,
        "chunks_ready": None,
    }
    event = audit_event_list(organization=organization, action="knowledge.embedder_changed").get()
    assert event.actor == "api_key:test key"
    services.embedder_switch_run(organization_id=organization.pk)
    assert api.get(SETTINGS_API).json()["data"]["embedding_model"] == MULTILINGUAL_MODEL_NAME


@pytest.mark.django_db
def test_an_agents_key_cannot_switch_and_another_organizations_key_sees_and_switches_only_its_own(
    tenant, other_api, other_tenant
):
    from rest_framework.test import APIClient

    from organizations.services import api_key_create

    agent = member_add(tenant, role="agent")
    key, secret = api_key_create(organization=tenant.organization, name="agent's", created_by=agent)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key.client_id, HTTP_X_API_SECRET=secret)
    assert client.get(SETTINGS_API).status_code == 200
    assert_error_shape(client.patch(SETTINGS_API, {"knowledge_embedder": "multilingual"}, format="json"), 403)
    _qa(tenant.organization, "Do you ship to Canada?", "Yes.")
    assert other_api.get(SETTINGS_API).json()["data"]["chunks"] == 0
    assert (
        other_api.patch(SETTINGS_API, {"knowledge_embedder": "multilingual"}, format="json").status_code
        == 200
    )
    tenant.organization.refresh_from_db()
    other_tenant.organization.refresh_from_db()
    assert (tenant.organization.knowledge_embedder, tenant.organization.knowledge_embedder_next) == (
        "default",
        "",
    )
    assert other_tenant.organization.knowledge_embedder == "multilingual"
