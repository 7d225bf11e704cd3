"""Dashboard: knowledge base pages (Django test client, real retrieval)."""

import pytest
from django.urls import reverse

from assistants.models import Assistant
from knowledge import services
from knowledge.models import KnowledgeSource

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture
def qa(tenant):
    return services.qa_create(
        organization=tenant.organization,
        question="What are your opening hours?",
        answer="We are open Monday to Friday, 9am to 5pm.",
        tags=["hours"],
    )


def sources(tenant):
    return KnowledgeSource.objects.for_organization(tenant.organization)


def test_anonymous_and_foreign_users(client, foreign_client, qa):
    assert client.get(reverse("knowledge")).status_code == 302
    for url in [
        reverse("knowledge-source", args=[qa.pk]),
        reverse("knowledge-source-row", args=[qa.pk]),
        reverse("knowledge-source-delete", args=[qa.pk]),
    ]:
        assert foreign_client.get(url).status_code == 404
    assert foreign_client.post(reverse("knowledge-source-delete", args=[qa.pk])).status_code == 404
    assert (
        foreign_client.post(
            reverse("knowledge-source", args=[qa.pk]), {"question": "Hacked?", "answer": "Yes"}
        ).status_code
        == 404
    )
    qa.refresh_from_db()
    assert qa.question == "What are your opening hours?"
    # Their knowledge page lists none of ours, and their retrieval finds none of it.
    page = foreign_client.get(reverse("knowledge"))
    assert b"9am to 5pm" not in page.content and b"Your knowledge base is empty" in page.content
    results = foreign_client.get(reverse("knowledge-test"), {"query": "opening hours"})
    assert b"Nothing relevant" in results.content


def test_add_qa_pair_is_answerable_at_once(owner_client, tenant):
    response = owner_client.post(
        reverse("knowledge-qa-create"),
        {"question": "Do you ship to Canada?", "answer": "Yes, in 5-7 days.", "tags": "shipping, intl"},
    )
    assert response.status_code == 302
    qa = sources(tenant).get()
    assert (
        qa.kind == "qa" and qa.status == "ready" and qa.tags == ["shipping", "intl"] and qa.assistant is None
    )
    results = owner_client.get(reverse("knowledge-test"), {"query": "can you deliver to canada"})
    assert b"Do you ship to Canada?" in results.content


def test_qa_validation_errors_keep_the_form(owner_client, tenant):
    response = owner_client.post(
        reverse("knowledge-qa-create"), {"question": "Only a question", "answer": ""}
    )
    assert response.status_code == 200 and b"This field is required" in response.content
    assert b"Only a question" in response.content
    assert not sources(tenant).exists()


def test_qa_for_one_assistant_and_not_for_a_foreign_one(owner_client, tenant, other_tenant):
    mine = Assistant.objects.create(organization=tenant.organization, name="Mine")
    theirs = Assistant.objects.create(organization=other_tenant.organization, name="Theirs")
    owner_client.post(
        reverse("knowledge-qa-create"), {"question": "Q1?", "answer": "A1", "assistant": str(mine.pk)}
    )
    assert sources(tenant).get().assistant == mine
    response = owner_client.post(
        reverse("knowledge-qa-create"), {"question": "Q2?", "answer": "A2", "assistant": str(theirs.pk)}
    )
    assert response.status_code == 200 and b"Select a valid choice" in response.content
    assert sources(tenant).count() == 1


def test_every_label_on_the_knowledge_page_names_its_own_field(owner_client, tenant):
    """Found on a walk: the upload, website, Q&A and test-retrieval forms each had a select
    with id="id_assistant", so every "Available to" label pointed at the upload form's."""
    import re

    Assistant.objects.create(organization=tenant.organization, name="Helper")
    page = owner_client.get(reverse("knowledge")).content.decode()
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    targets = re.findall(r'<label[^>]*\sfor="([^"]+)"', page)
    assert {"id_file_assistant", "id_url_assistant", "id_qa_assistant", "id_retrieval_assistant"} <= set(
        targets
    )
    # Every field of those forms has its form's ids (Django's auto_id), its label following.
    assert {
        "id_file_files",
        "id_url_url",
        "id_url_crawl",
        "id_url_max_pages",
        "id_url_sync_interval_hours",
        "id_qa_question",
        "id_qa_answer",
        "id_qa_tags",
        "id_retrieval_query",
    } <= set(targets)
    assert all(target in ids for target in targets)
    assert page.count('name="assistant"') == 4


def test_edit_qa_pair_reindexes_it(owner_client, tenant, qa):
    response = owner_client.post(
        reverse("knowledge-source", args=[qa.pk]),
        {"question": "When is the shop open?", "answer": "Every day from 8am to 8pm.", "tags": "hours"},
    )
    assert response.status_code == 302
    qa.refresh_from_db()
    assert qa.answer == "Every day from 8am to 8pm." and qa.chunk_count == 1
    results = owner_client.get(reverse("knowledge-test"), {"query": "shop open"})
    assert b"8am to 8pm" in results.content and b"9am to 5pm" not in results.content


def test_delete_source(owner_client, tenant, qa):
    assert owner_client.get(reverse("knowledge-source-delete", args=[qa.pk])).status_code == 200
    assert owner_client.post(reverse("knowledge-source-delete", args=[qa.pk])).status_code == 302
    assert not sources(tenant).exists()


def test_agent_reads_but_cannot_change_knowledge(agent_client, tenant, qa):
    page = agent_client.get(reverse("knowledge"))
    assert page.status_code == 200 and b"Add a Q&amp;A pair" not in page.content
    assert (
        agent_client.post(reverse("knowledge-qa-create"), {"question": "Q?", "answer": "A"}).status_code
        == 403
    )
    assert agent_client.post(reverse("knowledge-source-delete", args=[qa.pk])).status_code == 403
    assert (
        agent_client.post(
            reverse("knowledge-source", args=[qa.pk]), {"question": "X?", "answer": "Y"}
        ).status_code
        == 403
    )
    assert sources(tenant).count() == 1


def test_rows_in_progress_poll_and_ready_rows_do_not(owner_client, tenant, qa):
    row = owner_client.get(reverse("knowledge-source-row", args=[qa.pk]))
    assert b"hx-trigger" not in row.content and b"Ready" in row.content
    KnowledgeSource.objects.for_organization(tenant.organization).filter(pk=qa.pk).update(status="processing")
    row = owner_client.get(reverse("knowledge-source-row", args=[qa.pk]))
    assert b'hx-trigger="every 2s"' in row.content and b"Processing" in row.content
    KnowledgeSource.objects.for_organization(tenant.organization).filter(pk=qa.pk).update(
        status="failed", error="The page answered 404."
    )
    row = owner_client.get(reverse("knowledge-source-row", args=[qa.pk]))
    assert b"The page answered 404." in row.content and b"hx-trigger" not in row.content


def test_list_filters_and_pagination(owner_client, tenant):
    for number in range(21):
        services.qa_create(organization=tenant.organization, question=f"Question {number}?", answer="Answer.")
    page = owner_client.get(reverse("knowledge"))
    assert page.context["page_obj"].paginator.num_pages == 2
    filtered = owner_client.get(reverse("knowledge"), {"q": "Question 7", "kind": "qa"})
    assert filtered.context["page_obj"].paginator.count == 1
    empty = owner_client.get(reverse("knowledge"), {"kind": "url"})
    assert b"Nothing matches these filters" in empty.content
    second = owner_client.get(reverse("knowledge"), {"kind": "qa", "page": 2})
    assert b"kind=qa&amp;page=1" in second.content


def test_retrieval_test_requires_a_question(owner_client):
    assert b"Type a question" in owner_client.get(reverse("knowledge-test"), {"query": ""}).content


def test_knowledge_text_is_escaped(owner_client, tenant):
    services.qa_create(
        organization=tenant.organization,
        question="<script>alert('q')</script>?",
        answer="<b onmouseover=x>hi</b>",
    )
    page = owner_client.get(reverse("knowledge"))
    assert b"<script>alert('q')</script>" not in page.content
    results = owner_client.get(reverse("knowledge-test"), {"query": "alert"})
    assert b"<b onmouseover=x>" not in results.content and b"&lt;b onmouseover=x&gt;" in results.content


# --- files and URLs (ingestion itself is the knowledge app's, tested with real workers there) --


def test_upload_several_files_at_once(owner_client, tenant):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = owner_client.post(
        reverse("knowledge-files"),
        {
            "files": [
                SimpleUploadedFile(
                    "faq.md", b"# Shipping\n\nWe ship worldwide in 3 days.\n", "text/markdown"
                ),
                SimpleUploadedFile("terms.txt", b"Returns are accepted within 30 days.\n", "text/plain"),
                SimpleUploadedFile("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png"),
            ]
        },
        follow=True,
    )
    assert response.status_code == 200
    stored = sources(tenant).filter(kind="file")
    assert sorted(stored.values_list("file_name", flat=True)) == ["faq.md", "terms.txt"]
    assert set(stored.values_list("status", flat=True)) == {"pending"}
    content = response.content.decode()
    assert "2 files uploaded" in content and "photo.png" in content and "cannot be ingested" in content
    assert 'hx-trigger="every 2s"' in content  # pending rows refresh themselves


def test_upload_requires_a_file_and_is_refused_to_agents(owner_client, agent_client, tenant):
    response = owner_client.post(reverse("knowledge-files"), {})
    assert response.status_code == 200 and b"This field is required" in response.content
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("a.txt", b"hello", "text/plain")
    assert agent_client.post(reverse("knowledge-files"), {"files": [upload]}).status_code == 403
    assert not sources(tenant).exists()


def test_add_url_with_crawl_options(owner_client, tenant, settings):
    settings.SCRAPE_ALLOWLIST = ["127.0.0.1:8089"]  # nothing listens there; saving only checks it
    response = owner_client.post(
        reverse("knowledge-url-create"),
        {
            "url": "http://127.0.0.1:8089/help",
            "crawl": "on",
            "max_pages": "25",
            "sync_interval_hours": "12",
        },
    )
    assert response.status_code == 302
    source = sources(tenant).get()
    assert (
        source.kind == "url" and source.crawl and source.max_pages == 25 and source.sync_interval_hours == 12
    )
    assert source.status == "pending"


def test_add_url_refuses_internal_addresses_with_a_clear_error(owner_client, tenant):
    for url in ["http://127.0.0.1:9/", "http://169.254.169.254/latest/meta-data/"]:
        response = owner_client.post(reverse("knowledge-url-create"), {"url": url, "max_pages": "5"})
        assert response.status_code == 200
        assert response.context["url_form"].errors["url"]
    assert not sources(tenant).exists()


def test_a_refused_url_says_why_in_a_sentence_and_who_can_allow_it(owner_client, api, tenant):
    """Found on a new-user walk (a help site served on loopback to try crawling): the form said
    "port 8151 (only ports 80 and 443 are fetched)", and "10.0.0.5 resolves to 10.0.0.5 is a
    private address", with no way forward."""
    cases = {
        "http://127.0.0.1:8151/help": (
            "This URL is not fetched: port 8151 (only ports 80 and 443 are fetched). SupportAI fetches "
            "only public web sites on ports 80 and 443; the server's operator can allow this one with "
            "SCRAPE_ALLOWLIST=127.0.0.1:8151."
        ),
        "http://10.0.0.5/": "This URL is not fetched: 10.0.0.5 is a private address. SupportAI",
        "http://[::1]:8080/": "can allow this one with SCRAPE_ALLOWLIST=[::1]:8080.",
        "http://intranet.local/faq": "intranet.local is an internal host name. SupportAI",
    }
    for url, expected in cases.items():
        response = owner_client.post(reverse("knowledge-url-create"), {"url": url, "max_pages": "5"})
        assert response.status_code == 200
        (error,) = response.context["url_form"].errors["url"]
        assert expected in error, (url, error)
        assert "resolves to" not in error
    # Refusals no allow-list can lift get no such advice.
    response = owner_client.post(reverse("knowledge-url-create"), {"url": "http://user:pw@example.com/"})
    (error,) = response.context["url_form"].errors["url"]
    assert error == "This URL is not fetched: URLs with user names or passwords are not fetched."
    # The API: the same sentence in the error's details, the documented shape kept.
    answer = api.post("/api/v1/knowledge/urls", {"url": "http://127.0.0.1:8151/help"}, format="json")
    body = answer.json()
    assert answer.status_code == 400 and body["detail"].startswith("URL not allowed: port 8151")
    assert body["data"]["code"] == "url_not_allowed"
    assert body["data"]["url"] == [cases["http://127.0.0.1:8151/help"]]
    assert not sources(tenant).exists()


def test_retry_a_failed_source(owner_client, foreign_client, tenant):
    failed = KnowledgeSource.objects.create(
        organization=tenant.organization,
        kind="url",
        url="https://example.com/",
        status="failed",
        error="Timed out.",
    )
    assert foreign_client.post(reverse("knowledge-source-retry", args=[failed.pk])).status_code == 404
    failed.refresh_from_db()
    assert failed.status == "failed"
    page = owner_client.get(reverse("knowledge-source", args=[failed.pk]))
    assert b"Timed out." in page.content and b"Retry" in page.content
    owner_client.post(reverse("knowledge-source-retry", args=[failed.pk]))
    failed.refresh_from_db()
    assert failed.status == "pending" and failed.error == ""
    response = owner_client.post(reverse("knowledge-source-retry", args=[failed.pk]), follow=True)
    assert b"Only failed sources" in response.content


def test_a_source_no_worker_picked_up_shows_why_with_retry(owner_client, tenant, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.KNOWLEDGE_UNPICKED_AFTER_SECONDS = 180
    source = KnowledgeSource.objects.create(
        organization=tenant.organization, kind="url", url="https://example.com/", status="pending"
    )
    KnowledgeSource.objects.for_organization(tenant.organization).filter(pk=source.pk).update(
        updated_at=timezone.now() - timedelta(minutes=10)
    )
    listing = owner_client.get(reverse("knowledge")).content.decode()
    assert "No worker has picked this up" in listing
    assert reverse("knowledge-source-retry", args=[source.pk]) in listing
    detail = owner_client.get(reverse("knowledge-source", args=[source.pk])).content.decode()
    assert "No worker has picked this up" in detail and "Retry" in detail
    owner_client.post(reverse("knowledge-source-retry", args=[source.pk]))
    source.refresh_from_db()
    assert source.status == "pending" and not source.unpicked
