"""The client address the per-IP limits, the live-stream cap and the audit log key by, when
RATELIMIT_IP_META_KEY names a header the request does not carry (a proxy that does not set
it, a health check reaching the app directly) or carries with something that is not one IP
address: REMOTE_ADDR then, one warning per process, never a 500."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from organizations import budgets
from organizations.budgets import client_ip
from tests.conftest import assert_error_shape

pytestmark = pytest.mark.django_db

MINT = "/api/v1/auth/widget-token"


@pytest.fixture
def behind_a_proxy(settings):
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"
    budgets._warned_meta_keys.clear()
    yield
    budgets._warned_meta_keys.clear()


def test_a_missing_or_malformed_proxy_header_falls_back_to_remote_addr_without_a_500(
    tenant, behind_a_proxy, settings, caplog
):
    settings.WIDGET_TOKEN_RATE_PER_IP = "2/h"
    settings.WIDGET_TOKEN_RATE_PER_CLIENT = "1000/h"
    body = {"client_id": tenant.client_id}
    caplog.set_level(logging.WARNING, logger="organizations.budgets")
    direct = [APIClient().post(MINT, body, format="json", REMOTE_ADDR="192.0.2.7") for _ in range(2)]
    malformed = APIClient().post(
        MINT, body, format="json", REMOTE_ADDR="192.0.2.7", HTTP_X_REAL_IP="s3cr3t-not-an-address"
    )
    chained = APIClient().post(
        MINT, body, format="json", REMOTE_ADDR="192.0.2.7", HTTP_X_REAL_IP="198.51.100.1, 10.0.0.1"
    )
    assert [response.status_code for response in direct] == [200, 200]
    # Keyed by REMOTE_ADDR, so these are the same address's third and fourth mints: limited.
    assert_error_shape(malformed, 429)
    assert_error_shape(chained, 429)
    # A proper header still names the client, whatever the proxy's own address.
    proxied = APIClient().post(
        MINT, body, format="json", REMOTE_ADDR="192.0.2.7", HTTP_X_REAL_IP="198.51.100.2"
    )
    assert proxied.status_code == 200

    warnings = [
        record.getMessage() for record in caplog.records if "RATELIMIT_IP_META_KEY" in record.getMessage()
    ]
    assert len(warnings) == 2  # once per process for a missing header, once for a malformed one
    assert all("HTTP_X_REAL_IP" in message for message in warnings)
    assert not any("s3cr3t" in message or "198.51.100" in message for message in warnings)


def test_every_surface_that_reads_the_address_answers_without_the_header(tenant, behind_a_proxy):
    # No credential: the unauthenticated per-IP budget (middleware), an unknown /api/ URL.
    assert_error_shape(APIClient().get("/api/v1/sessions", REMOTE_ADDR="192.0.2.8"), 401)
    assert_error_shape(APIClient().get("/api/v1/nothing-here", REMOTE_ADDR="192.0.2.8"), 404)
    # Sign-in throttles (and the audit of the failed attempt).
    response = Client(REMOTE_ADDR="192.0.2.8").post(
        reverse("login"), {"username": tenant.owner.email, "password": "wrong"}
    )
    assert response.status_code == 200 and b"Internal server error" not in response.content
    # A health check hitting the app directly.
    assert Client(HTTP_X_REAL_IP="not an ip").get("/healthz").status_code == 200


def test_the_address_itself(rf, settings, behind_a_proxy):
    assert client_ip(rf.get("/", REMOTE_ADDR="192.0.2.9")) == "192.0.2.9"
    assert client_ip(rf.get("/", REMOTE_ADDR="192.0.2.9", HTTP_X_REAL_IP=" 198.51.100.3 ")) == "198.51.100.3"
    assert client_ip(rf.get("/", REMOTE_ADDR="192.0.2.9", HTTP_X_REAL_IP="2001:db8::1")) == "2001:db8::"
    assert client_ip(rf.get("/", REMOTE_ADDR="", HTTP_X_REAL_IP="")) == "unknown"  # a Unix socket
    settings.RATELIMIT_IP_META_KEY = None
    assert client_ip(rf.get("/", REMOTE_ADDR="192.0.2.9", HTTP_X_REAL_IP="198.51.100.3")) == "192.0.2.9"
