"""A 403 is logged as one line, without a traceback; the 403 page offers a way on."""

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
