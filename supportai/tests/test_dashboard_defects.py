"""Dashboard defects from issue 16's walk-through, each with its test: 403 logging and page, the
sign-in error's wording, and no second API key when the "key is ready" page is reloaded."""

import logging

import pytest
from django.urls import reverse

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def test_a_403_is_one_log_line_and_the_page_has_navigation(agent_client, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = agent_client.get(reverse("settings-business-hours"))
    assert response.status_code == 403
    records = [record for record in caplog.records if record.name == "django.request"]
    assert records and all(record.exc_info is None for record in records)
    assert "Traceback" not in caplog.text
    page = response.content.decode()
    assert 'href="/inbox/"' in page and 'href="/settings/"' in page and 'href="/"' in page


def test_the_sign_in_error_speaks_of_an_email_address(client, tenant):
    response = client.post(reverse("login"), {"username": tenant.owner.email, "password": "wrong-password-1"})
    page = response.content.decode()
    assert "correct email address and password" in page and "correct username" not in page.lower()


def test_reloading_the_key_is_ready_page_creates_no_second_key(owner_client, tenant):
    from organizations.models import ApiKey

    url = reverse("settings-api-keys")
    token = owner_client.get(url).context["request_token"]
    before = ApiKey.objects.for_organization(tenant.organization).count()
    first = owner_client.post(url, {"name": "Production backend", "request_token": token})
    assert first.status_code == 200 and first.context["new_secret"].startswith("sk_")
    again = owner_client.post(url, {"name": "Production backend", "request_token": token}, follow=True)
    assert again.redirect_chain[-1][0] == url and "new_secret" not in again.context
    assert "already created" in again.content.decode()
    assert ApiKey.objects.for_organization(tenant.organization).count() == before + 1


def test_saving_a_role_that_did_not_change_says_so(owner_client, tenant):
    from organizations.models import Membership

    owner = Membership.objects.for_organization(tenant.organization).get(user=tenant.owner)
    response = owner_client.post(
        reverse("settings-member-role", args=[owner.pk]), {"role": "owner"}, follow=True
    )
    page = response.content.decode()
    assert "nothing changed" in page and "is now owner" not in page
    members = owner_client.get(reverse("settings-members")).content.decode()
    assert "data-autosubmit-select" not in members and "data-confirm=" in members  # no save on change
