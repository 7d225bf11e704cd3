"""Every dashboard page in Chromium: it renders without script errors, fits a tablet screen,
and is screenshotted for docs/screenshots/ (SUPPORTAI_SCREENSHOTS=1)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from assistants import services as assistant_services
from assistants.models import Assistant, UserContext
from chat import services as chat_services
from chat.models import Message
from knowledge import services as knowledge_services
from knowledge.models import KnowledgeSource
from organizations.services import api_key_create, membership_create, organization_create, user_get_or_create
from widget.services import widget_create, widget_update

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"


def seed() -> dict:
    owner = user_get_or_create(email="maria@northwind.example", password=PASSWORD)
    owner.first_name, owner.last_name = "Maria", "Anders"
    owner.save()
    organization = organization_create(name="Northwind Traders", owner=owner)
    organization_create(name="Northwind Labs", owner=owner)
    for email, role in [("sam@northwind.example", "admin"), ("lee@northwind.example", "agent")]:
        membership_create(
            organization=organization, user=user_get_or_create(email=email, password=None), role=role
        )
    api_key_create(organization=organization, name="Production backend", created_by=owner)
    revoked, _ = api_key_create(organization=organization, name="Old staging key", created_by=owner)
    revoked.revoked_at = revoked.created_at
    revoked.save()
    assistant = Assistant.objects.create(
        organization=organization,
        name="Northwind Helper",
        description="Answers shoppers' questions about orders and shipping.",
        tone="friendly",
        instructions="Keep answers short and offer a human for billing disputes.",
        default_tasks=["answer_questions", "provide_support"],
    )
    Assistant.objects.create(organization=organization, name="Wholesale Desk", tone="formal", is_active=False)
    action = assistant_services.action_create(
        organization=organization,
        assistant=assistant,
        name="order_lookup",
        description="Look up an order by its number: status, carrier and delivery date.",
        url_template="https://api.northwind-traders.com/v1/orders/{order_id}",
        parameters={
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
        headers={"Authorization": "Bearer sk_live_northwind"},
        requires_verified_visitor=True,
    )
    for question, answer, tags in [
        ("What are your opening hours?", "Monday to Friday, 9am to 5pm CET.", ["hours"]),
        (
            "How long does shipping take?",
            "Orders ship within 24 hours and arrive in 2-4 business days.",
            ["shipping"],
        ),
        ("Can I return an item?", "Yes, within 30 days of delivery, unused and in its box.", ["returns"]),
    ]:
        knowledge_services.qa_create(organization=organization, question=question, answer=answer, tags=tags)
    pending = KnowledgeSource.objects.create(
        organization=organization,
        kind="url",
        url="https://northwind.example/help",
        title="Help center",
        crawl=True,
        max_pages=50,
        status="processing",
    )
    KnowledgeSource.objects.create(
        organization=organization,
        kind="file",
        file_name="catalogue-2026.pdf",
        title="catalogue-2026.pdf",
        file_type="pdf",
        status="failed",
        error="The PDF is encrypted; upload a copy without a password.",
    )
    widget = widget_create(
        organization=organization,
        assistant_id=assistant.pk,
        title="Northwind Support",
        greeting="Hi! Questions about your order?",
        primary_color="#0f766e",
        suggested_questions=["How long does shipping take?", "Can I return an item?"],
        allowed_domains=["https://shop.northwind.example"],
    )
    context = UserContext.objects.create(
        organization=organization,
        user_reference="customer-1042",
        traits={"plan": "Gold", "name": "Ana Trujillo", "orders": 14},
    )
    conversation = chat_services.conversation_create(
        organization=organization,
        assistant=assistant,
        customer_id="customer-1042",
        user_context=context,
        title="Order #1042",
        metadata={"page": "/orders/1042", "browser": "Firefox 132"},
    )
    chat_services.message_post(conversation=conversation, content="How long does shipping take to Lisbon?")
    chat_services.message_post(conversation=conversation, content="Do you gift-wrap orders?")
    # An answer that called the order-lookup action (what a tool-capable model would do).
    lookup = chat_services.message_post(conversation=conversation, content="Where is my order #1042?")
    Message.objects.for_organization(organization).filter(pk=lookup.pk).update(
        content="Order 1042 shipped with DHL on 4 December and should arrive by 9 December.",
        answered=True,
        tool_calls=[
            {
                "name": "order_lookup",
                "arguments": {"order_id": "1042"},
                "status": "ok",
                "duration_ms": 143,
                "error": "",
            }
        ],
    )
    chat_services.handoff_take_over(conversation=conversation, user=owner)
    chat_services.operator_reply_post(
        conversation=conversation, user=owner, content="Hi Ana, yes we do: add a note at checkout."
    )
    session = chat_services.session_create(
        organization=organization, assistant=assistant, visitor_id="v_3f9a", metadata={"page": "/pricing"}
    )
    chat_services.message_post(conversation=session, content="Can I return an item?")
    answer = (
        Message.objects.for_organization(organization).filter(conversation=session, role="assistant").get()
    )
    chat_services.message_feedback_set(message=answer, rating="up")
    pending.refresh_from_db()
    return {
        "organization": organization,
        "widget": widget,
        "conversation": conversation,
        "source": pending,
        "assistant": assistant,
        "action": action,
    }


def login(page) -> None:
    page.goto("/login/")
    page.fill("#id_username", "maria@northwind.example")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Overview")
    if page.locator("#org-select option:checked").inner_text() != "Northwind Traders":
        page.select_option("#org-select", label="Northwind Traders")
        expect(page.locator(".flash")).to_contain_text("Switched to Northwind Traders")


def check(page, screenshot, name: str, errors: list[str]) -> None:
    page.wait_for_load_state("networkidle")
    assert not errors, errors
    screenshot(page, name)


def test_every_page_renders_cleanly_at_desktop_and_tablet_width(browser_context, screenshot):
    data = seed()
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "response",
        lambda response: response.status >= 400 and errors.append(f"{response.status} {response.url}"),
    )

    page.goto("/login/")
    check(page, screenshot, "login", errors)
    page.goto("/password-reset/")
    check(page, screenshot, "password-reset", errors)
    login(page)

    pages = {
        "overview-with-data": "/",
        "inbox-conversation": f"/inbox/{data['conversation'].pk}/",
        "assistants": "/assistants/",
        "assistant-actions": f"/assistants/{data['assistant'].pk}/",
        "assistant-action-form": f"/assistants/{data['assistant'].pk}/actions/{data['action'].pk}/",
        "knowledge-sources": "/knowledge/",
        "knowledge-source-failed": "/knowledge/?status=failed",
        "widgets": "/widgets/",
        "widget-embed": f"/widgets/{data['widget'].pk}/",
        "settings-organization": "/settings/",
        "settings-api-keys": "/settings/api-keys/",
        "settings-members": "/settings/members/",
    }
    for name, url in pages.items():
        page.goto(url)
        check(page, screenshot, name, errors)

    # The widget preview works on the dashboard even though the widget allows only the shop.
    page.goto(f"/widgets/{data['widget'].pk}/")
    preview = page.frame_locator("[data-testid=widget-preview]")
    preview.locator("button.launcher").click()
    expect(preview.locator(".panel")).to_contain_text("Questions about your order?")

    # And while the widget requires verified visitors: the preview's token is the dashboard's
    # own, so the operator still chats in it (any refusal lands in `errors`).
    widget_update(widget=data["widget"], require_verified_visitors=True)
    page.goto(f"/widgets/{data['widget'].pk}/")
    preview = page.frame_locator("[data-testid=widget-preview]")
    expect(preview.locator(".panel")).to_contain_text("Questions about your order?")  # still open
    answers = preview.locator(".msg.assistant").count()
    preview.locator(".panel textarea").fill("Where is my order?")
    preview.locator("button[aria-label='Send message']").click()
    expect(preview.locator(".msg.user").last).to_contain_text("Where is my order?")
    expect(preview.locator(".msg.assistant")).to_have_count(answers + 1, timeout=20_000)
    assert not errors, errors  # (no networkidle wait: the panel's live stream stays open)

    # A source still processing refreshes its own row; here it finishes while we watch.
    page.goto("/knowledge/")
    row = page.locator(f"#source-{data['source'].pk}")
    expect(row).to_contain_text("Processing")
    KnowledgeSource.objects.for_organization(data["organization"]).filter(pk=data["source"].pk).update(
        status="ready", chunk_count=12
    )
    expect(row).to_contain_text("Ready", timeout=6_000)

    # Tablet (portrait and landscape): no page scrolls sideways.
    for width, height in [(820, 1180), (1024, 768)]:
        page.set_viewport_size({"width": width, "height": height})
        for name, url in pages.items():
            page.goto(url)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{url} scrolls sideways by {overflow}px at {width}px"
        page.goto(f"/inbox/{data['conversation'].pk}/")
        if width == 820:
            screenshot(page, "tablet-inbox")
    page.set_viewport_size({"width": 820, "height": 1180})
    page.goto("/")
    screenshot(page, "tablet-overview")
    assert not errors, errors


def test_organization_switcher_and_agent_view(browser_context, screenshot):
    data = seed()
    page = browser_context.new_page()
    login(page)
    page.select_option("#org-select", label="Northwind Labs")  # currently on Traders
    expect(page.locator(".flash")).to_contain_text("Switched to Northwind Labs")
    expect(page.get_by_text("Get started")).to_be_visible()
    page.select_option("#org-select", label="Northwind Traders")
    expect(page.locator(".flash")).to_contain_text("Switched to Northwind Traders")

    # An agent works the inbox but has no API Keys tab, and the keys URL is refused.
    agent = browser_context.browser.new_context(
        base_url=page.url.split("/", 3)[0] + "//" + page.url.split("/")[2]
    )
    agent_page = agent.new_page()
    from django.contrib.auth import get_user_model

    lee = get_user_model().objects.get(username="lee@northwind.example")
    lee.set_password(PASSWORD)
    lee.save()
    agent_page.goto("/login/")
    agent_page.fill("#id_username", "lee@northwind.example")
    agent_page.fill("#id_password", PASSWORD)
    agent_page.click("button:has-text('Sign in')")
    agent_page.goto("/settings/")
    expect(agent_page.locator(".tabs")).not_to_contain_text("API Keys")
    response = agent_page.goto("/settings/api-keys/")
    assert response.status == 403
    response = agent_page.goto(f"/inbox/{data['conversation'].pk}/")
    assert response.status == 200
    agent.close()


def test_knowledge_drag_and_drop_upload_and_live_status(browser_context, screenshot):
    from knowledge import services as knowledge_ingestion
    from supportai.celery import app

    data = seed()
    page = browser_context.new_page()
    login(page)
    page.goto("/knowledge/")
    # Drop two files on the drop zone at once, as a user dragging them from their desktop would.
    transfer = page.evaluate_handle(
        """() => {
            const transfer = new DataTransfer();
            transfer.items.add(new File(["# Warranty\\n\\nEvery robot has a 2-year warranty."], "warranty.md", {type: "text/markdown"}));
            transfer.items.add(new File(["Batteries last about 8 hours per charge."], "battery.txt", {type: "text/plain"}));
            return transfer;
        }"""
    )
    page.dispatch_event("[data-dropzone]", "drop", {"dataTransfer": transfer})
    expect(page.locator("[data-file-list] li")).to_have_count(2)
    page.click("button:has-text('Upload')")
    expect(page.locator(".flash--success")).to_contain_text("2 files uploaded")
    rows = page.locator("tr[data-status='pending']")
    expect(rows).to_have_count(2)
    screenshot(page, "knowledge-upload-pending")

    # A worker ingests them (the task calls exactly this service); the open page updates itself.
    uploaded = KnowledgeSource.objects.for_organization(data["organization"]).filter(
        kind="file", status="pending"
    )
    for source in uploaded:
        knowledge_ingestion.source_ingest(source_id=str(source.pk))
    expect(page.locator("tr[data-status='ready']", has_text="warranty.md")).to_have_count(1, timeout=8_000)
    expect(page.locator("tr[data-status='ready']", has_text="battery.txt")).to_have_count(1, timeout=8_000)
    page.fill("input[name=query]", "how long is the warranty?")
    page.click("button:has-text('Search knowledge')")
    expect(page.get_by_test_id("retrieval-results")).to_contain_text("2-year warranty")
    screenshot(page, "knowledge-upload-ready")
    # No worker consumed the queued ingestion messages in this test; drop them.
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("ingestion")
