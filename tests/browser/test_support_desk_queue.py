"""The operator's side of a handoff in a real browser: a newly waiting conversation reaches
every open dashboard tab within 5 s (badge + desktop notification), and the queue is worked
from the inbox: assign, take over, reply, resolve."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from assistants.models import Assistant
from chat import services
from chat.models import Conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Stands in for the browser's Notification API (a headless browser shows none): records what
# the page would show, with permission already granted.
NOTIFICATION_RECORDER = """
window.__notifications = [];
window.Notification = function (title, options) { window.__notifications.push(title); };
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
"""


def _login(page, email: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Overview")


def test_a_waiting_visitor_reaches_open_tabs_and_is_worked_from_the_queue(
    browser_context, tenant, screenshot
):
    assistant = Assistant.objects.create(organization=tenant.organization, name="Acme helper")
    browser_context.add_init_script(NOTIFICATION_RECORDER)
    inbox = browser_context.new_page()
    _login(inbox, tenant.owner.email)
    inbox.goto("/inbox/")
    overview = browser_context.new_page()
    overview.goto("/")
    badge = inbox.locator("[data-queue-badge]")
    expect(badge).to_be_hidden()
    inbox.wait_for_timeout(1000)  # both tabs have asked once: what comes next is new

    session = services.session_create(organization=tenant.organization, assistant=assistant, visitor_id="v-1")
    services.message_post(
        conversation=session, content="My order #1234 never arrived, can I talk to a person?"
    )
    expect(badge).to_have_text("1", timeout=5000)
    expect(overview.locator("[data-queue-badge]")).to_have_text("1", timeout=5000)
    inbox.wait_for_function("() => window.__notifications.length === 1", timeout=5000)
    assert inbox.evaluate("window.__notifications") == ["A visitor is waiting for a person"]
    assert inbox.title().startswith("(1) ")

    inbox.click("[data-testid=queue-tab]")
    item = inbox.locator(".conv-item").first
    expect(item.locator("[data-testid=waiting-info]")).to_contain_text("Visitor asked for a person")
    screenshot(inbox, "inbox-queue")
    item.click()
    inbox.select_option("#assignee", "me")
    inbox.click("button:has-text('Assign')")
    expect(inbox.locator(".flash")).to_contain_text(f"Assigned to {tenant.owner.email}")
    # After the post and its redirect, focus is on the outcome, not on <body>.
    assert inbox.evaluate("document.activeElement.classList.contains('flash-stack')")
    assert inbox.locator(".skip-link").get_attribute("href") == "#main"
    inbox.click("button:has-text('Take over')")
    inbox.fill("#reply-content", "Hi, I'm Sam. Let me check order #1234.")
    inbox.click("button:has-text('Send reply')")
    expect(inbox.locator("[data-testid=transcript]")).to_contain_text(
        "Let me check order #1234", timeout=10000
    )
    expect(badge).to_be_hidden(timeout=5000)  # nobody waits any more
    inbox.click("button:has-text('Resolve')")
    expect(inbox.locator("[data-testid=handoff-status]")).to_have_text("Resolved")
    stored = Conversation.objects.for_organization(tenant.organization).get()
    assert stored.handoff_status == "resolved" and stored.resolved_by == tenant.owner
    assert stored.first_human_reply_at is not None


# Counts the tones the page plays through the browser's real Web Audio API (which still plays).
TONE_COUNTER = """
window.__tones = 0;
(function () {
  var create = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function () { window.__tones += 1; return create.apply(this, arguments); };
})();
"""


def test_the_optional_queue_sound_is_a_per_browser_choice(browser_context, tenant):
    assistant = Assistant.objects.create(organization=tenant.organization, name="Acme helper")
    browser_context.add_init_script(NOTIFICATION_RECORDER + TONE_COUNTER)
    inbox = browser_context.new_page()
    _login(inbox, tenant.owner.email)
    inbox.goto("/inbox/")
    toggle = inbox.locator("[data-sound-toggle]")
    expect(toggle).to_have_text("Sound in this browser: off")
    inbox.wait_for_timeout(1000)  # the queue has been asked once

    # Off (the default): a newly waiting visitor shows in the badge, silently.
    first = services.session_create(organization=tenant.organization, assistant=assistant, visitor_id="v-1")
    services.message_post(conversation=first, content="Can I talk to a person?")
    inbox.wait_for_function("() => window.__notifications.length === 1", timeout=5000)
    assert inbox.evaluate("window.__tones") == 0

    # On: remembered by this browser across pages, and the next arrival plays the tone.
    toggle.click()
    expect(toggle).to_have_text("Sound in this browser: on")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    inbox.reload()
    expect(toggle).to_have_text("Sound in this browser: on")
    assert inbox.evaluate("localStorage.getItem('supportai.queueSound')") == "on"
    inbox.locator("h1").click()  # a user gesture, as an operator's tab has had
    inbox.wait_for_timeout(1000)
    second = services.session_create(organization=tenant.organization, assistant=assistant, visitor_id="v-2")
    services.message_post(conversation=second, content="I want to talk to a human")
    inbox.wait_for_function("() => window.__notifications.length === 1 && window.__tones >= 2", timeout=5000)
    assert inbox.evaluate("window.__tones") == 2  # one two-note tone

    # Off again: the next arrival is silent.
    toggle.click()
    expect(toggle).to_have_text("Sound in this browser: off")
    third = services.session_create(organization=tenant.organization, assistant=assistant, visitor_id="v-3")
    services.message_post(conversation=third, content="Can I talk to a person, please?")
    inbox.wait_for_function("() => window.__notifications.length === 2", timeout=5000)
    assert inbox.evaluate("window.__tones") == 2
