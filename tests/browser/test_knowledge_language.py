"""Settings › Knowledge in a real browser (issue 19, any language): an owner whose knowledge is
in English switches to "Many languages", watches the re-embedding progress, and the
playground (offline answerer) then answers a Spanish question from the English page, saying
in Spanish that it can only quote the knowledge."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from knowledge import services
from knowledge.chunking import text_chunk
from knowledge.models import KnowledgeSource
from knowledge.services.indexing import content_hash, document_store

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    "Shipping: we ship to the United States, Canada and Mexico. Orders leave our warehouse within two "
    "business days and arrive in 3 to 7 days; international customers pay any import duties.",
    "Returns: you can return any item within 30 days of delivery, unused and in its original packaging.",
    "Payment: we accept Visa, Mastercard, American Express and PayPal.",
]


def test_owner_switches_to_many_languages_and_a_spanish_question_finds_the_english_page(
    browser_context, screenshot, tenant, settings
):
    settings.LLM_MODEL = ""  # the offline answerer
    organization = tenant.organization
    for number, text in enumerate(PAGES):
        source = KnowledgeSource.objects.create(
            organization=organization,
            kind=KnowledgeSource.Kind.FILE,
            title=text.split(":", 1)[0],
            file_name=f"help-{number}.txt",
            file_type=KnowledgeSource.FileType.TEXT,
            status=KnowledgeSource.Status.READY,
        )
        document_store(
            source=source, key="doc", title="", drafts=text_chunk(text), text_hash=content_hash(text)
        )
    page = browser_context.new_page()
    page.goto("/login/")
    page.fill("#id_username", tenant.owner.email)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Overview")

    page.click("nav >> text=Settings")
    page.click(".tabs >> text=Knowledge")
    expect(page.get_by_test_id("embedder-progress")).to_contain_text("In use: English (fast)")
    page.check("input[value='multilingual']")
    page.click("button:has-text('Save')")
    expect(page.locator(".flash")).to_contain_text("Re-embedding the knowledge in the background")
    expect(page.get_by_test_id("embedder-progress")).to_contain_text("0 of 3 passages re-embedded")
    screenshot(page, "settings-knowledge-switching")

    # The worker's task (run here: the browser tests have no worker; the Celery path is
    # knowledge/tests/test_knowledge_settings.py). The page's poll picks up the result.
    assert services.embedder_switch_run(organization_id=organization.pk) == "switched"
    expect(page.get_by_test_id("embedder-progress")).to_contain_text("In use: Many languages", timeout=20_000)
    screenshot(page, "settings-knowledge")

    page.goto("/assistants/new/")
    page.fill("#id_name", "Shop helper")
    page.click("button:has-text('Create assistant')")
    expect(page.locator("h1")).to_have_text("Playground")
    page.fill("#id_content", "¿Hacen envíos a Canadá?")
    page.keyboard.press("Enter")
    log = page.locator("#chat-log")
    expect(log).to_contain_text("Solo puedo citar nuestra base de conocimientos", timeout=60_000)
    expect(log).to_contain_text("Canada and Mexico")
    screenshot(page, "playground-spanish-question-english-knowledge")
