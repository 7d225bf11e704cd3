"""Issue 16's journey in one real browser: a visitor asks for a person in the real widget.js
on a customer's site → the agent's open inbox shows it within 5 s → the agent takes over and
replies → the visitor sees it → the agent resolves → the visitor rates 4 → the overview shows
the CSAT."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from assistants.models import Assistant
from chat.models import CsatRating
from knowledge.services import qa_create
from testkit.fixtures import member_add
from testkit.hostpage import HostSite
from widget.selectors import widget_embed_snippet
from widget.services import widget_client_key_get_or_create, widget_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDGET = "[data-supportai-instance]"


def test_visitor_to_agent_to_rating(browser_context, live_server, tenant):
    organization = tenant.organization
    assistant = Assistant.objects.create(organization=organization, name="Acme helper")
    qa_create(
        organization=organization,
        question="What are your business hours?",
        answer="We are open Monday to Friday, 9 AM to 6 PM.",
        assistant=assistant,
    )
    agent = member_add(tenant, role="agent", email="sam@acme.example")
    with HostSite("") as site:
        widget = widget_create(
            organization=organization,
            assistant_id=assistant.id,
            title="Acme support",
            allowed_domains=[site.url],
        )
        site.snippet = widget_embed_snippet(
            widget=widget,
            base_url=live_server.url,
            client_id=widget_client_key_get_or_create(organization=organization).client_id,
        )

        # The agent's inbox is open before anything happens.
        inbox = browser_context.new_page()
        inbox_errors: list[str] = []
        inbox.on(
            "console", lambda message: inbox_errors.append(message.text) if message.type == "error" else None
        )
        inbox.goto("/login/")
        inbox.fill("#id_username", agent.email)
        inbox.fill("#id_password", "correct-horse-battery")
        inbox.click("button:has-text('Sign in')")
        expect(inbox.locator("h1")).to_have_text("Overview")
        inbox.goto("/inbox/?status=waiting")

        # The visitor asks a question, then for a person, in the real widget.
        visitor = browser_context.new_page()
        visitor.goto(site.url)
        chat = visitor.locator(WIDGET)
        chat.locator(".launcher").click()
        chat.locator("textarea").fill("What are your business hours?")
        chat.locator("textarea").press("Enter")
        chat.locator(".msg.assistant[data-id]").first.wait_for(timeout=30000)
        chat.locator(".handoff button").click()
        chat.locator(".note", has_text="A member of our team will reply here").wait_for(timeout=5000)

        # Within 5 s the agent's open inbox shows it.
        expect(inbox.locator("[data-queue-badge]")).to_have_text("1", timeout=5000)
        inbox.reload()
        inbox.locator(".conv-item").first.click()
        inbox.click("button:has-text('Take over')")
        inbox.fill("#reply-content", "Hi, I'm Sam from Acme. How can I help?")
        inbox.click("button:has-text('Send reply')")

        # The visitor sees the reply live.
        chat.locator(".msg.operator[data-id]", has_text="Sam from Acme").wait_for(timeout=10000)
        expect(chat.locator("header p")).to_have_text("You are chatting with our team")
        # Typing a reply (the composer's own typing request) logs nothing in the agent's console.
        assert inbox_errors == []

        # The agent resolves; the visitor rates 4.
        inbox.click("button:has-text('Resolve')")
        card = chat.locator(".csat")
        card.wait_for(timeout=10000)
        card.locator("button[aria-label='4 out of 5']").click()
        card.locator("button.send").click()
        card.locator("text=Thanks for your rating!").wait_for(timeout=5000)
        assert CsatRating.objects.for_organization(organization).get().score == 4

        # The overview shows the CSAT.
        inbox.goto("/")
        expect(inbox.get_by_test_id("kpi-csat")).to_have_text("4.0 / 5")
        expect(inbox.get_by_test_id("kpi-handoffs")).to_have_text("1")
