"""The web tier's gunicorn worker: gthread, with the request head read off the threads.

gunicorn's gthread worker hands a connection to a thread as soon as its first bytes arrive,
and that thread then blocks until the request head is complete, however slowly it comes.
Sixteen clients sending one header line every few seconds therefore held every thread of
`make run` (2 workers × 8 threads) and nothing else was answered (issue 13, Slowloris).

This worker keeps the request head — and a body up to `BODY_BUFFER_BYTES` — in the worker's
event loop (the selector gthread already runs for kept-alive connections) until it is
complete, and only then gives the connection to a thread, with the bytes already read
pushed back into gunicorn's own parser. A connection costs a buffer, not a thread, until it
has a whole request; one whose head is not complete within `HEAD_TIMEOUT` seconds (or whose
small body does not arrive within `BODY_TIMEOUT`) is closed. Socket reads and writes on a
thread time out after `SOCKET_TIMEOUT` seconds, so a client that stops reading its answer
holds a thread for a bounded time; a body too large to buffer (an upload) is read on the
thread at `MIN_BODY_BYTES_PER_SECOND` on average at least, and such requests may hold at most
half of the request threads (the others wait outside the threads).

Long-lived event streams (`GET …/events`, see `chat/live.py`; they end when the worker
stops, through `core.shutdown`) run on their own pool of
`WEB_STREAM_THREADS` threads, so hundreds of open widget panels never take a thread from
ordinary requests. A stream thread sleeps on a queue between events; it costs its stack
(mostly untouched virtual memory) and no database connection while it waits.

Everything else — parsing, WSGI, keep-alive, graceful restarts, `max_requests` — is
gunicorn 27's gthread code unchanged. TLS is terminated in front of the web tier (as the
deployment docs say), so this worker speaks plain HTTP/1.1; with `certfile` set it falls back
to gthread's own behaviour.
"""

from __future__ import annotations

import errno
import json
import os
import re
import selectors
import socket
import time
from concurrent import futures
from functools import partial

from gunicorn import http, util
from gunicorn.workers.gthread import TConn, ThreadWorker

from core import shutdown
from core.api.envelope import error_body

HEAD_TIMEOUT = 15.0  # WEB_REQUEST_HEAD_TIMEOUT overrides it
BODY_TIMEOUT = 30.0
SOCKET_TIMEOUT = 30.0
HEAD_MAX_BYTES = 64 * 1024
BODY_BUFFER_BYTES = 1024 * 1024
STOP_LINGER = 2.0
# A body too large to buffer (an upload) is read on a thread, at this average rate at least
# (a client trickling it is cut off), and such requests may hold at most half of a worker's
# request threads: the others wait, outside the threads, for PARKED_TIMEOUT at most (503).
MIN_BODY_BYTES_PER_SECOND = 32 * 1024
PARKED_TIMEOUT = 30.0
# The path of a conversation's live events (chat/live.py), held open for minutes: matched
# against the path the application will route, not the raw request target (`is_stream`).
STREAM_PATH = re.compile(r"^/api/v1/(sessions|conversations)/[0-9a-fA-F-]{36}/events/?$")

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d+)[ \t]*(?=\r\n)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.IGNORECASE)


def error_answer(status: int, reason: str, detail: str, headers: bytes = b"") -> bytes:
    """A whole HTTP answer in SPEC's error shape, for refusals made before the application
    runs (this worker's own, and gunicorn's parse errors): never an HTML page or an empty body."""
    body = json.dumps(error_body(status, detail), separators=(",", ":")).encode() + b"\n"
    return (
        b"HTTP/1.1 %d %s\r\nConnection: close\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        % (status, reason.encode("latin-1"), headers, len(body))
    ) + body


_HEAD_TOO_LARGE = error_answer(
    431,
    "Request Header Fields Too Large",
    "Request header fields too large - the request head is over 64 KiB.",
)
_TIMEOUT_ANSWER = error_answer(
    408, "Request Timeout", "Request timeout - the request did not arrive in time."
)
_BUSY = error_answer(
    503,
    "Service Unavailable",
    "Service temporarily unavailable - too many uploads in progress, retry shortly.",
    b"Retry-After: 10\r\n",
)
# Every stream thread is taken: the client retries later (widget.js honours Retry-After)
# instead of waiting minutes for a thread.
_STREAMS_FULL = error_answer(
    503, "Service Unavailable", "Too many open live streams.", b"Retry-After: 30\r\n"
)
# What gunicorn's own refusals (a request it cannot parse) say, by status; gunicorn writes a
# small HTML page instead, which `BufferedThreadWorker.handle_error` replaces.
_GUNICORN_ERROR_DETAILS = {
    400: "Malformed HTTP request.",
    403: "Forbidden.",
    414: "URI too long - the request line is over the web server's limit.",
    417: "Expectation failed.",
    431: "Request header fields too large - over the web server's limit.",
    500: "Internal server error.",
    501: "Not implemented - unsupported transfer coding.",
}


class _ErrorCapture:
    """Stands in for the client socket while gunicorn's `handle_error` writes its answer."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data


def _whole_number(name: str, default: int) -> int:
    given = os.environ.get(name, "").strip() or str(default)
    if not given.isdigit() or int(given) < 1:
        raise ValueError(f"{name} must be a whole number, 1 or more, got {given!r}.")
    return int(given)


def stream_threads() -> int:
    return _whole_number("WEB_STREAM_THREADS", 256)


class _DeadlineSocket(socket.socket):
    """A client socket whose "blocking" mode still times out.

    gthread puts the socket in blocking mode before a thread reads or writes it; here that
    means blocking with a `SOCKET_TIMEOUT` deadline per read or write, and, while a large body
    is read, reads that stop at `body_deadline` (the body's minimum average rate).
    """

    body_deadline = 0.0

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(SOCKET_TIMEOUT)
        else:
            super().setblocking(False)

    def recv(self, size: int, flags: int = 0) -> bytes:
        if self.body_deadline and self.gettimeout() is not None:
            left = self.body_deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request body came too slowly")
            self.settimeout(min(SOCKET_TIMEOUT, left))
        return super().recv(size, flags)


class _Head:
    """The bytes of one request read so far, and when they must be complete."""

    __slots__ = ("buffer", "conn", "deadline", "large", "needed")

    def __init__(self, conn: TConn, deadline: float) -> None:
        self.conn = conn
        self.buffer = bytearray()
        self.deadline = deadline
        self.needed: int | None = None  # total bytes (head + body) once the head is known
        self.large: float | None = None  # seconds allowed for a body read on the thread

    def complete(self) -> bool | None:
        """True when a whole request (or at least its head) is buffered; None if malformed."""
        if self.needed is None:
            start = 0
            while self.buffer.startswith(b"\r\n", start):  # blank lines before a request
                start += 2
            end = self.buffer.find(b"\r\n\r\n", start)
            if end < 0:
                return False
            head = bytes(self.buffer[start : end + 2])
            length = _CONTENT_LENGTH.search(head)
            body = int(length.group(1)) if length else 0
            if _CHUNKED.search(head) or body > BODY_BUFFER_BYTES:
                # Read on the thread, at the minimum rate (a chunked body: 4 × BODY_TIMEOUT).
                self.large = body / MIN_BODY_BYTES_PER_SECOND if body else 4 * BODY_TIMEOUT
                body = 0
            self.needed = end + 4 + body
            if body:
                self.deadline = time.monotonic() + BODY_TIMEOUT
        return len(self.buffer) >= self.needed

    def is_stream(self) -> bool:
        start = 0
        while self.buffer.startswith(b"\r\n", start):
            start += 2
        line_end = self.buffer.find(b"\r\n", start)
        parts = bytes(self.buffer[start:line_end]).split(b" ")
        # Django answers HEAD with the GET view, so a HEAD streams too.
        if len(parts) != 3 or parts[0] not in (b"GET", b"HEAD"):
            return False
        # The path as gunicorn hands it to the application (the absolute form's authority, a
        # fragment and the query left out, percent-escapes decoded): `…/%65vents`,
        # `GET http://host/…/events` or `…/events#x` reach the same view, and matched on the
        # raw bytes they ran a minutes-long stream on an ordinary request thread (eight of them
        # took every thread of a worker).
        try:
            path = util.unquote_to_wsgi_str(util.split_request_uri(parts[1].decode("latin-1")).path)
        except ValueError:
            return False
        return bool(STREAM_PATH.match(path))


class BufferedThreadWorker(ThreadWorker):
    """gthread, reading each request head (and small body) in the event loop first."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.heads: dict[int, _Head] = {}
        self.stream_pool: futures.ThreadPoolExecutor | None = None
        self.streams_open = 0
        self.large_in_flight = 0
        self.parked: list[_Head] = []

    def init_process(self) -> None:
        self.head_timeout = float(_whole_number("WEB_REQUEST_HEAD_TIMEOUT", int(HEAD_TIMEOUT)))
        self.streams_max = stream_threads()
        self.large_max = max(1, self.cfg.threads // 2)
        self.stream_pool = futures.ThreadPoolExecutor(
            max_workers=self.streams_max, thread_name_prefix="event-stream"
        )
        super().init_process()

    def handle_exit(self, sig, frame) -> None:
        # Open event streams end at once (clients resume with Last-Event-ID elsewhere), so a
        # restart is not held up by them for the whole graceful timeout.
        shutdown.stop_begin()
        super().handle_exit(sig, frame)

    # --- connections waiting for a whole request -------------------------------------------

    def accept(self, listener) -> None:
        if self.cfg.is_ssl:
            return super().accept(listener)
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        client = _DeadlineSocket(client.family, client.type, client.proto, fileno=client.detach())
        self.nr_conns += 1
        conn = TConn(self.cfg, client, address, listener.getsockname())  # non-blocking
        self._await_request(conn)

    def on_client_socket_readable(self, conn, client) -> None:
        if self.cfg.is_ssl:
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        conn.sock.setblocking(False)
        self._await_request(conn)

    def _await_request(self, conn: TConn, buffered: bytes = b"") -> None:
        head = _Head(conn, time.monotonic() + self.head_timeout)
        head.buffer += buffered
        if buffered and self._head_ready(head):
            return
        self.heads[conn.sock.fileno()] = head
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, head))

    def _on_head_readable(self, head: _Head, client) -> None:
        try:
            data = head.conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client went away before sending a whole request
            self._head_drop(head)
            return
        head.buffer += data
        if self._head_ready(head):
            self._head_forget(head)

    def _head_ready(self, head: _Head) -> bool:
        """Dispatch the request if it is complete; True when the connection left our care."""
        complete = head.complete()
        if not complete:
            if head.needed is None and len(head.buffer) > HEAD_MAX_BYTES:
                self._head_answer_and_drop(head, _HEAD_TOO_LARGE)
                return True
            return False
        stream = head.is_stream()
        if stream and self.streams_open >= self.streams_max:
            self._head_answer_and_drop(head, _STREAMS_FULL)
            return True
        if head.large is not None and self.large_in_flight >= self.large_max:
            # Its body waits in the kernel, not on a thread, until a large request finishes.
            self._head_forget(head)
            head.deadline = time.monotonic() + PARKED_TIMEOUT
            self.parked.append(head)
            return True
        self._dispatch(head, stream)
        return True

    def _dispatch(self, head: _Head, stream: bool) -> None:
        conn = head.conn
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(head.buffer))
        conn.initialized = True
        conn.data_ready = True
        conn.stream = stream
        if stream:
            self.streams_open += 1
        conn.large = head.large is not None
        if conn.large:
            self.large_in_flight += 1
            conn.sock.body_deadline = time.monotonic() + max(SOCKET_TIMEOUT, head.large)
        future = (self.stream_pool if stream else self.tpool).submit(self.handle, conn)
        future.add_done_callback(lambda done: self.method_queue.defer(self.finish_request, conn, done))

    def _parked_dispatch(self) -> None:
        while self.parked and self.large_in_flight < self.large_max:
            self._dispatch(self.parked.pop(0), False)

    def _head_forget(self, head: _Head) -> None:
        self.heads.pop(head.conn.sock.fileno(), None)
        try:
            self.poller.unregister(head.conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _head_drop(self, head: _Head) -> None:
        self._head_forget(head)
        self.nr_conns -= 1
        head.conn.close()

    def _head_answer_and_drop(self, head: _Head, answer: bytes) -> None:
        try:
            head.conn.sock.send(answer)
        except OSError:
            pass
        self._head_drop(head)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for head in [head for head in self.parked if head.deadline <= now]:
            self.parked.remove(head)
            self.nr_conns -= 1
            try:
                head.conn.sock.send(_BUSY)
            except OSError:
                pass
            head.conn.close()
        for head in list(self.heads.values()):
            if head.deadline <= now:
                # Too little came in time: a started request is answered 408, then closed.
                if head.buffer.strip():
                    self._head_answer_and_drop(head, _TIMEOUT_ANSWER)
                else:
                    self._head_drop(head)
            elif not self.alive:
                # Stopping: a connection accepted just before may still be sending its request
                # (answered with "Connection: close"); one that sends nothing is closed soon.
                head.deadline = min(head.deadline, now + STOP_LINGER)

    def handle_error(self, req, client, addr, exc) -> None:
        """gunicorn's own error handling (its status, logging and access log), answered in
        SPEC's error shape instead of gunicorn's HTML page (e.g. 414 for an over-long URL)."""
        capture = _ErrorCapture()
        super().handle_error(req, capture, addr, exc)
        status_line = capture.data.split(b"\r\n", 1)[0].split(b" ", 2)
        try:
            status, reason = int(status_line[1]), status_line[2].decode("latin-1")
        except (IndexError, ValueError):
            status, reason = 500, "Internal Server Error"
        answer = error_answer(status, reason, _GUNICORN_ERROR_DETAILS.get(status, reason + "."))
        try:
            util.write_nonblock(client, answer)
        except Exception:  # noqa: BLE001 (as gunicorn: the client may be gone)
            self.log.debug("Failed to send error message.")

    # --- after a request -------------------------------------------------------------------

    def finish_request(self, conn, fs) -> None:
        if getattr(conn, "stream", False):
            conn.stream = False
            self.streams_open -= 1
        if getattr(conn, "large", False):
            conn.large = False
            conn.sock.body_deadline = 0.0
            self.large_in_flight -= 1
            self._parked_dispatch()
        if self.cfg.is_ssl:
            return super().finish_request(conn, fs)
        try:
            keepalive = fs.result() if not fs.cancelled() else False
        except Exception:
            keepalive = False
        if keepalive and self.alive and conn.parser is not None:
            # A pipelined next request may already be in the parser's buffer: read the rest
            # of it in the loop, like any other.
            pending = conn.parser.unreader.take_buffered()
            if pending:
                conn.sock.setblocking(False)
                self._await_request(conn, pending)
                return
        super().finish_request(conn, fs)

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self.stream_pool is not None:
                self.stream_pool.shutdown(wait=False, cancel_futures=True)
