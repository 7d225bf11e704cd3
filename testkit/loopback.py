"""What every scripted loopback HTTP server of the tests shares (the LLM provider stand-in
`testkit.llm_server`, the customer's orders API `chat.tests.orders_api`): a real
`ThreadingHTTPServer` on 127.0.0.1 (a free port) serving from a daemon thread, a script of
per-request behaviours (`then(...)`), the requests received, and a `release` event that ends
any scripted wait at once (`stop()` sets it, so no handler outlives its test).
"""

from __future__ import annotations

import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackHandler(BaseHTTPRequestHandler):
    """A quiet handler that knows its `ScriptedServer` (`self.owner`)."""

    server: _Server

    def log_message(self, *args):  # keep test output quiet
        pass

    @property
    def owner(self) -> ScriptedServer:
        return self.server.owner

    def body_read(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def payload_send(
        self,
        status: int,
        payload: bytes,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ScriptedServer


class ScriptedServer:
    """Subclasses set `handler_class`; `then(**behaviour)` queues what the next request does."""

    handler_class: type[LoopbackHandler] = LoopbackHandler

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list = []
        self.script: deque[dict] = deque()
        self.release = threading.Event()
        self.default_behaviour: dict = {}  # what a request does once the script is empty
        self.server = _Server(("127.0.0.1", 0), self.handler_class)
        self.server.owner = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def then(self, **behaviour):
        """Queue the behaviour of the next request (the default one once the queue is empty)."""
        self.script.append(behaviour)
        return self

    def next_behaviour(self) -> dict:
        with self.lock:
            return self.script.popleft() if self.script else dict(self.default_behaviour)
