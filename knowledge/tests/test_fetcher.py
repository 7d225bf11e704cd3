"""The fetcher: SSRF refusals (fake resolver + connect spy, nothing is ever contacted),
and limits against real loopback servers (security test plan rows 1-15, Appendix A)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from core import fetcher
from core.api.envelope import error_status
from core.fetcher import FetchFailed, FetchTimeout, UrlNotAllowed
from testkit.sites import gzip_bomb, html_page

PUBLIC = "93.184.216.34"
IMPORT_LINE = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\b|import\s+([\w., ]+))", re.M)

APPENDIX_A = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[fd00:ec2::254]/",
    "http://127.0.0.1/",
    "http://127.1/",
    "http://0/",
    "http://0.0.0.0/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://localhost./",
    "http://localhost/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[2002:7f00:1::]/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.0.1/",
    "http://100.64.0.1/",
    "http://198.18.0.1/",
    "http://[fc00::1]/",
    "http://[fe80::1%25lo]/",
    "http://[fe80::1%25eth0]/",
    "http://224.0.0.1/",
    "http://user@127.0.0.1/",
    "http://example.com@127.0.0.1/",
    "http://127.0.0.1#@example.com/",
    " http://127.0.0.1/",
    "http://127.0.0.1/\t",
    "http://127.0.0.1/\r\nX: y",
    "http:\\\\127.0.0.1\\",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://127.0.0.1/",
    "dict://127.0.0.1:11211/",
    "data:text/html,hi",
    "http://kubernetes.default.svc/",
    "http://host.docker.internal/",
    "http://10.0.0.1:8080/",
    "http://[::ffff:10.0.0.1]/",
]

# Names that resolve (through the fake resolver) to each kind of forbidden address.
RESOLVING_TO_INTERNAL = {
    "metadata.attacker.net": ["169.254.169.254"],
    "loopback.attacker.net": ["127.0.0.1"],
    "private.attacker.net": ["10.1.2.3"],
    "mixed.attacker.net": [PUBLIC, "10.1.2.3"],  # any bad record refuses the host
    "v6loop.attacker.net": ["::1"],
    "mapped.attacker.net": ["::ffff:169.254.169.254"],
    "nat64.attacker.net": ["64:ff9b::a9fe:a9fe"],
    "ula.attacker.net": ["fd00:ec2::254"],
    "cgnat.attacker.net": ["100.64.0.1"],
}


class FakeResolver:
    def __init__(self, answers: dict[str, list[str]] | None = None, sequence: list[list[str]] | None = None):
        self.answers = answers or {}
        self.sequence = list(sequence or [])
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if self.sequence:
            return self.sequence.pop(0) if len(self.sequence) > 1 else self.sequence[0]
        return self.answers.get(host, [PUBLIC])


class ConnectSpy:
    """Records every connection the fetcher would open; opens none (or only to allowed loopback)."""

    def __init__(self, passthrough: bool = False):
        self.calls: list[tuple[str, str, int]] = []
        self.passthrough = passthrough

    def __call__(self, *, target, address, timeout, watchdog):
        self.calls.append((target.host, address, target.port))
        if self.passthrough and target.allowlisted:
            return fetcher.pool_open(target=target, address=address, timeout=timeout, watchdog=watchdog)
        raise ConnectionRefusedError("connect spy: no real connection in this test")


@pytest.mark.parametrize("url", APPENDIX_A)
def test_appendix_a_is_refused_without_connecting(url):
    resolver, spy = FakeResolver(), ConnectSpy()
    with pytest.raises(UrlNotAllowed) as error:
        fetcher.fetch(url, resolve=resolver, connector=spy)
    assert spy.calls == []
    assert error_status(error.value) == 400  # the API answers it as 400
    assert error.value.details["code"] == "url_not_allowed"


@pytest.mark.parametrize("host", sorted(RESOLVING_TO_INTERNAL))
def test_names_resolving_to_internal_addresses_are_refused(host):
    resolver, spy = FakeResolver(RESOLVING_TO_INTERNAL), ConnectSpy()
    with pytest.raises(UrlNotAllowed, match="resolves to"):
        fetcher.fetch(f"https://{host}/page", resolve=resolver, connector=spy)
    assert resolver.calls == [host]
    assert spy.calls == []


def test_public_name_connects_to_the_checked_address_only_dns_rebinding():
    # First answer public, every later answer loopback: the connection must use the first.
    resolver = FakeResolver(sequence=[[PUBLIC], ["127.0.0.1"]])
    spy = ConnectSpy()
    with pytest.raises(FetchFailed):
        fetcher.fetch("https://rebind.attacker.net/", resolve=resolver, connector=spy)
    assert resolver.calls == ["rebind.attacker.net"]
    assert spy.calls == [("rebind.attacker.net", PUBLIC, 443)]


def test_url_check_refuses_at_save_time_and_passes_public_names():
    fetcher.url_check("https://docs.vendor.io/faq", resolve=FakeResolver())
    with pytest.raises(UrlNotAllowed):
        fetcher.url_check("https://private.attacker.net/", resolve=FakeResolver(RESOLVING_TO_INTERNAL))


def test_non_default_port_needs_the_allowlist(settings):
    with pytest.raises(UrlNotAllowed, match="port 8443"):
        fetcher.url_parse("https://docs.vendor.io:8443/")
    settings.SCRAPE_ALLOWLIST = ["docs.vendor.io:8443"]
    assert fetcher.url_parse("https://docs.vendor.io:8443/").allowlisted


def test_address_refusal_covers_every_blocked_range():
    for address in ["127.0.0.5", "10.9.9.9", "172.31.0.1", "192.168.1.1", "169.254.169.254", "100.127.0.1",
                    "198.19.0.1", "0.0.0.0", "224.0.0.251", "240.0.0.1", "255.255.255.255", "192.0.0.8",
                    "::1", "::", "fe80::1", "fc00::1", "fd12::1", "fec0::1", "ff02::1", "::ffff:10.0.0.1",
                    "2002:0a00:0001::", "64:ff9b::7f00:1", "2001:db8::1", "::127.0.0.1"]:  # fmt: skip
        assert fetcher.address_refusal(address), address
    for address in [PUBLIC, "1.1.1.1", "2606:4700:4700::1111"]:
        assert fetcher.address_refusal(address) is None, address


# --- real loopback servers -------------------------------------------------------------
def test_fetch_html_page_from_allowlisted_loopback(site):
    site.page("/hello", html_page("Hello", "<p>World</p>"))
    response = fetcher.fetch(site.url("/hello"))
    assert response.status == 200
    assert response.content_type == "text/html"
    assert b"<p>World</p>" in response.content
    assert response.address == "127.0.0.1"


def test_gzip_page_is_decoded(site):
    site.page("/zipped", html_page("Zipped", "<p>compressed words</p>"), compress=True)
    assert b"compressed words" in fetcher.fetch(site.url("/zipped")).content


def test_redirect_is_followed_and_rechecked_each_hop(site):
    site.page("/final", html_page("Final", "<p>arrived</p>"))
    site.redirect("/start", "/middle")
    site.redirect("/middle", site.url("/final"), status=301)
    response = fetcher.fetch(site.url("/start"))
    assert response.url == site.url("/final")
    assert response.redirects == (site.url("/middle"), site.url("/final"))


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.3:6379/", "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd",
     "gopher://127.0.0.1:6379/_INFO", "ftp://127.0.0.1/", "http://private.attacker.net/",
     "http://[::ffff:7f00:1]/"],
)  # fmt: skip
def test_redirect_to_internal_or_other_scheme_is_blocked_at_that_hop(site, location):
    site.redirect("/jump", location)
    spy = ConnectSpy(passthrough=True)
    with pytest.raises(UrlNotAllowed):
        fetcher.fetch(site.url("/jump"), resolve=FakeResolver(RESOLVING_TO_INTERNAL), connector=spy)
    assert [address for _host, address, _port in spy.calls] == ["127.0.0.1"]  # only hop 1 connected


def test_redirect_chain_longer_than_five_fails(site):
    for hop in range(20):
        site.redirect(f"/hop{hop}", f"/hop{hop + 1}")
    with pytest.raises(UrlNotAllowed, match="more than 5 redirects"):
        fetcher.fetch(site.url("/hop0"))
    assert len(site.requests) == 6


def test_gzip_bomb_stops_at_the_decoded_cap(site, settings):
    settings.SCRAPE_MAX_BYTES = 2 * 1024 * 1024
    bomb = gzip_bomb(200 * 1024 * 1024)

    def handler(request):
        request.send_response(200)
        request.send_header("Content-Type", "text/html")
        request.send_header("Content-Encoding", "gzip")
        request.send_header("Content-Length", str(len(bomb)))
        request.end_headers()
        request.wfile.write(bomb)

    site.route("/bomb", handler)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="after decompression"):
        fetcher.fetch(site.url("/bomb"))
    assert time.monotonic() - started < 5


def test_bomb_in_a_redirect_body_is_never_decoded(site):
    site.page("/after", html_page("After", "<p>ok</p>"))
    site.redirect("/bombjump", "/after", body=gzip_bomb(100 * 1024 * 1024))
    assert b"ok" in fetcher.fetch(site.url("/bombjump")).content


def test_huge_content_length_is_refused_before_reading(site):
    def handler(request):
        request.send_response(200)
        request.send_header("Content-Type", "text/html")
        request.send_header("Content-Length", str(10 * 1024**3))
        request.end_headers()
        request.wfile.write(b"<p>start</p>")

    site.route("/huge", handler)
    with pytest.raises(FetchFailed, match="larger than"):
        fetcher.fetch(site.url("/huge"))


def test_endless_chunked_body_stops_at_the_cap(site, settings):
    settings.SCRAPE_MAX_BYTES = 1024 * 1024
    site.endless_chunked("/endless")
    with pytest.raises(FetchFailed, match="larger than"):
        fetcher.fetch(site.url("/endless"))


@pytest.mark.parametrize("headers_too", [False, True])
def test_slow_trickle_hits_the_total_deadline(site, settings, headers_too):
    settings.SCRAPE_TOTAL_TIMEOUT = 1.5
    settings.SCRAPE_READ_TIMEOUT = 1.0  # each byte arrives well within the read timeout
    site.trickle("/slow", interval=0.2, headers_too=headers_too)
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetcher.fetch(site.url("/slow"))
    assert time.monotonic() - started < 4


def test_wrong_content_type_is_refused(site):
    site.page("/binary", b"\x00\x01", content_type="application/octet-stream")
    with pytest.raises(FetchFailed, match="Unsupported content type"):
        fetcher.fetch(site.url("/binary"))


def test_http_errors_are_classified(site):
    site.page("/gone", b"gone", status=404)
    site.page("/down", b"down", status=503)
    with pytest.raises(FetchFailed) as missing:
        fetcher.fetch(site.url("/gone"))
    assert not missing.value.transient
    with pytest.raises(FetchFailed) as down:
        fetcher.fetch(site.url("/down"))
    assert down.value.transient


def test_connection_refused_is_transient(settings):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    settings.SCRAPE_ALLOWLIST = [f"127.0.0.1:{port}"]
    with pytest.raises(FetchFailed) as error:
        fetcher.fetch(f"http://127.0.0.1:{port}/")
    assert error.value.transient


def test_the_fetcher_is_the_only_module_that_opens_outbound_http():
    root = Path(__file__).resolve().parents[2]
    forbidden = {
        "requests",
        "httpx",
        "urllib3",
        "urllib.request",
        "http.client",
        "aiohttp",
        "socket",
        "pycurl",
    }
    offenders = []
    for path in root.rglob("*.py"):
        relative = path.relative_to(root).as_posix()
        if (
            relative.startswith((".venv/", ".data/", "bench/", "tests/", "testkit/", "scripts/"))
            or "/tests/" in relative
            or "/migrations/" in relative
        ):
            continue
        # The fetcher opens outbound connections; the web server's worker and
        # core/inbound_socket.py only touch the client's own inbound socket.
        if relative in {
            "core/fetcher.py",
            "supportai/gunicorn_worker.py",
            "core/inbound_socket.py",
        }:
            continue
        # (a regex, not ast: CPython 3.11.7's ast.parse can trip over recursion-depth
        # bookkeeping left behind by earlier deep-recursion tests in the same process)
        for match in IMPORT_LINE.finditer(path.read_text()):
            names = (
                [match.group(1)]
                if match.group(1)
                else [n.strip().split(" ")[0] for n in match.group(2).split(",")]
            )
            for name in names:
                if name in forbidden or any(name.startswith(prefix + ".") for prefix in forbidden):
                    offenders.append(f"{relative}: {name}")
    assert offenders == []


def test_an_address_written_in_the_url_is_not_said_to_resolve_to_itself():
    """The dashboard said "10.0.0.5 resolves to 10.0.0.5 is a private address"."""
    with pytest.raises(UrlNotAllowed) as error:
        fetcher.url_check("http://10.0.0.5/")
    assert error.value.reason == "10.0.0.5 is a private address"
    assert error.value.allowlist_entry == "10.0.0.5:80"
    with pytest.raises(UrlNotAllowed) as error:
        fetcher.url_check(
            "https://help.acme-intranet.com/faq",
            resolve=FakeResolver({"help.acme-intranet.com": ["10.1.2.3"]}),
        )
    assert (
        error.value.reason
        == "help.acme-intranet.com resolves to a refused address (10.1.2.3 is a private address)"
    )
    assert error.value.allowlist_entry == "help.acme-intranet.com:443"
    with pytest.raises(UrlNotAllowed) as error:
        fetcher.url_check("file:///etc/passwd")
    assert error.value.allowlist_entry == ""  # no allow-list entry makes this fetchable
