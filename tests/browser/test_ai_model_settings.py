"""Settings › AI model in a real browser: an owner adds a self-hosted model (the fake
OpenAI-compatible server on loopback, allowed by the server admin), tests the connection,
picks it for an assistant and gets the playground's answer from it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from knowledge.services import qa_create
from testkit.llm_server import LoopbackLLM

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ORG_KEY = "sk-house-key-from-the-dashboard-7f3e"


@pytest.fixture
def house_llm(settings):
    from chat.llm import litellm_provider

    litellm_provider._lib()  # importing litellm costs seconds: not inside a click's wait
    server = LoopbackLLM().start()
    settings.LLM_BASE_URL_ALLOWLIST = [f"127.0.0.1:{server.port}"]
    settings.LLM_MODEL = ""  # the server itself runs offline
    settings.LLM_PROVIDER = ""
    settings.LLM_TIMEOUT = 10.0
    yield server
    server.stop()


def test_owner_sets_a_model_in_the_dashboard_and_the_playground_answers_with_it(
    browser_context, screenshot, tenant, house_llm
):
    qa_create(
        organization=tenant.organization,
        question="How long do refunds take?",
        answer="Refunds reach your card within 5 business days.",
    )
    page = browser_context.new_page()
    page.goto("/login/")
    page.fill("#id_username", tenant.owner.email)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Overview")

    page.click("nav >> text=Settings")
    page.click(".tabs >> text=AI model")
    page.select_option("#id_provider", "openai_compatible")
    page.fill("#id_model", "house-llm")
    page.fill("#id_api_key", ORG_KEY)
    page.fill("#id_base_url", house_llm.api_base)
    page.fill("#id_label", "House LLM")
    page.click("button:has-text('Add model')")
    expect(page.locator(".flash")).to_contain_text("openai/house-llm added")
    row = page.get_by_test_id("ai-model-row")
    expect(row).to_contain_text("House LLM")
    assert ORG_KEY not in page.content()

    page.click("button:has-text('Test connection')", no_wait_after=True)
    expect(page.locator(".flash")).to_contain_text("Connection works", timeout=60_000)
    assert house_llm.headers[-1]["authorization"] == f"Bearer {ORG_KEY}"
    screenshot(page, "settings-ai-model")

    page.click("nav >> text=Assistants")
    page.goto("/assistants/new/")
    expect(page.get_by_test_id("offline-notice")).to_be_visible()  # the server default is offline
    page.fill("#id_name", "Shop helper")
    page.select_option("#id_model", "openai/house-llm")
    page.click("button:has-text('Create assistant')")
    expect(page.locator("h1")).to_have_text("Playground")
    expect(page.get_by_test_id("offline-notice")).to_have_count(0)

    house_llm.default_behaviour = {
        "kind": "ok",
        "content": "The house model says: refunds take 5 business days [1]",
    }
    page.fill("#id_content", "How long do refunds take?")
    page.keyboard.press("Enter")
    expect(page.locator("#chat-log")).to_contain_text(
        "The house model says: refunds take 5 business days", timeout=60_000
    )
    assert house_llm.requests[-1]["model"] == "house-llm"
    assert house_llm.headers[-1]["authorization"] == f"Bearer {ORG_KEY}"
    assert ORG_KEY not in page.content()
