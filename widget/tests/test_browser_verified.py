"""The verified-visitor journey in Chromium: an owner creates the identity secret in the
dashboard, a shop on another origin embeds the widget with the signed user id, the customer
chats on one device and finds their history on another, the operator sees the "Verified"
badge, and erasing the customer removes them everywhere."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from assistants.models import Assistant, UserContext
from chat.models import Conversation
from knowledge.services import qa_create
from testkit.hostpage import HostSite
from widget.selectors import widget_embed_snippet
from widget.services import widget_client_key_get_or_create, widget_create
from widget.tests.test_browser import WIDGET, browser  # noqa: F401 (the Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CUSTOMER = "cust-journey-42"


def test_identity_secret_verified_badge_history_and_erasure(browser, tenant, live_server, settings):  # noqa: F811
    settings.SITE_URL = live_server.url
    organization = tenant.organization
    assistant = Assistant.objects.create(organization=organization, name="Acme helper")
    qa_create(
        organization=organization,
        question="What are your business hours?",
        answer="We are open Monday to Friday, 9 AM to 6 PM.",
        assistant=assistant,
    )
    # 1. The owner creates the identity secret in Settings › Security (shown once).
    dashboard = browser.new_context(base_url=live_server.url).new_page()
    dashboard.goto("/login/")
    dashboard.fill("#id_username", tenant.owner.email)
    dashboard.fill("#id_password", "correct-horse-battery")
    dashboard.click("button:has-text('Sign in')")
    dashboard.goto("/settings/security/")
    dashboard.get_by_test_id("rotate-identity-secret").click()
    secret = dashboard.get_by_test_id("identity-secret").input_value()
    assert secret.startswith("ids_")
    user_hash = hmac.new(secret.encode(), CUSTOMER.encode(), hashlib.sha256).hexdigest()

    with HostSite("") as site:
        widget = widget_create(
            organization=organization,
            assistant_id=assistant.id,
            title="Acme support",
            allowed_domains=[site.url],
        )
        api_key = widget_client_key_get_or_create(organization=organization)
        snippet = widget_embed_snippet(widget=widget, base_url=live_server.url, client_id=api_key.client_id)
        # What the shop's server renders for its signed-in customer.
        site.snippet = snippet.replace(
            "<script ", f'<script data-user-id="{CUSTOMER}" data-user-hash="{user_hash}" ', 1
        )

        # 2. On the laptop the customer asks a question.
        laptop = browser.new_context().new_page()
        laptop.goto(site.url)
        chat = laptop.locator(WIDGET)
        chat.locator(".launcher").click()
        chat.locator("textarea").fill("When are you open?")
        laptop.keyboard.press("Enter")
        chat.locator(".msg.assistant[data-id]").first.wait_for(timeout=30000)
        session = Conversation.objects.for_organization(organization).get()
        assert session.customer_id == CUSTOMER and session.visitor_verified
        assert session.user_context.user_reference == CUSTOMER

        # 3. On another device (no shared storage) the same customer finds the history.
        phone = browser.new_context(viewport={"width": 390, "height": 800}).new_page()
        phone.goto(site.url)
        phone_chat = phone.locator(WIDGET)
        phone_chat.locator(".launcher").click()
        phone_chat.locator(".msg.user").first.wait_for(timeout=15000)
        assert "When are you open?" in phone.evaluate(
            f"() => document.querySelector('{WIDGET}').shadowRoot.textContent"
        )

        # 4. The operator sees the verified badge in the inbox.
        dashboard.goto(f"/inbox/{session.pk}/")
        assert dashboard.get_by_test_id("verified-badge").first.is_visible()
        assert dashboard.get_by_test_id("verified-customer").is_visible()

        # 5. Erase the customer from Settings › Privacy.
        dashboard.goto("/settings/privacy/")
        dashboard.on("dialog", lambda dialog: dialog.accept())
        dashboard.select_option("#id_kind", "customer_id")
        dashboard.fill("#id_value", CUSTOMER)
        dashboard.get_by_test_id("privacy-erase").click()
        dashboard.locator("text=Erased: 1 sessions").wait_for(timeout=10000)

        # 6. Gone: no conversation, no context; the inbox has nothing; a new device shows no history.
        assert not Conversation.objects.for_organization(organization).exists()
        assert not UserContext.objects.for_organization(organization).filter(user_reference=CUSTOMER).exists()
        dashboard.goto("/inbox/")
        assert CUSTOMER not in dashboard.content() and str(session.pk) not in dashboard.content()
        tablet = browser.new_context().new_page()
        tablet.goto(site.url)
        tablet_chat = tablet.locator(WIDGET)
        tablet_chat.locator(".launcher").click()
        tablet.wait_for_timeout(1500)
        assert "When are you open?" not in tablet.evaluate(
            f"() => document.querySelector('{WIDGET}').shadowRoot.textContent"
        )
