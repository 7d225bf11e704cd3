"""Real headless Chromium (Debian's, through Playwright) against pytest-django's live server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make
# there are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def embedder_warm():
    """Load the local embedding model once, before any page waits on it (it takes seconds)."""
    from knowledge.embeddings import embedder_get, query_embed

    query_embed(embedder=embedder_get(), text="warm up")


@pytest.fixture
def browser_context(chromium, live_server, embedder_warm, settings):
    # Links in emails, embed snippets and the widget's "own origin" come from SITE_URL.
    settings.SITE_URL = live_server.url
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 860}, device_scale_factor=1
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def screenshot(tmp_path):
    """Saves a page's screenshot; into docs/screenshots/ when SUPPORTAI_SCREENSHOTS=1."""
    target = SCREENSHOTS if os.environ.get("SUPPORTAI_SCREENSHOTS") == "1" else tmp_path

    def take(page, name: str, *, full_page: bool = True) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take
