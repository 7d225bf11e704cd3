"""The crawler alone: it yields the pages it read (nothing is stored), through core.fetcher."""

from __future__ import annotations

import pytest

from core.fetcher import FetchFailed
from knowledge.crawler import Crawler, RobotsDisallowed
from knowledge.parsing import ParseError
from knowledge.sandbox import ParserSandbox
from testkit.sites import html_page


@pytest.fixture
def parse():
    with ParserSandbox() as sandbox:
        yield sandbox.parse


def _pages(site, count: int) -> None:
    for number in range(count):
        site.page(
            f"/page{number}",
            html_page(f"Page {number}", f"<p>Article {number}.</p>", links=[f"/page{(number + 1) % count}"]),
        )


def test_a_crawl_yields_each_page_once_until_max_pages_with_text(site, parse):
    _pages(site, 6)
    # A page with a title and a link but no text: yielded, not counted.
    site.page(
        "/empty",
        b"<html><head><title>Empty</title></head><body><nav><a href='/page0'>0</a></nav></body></html>",
    )
    site.page("/start", html_page("Start", "<p>Start here.</p>", links=["/empty", "/page0", "/page0#top"]))
    crawl = Crawler(start_url=site.url("/start"), crawl=True, max_pages=4, parse=parse)
    pages = list(crawl.pages())
    assert [page.url for page in pages] == [
        site.url(path) for path in ("/start", "/empty", "/page0", "/page1", "/page2")
    ]
    assert [page.has_text for page in pages] == [True, False, True, True, True]  # four with text: done
    assert pages[0].is_start and pages[0].title == "Start" and "Start here." in pages[0].text
    assert not any(page.is_start for page in pages[1:])
    assert crawl.failures == [
        f"{site.url('/')}: {site.host} answered HTTP 404: there is no page at this address (check the URL)."
    ]


def test_a_single_page_is_read_without_robots_sitemaps_or_links(site, parse):
    _pages(site, 3)
    crawl = Crawler(start_url=site.url("/page0"), crawl=False, max_pages=1, parse=parse)
    assert [page.key for page in crawl.pages()] == [site.url("/page0")]
    assert site.requests == ["/page0"]


def test_pages_that_cannot_be_read_are_listed_and_the_start_page_raises(site, parse):
    site.page("/start", html_page("Start", "<p>Start.</p>", links=["/missing", "/page0"]))
    _pages(site, 1)
    crawl = Crawler(start_url=site.url("/start"), crawl=True, max_pages=5, parse=parse)
    assert [page.url for page in crawl.pages()] == [site.url("/start"), site.url("/page0")]
    assert [failure.split(": ")[0] for failure in crawl.failures] == [site.url("/"), site.url("/missing")]
    with pytest.raises(FetchFailed):
        list(Crawler(start_url=site.url("/missing"), crawl=True, max_pages=5, parse=parse).pages())
    site.page("/broken.pdf", b"%PDF-1.7 not really", content_type="application/pdf")
    with pytest.raises(ParseError):
        list(Crawler(start_url=site.url("/broken.pdf"), crawl=False, max_pages=1, parse=parse).pages())


def test_robots_txt_refusing_the_start_page_is_raised_before_any_page(site, parse):
    site.page("/robots.txt", b"User-agent: *\nDisallow: /\n", content_type="text/plain")
    _pages(site, 1)
    crawl = Crawler(start_url=site.url("/page0"), crawl=True, max_pages=5, parse=parse)
    with pytest.raises(RobotsDisallowed):
        crawl.start()
    assert "/page0" not in site.requests
