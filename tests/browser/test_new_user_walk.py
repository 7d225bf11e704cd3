"""Defects found walking SupportAI as a new user on a fresh clone (`make run`, a PDF, a crawled
help site, the widget on another origin, the support desk) that only a browser shows."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from assistants.models import Assistant
from chat import services
from chat.models import Conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AT_BOTTOM = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 4"


def _login(page, email: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Overview")


def test_the_inbox_transcript_follows_new_messages(browser_context, tenant):
    """The transcript is a scroll box opened at its bottom; messages that arrive while it is
    open (the operator's own reply, the visitor's next message) are appended by the poller out
    of band, and stayed below its fold: the operator sent a reply and did not see it, nor the
    visitor's answer to it."""
    assistant = Assistant.objects.create(organization=tenant.organization, name="Acme helper")
    session = services.session_create(organization=tenant.organization, assistant=assistant, visitor_id="v-1")
    for number in range(8):
        services.message_post(conversation=session, content=f"Question number {number} about my order?")
    services.message_post(conversation=session, content="Can I talk to a person please?")
    page = browser_context.new_page()
    _login(page, tenant.owner.email)
    page.goto(f"/inbox/{session.pk}/")
    transcript = page.get_by_test_id("transcript")
    assert transcript.evaluate("el => el.scrollHeight > el.clientHeight + 100")  # it does scroll
    assert transcript.evaluate(AT_BOTTOM)

    page.click("button:has-text('Take over')")
    page.fill("#reply-content", "Hi, I'm Sam. Let me check your order.")
    page.click("button:has-text('Send reply')")
    reply = transcript.locator(".msg", has_text="Let me check your order")
    expect(reply).to_have_count(1, timeout=10000)
    page.wait_for_function(f"() => ({AT_BOTTOM})(document.getElementById('transcript'))", timeout=5000)
    expect(reply).to_be_in_viewport()

    conversation = Conversation.objects.for_organization(tenant.organization).get(pk=session.pk)
    services.message_post(conversation=conversation, content="Thanks Sam, it is order 1234.")
    visitor = transcript.locator(".msg", has_text="it is order 1234")
    expect(visitor).to_have_count(1, timeout=10000)
    page.wait_for_function(f"() => ({AT_BOTTOM})(document.getElementById('transcript'))", timeout=5000)
    expect(visitor).to_be_in_viewport()

    # An operator who scrolled up to read is not pulled down by the next message.
    transcript.evaluate("el => { el.scrollTop = 0; }")
    services.message_post(conversation=conversation, content="Are you still there?")
    expect(transcript.locator(".msg", has_text="still there")).to_have_count(1, timeout=10000)
    page.wait_for_timeout(300)
    assert transcript.evaluate("el => el.scrollTop") == 0


def test_the_playground_says_why_the_assistant_went_quiet(browser_context, tenant, screenshot):
    """Asking for a person in the playground queued the conversation for the team, and every
    later question got no reply, with nothing on the page saying why."""
    assistant = Assistant.objects.create(organization=tenant.organization, name="Acme helper")
    page = browser_context.new_page()
    _login(page, tenant.owner.email)
    page.goto(f"/assistants/{assistant.pk}/playground/")
    note = page.get_by_test_id("playground-handoff")
    page.fill("#id_content", "Can I talk to a person please?")
    page.click("button:has-text('Send')")
    expect(note).to_contain_text("waiting for a person (visitor asked for a person)")
    expect(note).to_be_in_viewport()
    expect(note.get_by_role("link", name="Inbox")).to_have_attribute(
        "href", f"/inbox/{_conversation_id(tenant)}/"
    )
    screenshot(page, "playground-waiting-for-a-person", full_page=False)
    page.click("button:has-text('New conversation')")
    page.fill("#id_content", "Hello")
    page.click("button:has-text('Send')")
    expect(page.locator(".msg--assistant")).to_have_count(1)
    expect(note).to_have_count(0)


def _conversation_id(tenant) -> str:
    return str(Conversation.objects.for_organization(tenant.organization).get().pk)


def test_form_fields_keep_their_shape_beside_longer_neighbours(browser_context, tenant):
    """Two layout defects of the first screens: a checkbox with help text ("Require verified
    visitors") squeezed its label into a narrow column beside the help, and an input beside a
    field with help text ("Max pages" beside "Re-sync every") grew taller than its neighbour."""
    from widget.services import widget_create

    assistant = Assistant.objects.create(organization=tenant.organization, name="Acme helper")
    widget = widget_create(organization=tenant.organization, assistant_id=assistant.id, title="Acme help")
    page = browser_context.new_page()
    _login(page, tenant.owner.email)
    page.goto(f"/widgets/{widget.pk}/")
    label = page.locator("label[for=id_require_verified_visitors]").bounding_box()
    help_text = page.locator(".field--check:has(#id_require_verified_visitors) .field__help").bounding_box()
    assert label["height"] < 24, label  # one line
    assert help_text["y"] >= label["y"] + label["height"] - 1, (label, help_text)  # below it
    page.goto("/knowledge/")
    heights = [
        page.locator(f"#id_{name}").bounding_box()["height"]
        for name in ("url_max_pages", "url_sync_interval_hours")
    ]
    assert abs(heights[0] - heights[1]) < 1, heights


def test_every_settings_tab_is_in_sight_at_1280_px(browser_context, tenant, screenshot):
    """Eleven settings tabs in one row that scrolled sideways: at 1280 px Security, Privacy and
    Audit log (which the README points owners to) were cut off out of sight."""
    page = browser_context.new_page()  # 1280 x 860
    _login(page, tenant.owner.email)
    page.goto("/settings/usage/")
    nav = page.locator("nav.tabs")
    box = nav.bounding_box()
    links = nav.locator("a")
    assert links.count() == 11
    for index in range(links.count()):
        link = links.nth(index).bounding_box()
        assert link["x"] >= box["x"] and link["x"] + link["width"] <= box["x"] + box["width"] + 0.5, (
            links.nth(index).inner_text(),
            link,
            box,
        )
    assert nav.evaluate("el => el.scrollWidth <= el.clientWidth")
    screenshot(page, "settings-tabs-1280", full_page=False)


def test_a_long_handoff_status_stays_inside_the_inbox_column(browser_context, tenant):
    """At 1280 px the conversation's status, "Waiting for a person since Dec 6, 20:00 (unanswered
    questions in a row)", was one unbreakable line wider than the inbox's middle column, and the
    column cut it off mid-word."""
    assistant = Assistant.objects.create(organization=tenant.organization, name="Acme helper")
    session = services.session_create(organization=tenant.organization, assistant=assistant, visitor_id="v-1")
    services.message_post(conversation=session, content="Can I talk to a person please?")
    page = browser_context.new_page()  # 1280 x 860
    _login(page, tenant.owner.email)
    page.goto(f"/inbox/{session.pk}/")
    status = page.get_by_test_id("handoff-status")
    expect(status).to_contain_text("Waiting for a person since")
    column = page.locator(".inbox__detail").bounding_box()
    box = status.bounding_box()
    assert box["x"] + box["width"] <= column["x"] + column["width"] + 0.5, (box, column)
    assert status.evaluate("el => el.scrollWidth <= el.clientWidth + 1")


def test_a_long_checkbox_label_stays_beside_its_box(browser_context, tenant):
    """ "Also crawl linked pages on the same site" is wider than the knowledge page's card: the
    whole label wrapped onto a line of its own below the checkbox, which sat alone above it."""
    page = browser_context.new_page()  # 1280 x 860
    _login(page, tenant.owner.email)
    page.goto("/knowledge/")
    box = page.locator("input[name=crawl]").bounding_box()
    label = page.locator("label:has-text('Also crawl linked pages')").bounding_box()
    assert label["x"] > box["x"] + box["width"] - 1, (box, label)  # to its right
    assert label["y"] <= box["y"] + box["height"] and box["y"] <= label["y"] + label["height"], (box, label)
