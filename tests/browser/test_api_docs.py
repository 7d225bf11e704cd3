"""`/api/docs/` renders offline, in real Chromium, from this origin only and under the
dashboard's Content-Security-Policy (it used to pull swagger-ui-dist@latest from a CDN)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_from_our_own_origin_under_the_dashboard_csp(browser_context, live_server):
    page = browser_context.new_page()
    requested: list[str] = []
    refused: list[str] = []

    def only_our_origin(route):
        requested.append(route.request.url)
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:  # offline: nothing else is reachable
            route.abort()

    page.route("**/*", only_our_origin)
    page.on("console", lambda message: refused.append(message.text) if "Refused" in message.text else None)
    response = page.goto("/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    title = page.locator(".swagger-ui .info .title")
    title.wait_for()
    assert "SupportAI API" in title.inner_text()
    page.locator(".opblock-summary-path", has_text="/api/v1/organization").first.wait_for()
    assert requested and all(url.startswith(live_server.url) for url in requested), requested
    assert refused == []
