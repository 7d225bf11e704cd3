"""Budgets as a shopper sees them, in real Chromium (issue 14): with the visitors' budget
used up the launcher still shows and a send says, readably, when to try again; with the
organization's API budget used up the widget still works."""

from __future__ import annotations

import re

import pytest
import requests

from core.api.ratelimit import budgets_hit
from organizations.budgets import widget_messages_budget
from widget.tests.test_browser import WIDGET, browser, shop  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BUSY = re.compile(r"This chat is busy right now\. Please try again in \d+ (s|min)\.")


def _send_and_read_the_error(page) -> str:
    widget = page.locator(WIDGET)
    launcher = widget.locator(".launcher")
    launcher.wait_for(timeout=15000)
    assert launcher.is_visible()
    launcher.click()
    widget.locator("textarea").fill("Is anyone there?")
    page.keyboard.press("Enter")
    error = widget.locator(".error[role=alert]")
    error.wait_for(timeout=15000)
    assert error.locator("button", has_text="Retry").is_visible()
    return error.inner_text()


def test_visitor_budget_used_up_the_launcher_shows_and_the_send_error_is_readable(
    browser,  # noqa: F811
    shop,  # noqa: F811
    tenant,
    settings,
):
    settings.WIDGET_MESSAGE_RATE_PER_WIDGET = "1/h"
    budget = widget_messages_budget(organization=tenant.organization, widget_id=shop.widget.id)
    budgets_hit(budgets=[budget])  # the widget's one message this hour is used up
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(shop.url)
    assert BUSY.search(_send_and_read_the_error(page))
    assert "Acme support" in page.evaluate(f"() => document.querySelector('{WIDGET}').shadowRoot.textContent")
    context.close()

    # Even when no token can be minted at all (every address over its mint budget), a
    # shopper still gets the launcher, and the send says when to try again.
    settings.WIDGET_TOKEN_RATE_PER_IP = "0/h"
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(shop.url)
    assert BUSY.search(_send_and_read_the_error(page))
    context.close()


def test_api_budget_used_up_the_widget_still_works(browser, shop, tenant, live_server):  # noqa: F811
    tenant.organization.rate_limit_per_hour = 2
    tenant.organization.save()
    headers = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
    statuses = [
        requests.get(f"{live_server.url}/api/v1/organization", headers=headers, timeout=30).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(shop.url)
    widget = page.locator(WIDGET)
    widget.locator(".launcher").click(timeout=15000)
    widget.locator("textarea").fill("When are you open during the week?")
    page.keyboard.press("Enter")
    answer = widget.locator(".msg.assistant[data-id]").first
    answer.wait_for(timeout=30000)
    assert "Monday to Friday, 9 AM to 6 PM EST" in answer.inner_text()
    context.close()
    # The visitor's calls left the API budget where the API key left it.
    after = requests.get(f"{live_server.url}/api/v1/organization", headers=headers, timeout=30)
    assert after.status_code == 429 and after.headers["RateLimit-Policy"] == '"org";q=2;w=3600'
