"""`fetcher.post`: the same address rules as `fetch`, checked at send time; status returned,
not raised; the answer's body read up to a cap; no redirects followed."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core import fetcher
from core.fetcher import FetchTimeout, UrlNotAllowed


@pytest.fixture
def receiver(settings):
    received: list[tuple[str, dict, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append((self.path, dict(self.headers), body))
            if self.path == "/slow":
                threading.Event().wait(3)
            status, payload = {
                "/ok": (200, b"thanks"),
                "/big": (500, b"x" * 100_000),
                "/moved": (302, b""),
            }.get(self.path, (200, b"thanks"))
            try:
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "http://169.254.169.254/")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (the timeout test)
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    settings.SCRAPE_ALLOWLIST = [f"127.0.0.1:{port}"]
    server.received = received
    server.base = f"http://127.0.0.1:{port}"
    yield server
    server.shutdown()
    server.server_close()


def _post(url, **kwargs):
    return fetcher.post(
        url,
        body=b'{"a":1}',
        headers={"Content-Type": "application/json"},
        max_bytes=1024,
        total_timeout=2,
        **kwargs,
    )


def test_post_sends_the_body_and_headers_and_returns_the_answer(receiver):
    response = _post(receiver.base + "/ok")
    assert response.status == 200 and response.content == b"thanks"
    path, headers, body = receiver.received[0]
    assert (path, body, headers["Content-Type"]) == ("/ok", b'{"a":1}', "application/json")


def test_post_returns_errors_and_caps_the_body(receiver):
    response = _post(receiver.base + "/big")
    assert response.status == 500 and len(response.content) == 1024


def test_post_does_not_follow_redirects(receiver):
    response = _post(receiver.base + "/moved")
    assert response.status == 302 and len(receiver.received) == 1


def test_post_times_out_on_a_receiver_that_hangs(receiver):
    with pytest.raises(FetchTimeout):
        _post(receiver.base + "/slow")


def test_post_checks_the_address_at_send_time():
    connects = []
    with pytest.raises(UrlNotAllowed):
        _post(
            "https://hooks.customer.example.org/in",
            resolve=lambda host, port: ["169.254.169.254"],
            connector=lambda **kwargs: connects.append(kwargs),
        )
    assert connects == []
