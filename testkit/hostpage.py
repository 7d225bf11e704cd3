"""A customer's web site for browser tests: a tiny HTTP server on its own loopback port
(so its origin differs from the API's) serving a plain page with the embed snippet."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Acme shop</title>
<link rel="stylesheet" href="/site.css"></head>
<body><main><h1>Acme Outdoor Gear</h1>
<p>Tents, backpacks and boots for every season. Free shipping on orders over $50.</p>
<p>Questions? Our assistant answers from our help center, day and night.</p></main>
{snippet}
</body></html>"""


# Hostile host CSS: the widget lives in a Shadow DOM and must not be affected by it.
SITE_CSS = b"""
body { font-family: Georgia, serif; background: #f5f5f0; margin: 0; padding: 32px; }
* { color: #b91c1c !important; letter-spacing: 2px; }
button { display: none !important; }
main { max-width: 640px; }
iframe { border: 1px solid #ccc; width: 380px; height: 600px; }
"""


class HostSite:
    def __init__(self, snippet: str, *, csp: str | None = None):
        self.snippet = snippet
        self.csp = csp
        self.requests: list[str] = []
        self.files: dict[str, tuple[bytes, str]] = {}  # extra path -> (body, content type)
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                site.requests.append(self.path)
                path = self.path.split("?")[0]
                if path == "/site.css":
                    body, content_type = SITE_CSS, "text/css"
                elif path in site.files:
                    body, content_type = site.files[path]
                elif path == "/":
                    body, content_type = (
                        PAGE.format(snippet=site.snippet).encode(),
                        "text/html; charset=utf-8",
                    )
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                if site.csp:
                    self.send_header("Content-Security-Policy", site.csp)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HostSite:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
