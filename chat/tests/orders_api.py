"""A real HTTP server on loopback standing in for a customer's "orders API" (assistant actions).

It records every request (method, path, headers, body) and answers as scripted per request
(`then(status=…, body=…, wait=…, headers=…)`), else with the order named by the path.
"""

from __future__ import annotations

import json

from testkit.loopback import LoopbackHandler, ScriptedServer

ORDERS = {
    "A-1001": {"id": "A-1001", "status": "shipped", "carrier": "DHL", "eta": "2026-12-09"},
    "B-2002": {"id": "B-2002", "status": "processing", "carrier": None, "eta": None},
}


class _Handler(LoopbackHandler):
    def _handle(self):
        api = self.owner
        body = self.body_read()
        with api.lock:
            api.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {key.lower(): value for key, value in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                }
            )
        behaviour = api.next_behaviour()
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
            self.payload_send(status, raw, headers=behaviour.get("headers"))
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815


class OrdersAPI(ScriptedServer):
    handler_class = _Handler

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def allow(self) -> str:
        return f"127.0.0.1:{self.port}"
