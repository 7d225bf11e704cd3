"""`/api/v1/knowledge/...`: happy paths, validation failures and cross-tenant attempts."""

from __future__ import annotations

import pytest

from knowledge import services
from knowledge.models import Chunk, KnowledgeSource
from knowledge.tests.conftest import upload
from knowledge.tests.factories import assistant_make
from testkit.documents import pdf_make
from testkit.sites import html_page

pytestmark = [pytest.mark.django_db, pytest.mark.without_redis]

BASE = "/api/v1/knowledge"


def _count(tenant) -> int:
    return KnowledgeSource.objects.for_organization(tenant.organization).count()


# --- Q&A ---------------------------------------------------------------------------------
def test_qa_create_list_get_delete(api, tenant):
    response = api.post(
        f"{BASE}/qa/",
        {
            "question": "Do you offer refunds?",
            "answer": "Yes, within 30 days.",
            "tags": ["billing"],
            "source": "faq",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "success" and body["status_code"] == 201
    data = body["data"]
    assert data["status"] == "ready" and data["chunk_count"] == 1 and data["type"] == "qa"
    assert data["tags"] == ["billing"] and data["source"] == "faq" and data["assistant_id"] is None

    listed = api.get(f"{BASE}/qa").json()["data"]
    assert listed["count"] == 1 and listed["results"][0]["id"] == data["id"]
    assert api.get(f"{BASE}/qa/{data['id']}").json()["data"]["answer"] == "Yes, within 30 days."

    search = api.get(f"{BASE}/search", {"q": "can I get my money back"}).json()["data"]
    assert search[0]["source_id"] == data["id"]

    deleted = api.delete(f"{BASE}/qa/{data['id']}")
    assert deleted.status_code == 200 and deleted.json()["data"] is None
    assert _count(tenant) == 0
    assert not Chunk.objects.for_organization(tenant.organization).exists()
    assert api.get(f"{BASE}/qa/{data['id']}").status_code == 404


@pytest.mark.parametrize(
    "payload",
    [{}, {"question": "q?"}, {"question": "", "answer": "a"}, {"question": "q?", "answer": "a", "tags": "nope"},
     {"question": "q?", "answer": "a", "assistant_id": "not-a-uuid"}],
)  # fmt: skip
def test_qa_create_validation(api, tenant, payload):
    response = api.post(f"{BASE}/qa", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "error" and body["data"]
    assert _count(tenant) == 0


def test_qa_with_an_assistant(api, tenant, other_tenant):
    mine = assistant_make(organization=tenant.organization)
    foreign = assistant_make(organization=other_tenant.organization)
    response = api.post(
        f"{BASE}/qa", {"question": "q?", "answer": "a", "assistant_id": str(mine.pk)}, format="json"
    )
    assert response.json()["data"]["assistant_id"] == str(mine.pk)
    refused = api.post(
        f"{BASE}/qa", {"question": "q?", "answer": "a", "assistant_id": str(foreign.pk)}, format="json"
    )
    assert refused.status_code == 400
    assert _count(tenant) == 1
    assert api.get(f"{BASE}/qa", {"assistant_id": str(mine.pk)}).json()["data"]["count"] == 1


# --- cross-tenant -----------------------------------------------------------------------
@pytest.fixture
def foreign_sources(other_tenant, settings):
    organization = other_tenant.organization
    qa = services.qa_create(organization=organization, question="Globex secret?", answer="Globex answer.")
    file = services.file_source_create(
        organization=organization,
        title="Globex",
        file_type="pdf",
        uploaded_file=upload("g.pdf", pdf_make(["x"])),
    )
    settings.SCRAPE_ALLOWLIST = ["127.0.0.1:9"]
    url = services.url_source_create(organization=organization, url="http://127.0.0.1:9/page")
    return {"qa": qa, "files": file, "urls": url}


@pytest.mark.parametrize("kind", ["qa", "files", "urls"])
def test_other_tenants_sources_are_invisible_and_untouchable(api, other_tenant, foreign_sources, kind):
    source = foreign_sources[kind]
    before = _count(other_tenant)
    assert api.get(f"{BASE}/{kind}").json()["data"]["count"] == 0
    for method, path in [("get", f"{BASE}/{kind}/{source.pk}"), ("delete", f"{BASE}/{kind}/{source.pk}"),
                         ("delete", f"{BASE}/{kind}/{source.pk}/"), ("post", f"{BASE}/{kind}/{source.pk}/retry")]:  # fmt: skip
        if kind == "qa" and path.endswith("retry"):
            continue
        response = getattr(api, method)(path)
        assert response.status_code == 404, (method, path)
        assert response.json() == {
            "status": "error",
            "status_code": 404,
            "detail": "Not found.",
            "data": None,
        } or (response.json()["status_code"] == 404 and response.json()["data"] is None)
    assert _count(other_tenant) == before
    assert (
        KnowledgeSource.objects.for_organization(other_tenant.organization).get(pk=source.pk).status
        == source.status
    )
    search = api.get(f"{BASE}/search", {"q": "Globex secret"}).json()["data"]
    assert search == []


def test_a_source_of_another_kind_is_not_found_at_this_endpoint(api, tenant):
    qa = services.qa_create(organization=tenant.organization, question="q?", answer="a")
    assert api.get(f"{BASE}/files/{qa.pk}").status_code == 404
    assert api.delete(f"{BASE}/urls/{qa.pk}").status_code == 404
    assert _count(tenant) == 1


# --- files -------------------------------------------------------------------------------
def test_file_upload_answers_202_pending(api, tenant):
    response = api.post(
        f"{BASE}/files/",
        {
            "title": "Manual",
            "file_type": "pdf",
            "file": upload("manual.pdf", pdf_make(["Reset: hold the button."])),
        },
        format="multipart",
    )
    assert response.status_code == 202, response.json()
    data = response.json()["data"]
    assert data["status"] == "pending" and data["file_name"] == "manual.pdf" and data["file_type"] == "pdf"
    assert api.get(f"{BASE}/files").json()["data"]["results"][0]["id"] == data["id"]
    services.source_ingest(source_id=data["id"])
    ready = api.get(f"{BASE}/files/{data['id']}").json()["data"]
    assert ready["status"] == "ready" and ready["chunk_count"] == 1 and ready["page_count"] == 1
    assert api.delete(f"{BASE}/files/{data['id']}").status_code == 200
    assert _count(tenant) == 0


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"title": "No file"}, 400),
        ({"file_type": "pdf", "file": upload("x.pdf", b"<html><body>hi</body></html>")}, 400),
        ({"file_type": "exe", "file": upload("x.exe", b"MZ\x90\x00")}, 400),
        ({"file_type": "text", "file": upload("x.txt", b"")}, 400),
    ],
)
def test_file_upload_validation(api, tenant, payload, status):
    response = api.post(f"{BASE}/files", payload, format="multipart")
    assert response.status_code == status
    assert response.json()["status"] == "error"
    assert _count(tenant) == 0


def test_file_upload_too_large(api, tenant, settings):
    settings.KNOWLEDGE_MAX_FILE_BYTES = 10_000
    response = api.post(
        f"{BASE}/files", {"file_type": "text", "file": upload("x.txt", b"a" * 20_000)}, format="multipart"
    )
    assert response.status_code == 413
    big = api.post(
        f"{BASE}/files", {"file_type": "text", "file": upload("x.txt", b"a" * 2_000_000)}, format="multipart"
    )
    assert big.status_code == 413
    assert _count(tenant) == 0


def test_too_many_file_parts_or_fields_are_a_400(api, tenant):
    """Row 17: Django's caps (100 files, 1,000 fields) answer in the API's error shape."""
    files = {f"file{number}": upload(f"x{number}.txt", b"text") for number in range(101)}
    response = api.post(f"{BASE}/files", {"file_type": "text", **files}, format="multipart")
    assert response.status_code == 400 and response.json()["status"] == "error"
    fields = {f"field{number}": "x" for number in range(1001)}
    response = api.post(
        f"{BASE}/files", {"file_type": "text", "file": upload("x.txt", b"text"), **fields}, format="multipart"
    )
    assert response.status_code == 400 and response.json()["status"] == "error"
    assert _count(tenant) == 0


def test_file_retry(api, tenant):
    source = services.file_source_create(
        organization=tenant.organization,
        title="",
        file_type="pdf",
        uploaded_file=upload("b.pdf", b"%PDF-1.4 junk"),
    )
    assert api.post(f"{BASE}/files/{source.pk}/retry").status_code == 409  # still pending
    services.source_ingest(source_id=source.pk)
    failed = api.get(f"{BASE}/files/{source.pk}").json()["data"]
    assert failed["status"] == "failed" and "damaged" in failed["error"]
    retried = api.post(f"{BASE}/files/{source.pk}/retry")
    assert retried.status_code == 202 and retried.json()["data"]["status"] == "pending"


# --- URLs --------------------------------------------------------------------------------
def test_url_create_answers_202_and_becomes_ready(api, tenant, site):
    site.page("/faq", html_page("FAQ", "<p>Returns are free for 60 days.</p>"))
    response = api.post(f"{BASE}/urls", {"url": site.url("/faq"), "title": "Our FAQ"}, format="json")
    assert response.status_code == 202, response.json()
    data = response.json()["data"]
    assert data["status"] == "pending" and data["url"] == site.url("/faq") and data["crawl"] is False
    services.source_ingest(source_id=data["id"])
    ready = api.get(f"{BASE}/urls/{data['id']}").json()["data"]
    assert ready["status"] == "ready" and ready["chunk_count"] == 1 and ready["title"] == "Our FAQ"
    passage = api.get(f"{BASE}/search", {"q": "free returns period"}).json()["data"][0]
    assert passage["url"] == site.url("/faq") and passage["type"] == "url"
    assert api.delete(f"{BASE}/urls/{data['id']}").status_code == 200
    assert _count(tenant) == 0


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"url": "http://169.254.169.254/latest/meta-data/"},
        {"url": "http://[::ffff:7f00:1]/"},
        {"url": "file:///etc/passwd"},
        {"url": "https://example.com/", "crawl": True, "max_pages": 100000},
        {"url": "https://example.com/", "max_pages": 0},
    ],
)
def test_url_create_validation_and_ssrf_refusal(api, tenant, payload):
    response = api.post(f"{BASE}/urls", payload, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["status"] == "error"
    assert _count(tenant) == 0


def test_search_validation(api):
    assert api.get(f"{BASE}/search").status_code == 400
    assert api.get(f"{BASE}/search", {"q": "x", "mode": "magic"}).status_code == 400


def test_widget_tokens_cannot_manage_knowledge(tenant):
    from rest_framework.test import APIClient

    from widget.tokens import widget_token_issue

    token, _ = widget_token_issue(organization_id=tenant.organization.pk, widget_id=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(f"{BASE}/qa").status_code == 403
    assert client.post(f"{BASE}/qa", {"question": "q", "answer": "a"}, format="json").status_code == 403
    assert _count(tenant) == 0


def test_unauthenticated_requests_get_401():
    from rest_framework.test import APIClient

    assert APIClient().get(f"{BASE}/files").status_code == 401


# --- a source no worker picked up ----------------------------------------------------------
def _pending_for(tenant, seconds: int) -> KnowledgeSource:
    from datetime import timedelta

    from django.utils import timezone

    source = KnowledgeSource.objects.create(
        organization=tenant.organization, kind="url", url="https://example.com/", status="pending"
    )
    # .update() leaves auto_now alone: the source has waited that long.
    KnowledgeSource.objects.for_organization(tenant.organization).filter(pk=source.pk).update(
        updated_at=timezone.now() - timedelta(seconds=seconds)
    )
    return source


def test_a_source_no_worker_picked_up_says_so_and_can_be_retried(api, other_api, tenant, settings):
    settings.KNOWLEDGE_UNPICKED_AFTER_SECONDS = 180
    fresh = _pending_for(tenant, 30)
    stale = _pending_for(tenant, 400)
    assert api.get(f"{BASE}/urls/{fresh.pk}").json()["data"]["error"] == ""
    assert api.post(f"{BASE}/urls/{fresh.pk}/retry").status_code == 409  # still within the wait

    data = api.get(f"{BASE}/urls/{stale.pk}").json()["data"]
    assert data["status"] == "pending"
    assert data["error"].startswith("No worker has picked this up in over 3 minutes")

    assert other_api.post(f"{BASE}/urls/{stale.pk}/retry").status_code == 404
    response = api.post(f"{BASE}/urls/{stale.pk}/retry")
    assert response.status_code == 202, response.json()
    assert response.json()["data"]["status"] == "pending" and response.json()["data"]["error"] == ""
    stale.refresh_from_db()
    assert not stale.unpicked and stale.attempts == 0
