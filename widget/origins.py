"""Origins: how allowed domains are written, normalised and matched.

An allowed domain is a web origin (`https://shop.example.com`, `http://localhost:8080`) or a
subdomain wildcard (`https://*.example.com`, which matches `https://a.example.com` but not
`https://example.com`). Matching is exact on scheme, host and port; default ports are dropped.
Where an operator types allowed domains (API, dashboard, `create_widget`), a bare host means
its https origin (`shop.example` → `https://shop.example`), or its http origin for a loopback
host (`localhost:8080` → `http://localhost:8080`), where sites under development have no TLS.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class InvalidOrigin(ValueError):
    pass


def _host_valid(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        return ":" in host  # IPv6 literal, e.g. [::1]
    labels = host.split(".")
    return bool(labels) and all(_HOST_LABEL.match(label) for label in labels)


def _loopback(host: str) -> bool:
    host = host.lower()
    return host in ("localhost", "[::1]") or host.endswith(".localhost") or host.startswith("127.")


def _with_scheme(raw: str) -> str:
    """A bare `host[:port]` with the scheme it means (https, or http for a loopback host)."""
    if raw.startswith("["):  # [::1]:8080
        host = raw[: raw.find("]") + 1] if "]" in raw else raw
    else:
        host = raw.split(":", 1)[0].split("/", 1)[0]
    return f"{'http' if _loopback(host) else 'https'}://{raw}"


# A scheme without `//` (`javascript:alert(1)`), which a bare host would otherwise read as a
# host with a port that is not a number.
_OTHER_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(?![0-9])")


def origin_normalize(value: str, *, allow_wildcard: bool = False, bare_host: bool = False) -> str:
    """`HTTPS://Shop.Example.com:443/` → `https://shop.example.com`; raises InvalidOrigin.
    With `bare_host`, `shop.example` is read as `https://shop.example` (see the module)."""
    if not isinstance(value, str):
        raise InvalidOrigin("must be a string")
    raw = value.strip()
    if not raw or any(ch.isspace() or ord(ch) < 32 for ch in raw):
        raise InvalidOrigin("must be a host like shop.example.com or an origin like https://shop.example.com")
    if bare_host and "://" not in raw:
        if _OTHER_SCHEME.match(raw):  # `javascript:…`, `data:…`, `mailto:…`: not `host:port`
            raise InvalidOrigin("must start with http:// or https://")
        raw = _with_scheme(raw)
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise InvalidOrigin("has an invalid port") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidOrigin("must start with http:// or https://")
    if parts.username or parts.password or "@" in parts.netloc:
        raise InvalidOrigin("must not contain credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidOrigin("must be an origin only (no path, query or fragment)")
    host = (parts.hostname or "").lower()
    if parts.netloc.startswith("[") or (host and ":" in host):
        host = f"[{host}]"
    wildcard = False
    if host.startswith("*."):
        if not allow_wildcard:
            raise InvalidOrigin("must not contain a wildcard")
        wildcard, host = True, host[2:]
        if "." not in host:
            raise InvalidOrigin("wildcard must cover a subdomain of a real domain (https://*.example.com)")
    if not host or not _host_valid(host):
        raise InvalidOrigin("has an invalid host name")
    netloc = ("*." if wildcard else "") + host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return f"{scheme}://{netloc}"


def origin_matches(*, origin: str, allowed: str) -> bool:
    if "://*." not in allowed:
        return origin == allowed
    scheme, _, rest = allowed.partition("://*.")
    origin_scheme, _, origin_rest = origin.partition("://")
    return origin_scheme == scheme and origin_rest.endswith("." + rest) and len(origin_rest) > len(rest) + 1


def origin_from_header(value: str | None) -> str | None:
    """A request's Origin (or Referer) header as a normalised origin; None when absent/opaque."""
    if not value or value == "null":
        return None
    raw = value.strip()
    parts = urlsplit(raw)
    if parts.scheme and parts.netloc and (parts.path or parts.query or parts.fragment):
        raw = f"{parts.scheme}://{parts.netloc}"  # a Referer: keep only its origin
    try:
        return origin_normalize(raw)
    except InvalidOrigin:
        return None


def origin_allowed(*, origin: str | None, allowed_domains: list[str]) -> bool:
    """No allowed domains = anywhere (even without an Origin); otherwise the Origin must match."""
    if not allowed_domains:
        return True
    if origin is None:
        return False
    return any(origin_matches(origin=origin, allowed=allowed) for allowed in allowed_domains)
