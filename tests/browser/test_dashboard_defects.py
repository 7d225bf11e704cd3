"""Walk-through defects (issue 16) seen only in a browser: at 1280 px the API keys table was
wider than its card (the Revoke column clipped out of sight); the knowledge search button
showed its spinner while idle."""

from __future__ import annotations

import pytest

from organizations.services import api_key_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_revoke_column_is_in_sight_at_1280_px(browser_context, tenant):
    for number in range(3):
        api_key_create(
            organization=tenant.organization, name=f"Production backend number {number} with a long name"
        )
    page = browser_context.new_page()  # 1280 x 860
    page.goto("/login/")
    page.fill("#id_username", tenant.owner.email)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button:has-text('Sign in')")
    page.goto("/settings/api-keys/")
    table = page.get_by_test_id("api-keys-table")
    widths = page.evaluate("t => [t.scrollWidth, t.parentElement.clientWidth]", table.element_handle())
    assert widths[0] <= widths[1], widths  # nothing to scroll sideways
    card = page.locator(".card", has=table).bounding_box()
    for button in page.locator("a:has-text('Revoke'), button:has-text('Revoke')").all():
        box = button.bounding_box()
        assert box["x"] + box["width"] <= card["x"] + card["width"], (box, card)


def test_the_knowledge_search_spinner_shows_only_while_searching(browser_context, tenant):
    page = browser_context.new_page()
    page.goto("/login/")
    page.fill("#id_username", tenant.owner.email)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button:has-text('Sign in')")
    page.goto("/knowledge/")
    assert not page.locator("#retrieval-spinner").is_visible()
