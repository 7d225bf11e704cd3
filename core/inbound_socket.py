"""The one place outside the web server that touches a client's own (inbound) socket.

Outbound connections go through `core.fetcher` only; this module never opens one. It
lets a long-lived response (a live event stream) notice that its client has gone, so the
thread that serves it is freed within seconds instead of at the stream's end.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable


def client_gone_check(request) -> Callable[[], bool]:
    """A check of whether the client closed the connection of this request: its socket
    (gunicorn gives it in the environ) reads as end-of-file. Without a socket (the test
    client), never."""
    sock = request.META.get("gunicorn.socket")

    def gone() -> bool:
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    return gone
