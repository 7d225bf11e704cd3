"""The widget's support-desk side in a real browser: "Talk to a person", the waiting note,
operator replies over the live stream, the header after hand-back and resolve, the rating."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chat import services as chat_services
from chat.models import Conversation, CsatRating, Message
from organizations.models import Event
from widget.services import widget_update
from widget.tests.test_browser import SCREENSHOTS, WIDGET, browser, shop  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _screens(tmp_path) -> Path:
    return SCREENSHOTS if os.environ.get("SUPPORTAI_SCREENSHOTS") == "1" else tmp_path


def _conversation(tenant) -> Conversation:
    return Conversation.objects.for_organization(tenant.organization).select_related("organization").get()


def test_visitor_asks_for_a_person_gets_a_reply_and_rates_it(browser, shop, tenant, tmp_path):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(shop.url)
    widget = page.locator(WIDGET)
    widget.locator(".launcher").click()
    handoff = widget.locator(".handoff button")
    widget.locator("textarea").wait_for()
    assert not handoff.is_visible()  # "after the first answer" (the default)

    widget.locator("textarea").fill("What are your business hours?")
    widget.locator("textarea").press("Enter")
    widget.locator(".msg.assistant[data-id]").first.wait_for(timeout=30000)
    handoff.wait_for(state="visible", timeout=15000)
    assert handoff.inner_text() == "Talk to a person"

    handoff.click()
    widget.locator(".note", has_text="A member of our team will reply here").wait_for(timeout=15000)
    header = widget.locator("header p")
    assert header.inner_text() == "A member of our team will reply here shortly"
    assert not handoff.is_visible()  # asked already
    conversation = _conversation(tenant)
    assert conversation.handoff_status == "waiting" and conversation.handoff_trigger == "asked"
    # What the operator sees about the visitor: the page's address (no query), browser, referrer.
    assert conversation.metadata["url"] == shop.url.rstrip("/") + "/"
    assert "Chrome" in conversation.metadata["browser"]
    assert "referrer" in conversation.metadata

    # While waiting, the bot is silent: the message is stored and shown, no answer bubble.
    widget.locator("textarea").fill("Is anyone there?")
    widget.locator("textarea").press("Enter")
    widget.locator(".msg.user", has_text="Is anyone there?").wait_for()
    for _ in range(100):  # the bubble shows at once; the POST lands a moment later
        if Message.objects.for_organization(tenant.organization).filter(role="user").count() == 2:
            break
        page.wait_for_timeout(100)
    assert Message.objects.for_organization(tenant.organization).filter(role="user").count() == 2
    page.wait_for_timeout(300)
    assert widget.locator(".msg.assistant[data-id]").count() == 1
    assert (
        not Message.objects.for_organization(tenant.organization)
        .filter(role="assistant")
        .exclude(content__startswith="We are open")
        .exists()
    )
    page.screenshot(path=str(_screens(tmp_path) / "widget-waiting.png"))

    # An operator takes over and replies: it arrives live, and the header says who is there.
    chat_services.handoff_take_over(conversation=conversation, user=tenant.owner)
    chat_services.operator_reply_post(conversation=conversation, user=tenant.owner, content="Hi, Dana here!")
    widget.locator(".msg.operator[data-id]", has_text="Dana here").wait_for(timeout=15000)
    page.wait_for_function(
        f"() => document.querySelector('{WIDGET}').shadowRoot.querySelector('header p').textContent"
        " === 'You are chatting with our team'",
        timeout=15000,
    )

    # Hand back: the header no longer promises a person.
    chat_services.handoff_hand_back(conversation=conversation)
    page.wait_for_function(
        f"() => document.querySelector('{WIDGET}').shadowRoot.querySelector('header p').textContent"
        " === 'We typically answer right away'",
        timeout=15000,
    )

    # Resolve: the header says so and the visitor is asked for a rating.
    chat_services.conversation_resolve(conversation=_conversation(tenant), user=tenant.owner)
    card = widget.locator(".csat")
    card.wait_for(timeout=15000)
    assert header.inner_text() == "This conversation is resolved"
    send = card.locator("button.send")
    assert send.is_disabled()
    card.locator("button[aria-label='4 out of 5']").click()
    card.locator("textarea").fill("Dana was quick")
    page.screenshot(path=str(_screens(tmp_path) / "widget-csat.png"))
    send.click()
    card.locator("text=Thanks for your rating!").wait_for(timeout=15000)
    rating = CsatRating.objects.for_organization(tenant.organization).get()
    assert rating.score == 4 and rating.comment == "Dana was quick" and rating.resolved_by == tenant.owner
    assert Event.objects.for_organization(tenant.organization).filter(type="csat.created").count() == 1

    # A reload does not ask again for the same resolution.
    page.reload()
    widget.locator(".msg.operator[data-id]").wait_for(state="attached", timeout=15000)
    if not widget.locator("[role=dialog]").is_visible():  # it reopens by itself if it was open
        widget.locator(".launcher").click()
    page.wait_for_function(  # the live stream has told the reloaded widget the status
        f"() => document.querySelector('{WIDGET}').shadowRoot.querySelector('header p').textContent"
        " === 'This conversation is resolved'",
        timeout=10000,
    )
    page.wait_for_timeout(1000)
    assert widget.locator(".csat").count() == 0
    context.close()


def test_the_control_can_show_always_or_never(browser, shop, tenant):  # noqa: F811
    widget_update(widget=shop.widget, options={"instance": "shop", "human_handoff": "always"})
    context = browser.new_context()
    page = context.new_page()
    page.goto(shop.url)
    widget = page.locator(WIDGET)
    widget.locator(".launcher").click()
    widget.locator(".handoff button").wait_for(state="visible", timeout=15000)  # before any answer
    context.close()
    widget_update(widget=shop.widget, options={"instance": "shop", "human_handoff": "off"})
    context = browser.new_context()  # a new visitor
    page = context.new_page()
    page.goto(shop.url)
    widget = page.locator(WIDGET)
    widget.locator(".launcher").click()
    widget.locator("textarea").fill("What are your business hours?")
    widget.locator("textarea").press("Enter")
    widget.locator(".msg.assistant[data-id]").first.wait_for(timeout=30000)
    assert not widget.locator(".handoff button").is_visible()
    # Asking in words still works with the control hidden.
    widget.locator("textarea").fill("I want to talk to a person")
    widget.locator("textarea").press("Enter")
    widget.locator(".note", has_text="A member of our team will reply here").wait_for(timeout=10000)
    assert _conversation(tenant).handoff_status == "waiting"
    context.close()


def test_outside_business_hours_the_visitor_leaves_an_email(browser, shop, tenant, tmp_path):  # noqa: F811
    from organizations.services import business_hours_set

    business_hours_set(
        organization=tenant.organization,
        timezone_name="UTC",
        hours={"mon": [["00:00", "00:01"]]},
        holidays=[],
    )
    widget_update(widget=shop.widget, options={"instance": "shop", "human_handoff": "always"})
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(shop.url)
    widget = page.locator(WIDGET)
    widget.locator(".launcher").click()
    # The greeting area already says the team is away and when it is back (before any handoff).
    greeting = widget.locator(".note", has_text="Our team is away right now and back")
    greeting.wait_for(timeout=10000)
    assert "The assistant can still help." in greeting.inner_text()
    widget.locator(".handoff button").click()
    away = widget.locator(".away")
    away.wait_for(timeout=10000)
    assert "Our team is away right now and back" in away.inner_text()
    away.locator("input").fill("a@b")  # the browser accepts it; the server does not
    away.locator("button").click()
    away.locator("text=Please enter a valid email address.").wait_for(timeout=15000)
    away.locator("input").fill("ada@example.org")
    away.locator("text=Please enter a valid email address.").wait_for(state="detached", timeout=15000)
    page.screenshot(path=str(_screens(tmp_path) / "widget-offline-email.png"))
    away.locator("button").click()
    away.locator("text=Thanks! We will also reply to ada@example.org.").wait_for(timeout=15000)
    conversation = _conversation(tenant)
    assert conversation.handoff_email == "ada@example.org" and conversation.handoff_status == "waiting"
    context.close()


def test_outside_business_hours_an_automatic_handoff_asks_for_an_email(browser, shop, tenant):  # noqa: F811
    """Found on a desk walk: two unanswered questions handed the visitor to the team at night,
    and the widget said only "A member of our team will reply here" — not when the team is
    back, and no email field, so the visitor who then closed the tab was never reached."""
    from organizations.services import business_hours_set

    business_hours_set(
        organization=tenant.organization,
        timezone_name="UTC",
        hours={"mon": [["00:00", "00:01"]]},
        holidays=[],
    )
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(shop.url)
    widget = page.locator(WIDGET)
    widget.locator(".launcher").click()
    widget.locator(".note", has_text="Our team is away right now and back").wait_for(timeout=10000)
    for number, question in enumerate(
        ["Do you sell replacement lids for the blue kettle?", "What voltage does the toaster use in Japan?"],
        start=1,
    ):
        widget.locator("textarea").fill(question)
        widget.locator("textarea").press("Enter")
        widget.locator(".msg.assistant[data-id]").nth(number - 1).wait_for(timeout=30000)
    widget.locator(".note", has_text="A member of our team will reply here").wait_for(timeout=10000)
    assert _conversation(tenant).handoff_trigger == "unanswered"
    away = widget.locator(".away")
    away.wait_for(timeout=10000)
    assert "Our team is away right now and back" in away.inner_text()
    away.locator("input").fill("bea@example.org")
    away.locator("button").click()
    away.locator("text=Thanks! We will also reply to bea@example.org.").wait_for(timeout=15000)
    assert _conversation(tenant).handoff_email == "bea@example.org"
    assert widget.locator(".away").count() == 1
    context.close()


def test_outside_business_hours_a_verified_visitor_is_not_asked_for_an_email(browser, shop, tenant):  # noqa: F811
    """Found on a desk walk: a visitor signed in on the shop (identity token with `email`) was
    asked for their address again when handed to the team at night. Their proven address is
    the handoff email: no email field, and the reply goes there."""
    from organizations.identity import identity_secret_rotate
    from organizations.services import business_hours_set
    from widget.tests.test_verified_visitors import user_token

    business_hours_set(
        organization=tenant.organization,
        timezone_name="UTC",
        hours={"mon": [["00:00", "00:01"]]},
        holidays=[],
    )
    widget_update(widget=shop.widget, options={"instance": "shop", "human_handoff": "always"})
    secret = identity_secret_rotate(organization=tenant.organization)[1]
    token = user_token(secret, sub="cust-42", email="ada@example.com")
    shop.snippet = shop.snippet.replace("<script ", f'<script data-user-token="{token}" ', 1)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(shop.url)
    widget = page.locator(WIDGET)
    widget.locator(".launcher").click()
    widget.locator(".note", has_text="Our team is away right now and back").wait_for(timeout=10000)
    widget.locator(".handoff button").click()
    widget.locator(".note", has_text="A member of our team will reply here").wait_for(timeout=10000)
    conversation = _conversation(tenant)
    assert conversation.visitor_verified and conversation.handoff_email == "ada@example.com"
    page.wait_for_timeout(1500)  # the away card would have come with the handoff's answer
    assert widget.locator(".away").count() == 0
    # Handed over without asking (the operator reopens it after a resolution): not asked either.
    chat_services.conversation_resolve(conversation=conversation)
    widget.locator(".note", has_text="Our team marked this conversation as resolved").wait_for(timeout=10000)
    chat_services.conversation_reopen(conversation=_conversation(tenant))
    widget.locator(".note", has_text="A member of our team will reply here").nth(1).wait_for(timeout=10000)
    page.wait_for_timeout(1500)
    assert widget.locator(".away").count() == 0
    context.close()
