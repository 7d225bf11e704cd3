"""Issue 13 item 1 (Slowloris), against gunicorn exactly as `make run` starts it: slow and
idle connections do not delay anyone else, a request head that never completes is closed,
and requests that arrive in pieces, pipelined, or with a large body are still served."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest

from testkit.fixtures import tenant_create
from testkit.slow_clients import SlowClients, latency_probe

# Latency bounds: no other test process may compete for the CPU (see pyproject, `alone`).
pytestmark = [pytest.mark.chaos, pytest.mark.alone, pytest.mark.django_db(transaction=True)]


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def test_slow_and_idle_clients_do_not_delay_other_requests(procs, live_env):
    """The reported attack (40 sockets, one header line every 5 s) timed every request out;
    here 300 slow and 300 idle connections, with header lines every 2 s."""
    tenant = tenant_create("Slow Clients", rate_limit_per_hour=1_000_000)
    _web, url = procs.gunicorn(env=live_env)
    headers = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
    host, port = _address(url)
    latency_probe(url + "/api/v1/organization", seconds=1, headers=headers)  # connections warm
    with SlowClients(host, port, slow=300, idle=300, interval=2) as attack:
        assert attack.open_now == 600
        time.sleep(2.5)  # every slow client has sent more header lines by now
        health = latency_probe(url + "/healthz", seconds=4, timeout=3)
        api = latency_probe(url + "/api/v1/organization", seconds=4, timeout=3, headers=headers)
        assert attack.open_now >= 590  # they are still connected: held cheaply, not refused
    # On stock gthread every one of these timed out (3 s). The bounds leave room for a
    # loaded 2-core CI host; the latency figures themselves are bench/slowloris.py's.
    assert health["failed"] == 0 and health["requests"] >= 4, health
    assert api["failed"] == 0 and api["requests"] >= 4, api
    assert health["p95_ms"] < 2500 and api["p95_ms"] < 2500, (health, api)


def _exchange(host: str, port: int, pieces: list[bytes], pause: float = 0.0, wait: float = 10.0) -> bytes:
    with socket.create_connection((host, port), timeout=wait) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(pause)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_requests_in_pieces_pipelined_or_large_are_served_and_a_stalled_head_is_closed(procs, live_env):
    _web, url = procs.gunicorn(env=dict(live_env, WEB_REQUEST_HEAD_TIMEOUT="2"))
    host, port = _address(url)
    get = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    # A head and a small body trickled in over a second: answered once complete.
    body = b'{"client_id": "nope"}'
    post = (
        b"POST /api/v1/auth/widget-token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    pieces = [post[:10], post[10:60], post[60:-5], post[-5:]]
    answer = _exchange(host, port, pieces, pause=0.25)
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]  # the app's own answer (unknown client)
    assert b'"status":"error"' in answer.replace(b" ", b"")

    # Three pipelined requests on one kept-alive connection: three answers, in order.
    answer = _exchange(host, port, [get + get + get.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")])
    assert answer.count(b"HTTP/1.1 200") == 3, answer[:500]

    # A body larger than what the loop buffers (1 MiB) is read on the thread: answered.
    large = b"x" * (1024 * 1024 + 10)
    big = (
        b"POST /api/v1/auth/widget-token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(large)).encode() + b"\r\n\r\n" + large
    )
    answer = _exchange(host, port, [big])
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]

    # A head over 64 KiB is refused; a head that stops coming is answered 408 and closed.
    huge = b"GET /healthz HTTP/1.1\r\n" + b"X-Filler: " + b"a" * 70000
    refused = _exchange(host, port, [huge])
    assert refused.startswith(b"HTTP/1.1 431") and b'"status_code":431' in refused, refused[:300]
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer = sock.recv(1024)
        assert sock.recv(1024) == b""  # closed
    assert answer.startswith(b"HTTP/1.1 408") and b'"status":"error"' in answer, answer
    assert 1.5 < time.monotonic() - started < 6


def test_stalled_large_uploads_hold_at_most_half_the_request_threads(procs, live_env):
    """A body too large to buffer (over 1 MiB) is read on a thread; ten clients that start
    such an upload and stall would otherwise hold all 8 threads of a worker. At most half of
    them are read at once; the rest wait outside the threads, and other requests pass."""
    _web, url = procs.gunicorn(env=live_env, workers=1)
    host, port = _address(url)
    head = (
        b"POST /api/v1/auth/widget-token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b'Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{"client_id": "'
    )
    stalled = [socket.create_connection((host, port), timeout=10) for _ in range(10)]
    try:
        for sock in stalled:
            sock.sendall(head)
        time.sleep(1.5)
        health = latency_probe(url + "/healthz", seconds=4, timeout=3)
        assert health["failed"] == 0 and health["requests"] >= 10, health
        assert health["p95_ms"] < 1000, health
    finally:
        for sock in stalled:
            sock.close()
