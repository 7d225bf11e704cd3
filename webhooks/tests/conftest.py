from __future__ import annotations

import pytest

from testkit.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver(settings):
    """A loopback webhook receiver, allow-listed like an intranet host would be."""
    server = WebhookReceiver(hang_seconds=10)
    settings.SCRAPE_ALLOWLIST = [server.netloc]
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.WEBHOOK_RETRY_BASE_DELAY = 0.05
    settings.WEBHOOK_RETRY_MAX_DELAY = 0.2
    settings.WEBHOOK_TIMEOUT = 1.5
    settings.WEBHOOK_CONNECT_TIMEOUT = 1.0


class FakeResolver:
    """DNS answers from a dict (SSRF tests: nothing is resolved or contacted for real)."""

    def __init__(self, answers: dict[str, list[str]]):
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.answers.get(host, ["93.184.216.34"])


@pytest.fixture
def fake_dns(monkeypatch):
    """`fake_dns({"host": ["10.0.0.1"]})` — core.fetcher resolves through it."""
    from core import fetcher

    def install(answers: dict[str, list[str]]) -> FakeResolver:
        resolver = FakeResolver(answers)
        monkeypatch.setattr(fetcher, "resolver", resolver)
        return resolver

    return install
