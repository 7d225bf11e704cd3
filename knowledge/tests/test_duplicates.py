"""The same source added twice: a file's bytes, a page's URL, a Q&A pair's text (API, dashboard,
services), and identical text that reaches retrieval through two different sources."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.messages import get_messages
from django.urls import reverse

from knowledge import duplicates, services
from knowledge.models import KnowledgeSource
from knowledge.tests.conftest import upload
from knowledge.tests.factories import assistant_make
from organizations.models import AuditEvent
from testkit.sites import html_page

pytestmark = [pytest.mark.django_db, pytest.mark.without_redis]

BASE = "/api/v1/knowledge"
HANDBOOK = b"# Handbook\n\nReturns are free within 60 days of delivery.\n"


def sources(tenant, **filters):
    return KnowledgeSource.objects.for_organization(tenant.organization).filter(**filters)


def _file_post(api, data: bytes = HANDBOOK, **fields):
    return api.post(
        f"{BASE}/files",
        {"file": upload(fields.pop("name", "handbook.md"), data), **fields},
        format="multipart",
    )


# --- files -------------------------------------------------------------------------------
def test_the_same_file_again_answers_200_with_the_source_already_there(api, tenant):
    first = _file_post(api, title="Handbook")
    assert first.status_code == 202, first.json()
    again = _file_post(api, title="Another title", name="copy-of-handbook.md")
    assert again.status_code == 200, again.json()
    body = again.json()
    assert body["status"] == "success" and body["status_code"] == 200
    assert body["data"]["id"] == first.json()["data"]["id"] and body["data"]["title"] == "Handbook"
    assert sources(tenant).count() == 1
    assert (
        AuditEvent.objects.for_organization(tenant.organization).filter(action="knowledge.created").count()
        == 1
    )
    # Other bytes are another file.
    assert _file_post(api, HANDBOOK + b"Exchanges too.\n").status_code == 202
    assert sources(tenant).count() == 2


def test_another_organizations_identical_file_is_not_a_duplicate(api, other_api, tenant, other_tenant):
    mine = _file_post(api).json()["data"]
    theirs = _file_post(other_api)
    assert theirs.status_code == 202 and theirs.json()["data"]["id"] != mine["id"]
    assert sources(tenant).count() == 1 and sources(other_tenant).count() == 1
    # And the other way round: their copy never makes ours a duplicate, nor reveals theirs.
    assert _file_post(other_api).json()["data"]["id"] == theirs.json()["data"]["id"]


def test_the_same_file_for_another_scope_is_another_source(api, tenant):
    assistant = assistant_make(organization=tenant.organization)
    org_wide = _file_post(api).json()["data"]
    scoped = _file_post(api, assistant_id=str(assistant.pk))
    assert scoped.status_code == 202 and scoped.json()["data"]["id"] != org_wide["id"]
    assert _file_post(api, assistant_id=str(assistant.pk)).status_code == 200
    assert sources(tenant).count() == 2


def test_bad_input_is_refused_before_any_duplicate_check(api, tenant):
    _file_post(api)
    refused = _file_post(api, file_type="pdf")  # the same bytes declared as a PDF
    assert refused.status_code == 400 and refused.json()["status"] == "error"
    assert _file_post(api, b"").status_code == 400
    assert sources(tenant).count() == 1


def test_a_failed_file_uploaded_again_is_replaced_and_queued_again(api, tenant):
    broken = b"%PDF-1.4 junk"
    first = _file_post(api, broken, name="manual.pdf", file_type="pdf").json()["data"]
    services.source_ingest(source_id=first["id"])
    source = sources(tenant).get()
    assert source.status == "failed"
    previous_file = source.file.name

    again = _file_post(api, broken, name="manual-v1.pdf", file_type="pdf", title="Manual")
    assert again.status_code == 202, again.json()
    data = again.json()["data"]
    assert data["id"] == first["id"] and data["status"] == "pending" and data["error"] == ""
    source.refresh_from_db()
    assert source.file_name == "manual-v1.pdf" and source.title == "Manual" and source.attempts == 0
    assert source.file.name != previous_file and source.file.read() == broken
    assert sources(tenant).count() == 1


# --- URLs --------------------------------------------------------------------------------
def test_the_same_page_under_another_spelling_is_a_duplicate(api, tenant, site):
    site.page("/help", html_page("Help", "<p>Returns are free.</p>"))
    first = api.post(f"{BASE}/urls", {"url": site.url("/help"), "title": "Help"}, format="json")
    assert first.status_code == 202
    spelling = site.url("/help/").replace("http://127.0.0.1", "HTTP://127.0.0.1") + "#top"
    again = api.post(f"{BASE}/urls", {"url": spelling}, format="json")
    assert again.status_code == 200, again.json()
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    # A crawl from that page adds the site's other pages: another source.
    crawl = api.post(f"{BASE}/urls", {"url": site.url("/help"), "crawl": True, "max_pages": 5}, format="json")
    assert crawl.status_code == 202
    # Another query string may be another page.
    assert api.post(f"{BASE}/urls", {"url": site.url("/help?lang=de")}, format="json").status_code == 202
    assert sources(tenant).count() == 3


def test_a_failed_page_added_again_is_queued_again_with_the_new_options(api, tenant, site):
    first = api.post(f"{BASE}/urls", {"url": site.url("/gone")}, format="json").json()["data"]
    services.source_ingest(source_id=first["id"])
    assert sources(tenant).get().status == "failed"
    again = api.post(f"{BASE}/urls", {"url": site.url("/gone"), "title": "Gone page"}, format="json")
    assert again.status_code == 202
    assert again.json()["data"]["id"] == first["id"] and again.json()["data"]["status"] == "pending"
    assert sources(tenant).get().title == "Gone page"


def test_url_normalise():
    assert duplicates.url_normalise("https://shop.example:443/help/?a=1") == "https://shop.example/help?a=1"
    assert duplicates.url_normalise("http://shop.example:8080") == "http://shop.example:8080/"
    assert duplicates.url_normalise("http://[::1]:80/x") == "http://[::1]/x"


# --- Q&A pairs ---------------------------------------------------------------------------
def test_the_same_qa_pair_again_answers_200_with_the_pair_already_there(api, tenant):
    pair = {"question": "What are your business hours?", "answer": "Monday to Friday, 9 AM to 6 PM EST."}
    first = api.post(f"{BASE}/qa", {**pair, "tags": ["hours"]}, format="json")
    assert first.status_code == 201
    again = api.post(
        f"{BASE}/qa",
        {"question": "what are your  business hours?", "answer": pair["answer"].upper(), "tags": ["x"]},
        format="json",
    )
    assert again.status_code == 200, again.json()
    assert again.json()["data"]["id"] == first.json()["data"]["id"] and again.json()["data"]["tags"] == [
        "hours"
    ]
    # The same question with another answer is another pair.
    other = api.post(f"{BASE}/qa", {**pair, "answer": "Every day, 8 AM to 8 PM."}, format="json")
    assert other.status_code == 201
    assert sources(tenant).count() == 2
    # Bad input is still a 400.
    assert (
        api.post(f"{BASE}/qa", {"question": pair["question"], "answer": ""}, format="json").status_code == 400
    )


def test_editing_a_pair_into_a_copy_of_another_is_refused(tenant):
    one = services.qa_create(organization=tenant.organization, question="Q one?", answer="A one.")
    two = services.qa_create(organization=tenant.organization, question="Q two?", answer="A two.")
    with pytest.raises(services.SourceExists) as refused:
        services.qa_update(source=two, question="Q one?", answer="A one.")
    assert refused.value.source == one and "Already in your knowledge as “Q one?”" in refused.value.message
    two.refresh_from_db()
    assert two.question == "Q two?"
    services.qa_update(source=one, question="Q one?", answer="A one.", tags=["kept"])  # itself: fine


# --- dashboard ---------------------------------------------------------------------------
def _flashes(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_dashboard_upload_of_a_file_already_there_names_it_and_links_to_it(owner_client, tenant):
    owner_client.post(reverse("knowledge-files"), {"files": [upload("handbook.md", HANDBOOK)]})
    existing = sources(tenant).get()
    response = owner_client.post(
        reverse("knowledge-files"),
        {"files": [upload("handbook-again.md", HANDBOOK), upload("other.md", b"Other text.\n")]},
    )
    assert response.status_code == 302
    flashes = _flashes(response)
    assert any(
        f"Already in your knowledge as “{existing.title}”, added " in text
        and reverse("knowledge-source", args=[existing.pk]) in text
        for text in flashes
    ), flashes
    assert any("1 file uploaded (other.md)" in text for text in flashes), flashes
    assert sources(tenant).count() == 2


def test_dashboard_reupload_of_a_failed_file_queues_it_again(owner_client, tenant):
    owner_client.post(reverse("knowledge-files"), {"files": [upload("manual.pdf", b"%PDF-1.4 junk")]})
    source = sources(tenant).get()
    services.source_ingest(source_id=source.pk)
    response = owner_client.post(
        reverse("knowledge-files"), {"files": [upload("manual.pdf", b"%PDF-1.4 junk")]}
    )
    assert any("had failed; this upload replaces it" in text for text in _flashes(response))
    source.refresh_from_db()
    assert source.status == "pending" and sources(tenant).count() == 1


def test_dashboard_qa_pair_already_there_is_named_and_not_added(owner_client, tenant):
    pair = {"question": "Do you ship to Canada?", "answer": "Yes, in 5-7 days."}
    owner_client.post(reverse("knowledge-qa-create"), pair)
    response = owner_client.post(reverse("knowledge-qa-create"), pair)
    assert response.status_code == 302
    page = owner_client.get(reverse("knowledge"))
    existing = sources(tenant).get()
    html = page.content.decode()
    assert "Already in your knowledge as “Do you ship to Canada?”" in html
    assert f'<a href="{reverse("knowledge-source", args=[existing.pk])}">Open it</a>' in html
    assert sources(tenant).count() == 1


# --- sources stored before fingerprints --------------------------------------------------
def test_the_migration_fills_the_fingerprints_of_older_sources(tenant, site):
    qa = services.qa_create(organization=tenant.organization, question="Q?", answer="A.")
    page = services.url_source_create(organization=tenant.organization, url=site.url("/a/"))
    file = services.file_source_create(
        organization=tenant.organization, title="", file_type="", uploaded_file=upload("h.md", HANDBOOK)
    )
    expected = {source.pk: source.fingerprint for source in (qa, page, file)}
    assert all(expected.values())
    sources(tenant).update(fingerprint="")
    migration = importlib.import_module("knowledge.migrations.0010_source_fingerprint")
    migration.fingerprints_fill(apps, None)
    assert {source.pk: source.fingerprint for source in sources(tenant)} == expected
    # So adding one of them again is noticed.
    with pytest.raises(services.SourceExists):
        services.qa_create(organization=tenant.organization, question="Q?", answer="A.")


# --- identical text that still reaches retrieval through two sources ---------------------
def test_identical_text_in_two_sources_is_one_passage(tenant):
    from knowledge.retrieval import chunk_search
    from testkit.answer_quality import text_source_add

    text = "Returns are free within 60 days of delivery. Print the label from your account."
    first = text_source_add(organization=tenant.organization, key="a", title="Returns", text=text)
    text_source_add(organization=tenant.organization, key="b", title="Returns (copy)", text=f"  {text}\n")
    text_source_add(
        organization=tenant.organization,
        key="c",
        title="Exchanges",
        text="Exchanges for another size are free.",
    )
    for mode in ("hybrid", "lexical", "vector"):
        passages = chunk_search(organization=tenant.organization, query="are returns free", k=2, mode=mode)
        assert len(passages) == 2, mode
        assert len({" ".join(passage.content.split()) for passage in passages}) == 2, mode
        assert str(passages[0].source_id) == first or passages[0].title == "Returns (copy)"


def test_a_pair_in_two_scopes_is_answered_not_refused(tenant, settings):
    """The same Q&A pair organization-wide and for one assistant (two scopes, so both are kept):
    the copy was the closest other candidate of the original in the relevance gate, its margins
    fell to zero and "I forgot my login password, help" was refused (measured: 5 of 31
    answerable questions of bench/data/answer_quality.json refused once every source had a copy)."""
    import json

    from assistants.models import Assistant
    from chat import services as chat_services
    from testkit.answer_quality import DATA

    settings.LLM_MODEL, settings.LLM_PROVIDER = "", ""
    data = json.loads(DATA.read_text())
    organization = tenant.organization
    for pair in data["qa"]:
        services.qa_create(organization=organization, question=pair["question"], answer=pair["answer"])
    assistant = Assistant.objects.create(organization=organization, name="Brightwave Support")
    reset = next(pair for pair in data["qa"] if pair["id"] == "reset")
    services.qa_create(
        organization=organization, question=reset["question"], answer=reset["answer"], assistant=assistant
    )
    session = chat_services.session_create(organization=organization, assistant=assistant)
    answer = chat_services.message_post(conversation=session, content="I forgot my login password, help")
    assert answer.answered and "Reset password" in answer.content, answer.content
    assert len({source["snippet"] for source in answer.sources}) == len(answer.sources)


def test_the_dashboard_flash_escapes_the_existing_title(owner_client, tenant):
    pair = {"question": "<img src=x onerror=alert(1)> hours?", "answer": "9 to 5."}
    owner_client.post(reverse("knowledge-qa-create"), pair)
    owner_client.post(reverse("knowledge-qa-create"), pair)
    html = owner_client.get(reverse("knowledge")).content.decode()
    assert "Already in your knowledge as “&lt;img src=x onerror=alert(1)&gt; hours?”" in html
    assert "<img src=x" not in html
