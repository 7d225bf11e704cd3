import pytest

from widget.origins import InvalidOrigin, origin_allowed, origin_from_header, origin_matches, origin_normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://shop.example.com", "https://shop.example.com"),
        ("HTTPS://Shop.Example.COM/", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_origins_are_normalised(raw, expected):
    assert origin_normalize(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "shop.example.com",
        "javascript:alert(1)",
        "ftp://shop.example.com",
        "https://shop.example.com/path",
        "https://shop.example.com?q=1",
        "https://user:pw@shop.example.com",
        "https://shop example.com",
        "https://shop.example.com:99999",
        "https://-bad-.example.com",
        "https://*.example.com",  # wildcards only where allowed
        "null",
        42,
    ],
)
def test_bad_origins_are_refused(raw):
    with pytest.raises(InvalidOrigin):
        origin_normalize(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("shop.example.com", "https://shop.example.com"),
        ("localhost:8080", "http://localhost:8080"),
        ("127.0.0.1:5173", "http://127.0.0.1:5173"),
    ],
)
def test_bare_hosts_take_their_scheme(raw, expected):
    assert origin_normalize(raw, bare_host=True) == expected


@pytest.mark.parametrize("raw", ["javascript:alert(1)", "data:text/html,x", "mailto:a@b.c", "ftp:"])
def test_a_bare_value_with_another_scheme_says_so(raw):
    """It read as a host with a port that is not a number: 'has an invalid port'."""
    with pytest.raises(InvalidOrigin, match="must start with http:// or https://"):
        origin_normalize(raw, bare_host=True)


def test_wildcards_match_subdomains_only():
    allowed = origin_normalize("https://*.example.com", allow_wildcard=True)
    assert allowed == "https://*.example.com"
    assert origin_matches(origin="https://a.example.com", allowed=allowed)
    assert origin_matches(origin="https://a.b.example.com", allowed=allowed)
    assert not origin_matches(origin="https://example.com", allowed=allowed)
    assert not origin_matches(origin="https://evilexample.com", allowed=allowed)
    assert not origin_matches(origin="http://a.example.com", allowed=allowed)
    with pytest.raises(InvalidOrigin):
        origin_normalize("https://*.com", allow_wildcard=True)


def test_headers_and_allow_lists():
    assert origin_from_header("null") is None
    assert origin_from_header(None) is None
    assert origin_from_header("https://shop.example.com/some/page?x=1") == "https://shop.example.com"
    assert origin_allowed(origin=None, allowed_domains=[]) is True
    assert origin_allowed(origin="https://evil.example", allowed_domains=[]) is True
    assert origin_allowed(origin=None, allowed_domains=["https://shop.example.com"]) is False
    assert origin_allowed(origin="https://shop.example.com", allowed_domains=["https://shop.example.com"])
    assert not origin_allowed(
        origin="https://shop.example.com.evil", allowed_domains=["https://shop.example.com"]
    )
