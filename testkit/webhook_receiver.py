"""A webhook receiver on loopback for tests and benchmarks: records every delivery (headers,
raw body, arrival time) and answers as told — 2xx, an error status, a hang, or a connection
closed without an answer."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() on arrival

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def delivery_id(self) -> str:
        return self.headers.get("X-SupportAI-Delivery", "")


class WebhookReceiver:
    """`receiver.url(path)`; `receiver.plan = ["500", "close", "hang", "ok"]` answers the next
    requests in that order (then `receiver.default`). A status like "503" answers it."""

    def __init__(self, *, hang_seconds: float = 30.0) -> None:
        self.received: list[Received] = []
        self.plan: list[str] = []
        self.default = "ok"
        self.hang_seconds = hang_seconds
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self._stop = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    mode = receiver.plan.pop(0) if receiver.plan else receiver.default
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), body, time.time())
                    )
                    receiver.arrived.notify_all()
                try:
                    if mode == "hang":
                        receiver._stop.wait(receiver.hang_seconds)
                        self.close_connection = True
                        return
                    if mode == "close":
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    status = 200 if mode == "ok" else int(mode)
                    payload = b'{"ok":true}' if status < 300 else b"receiver says no"
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json" if status < 300 else "text/plain")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str = "/hooks") -> str:
        return f"http://{self.netloc}{path}"

    def wait_for(self, count: int, *, timeout: float = 60.0) -> list[Received]:
        """Block until at least `count` requests arrived (AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(self.received)} of {count} webhook deliveries arrived")
                self.arrived.wait(remaining)
            return list(self.received)

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
