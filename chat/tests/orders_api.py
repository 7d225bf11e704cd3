"""A real HTTP server on loopback standing in for a customer's "orders API" (assistant actions).

It records every request (method, path, headers, body) and answers as scripted per request
(`then(status=…, body=…, wait=…, headers=…)`), else with the order named by the path.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ORDERS = {
    "A-1001": {"id": "A-1001", "status": "shipped", "carrier": "DHL", "eta": "2026-12-09"},
    "B-2002": {"id": "B-2002", "status": "processing", "carrier": None, "eta": None},
}


class _Handler(BaseHTTPRequestHandler):
    server: OrdersAPI.Server

    def log_message(self, *args):
        pass

    def _handle(self):
        api = self.server.api
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with api.lock:
            api.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {key.lower(): value for key, value in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                }
            )
            behaviour = api.script.popleft() if api.script else {}
        if behaviour.get("wait"):
            api.release.wait(behaviour["wait"])
        status = behaviour.get("status", 200)
        if "body" in behaviour:
            payload = behaviour["body"]
        else:
            order_id = self.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            order = ORDERS.get(order_id)
            status = behaviour.get("status", 200 if order else 404)
            payload = order if order else {"error": "order not found"}
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in (behaviour.get("headers") or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815


class OrdersAPI:
    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        api: OrdersAPI

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.script: deque[dict] = deque()
        self.release = threading.Event()
        self.server = self.Server(("127.0.0.1", 0), _Handler)
        self.server.api = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def allow(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> OrdersAPI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def then(self, **behaviour) -> OrdersAPI:
        self.script.append(behaviour)
        return self
