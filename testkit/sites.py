"""A real HTTP server on loopback standing in for customers' web sites in tests."""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


def html_page(title: str, body: str, *, links: list[str] = (), extra_head: str = "") -> bytes:
    anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    return (
        f"<!doctype html><html><head><title>{title}</title>{extra_head}</head><body>"
        f"<nav><ul><li><a href='/'>Home</a></li>{anchors}</ul></nav>"
        f"<div class='cookie-banner'>We use cookies. Accept all cookies?</div>"
        f"<main><h1>{title}</h1>{body}</main>"
        f"<footer>Copyright ACME footer text</footer><script>var tracking = 'SCRIPT-TEXT';</script>"
        f"</body></html>"
    ).encode()


def gzip_bomb(decompressed_bytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(decompressed_bytes >> 20)]
    parts.append(compressor.flush())
    return b"".join(parts)


class LoopbackSite:
    """`site.route("/path", handler)`; handlers get the BaseHTTPRequestHandler to write to."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                site.requests.append(self.path)
                route = site.routes.get(self.path) or site.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", "9")
                    self.end_headers()
                    self.wfile.write(b"not found")
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.do_GET()

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"http://{self.netloc}{path}"

    def route(self, path: str, handler: Route) -> None:
        self.routes[path] = handler

    def page(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "text/html; charset=utf-8",
        status: int = 200,
        headers: dict | None = None,
        compress: bool = False,
        delay: float = 0.0,
    ) -> None:
        """Serve `body` at `path`, after `delay` seconds (a slow or far-away server)."""

        def handler(request: BaseHTTPRequestHandler) -> None:
            if delay:
                time.sleep(delay)
            payload = gzip.compress(body) if compress else body
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            if compress:
                request.send_header("Content-Encoding", "gzip")
            for key, value in (headers or {}).items():
                request.send_header(key, value)
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)

        self.route(path, handler)

    def redirect(self, path: str, location: str, status: int = 302, body: bytes = b"") -> None:
        def handler(request: BaseHTTPRequestHandler) -> None:
            request.send_response(status)
            request.send_header("Location", location)
            request.send_header("Content-Type", "text/html")
            if body:
                request.send_header("Content-Encoding", "gzip")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)

        self.route(path, handler)

    def trickle(self, path: str, *, interval: float = 0.5, headers_too: bool = False) -> None:
        def handler(request: BaseHTTPRequestHandler) -> None:
            if headers_too:
                for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n":
                    request.wfile.write(bytes([byte]))
                    request.wfile.flush()
                    time.sleep(interval)
            request.send_response(200)
            request.send_header("Content-Type", "text/html")
            request.send_header("Content-Length", "100000")
            request.end_headers()
            for _ in range(100_000):
                request.wfile.write(b"x")
                request.wfile.flush()
                time.sleep(interval)

        self.route(path, handler)

    def endless_chunked(self, path: str) -> None:
        def handler(request: BaseHTTPRequestHandler) -> None:
            request.send_response(200)
            request.send_header("Content-Type", "text/html")
            request.send_header("Transfer-Encoding", "chunked")
            request.end_headers()
            chunk = b"<p>" + b"a" * 65_000 + b"</p>"
            while True:
                request.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")

        self.route(path, handler)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
