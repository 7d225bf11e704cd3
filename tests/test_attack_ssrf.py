"""Attack rows 1–3, 6–8, 10, 11 through the PUBLIC API paths that make the server fetch a
URL: `POST /api/widget/scrape` (synchronous) and `POST /api/v1/knowledge/urls` (ingested by
the worker's service), plus a scheduled re-sync.

Network rule: nothing here connects outside loopback. A connect spy records every socket
connect the process attempts while a refused URL is handled; refused URLs must cause none.
An "internal" loopback listener (not on SCRAPE_ALLOWLIST) stands in for the metadata
service / Redis behind a redirect and must never be connected to. (Name resolution to
internal addresses, multi-record answers and DNS rebinding are proven with a fake resolver
in knowledge/tests/test_fetcher.py.)"""

from __future__ import annotations

import socket
import threading

import pytest

from knowledge.models import KnowledgeSource
from knowledge.services.ingestion import source_ingest, source_sync
from testkit.sites import html_page
from tests.conftest import assert_error_shape

pytestmark = pytest.mark.django_db

CORPUS = """http://169.254.169.254/latest/meta-data/iam/security-credentials/
http://metadata.google.internal/computeMetadata/v1/
http://[fd00:ec2::254]/
http://127.0.0.1/
http://127.1/
http://0/
http://0.0.0.0/
http://2130706433/
http://0x7f000001/
http://0177.0.0.1/
http://017700000001/
http://localhost./
http://[::1]/
http://[::]/
http://[::ffff:127.0.0.1]/
http://[::ffff:7f00:1]/
http://[::ffff:a9fe:a9fe]/
http://[64:ff9b::a9fe:a9fe]/
http://[2002:a9fe:a9fe::]/
http://10.0.0.1/
http://172.16.0.1/
http://192.168.0.1/
http://100.64.0.1/
http://198.18.0.1/
http://[fc00::1]/
http://[fe80::1%25lo]/
http://224.0.0.1/
http://user@127.0.0.1/
http://example.com@127.0.0.1/
http://127.0.0.1#@example.com/
 http://127.0.0.1/
http://127.0.0.1/\r\nX: y
http:\\\\127.0.0.1\\
file:///etc/passwd
gopher://127.0.0.1:6379/_INFO
ftp://127.0.0.1/
dict://127.0.0.1:11211/
http://kubernetes.default.svc/
http://host.docker.internal/""".split("\n")


class ConnectSpy:
    """Records (host, port) of every Python-level socket connect while active."""

    def __init__(self, monkeypatch) -> None:
        self.attempts: list = []
        original = socket.socket.connect
        spy = self

        def connect(sock, address):
            spy.attempts.append(address)
            return original(sock, address)

        monkeypatch.setattr(socket.socket, "connect", connect)

    def outbound(self) -> list:
        # The shared Redis (rate limiter) on loopback is ours; anything else is a fetch.
        return [a for a in self.attempts if not (isinstance(a, tuple) and a[1] == 6379)]


class InternalService:
    """A loopback listener NOT on the allowlist: the stand-in for 169.254.169.254 / Redis."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def internal():
    service = InternalService()
    yield service
    service.close()


@pytest.mark.parametrize("url", CORPUS)
def test_every_spelling_of_an_internal_address_is_refused_without_a_connect(
    tenant, url, monkeypatch, settings
):
    settings.SCRAPE_ALLOWLIST = []
    api = tenant.client(bearer=True)
    spy = ConnectSpy(monkeypatch)
    scraped = api.post("/api/widget/scrape", {"url": url}, format="json")
    assert_error_shape(scraped, 400)
    created = tenant.client().post("/api/v1/knowledge/urls", {"url": url}, format="json")
    assert_error_shape(created, 400)
    assert spy.outbound() == []
    assert not KnowledgeSource.objects.for_organization(tenant.organization).exists()


@pytest.mark.parametrize("url", CORPUS)
def test_every_spelling_of_an_internal_address_is_refused_as_a_webhook_or_action_target(
    tenant, url, monkeypatch, settings
):
    """The other URLs an organization saves for the server to call: a webhook endpoint (on
    create and on change) and an assistant action's URL template."""
    from assistants.models import Action, Assistant
    from webhooks.models import Endpoint

    settings.SCRAPE_ALLOWLIST = []
    api = tenant.client()
    assistant = Assistant.objects.create(organization=tenant.organization, name="Helper")
    endpoint = Endpoint.objects.create(
        organization=tenant.organization, url="https://hooks.example/in", events=["message.created"]
    )
    spy = ConnectSpy(monkeypatch)
    assert_error_shape(
        api.post("/api/v1/webhooks", {"url": url, "events": ["message.created"]}, format="json"), 400
    )
    assert_error_shape(api.patch(f"/api/v1/webhooks/{endpoint.pk}", {"url": url}, format="json"), 400)
    action = {"name": "lookup", "description": "Look it up", "url_template": url, "parameters": {}}
    assert_error_shape(api.post(f"/api/v1/assistants/{assistant.pk}/actions", action, format="json"), 400)
    assert spy.outbound() == []
    assert list(Endpoint.objects.for_organization(tenant.organization).values_list("url", flat=True)) == [
        "https://hooks.example/in"
    ]
    assert not Action.objects.for_organization(tenant.organization).exists()


@pytest.mark.parametrize(
    "location",
    [
        "internal",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
    ],
)
def test_a_redirect_from_an_allowed_site_to_an_internal_one_is_refused_on_both_paths(
    tenant, site, internal, location
):
    target = f"http://127.0.0.1:{internal.port}/latest/meta-data/" if location == "internal" else location
    site.redirect("/go", target)
    scraped = tenant.client(bearer=True).post("/api/widget/scrape", {"url": site.url("/go")}, format="json")
    assert scraped.status_code in (400, 502), scraped.content
    assert_error_shape(scraped, scraped.status_code)
    created = tenant.client().post("/api/v1/knowledge/urls", {"url": site.url("/go")}, format="json")
    assert created.status_code == 202  # the first hop is allowed; the redirect is checked at fetch
    source_id = created.json()["data"]["id"]
    source_ingest(source_id=source_id)  # what the worker runs
    source = KnowledgeSource.objects.for_organization(tenant.organization).get(pk=source_id)
    assert source.status == "failed" and source.error
    assert internal.accepted == 0


def test_a_redirect_chain_is_capped(tenant, site):
    for hop in range(12):
        site.redirect(f"/hop{hop}", site.url(f"/hop{hop + 1}"))
    site.page("/hop12", html_page("End", "<p>end</p>"))
    scraped = tenant.client(bearer=True).post("/api/widget/scrape", {"url": site.url("/hop0")}, format="json")
    assert_error_shape(scraped, scraped.status_code)
    assert scraped.status_code in (400, 502)
    assert "/hop12" not in site.requests


def test_a_saved_url_is_rechecked_when_it_is_re_synced(tenant, site, settings, internal):
    """Row 10: allowed when saved; the target turns internal later (DNS flip / policy change);
    the scheduled re-sync refuses it at fetch time and keeps the old content."""
    site.page("/faq", html_page("FAQ", "<p>Shipping takes three days.</p>"))
    created = tenant.client().post("/api/v1/knowledge/urls", {"url": site.url("/faq")}, format="json")
    source_id = created.json()["data"]["id"]
    source_ingest(source_id=source_id)
    source = KnowledgeSource.objects.for_organization(tenant.organization).get(pk=source_id)
    assert source.status == "ready"
    requests_before = len(site.requests)
    settings.SCRAPE_ALLOWLIST = []  # 127.0.0.1:<port> is loopback again → refused
    assert source_sync(source_id=source_id) == "failed"
    source.refresh_from_db()
    assert source.status == "ready" and "re-sync failed" in source.error.lower()
    assert len(site.requests) == requests_before  # refused before connecting
    assert internal.accepted == 0
