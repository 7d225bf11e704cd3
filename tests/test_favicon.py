"""Browsers ask for `/favicon.ico` on every page that links no icon (the error pages, the
admin): it is a real icon, served by WhiteNoise from `public/`, and the icon the dashboard
links answers too, so no page logs a 404 for it."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_favicon_ico_is_served_at_the_root_without_signing_in():
    response = Client().get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] in {"image/x-icon", "image/vnd.microsoft.icon"}
    body = b"".join(response.streaming_content)
    assert body[:6] == b"\x00\x00\x01\x00\x01\x00"  # an ICO with one image
    assert body[6:8] == b"\x20\x20"  # 32×32


def test_the_icon_a_dashboard_page_links_answers(owner_client):
    page = owner_client.get(reverse("inbox")).content.decode()
    links = re.findall(r'<link rel="icon" href="([^"]+)"', page)
    assert links
    for href in links:
        response = Client().get(href)
        assert response.status_code == 200, href
        assert response["Content-Type"].startswith("image/"), href
