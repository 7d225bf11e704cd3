"""Removing a member in Chromium: the confirmation lists the API keys they made, the admin keeps
one, and the key list then says whose it was (organizations/tests/test_member_departure.py has
the rest)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from organizations.models import ApiKey, Membership
from organizations.services import api_key_create, membership_create, organization_create, user_get_or_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"


def test_the_removal_page_asks_which_of_their_keys_to_keep(browser_context, screenshot):
    owner = user_get_or_create(email="maria@northwind.example", password=PASSWORD)
    organization = organization_create(name="Northwind Traders", owner=owner)
    sam = user_get_or_create(email="sam@northwind.example", password=PASSWORD)
    membership = membership_create(organization=organization, user=sam, role="admin")
    nightly, _ = api_key_create(organization=organization, name="Nightly sync", created_by=sam)
    scratch, _ = api_key_create(organization=organization, name="Sam's scratch key", created_by=sam)

    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/login/")
    page.fill("#id_username", "maria@northwind.example")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Overview")

    page.goto("/settings/members/")
    page.locator("tr", has_text="sam@northwind.example").get_by_role("link", name="Remove").click()
    keys = page.get_by_test_id("member-keys")
    expect(keys).to_contain_text("Nightly sync")
    expect(keys).to_contain_text("Sam's scratch key")
    # The organization's oldest active key is the one its widgets embed: the page says so.
    expect(keys.locator(".check-row", has_text="Nightly sync")).to_contain_text(
        "Your widgets embed this client ID"
    )
    page.get_by_label("Keep Nightly sync working", exact=False).check()
    screenshot(page, "member-remove-keys")
    page.get_by_role("button", name="Remove member").click()
    expect(page.locator(".flash")).to_contain_text("1 API key(s) they made revoked; 1 kept working")

    assert ApiKey.objects.for_organization(organization).get(pk=nightly.pk).revoked_at is None
    assert ApiKey.objects.for_organization(organization).get(pk=scratch.pk).revoked_at is not None
    assert not Membership.objects.for_organization(organization).filter(pk=membership.pk).exists()
    page.goto("/settings/api-keys/")
    row = page.locator("tr", has_text="Nightly sync")
    expect(row).to_contain_text("sam@northwind.example")
    expect(row).to_contain_text("no longer a member")
    assert not errors, errors
