import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from assistants.models import Assistant
from organizations.models import ApiKey
from organizations.services import api_key_revoke, organization_create
from widget.models import Widget
from widget.tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("create_widget", *args, stdout=out)
    return out.getvalue()


def test_create_widget_json_creates_key_and_default_assistant():
    organization = organization_create(name="Fresh Org")
    printed = json.loads(
        run("--org", organization.slug, "--allowed-domain", "https://shop.example.com", "--json")
    )
    assert set(printed) == {"id", "client_id", "assistant_id", "allowed_domains"}
    widget = Widget.objects.for_organization(organization).get(pk=printed["id"])
    assert widget.allowed_domains == ["https://shop.example.com"]
    assert str(widget.assistant_id) == printed["assistant_id"]
    assert Assistant.objects.for_organization(organization).count() == 1
    key = ApiKey.objects.for_organization(organization).get()
    assert key.client_id == printed["client_id"]
    # A second widget reuses the widget-facing key and the default assistant.
    second = json.loads(run("--org", organization.slug, "--json"))
    assert second["client_id"] == printed["client_id"] and second["assistant_id"] == printed["assistant_id"]
    assert ApiKey.objects.for_organization(organization).count() == 1


def test_create_widget_with_an_assistant_prints_the_snippet(tenant, assistant):
    output = run(
        "--org",
        tenant.organization.slug,
        "--assistant",
        str(assistant.id),
        "--base-url",
        "http://127.0.0.1:8103",
    )
    widget = Widget.objects.for_organization(tenant.organization).get()
    assert '<script src="http://127.0.0.1:8103/widget.js"' in output
    assert f'data-client-id="{tenant.client_id}"' in output
    assert f'data-config-id="{widget.id}"' in output and f'data-assistant-id="{assistant.id}"' in output


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("shop.example", "https://shop.example"),
        ("Shop.Example.com:8443", "https://shop.example.com:8443"),
        ("*.example.com", "https://*.example.com"),
        ("localhost:8080", "http://localhost:8080"),
        ("127.0.0.1:5173", "http://127.0.0.1:5173"),
        ("[::1]:3000", "http://[::1]:3000"),
        ("https://localhost:8443", "https://localhost:8443"),
    ],
)
def test_create_widget_accepts_a_bare_host_and_prints_what_it_stored(tenant, given, stored):
    output = run("--org", tenant.organization.slug, "--allowed-domain", given)
    widget = Widget.objects.for_organization(tenant.organization).get()
    assert widget.allowed_domains == [stored]
    assert f"allowed:      {stored}\n" in output
    printed = json.loads(run("--org", tenant.organization.slug, "--allowed-domain", given, "--json"))
    assert printed["allowed_domains"] == [stored]


def test_create_widget_says_what_is_wrong_with_a_malformed_domain(tenant):
    with pytest.raises(CommandError, match=r"'shop example\.com' must be a host like shop\.example\.com"):
        run("--org", tenant.organization.slug, "--allowed-domain", "shop example.com")
    with pytest.raises(CommandError, match=r"no path, query or fragment"):
        run("--org", tenant.organization.slug, "--allowed-domain", "shop.example.com/help")
    assert Widget.objects.for_organization(tenant.organization).count() == 0


def test_create_widget_revoked_key_is_replaced(tenant):
    api_key_revoke(api_key=ApiKey.objects.for_organization(tenant.organization).get())
    printed = json.loads(run("--org", tenant.organization.slug, "--json"))
    assert printed["client_id"] != tenant.client_id


@pytest.mark.parametrize(
    "args",
    [
        ["--org", "no-such-org"],
        ["--assistant", "00000000-0000-4000-8000-000000000000"],
        ["--allowed-domain", "not a domain"],
    ],
)
def test_create_widget_errors_are_clear(tenant, other_assistant, args):
    if args[0] != "--org":
        args = ["--org", tenant.organization.slug, *args]
    with pytest.raises(CommandError):
        run(*args, "--json")
    assert Widget.objects.for_organization(tenant.organization).count() == 0


def test_create_widget_refuses_another_orgs_assistant(tenant, other_assistant):
    with pytest.raises(CommandError):
        run("--org", tenant.organization.slug, "--assistant", str(other_assistant.id), "--json")


# --- the widget chat API: GET /api/widget/config--------------------------------------------------


def test_widget_chat_config(tenant, widget):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.client_secret}")
    response = client.get("/api/widget/config", {"widgetId": str(widget.id)})
    assert response.status_code == 200
    body = response.json()
    assert "status" not in body  # the widget chat API is not enveloped
    assert body["widgetId"] == str(widget.id) and body["title"] == "Acme help"
    assert body["assistantId"] == str(widget.assistant_id) and body["primaryColor"] == "#2563eb"
    assert response["X-RateLimit-Limit"] == "1000"


def test_widget_chat_config_errors(tenant, other_widget):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.client_secret}")
    assert_error(client.get("/api/widget/config"), 400)
    assert_error(client.get("/api/widget/config", {"widgetId": "nope"}), 404)
    assert_error(client.get("/api/widget/config/", {"widgetId": str(other_widget.id)}), 404)
    assert_error(APIClient().get("/api/widget/config", {"widgetId": str(other_widget.id)}), 401)
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer YOUR_API_KEY")
    assert_error(bad.get("/api/widget/config", {"widgetId": str(other_widget.id)}), 401)


# --- the widget chat API: POST /api/widget/scrape---------------------------------------------------


@pytest.fixture
def site(settings):
    from testkit.hostpage import HostSite

    with HostSite("") as site:
        settings.SCRAPE_ALLOWLIST = [site.url.removeprefix("http://")]
        yield site


def bearer(tenant) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.client_secret}")
    return client


def url_sources(organization):
    from knowledge.models import KnowledgeSource

    return list(KnowledgeSource.objects.for_organization(organization).filter(kind="url"))


def test_scrape_returns_the_page(tenant, site):
    response = bearer(tenant).post("/api/widget/scrape", {"url": site.url + "/"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"url", "title", "content", "scrapedAt"}
    assert body["title"] == "Acme shop"
    assert "Tents, backpacks and boots" in body["content"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", body["scrapedAt"])
    assert url_sources(tenant.organization) == []  # without widgetId nothing is stored


def test_scrape_with_widget_adds_the_page_to_its_assistants_knowledge(tenant, widget, site):
    response = bearer(tenant).post(
        "/api/widget/scrape", {"url": site.url + "/", "widgetId": str(widget.id)}, format="json"
    )
    assert response.status_code == 200, response.content
    (source,) = url_sources(tenant.organization)
    assert source.url == site.url + "/" and source.assistant_id == widget.assistant_id
    assert source.title == "Acme shop"
    # Scraping it again answers the same and leaves the one source (not a second copy).
    again = bearer(tenant).post(
        "/api/widget/scrape", {"url": site.url + "/", "widgetId": str(widget.id)}, format="json"
    )
    assert again.status_code == 200, again.content
    assert url_sources(tenant.organization) == [source]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"url": ""}, 400),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, 400),
        ({"url": "http://127.0.0.1:6379/"}, 400),
        ({"url": "file:///etc/passwd"}, 400),
    ],
)
def test_scrape_refuses_bad_and_internal_urls(tenant, widget, body, status):
    assert_error(
        bearer(tenant).post("/api/widget/scrape", {**body, "widgetId": str(widget.id)}, format="json"), status
    )
    assert url_sources(tenant.organization) == []


def test_scrape_for_another_orgs_widget_is_404_before_any_fetch(tenant, other_widget, other_tenant, site):
    response = bearer(tenant).post(
        "/api/widget/scrape", {"url": site.url + "/", "widgetId": str(other_widget.id)}, format="json"
    )
    assert_error(response, 404)
    assert site.requests == []
    assert url_sources(tenant.organization) == [] and url_sources(other_tenant.organization) == []
    assert_error(APIClient().post("/api/widget/scrape", {"url": site.url}, format="json"), 401)


# --- the scrape endpoint's concurrency caps (issue 13: one tenant must not hold every thread) ----


@pytest.fixture
def slow_site(settings):
    from testkit.sites import LoopbackSite, html_page

    site = LoopbackSite()
    site.trickle("/slow", interval=0.125)  # 8 bytes a second: never done before the deadline
    site.page("/fast", html_page("Fast page", "<p>Answered at once.</p>"))
    settings.SCRAPE_ALLOWLIST = [site.netloc]
    settings.SCRAPE_REQUEST_TIMEOUT = 4.0
    settings.SCRAPE_CONCURRENCY_PER_ORG = 2
    settings.SCRAPE_CONCURRENCY_TOTAL = 4
    yield site
    site.close()


class SlowScrapes:
    """`count` scrapes of the trickling page, each on its own thread (its own connection)."""

    def __init__(self, tenant, site, count: int) -> None:
        import threading
        import time

        self.statuses: list[int] = []
        self.threads = [threading.Thread(target=self._post, args=(tenant, site)) for _ in range(count)]
        for thread in self.threads:
            thread.start()
        deadline = time.monotonic() + 30
        while site.requests.count("/slow") < count:
            assert time.monotonic() < deadline, f"the slow scrapes never reached the site: {self.statuses}"
            time.sleep(0.05)

    def _post(self, tenant, site) -> None:
        from django.db import connection

        try:
            self.statuses.append(
                bearer(tenant)
                .post("/api/widget/scrape", {"url": site.url("/slow")}, format="json")
                .status_code
            )
        finally:
            connection.close()

    def finish(self) -> list[int]:
        for thread in self.threads:
            thread.join(30)
        return self.statuses


def _assert_busy(response, status_code: int) -> dict:
    body = assert_error(response, status_code)
    assert int(response["Retry-After"]) >= 1
    return body


@pytest.mark.django_db(transaction=True)
def test_scrape_over_the_organizations_cap_gets_429_and_other_tenants_are_served(
    tenant, other_tenant, slow_site
):
    import time

    busy = SlowScrapes(tenant, slow_site, count=2)
    started = time.monotonic()
    body = _assert_busy(
        bearer(tenant).post("/api/widget/scrape", {"url": slow_site.url("/fast")}, format="json"), 429
    )
    assert time.monotonic() - started < 2  # refused at once, not queued behind the slow ones
    assert "already has 2 pages being fetched" in body["detail"]
    assert slow_site.requests.count("/fast") == 0  # the refused scrape fetched nothing
    # Another organization is not held up by org A's slow pages.
    other = bearer(other_tenant).post("/api/widget/scrape", {"url": slow_site.url("/fast")}, format="json")
    assert other.status_code == 200, other.content
    assert other.json()["title"] == "Fast page"
    # A fetch on a request thread ends at SCRAPE_REQUEST_TIMEOUT (504), freeing its slot.
    assert busy.finish() == [504, 504]
    assert time.monotonic() - started < 15
    again = bearer(tenant).post("/api/widget/scrape", {"url": slow_site.url("/fast")}, format="json")
    assert again.status_code == 200, again.content


@pytest.mark.django_db(transaction=True)
def test_scrape_over_the_overall_cap_gets_503(tenant, other_tenant, slow_site, settings):
    settings.SCRAPE_CONCURRENCY_TOTAL = 2
    busy = SlowScrapes(tenant, slow_site, count=2)
    body = _assert_busy(
        bearer(other_tenant).post("/api/widget/scrape", {"url": slow_site.url("/fast")}, format="json"), 503
    )
    assert body["detail"] == "Too many pages are being fetched right now; retry shortly."
    assert busy.finish() == [504, 504]
