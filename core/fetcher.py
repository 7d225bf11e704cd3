"""The one door to the outside web. Nothing else in SupportAI opens outbound HTTP.

For every URL, and again for every redirect hop:
1. parse once, refusing whitespace, control characters, back-slashes and user info;
   scheme http/https only; port 80/443 unless the exact host:port is in SCRAPE_ALLOWLIST;
2. turn numeric host spellings (decimal, octal, hex, short forms) into the address they
   mean, resolve names to ALL their A/AAAA records, unwrap IPv4-mapped, 6to4 and NAT64
   IPv6 forms, and refuse if ANY address is not public (loopback, private, link-local and
   the 169.254.169.254 metadata address, CGNAT, benchmarking, multicast, reserved,
   unspecified, ULA, site-local) - before any connection is made;
3. connect to the checked address itself (TLS SNI and Host name the host), so a second
   DNS answer can never redirect the connection (no rebinding);
4. follow at most SCRAPE_MAX_REDIRECTS redirects by hand, each through steps 1-3;
5. bound everything: connect and read timeouts per operation, a total deadline enforced
   by a watchdog that closes the socket, a cap on decoded bytes (gzip bombs stop at the
   cap), a Content-Length check, allowed content types and content encodings.

`fetch()` GETs pages (knowledge ingestion, the scrape endpoint); `post()` sends a body
(webhook deliveries) under the same rules, never following redirects, and reads at most a
capped excerpt of the answer whatever its status. `guarded_httpx_client()` is for a library
that speaks HTTP itself (litellm calling an organization's own model server): steps 1-3 run
at every TCP connection it opens, and it follows no redirects.

`SCRAPE_ALLOWLIST=host:port,...` (exact pairs) is the only escape hatch: such a pair
skips the address check (tests use it to reach servers on loopback, intranets to reach
their wiki). The resolver and the connector are parameters, so tests can prove refusals
with a fake resolver and a connect spy instead of connecting anywhere.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import urljoin, urlsplit, urlunsplit

import certifi
import httpcore
import httpx
import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection

from core.errors import UpstreamError, UpstreamTimeout, ValidationFailed

HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("text/plain", "text/markdown")
XML_TYPES = ("application/xml", "text/xml", "application/rss+xml", "application/atom+xml")
PDF_TYPES = ("application/pdf",)
PAGE_TYPES = HTML_TYPES + TEXT_TYPES + PDF_TYPES
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
DECODED_ENCODINGS = {"", "identity", "gzip", "x-gzip", "deflate"}
BLOCKED_NAME_SUFFIXES = (
    "localhost", "localdomain", "local", "internal", "intranet", "lan", "home", "corp",
    "svc", "cluster.local", "home.arpa", "arpa", "onion", "test", "invalid", "example",
)  # fmt: skip
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.I)
_NAT64_PREFIXES = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))

# Blocked on top of Python's own tables, whose contents vary between Python versions.
_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/96", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
        "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip

Resolver = Callable[[str, int], list[str]]
logger = logging.getLogger(__name__)


class UrlNotAllowed(ValidationFailed):
    """The URL (or a redirect it led to) points where the fetcher must not go."""

    code = "url_not_allowed"

    def __init__(self, reason: str, *, url: str = "", allowlist_entry: str = ""):
        super().__init__(f"URL not allowed: {reason}", details={"code": self.code, "url": [reason]})
        self.reason = reason
        self.url = url
        # The SCRAPE_ALLOWLIST pair that would let the fetcher go there (refused only for being
        # private, internal or on another port), for messages to the people who can set it.
        self.allowlist_entry = allowlist_entry


class FetchFailed(UpstreamError):
    """The site answered badly or not at all. `transient` failures are worth retrying."""

    code = "fetch_failed"

    def __init__(self, detail: str, *, transient: bool = False, status: int | None = None):
        super().__init__(detail)
        self.transient = transient
        self.http_status = status


class FetchTimeout(UpstreamTimeout):
    code = "fetch_timeout"
    transient = True


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # as it goes into Host / SNI (IDNA-encoded, no brackets)
    port: int
    path: str  # path + query
    allowlisted: bool


@dataclass(frozen=True)
class FetchResponse:
    url: str  # after redirects
    status: int
    content_type: str
    charset: str
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)
    redirects: tuple[str, ...] = ()
    address: str = ""

    def text(self) -> str:
        return self.content.decode(self.charset or "utf-8", errors="replace")


# --- resolution and address checks ---------------------------------------------------
def system_resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise FetchFailed(f"Could not resolve {host}.", transient=False) from error
    addresses = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = sockaddr[0].split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    return addresses


# Tests replace this with a fake (see knowledge/tests/test_fetcher.py); production uses DNS.
resolver: Resolver = system_resolve


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    embedded = []
    if address.ipv4_mapped:
        embedded.append(address.ipv4_mapped)
    if address.sixtofour:
        embedded.append(address.sixtofour)
    if address.teredo:
        embedded.extend(address.teredo)
    for prefix in _NAT64_PREFIXES:
        if address in prefix:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if int(address) >> 32 == 0:  # IPv4-compatible ::a.b.c.d (deprecated)
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return embedded


def address_refusal(address: str) -> str | None:
    """Why `address` must not be contacted, or None if it is a public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates.extend(_embedded_ipv4(ip))
        if ip.teredo or any(ip in prefix for prefix in _NAT64_PREFIXES) or ip.sixtofour:
            # Transition addresses reach whatever they embed; refuse them outright.
            return f"{ip} is an IPv6 transition address"
    for candidate in candidates:
        if candidate.is_loopback:
            return f"{candidate} is a loopback address"
        if candidate.is_link_local:
            return f"{candidate} is link-local (cloud metadata lives here)"
        if candidate.is_unspecified:
            return f"{candidate} is unspecified"
        if candidate.is_multicast:
            return f"{candidate} is multicast"
        if candidate.is_private:
            return f"{candidate} is a private address"
        if candidate.is_reserved:
            return f"{candidate} is reserved"
        if isinstance(candidate, ipaddress.IPv6Address) and candidate.is_site_local:
            return f"{candidate} is site-local"
        if not candidate.is_global:
            return f"{candidate} is not a public address"
        for network in _EXTRA_BLOCKED:
            if candidate.version == network.version and candidate in network:
                return f"{candidate} is in the blocked range {network}"
    return None


def _numeric_ipv4(host: str) -> str | None:
    """The address a numeric host spelling means (127.1, 2130706433, 0x7f000001, 0177.0.0.1)."""
    if not _NUMERIC_HOST.match(host):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host.rstrip(".")))
    except OSError:
        raise UrlNotAllowed(f"{host!r} is not a valid address") from None


def _allowlist() -> set[tuple[str, int]]:
    pairs = set()
    for entry in settings.SCRAPE_ALLOWLIST:
        entry = entry.strip().lower()
        if not entry:
            continue
        host, _, port = entry.rpartition(":")
        if host and port.isdigit():
            pairs.add((host.strip("[]"), int(port)))
    return pairs


def url_parse(url: str) -> Target:
    """Check everything about `url` that does not need DNS; refuse with a reason."""
    if not isinstance(url, str) or not url:
        raise UrlNotAllowed("empty URL")
    if len(url) > 2000:
        raise UrlNotAllowed("the URL is longer than 2000 characters")
    if any(ord(character) < 33 or ord(character) == 127 for character in url) or "\\" in url:
        raise UrlNotAllowed("the URL contains spaces, control characters or back-slashes", url=url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UrlNotAllowed(f"the URL cannot be parsed ({error})", url=url) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlNotAllowed(f"only http and https URLs can be fetched, not {scheme or 'no scheme'}", url=url)
    if "@" in parts.netloc:
        raise UrlNotAllowed("URLs with user names or passwords are not fetched", url=url)
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlNotAllowed("the URL has no host", url=url)
    if "%" in host:
        raise UrlNotAllowed("it has an IPv6 zone identifier", url=url)
    port = port or (443 if scheme == "https" else 80)
    try:
        ipaddress.ip_address(host)
        is_literal = True
    except ValueError:
        is_literal = False
    if not is_literal:
        numeric = _numeric_ipv4(host)
        if numeric:
            host = numeric
        else:
            try:
                host = host.rstrip(".").encode("idna").decode("ascii")
            except UnicodeError:
                raise UrlNotAllowed("the host name is not valid", url=url) from None
    allowlisted = (host, port) in _allowlist() or ((parts.hostname or "").lower(), port) in _allowlist()
    if not allowlisted:
        entry = _allowlist_entry(host, port)
        if port not in (80, 443):
            raise UrlNotAllowed(
                f"port {port} (only ports 80 and 443 are fetched)", url=url, allowlist_entry=entry
            )
        labels = host.split(".")
        if not is_literal and not _NUMERIC_HOST.match(host):
            for suffix in BLOCKED_NAME_SUFFIXES:
                if host == suffix or host.endswith("." + suffix):
                    raise UrlNotAllowed(f"{host} is an internal host name", url=url, allowlist_entry=entry)
            if len(labels) < 2:
                raise UrlNotAllowed(f"{host} is not a public host name", url=url, allowlist_entry=entry)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    clean = urlunsplit((scheme, parts.netloc.lower(), parts.path or "/", parts.query, ""))
    return Target(url=clean, scheme=scheme, host=host, port=port, path=path, allowlisted=allowlisted)


def _allowlist_entry(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def target_resolve(target: Target, *, resolve: Resolver | None = None) -> str:
    """The one address to connect to; refuses if any address of the host is not public."""
    resolve = resolve or resolver
    try:
        ipaddress.ip_address(target.host)
        addresses, literal = [target.host], True
    except ValueError:
        addresses, literal = list(resolve(target.host, target.port)), False
    if not addresses:
        raise FetchFailed(f"Could not resolve {target.host}.")
    if not target.allowlisted:
        for address in addresses:
            reason = address_refusal(address)
            if reason:
                # An address written in the URL is not "resolved" ("10.0.0.5 resolves to
                # 10.0.0.5 is a private address" was the dashboard's message), and a name's
                # reason is a clause of its own.
                raise UrlNotAllowed(
                    reason if literal else f"{target.host} resolves to a refused address ({reason})",
                    url=target.url,
                    allowlist_entry=_allowlist_entry(target.host, target.port),
                )
    return addresses[0]


def url_check(url: str, *, resolve: Resolver | None = None) -> Target:
    """Refuse `url` now (e.g. when an operator saves it) if it could never be fetched."""
    target = url_parse(url)
    target_resolve(target, resolve=resolve)
    return target


# --- connecting ---------------------------------------------------------------------
class _Watchdog:
    """Closes every socket of a fetch when its total deadline passes."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.sockets: list[socket.socket] = []
        self.fired = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def register(self, sock) -> None:
        with self._lock:
            self.sockets.append(sock)
            if self.fired:
                self._shutdown(sock)

    @staticmethod
    def _shutdown(sock) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self.sockets:
                self._shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _connection_classes(watchdog: _Watchdog):
    class WatchedHTTPConnection(HTTPConnection):
        def connect(self):
            super().connect()
            watchdog.register(self.sock)

    class WatchedHTTPSConnection(HTTPSConnection):
        def connect(self):
            super().connect()
            watchdog.register(self.sock)

    return WatchedHTTPConnection, WatchedHTTPSConnection


def pool_open(*, target: Target, address: str, timeout: urllib3.Timeout, watchdog: _Watchdog):
    """A connection pool pinned to `address` (the checked IP), speaking to `target.host`."""
    plain, secure = _connection_classes(watchdog)
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            host=address,
            port=target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
        pool.ConnectionCls = secure
    else:
        pool = urllib3.HTTPConnectionPool(
            host=address, port=target.port, timeout=timeout, retries=False, maxsize=1
        )
        pool.ConnectionCls = plain
    return pool


Connector = Callable[..., object]


def _status_meaning(status: int) -> str:
    """What an error status means for the person who typed the URL (a failed source showed
    only "127.0.0.1 answered HTTP 404.")."""
    if status in (404, 410):
        return ": there is no page at this address (check the URL)"
    if status in (401, 403):
        return ": the site refuses to show this page without a sign-in, or to robots"
    if status >= 500:
        return ": the site had an error"
    return ""


def _media_type(value: str) -> tuple[str, str]:
    message = Message()
    message["content-type"] = value or ""
    return message.get_content_type().lower(), (message.get_param("charset") or "")


def fetch(
    url: str,
    *,
    accept: Iterable[str] = PAGE_TYPES,
    max_bytes: int | None = None,
    total_timeout: float | None = None,
    max_redirects: int | None = None,
    raise_for_status: bool = True,
    resolve: Resolver | None = None,
    connector: Connector | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> FetchResponse:
    """Fetch `url` (GET unless `method` says otherwise) under every rule of the module docstring.

    `headers` (e.g. an API key) go to the first URL's origin only: a redirect to another
    scheme, host or port is followed without them. A 303, and a 301/302 answering anything
    but GET/HEAD, continues as a GET without body (what browsers do); 307/308 repeat the
    request as it was.
    """
    accept = tuple(accept)
    method = method.upper()
    origin = None
    max_bytes = max_bytes or settings.SCRAPE_MAX_BYTES
    total_timeout = total_timeout or settings.SCRAPE_TOTAL_TIMEOUT
    max_redirects = settings.SCRAPE_MAX_REDIRECTS if max_redirects is None else max_redirects
    connector = connector or pool_open
    deadline = time.monotonic() + total_timeout
    watchdog = _Watchdog(deadline)
    redirects: list[str] = []
    current = url
    try:
        while True:
            target = url_parse(current)
            if origin is None:
                origin = (target.scheme, target.host, target.port)
            address = target_resolve(target, resolve=resolve)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchTimeout(f"Fetching {url} took longer than {total_timeout:.0f} s.")
            timeout = urllib3.Timeout(
                connect=min(settings.SCRAPE_CONNECT_TIMEOUT, remaining),
                read=min(settings.SCRAPE_READ_TIMEOUT, remaining),
            )
            response = _request(
                connector=connector,
                target=target,
                address=address,
                timeout=timeout,
                watchdog=watchdog,
                accept=accept,
                method=method,
                headers=headers if (target.scheme, target.host, target.port) == origin else None,
                body=body,
            )
            try:
                if response.status in REDIRECT_STATUSES and response.headers.get("location"):
                    if len(redirects) >= max_redirects:
                        raise UrlNotAllowed(f"more than {max_redirects} redirects", url=url)
                    location = response.headers["location"].strip()
                    current = urljoin(target.url, location)
                    redirects.append(current)
                    if response.status == 303 or (
                        response.status in (301, 302) and method not in ("GET", "HEAD")
                    ):
                        method, body = "GET", None
                    continue
                return _response_read(
                    response=response,
                    target=target,
                    address=address,
                    accept=accept,
                    max_bytes=max_bytes,
                    raise_for_status=raise_for_status,
                    redirects=tuple(redirects),
                    watchdog=watchdog,
                    total_timeout=total_timeout,
                )
            finally:
                response.release_conn()
                response.close()
    finally:
        watchdog.cancel()


def _request(
    *,
    connector,
    target: Target,
    address: str,
    timeout,
    watchdog: _Watchdog,
    accept: tuple[str, ...],
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
):
    try:
        pool = connector(target=target, address=address, timeout=timeout, watchdog=watchdog)
        host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
        if ":" in target.host:
            host_header = f"[{target.host}]" + ("" if target.port in (80, 443) else f":{target.port}")
        return pool.urlopen(
            method,
            target.path,
            body=body,
            headers={
                "Host": host_header,
                "User-Agent": settings.SCRAPE_USER_AGENT,
                "Accept": ", ".join(accept) + ", */*;q=0.1" if accept else "*/*",
                "Accept-Encoding": "gzip, deflate",
                **(headers or {}),
            },
            redirect=False,
            retries=False,
            preload_content=False,
            decode_content=True,
            assert_same_host=False,
        )
    except (UrlNotAllowed, FetchFailed):
        raise
    except urllib3.exceptions.NewConnectionError as error:
        raise FetchFailed(f"Could not connect to {target.host}.", transient=True) from error
    except urllib3.exceptions.SSLError as error:
        raise FetchFailed(f"TLS failed for {target.host}: the certificate could not be verified.") from error
    except (urllib3.exceptions.TimeoutError, TimeoutError) as error:
        if watchdog.fired:
            raise FetchTimeout(f"{target.host} did not answer within the time limit.") from error
        raise FetchTimeout(f"{target.host} did not answer in time.") from error
    except (urllib3.exceptions.HTTPError, OSError, ConnectionError) as error:
        if watchdog.fired:
            raise FetchTimeout(f"{target.host} did not answer within the time limit.") from error
        raise FetchFailed(
            f"Could not connect to {target.host} ({error.__class__.__name__}).", transient=True
        ) from error


def _response_read(
    *,
    response,
    target,
    address,
    accept,
    max_bytes,
    raise_for_status,
    redirects,
    watchdog,
    total_timeout,
    truncate: bool = False,
) -> FetchResponse:
    status = response.status
    headers = {key.lower(): value for key, value in response.headers.items()}
    if raise_for_status and status >= 400:
        transient = status >= 500 or status in (408, 425, 429)
        raise FetchFailed(
            f"{target.host} answered HTTP {status}{_status_meaning(status)}.",
            transient=transient,
            status=status,
        )
    if raise_for_status and not 200 <= status < 300:
        raise FetchFailed(f"{target.host} answered HTTP {status}.", status=status)
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding not in DECODED_ENCODINGS:
        raise FetchFailed(f"Unsupported content encoding {encoding!r}.")
    media_type, charset = _media_type(headers.get("content-type", ""))
    if status < 300 and accept and headers.get("content-type") and media_type not in accept:
        raise FetchFailed(f"Unsupported content type {media_type} (expected {', '.join(accept)}).")
    declared = headers.get("content-length", "")
    if not truncate and declared.isdigit() and not encoding and int(declared) > max_bytes:
        raise FetchFailed(f"The page is larger than the {max_bytes // 1024} KB limit.")
    body = bytearray()
    try:
        while True:
            piece = response.read1(65_536)
            if not piece:
                break
            body.extend(piece)
            if len(body) > max_bytes and truncate:
                del body[max_bytes:]
                break
            if len(body) > max_bytes:
                raise FetchFailed(
                    f"The page is larger than the {max_bytes // 1024} KB limit (after decompression)."
                )
            if watchdog.fired or time.monotonic() > watchdog.deadline:
                raise FetchTimeout(f"Fetching took longer than {total_timeout:.0f} s.")
    except (FetchFailed, FetchTimeout):
        raise
    except urllib3.exceptions.DecodeError as error:
        raise FetchFailed("The page's compressed body is corrupt.") from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        if watchdog.fired:
            raise FetchTimeout(f"Fetching took longer than {total_timeout:.0f} s.") from error
        raise FetchFailed(
            f"The connection to {target.host} broke ({error.__class__.__name__}).", transient=True
        ) from error
    return FetchResponse(
        url=target.url,
        status=status,
        content_type=media_type if headers.get("content-type") else "",
        charset=charset,
        content=bytes(body),
        headers=headers,
        redirects=redirects,
        address=address,
    )


def post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    max_bytes: int,
    total_timeout: float,
    connect_timeout: float | None = None,
    resolve: Resolver | None = None,
    connector: Connector | None = None,
) -> FetchResponse:
    """POST `body` to `url` under every rule of the module docstring, once.

    The address is checked now, whatever it was when the URL was saved (DNS may have changed).
    Redirects are not followed (a 3xx is an answer like any other); the answer's status is
    returned, not raised, and at most `max_bytes` of its body are read (the rest is dropped),
    so a slow or chatty receiver holds the caller for `total_timeout` at most.
    """
    connector = connector or pool_open
    deadline = time.monotonic() + total_timeout
    watchdog = _Watchdog(deadline)
    try:
        target = url_parse(url)
        address = target_resolve(target, resolve=resolve)
        remaining = deadline - time.monotonic()
        timeout = urllib3.Timeout(
            connect=min(connect_timeout or settings.SCRAPE_CONNECT_TIMEOUT, remaining), read=remaining
        )
        response = _request(
            connector=connector,
            target=target,
            address=address,
            timeout=timeout,
            watchdog=watchdog,
            accept=(),
            method="POST",
            body=body,
            headers=headers,
        )
        try:
            return _response_read(
                response=response,
                target=target,
                address=address,
                accept=(),
                max_bytes=max_bytes,
                raise_for_status=False,
                redirects=(),
                watchdog=watchdog,
                total_timeout=total_timeout,
                truncate=True,
            )
        finally:
            response.release_conn()
            response.close()
    finally:
        watchdog.cancel()


# --- a guarded client for libraries that do their own HTTP --------------------------------
def connect_address(
    host: str, port: int, *, allowlist: Iterable[str] = (), resolve: Resolver | None = None
) -> str:
    """The address a connection to `host:port` may go to, checked now (steps 1-2): the host as
    it is for an exact `allowlist` pair (`host:port`, the server admin's), otherwise the one
    checked address of a public host on port 80/443 (or a SCRAPE_ALLOWLIST pair)."""
    host = host.lower().strip("[]")
    for entry in allowlist:
        allowed_host, _, allowed_port = entry.strip().lower().rpartition(":")
        if allowed_host.strip("[]") == host and allowed_port.isdigit() and int(allowed_port) == port:
            return host
    netloc = f"[{host}]" if ":" in host else host
    return target_resolve(url_parse(f"http://{netloc}:{port}/"), resolve=resolve)


class _CheckedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, but every TCP connection is checked and pinned first: the
    socket goes to the address `connect_address` returned (TLS still names the host), so a
    redirect or a second DNS answer can never point it anywhere else."""

    def __init__(self, *, allowlist: Iterable[str], resolve: Resolver | None) -> None:
        self._allowlist = tuple(allowlist)
        self._resolve = resolve

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            address = connect_address(host, port, allowlist=self._allowlist, resolve=self._resolve)
        except (UrlNotAllowed, FetchFailed) as refusal:
            reason = getattr(refusal, "reason", None) or refusal.message
            logger.warning("outbound connection to %s:%s refused: %s", host, port, reason)
            raise httpcore.ConnectError(f"Connection to {host}:{port} not allowed: {reason}") from None
        return super().connect_tcp(
            address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )


def guarded_httpx_client(*, allowlist: Iterable[str] = (), resolve: Resolver | None = None) -> httpx.Client:
    """An httpx client whose every connection is checked and pinned (`_CheckedBackend`); no
    redirects, no proxies or certificates from the environment. `allowlist`: exact host:port
    pairs that skip the address check (LLM_BASE_URL_ALLOWLIST). Close it when done."""
    context = ssl.create_default_context(cafile=certifi.where())
    transport = httpx.HTTPTransport(verify=context, trust_env=False, retries=0)
    if not isinstance(getattr(transport, "_pool", None), httpcore.ConnectionPool):  # pragma: no cover
        raise RuntimeError("httpx changed: its transport no longer has an httpcore pool to guard")
    transport._pool = httpcore.ConnectionPool(
        ssl_context=context,
        max_connections=10,
        max_keepalive_connections=5,
        keepalive_expiry=5.0,
        retries=0,
        network_backend=_CheckedBackend(allowlist=allowlist, resolve=resolve),
    )
    return httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
