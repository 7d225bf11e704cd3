"""The site crawler: reads a page, or a site from a start page, and yields what it read.

Everything goes out through `core.fetcher` (its SSRF rules, redirects, size and time
limits). A crawl stays on the start page's host and port, honours robots.txt (RFC 9309:
4xx means "allow all", 5xx "disallow all") and starts from sitemap.xml and the sitemaps
robots.txt names, then follows links, breadth first. It stops after `max_pages` pages with
text. Storing the pages is the caller's (`knowledge.services.ingestion`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

from core import fetcher
from core.fetcher import FetchFailed, FetchTimeout, UrlNotAllowed
from knowledge.chunking import text_normalise
from knowledge.parsing import ParseError

ROBOTS_AGENT = "SupportAI"
MAX_SITEMAPS = 5
SITEMAP_MAX_BYTES = 10 * 1024 * 1024
_LOC = re.compile(rb"<loc>\s*(.*?)\s*</loc>", re.I | re.S)
_SITEMAP_INDEX = re.compile(rb"<sitemapindex", re.I)
_SKIPPED_EXTENSIONS = (
    ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".css", ".js", ".zip", ".gz", ".mp4",
    ".mp3", ".woff", ".woff2", ".ttf", ".exe", ".dmg", ".json", ".xml",
)  # fmt: skip

# (kind, content, url) -> the parser's result: {"title", "pages": [{"text", "page"}], "links",
# "canonical_url"} (`knowledge.sandbox.ParserSandbox.parse`).
Parse = Callable[..., dict]


class RobotsDisallowed(Exception):
    """robots.txt does not allow fetching the start page."""


@dataclass(frozen=True)
class CrawledPage:
    url: str  # as requested (the start URL, a sitemap entry or a link)
    key: str  # the document's identity: its same-site canonical URL, else the URL after redirects
    title: str  # the page's own title ("" if it has none)
    canonical_url: str  # as the page declares it ("" if it does not)
    pages: list[dict] = field(default_factory=list)  # the parser's pages: {"text", "page"}
    is_start: bool = False

    @property
    def text(self) -> str:
        return "\n\n".join(page["text"] for page in self.pages)

    @property
    def has_text(self) -> bool:
        return any(text_normalise(page["text"]) for page in self.pages)


def same_site(url: str, root: str) -> bool:
    first, second = urlsplit(url), urlsplit(root)
    return (first.hostname or "").lower() == (second.hostname or "").lower() and (first.port == second.port)


def page_kind(content_type: str) -> str:
    """The parser for a fetched page's content type."""
    if content_type in fetcher.PDF_TYPES:
        return "pdf"
    if content_type == "text/markdown":
        return "markdown"  # its "#" lines are headings; a text/plain page's are text
    if content_type in fetcher.TEXT_TYPES:
        return "text"
    return "html"


def _crawlable(url: str) -> bool:
    path = urlsplit(url).path.lower()
    return urlsplit(url).scheme in ("http", "https") and not path.endswith(_SKIPPED_EXTENSIONS)


def robots_read(*, root_url: str) -> tuple[RobotFileParser, list[str]]:
    """The site's robots.txt rules and the sitemaps it declares."""
    parts = urlsplit(root_url)
    robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
    parser = RobotFileParser()
    try:
        response = fetcher.fetch(
            robots_url, accept=("text/plain",), raise_for_status=False, max_bytes=512 * 1024, max_redirects=2
        )
    except (FetchFailed, FetchTimeout, UrlNotAllowed):
        parser.parse([])  # unreachable robots.txt: nothing is disallowed (RFC 9309 §2.3.1.3 for 4xx)
        return parser, []
    if response.status >= 500:
        parser.parse(["User-agent: *", "Disallow: /"])  # RFC 9309: server errors mean "disallow all"
        return parser, []
    if response.status >= 400:
        parser.parse([])
        return parser, []
    lines = response.text().splitlines()
    parser.parse(lines)
    sitemaps = [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("sitemap:")]
    return parser, sitemaps


def sitemap_urls(*, root_url: str, declared: list[str], limit: int) -> list[str]:
    """Page URLs from the site's sitemaps (following sitemap indexes), at most about 3 * limit."""
    parts = urlsplit(root_url)
    queue = list(declared) or [f"{parts.scheme}://{parts.netloc}/sitemap.xml"]
    seen_maps: set[str] = set()
    pages: list[str] = []
    while queue and len(seen_maps) < MAX_SITEMAPS and len(pages) < limit * 3:
        sitemap_url = queue.pop(0)
        if sitemap_url in seen_maps or not same_site(sitemap_url, root_url):
            continue
        seen_maps.add(sitemap_url)
        try:
            response = fetcher.fetch(
                sitemap_url,
                accept=fetcher.XML_TYPES + ("text/plain",),
                max_bytes=SITEMAP_MAX_BYTES,
                max_redirects=2,
            )
        except (FetchFailed, FetchTimeout, UrlNotAllowed):
            continue
        locations = [
            match.decode("utf-8", "replace").replace("&amp;", "&") for match in _LOC.findall(response.content)
        ]
        if _SITEMAP_INDEX.search(response.content[:2048]):
            queue.extend(locations)
        else:
            pages.extend(locations)
    return pages


class Crawler:
    """`pages()` yields each page read, once per key; `failures` lists the pages that could
    not be read (the start page's failure raises instead: without it there is nothing)."""

    def __init__(self, *, start_url: str, crawl: bool, max_pages: int, parse: Parse) -> None:
        self.start_url = start_url
        self.crawl = crawl
        self.max_pages = max_pages
        self.parse = parse
        self.failures: list[str] = []
        self._robots: RobotFileParser | None = None
        self._queue: list[str] = [start_url]
        self._queued: set[str] = set()
        self._read_keys: set[str] = set()  # keys of the pages yielded with text
        self._fetched = 0
        self._started = False

    def pages(self) -> Iterator[CrawledPage]:
        self.start()
        while self._queue and len(self._read_keys) < self.max_pages:
            url = self._queue.pop(0)
            if self._robots is not None and not self._robots.can_fetch(ROBOTS_AGENT, url):
                continue
            page, links = self._read(url)
            if page is None or page.key in self._read_keys:
                continue
            if page.has_text:
                self._read_keys.add(page.key)
            yield page
            self._enqueue(links)

    def start(self) -> None:
        """Read robots.txt and the sitemaps (a crawl only); `pages()` does it if not done yet.
        Raises RobotsDisallowed if robots.txt does not allow the start page."""
        if self._started:
            return
        self._started = True
        if self.crawl:
            self._robots, declared = robots_read(root_url=self.start_url)
            if not self._robots.can_fetch(ROBOTS_AGENT, self.start_url):
                raise RobotsDisallowed("robots.txt does not allow fetching this page.")
            self._queue.extend(
                url
                for url in sitemap_urls(root_url=self.start_url, declared=declared, limit=self.max_pages)
                if same_site(url, self.start_url)
            )
        self._queued = set(self._queue)

    def _read(self, url: str) -> tuple[CrawledPage | None, list[str]]:
        """The page at `url` and the links it holds; (None, []) if it was not read."""
        is_start = url == self.start_url
        try:
            response = fetcher.fetch(url)
        except (FetchFailed, FetchTimeout, UrlNotAllowed) as error:
            if is_start and not self._fetched:
                raise  # the page the operator asked for: the source fails (or retries)
            self.failures.append(f"{url}: {getattr(error, 'detail', error)}")
            return None, []
        self._fetched += 1
        final_url = urldefrag(response.url)[0]
        if self.crawl and not same_site(final_url, self.start_url):
            return None, []  # redirected off-site
        try:
            parsed = self.parse(page_kind(response.content_type), response.content, url=final_url)
        except ParseError as error:
            if is_start and not self._read_keys:
                raise
            self.failures.append(f"{url}: {error.message}")
            return None, []
        canonical = parsed.get("canonical_url") or ""
        key = canonical if canonical and same_site(canonical, self.start_url) else final_url
        page = CrawledPage(
            url=url,
            key=key,
            title=parsed["title"] or "",
            canonical_url=canonical,
            pages=parsed["pages"],
            is_start=is_start,
        )
        links = (
            [urldefrag(urljoin(final_url, link))[0] for link in parsed.get("links", [])] if self.crawl else []
        )
        return page, links

    def _enqueue(self, links: list[str]) -> None:
        for link in links:
            if link not in self._queued and same_site(link, self.start_url) and _crawlable(link):
                self._queued.add(link)
                self._queue.append(link)
