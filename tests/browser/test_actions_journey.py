"""Assistant actions from the dashboard, in Chromium: the owner adds an order-lookup action
(headers write-only), asks in the playground, and the answer — written by the loopback LLM
from what the loopback orders API returned — shows the call; the header value is on no page."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from assistants.models import Action, Assistant
from chat.tests.orders_api import OrdersAPI
from organizations.services import organization_create, user_get_or_create
from testkit.llm_server import LoopbackLLM

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"
SECRET = "sk_live_browser_5d1e8a7c"


@pytest.fixture
def servers(settings):
    llm, orders = LoopbackLLM().start(), OrdersAPI().start()
    settings.LLM_MODEL = "openai/loopback-model"
    settings.LLM_API_BASE = llm.api_base
    settings.LLM_API_KEY = "sk-loopback-not-a-real-key"
    settings.LLM_TIMEOUT = 10.0
    settings.LLM_TOOL_CALLING = "on"
    settings.SCRAPE_ALLOWLIST = [orders.allow]
    yield llm, orders
    llm.stop()
    orders.stop()


def test_add_an_action_and_see_it_called_in_the_playground(browser_context, servers, screenshot):
    llm, orders = servers
    owner = user_get_or_create(email="ada@shop.example", password=PASSWORD)
    organization = organization_create(name="Shop", owner=owner)
    assistant = Assistant.objects.create(organization=organization, name="Shop helper")

    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/login/")
    page.fill("#id_username", "ada@shop.example")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Overview")

    page.goto(f"/assistants/{assistant.pk}/")
    expect(page.get_by_test_id("no-actions")).to_be_visible()
    page.click("text=Add action")
    page.fill("#id_name", "order_lookup")
    page.fill("#id_description", "Look up an order's status and delivery date by its number.")
    page.fill("#id_url_template", f"{orders.base}/api/orders/{{order_id}}")
    page.fill(
        "#id_parameters",
        json.dumps(
            {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}
        ),
    )
    page.fill("#id_headers", f"Authorization: Bearer {SECRET}")
    page.click("button:has-text('Add action')")
    row = page.get_by_test_id("action-row")
    expect(row).to_contain_text("order_lookup")
    expect(row).to_contain_text("Authorization")
    assert SECRET not in page.content()
    action = Action.objects.for_organization(organization).get()
    assert action.header_names == ["Authorization"]

    # The edit page names the header, never its value.
    page.click("a.table__link:has-text('order_lookup')")
    expect(page.get_by_test_id("header-names")).to_contain_text("Authorization")
    assert SECRET not in page.content()

    llm.then(tool_calls=[{"name": "order_lookup", "arguments": {"order_id": "A-1001"}}])
    llm.then(content="Your order A-1001 has shipped with DHL and should arrive on 9 December.")
    page.goto(f"/assistants/{assistant.pk}/playground/")
    page.fill("#id_content", "Where is my order A-1001?")
    page.press("#id_content", "Enter")
    call = page.get_by_test_id("tool-call")
    # The first turn imports litellm in the live server (seconds of CPU on a loaded machine).
    expect(call).to_contain_text("order_lookup", timeout=60_000)
    expect(call).to_contain_text("ok")
    expect(call).to_contain_text('"order_id": "A-1001"')
    expect(page.get_by_test_id("message-assistant")).to_contain_text("shipped")
    screenshot(page, "assistant-playground-action")
    tool_result = next(m for m in llm.requests[1]["messages"] if m["role"] == "tool")["content"]
    assert json.loads(tool_result)["body"]["status"] == "shipped"  # what the model answered from
    assert orders.requests[0]["path"] == "/api/orders/A-1001"
    assert orders.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in page.content() and SECRET not in json.dumps(llm.requests)
    assert not errors, errors
