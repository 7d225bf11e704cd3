"""Live events of a conversation, for open widget panels: new messages (operator replies,
answers, a message sent from another tab), typing and status changes.

Writers call `conversation_event_publish`, which is a Postgres `NOTIFY` on the writer's own
connection: Postgres delivers it when that transaction commits (never for a rolled-back
one), to every web process, whichever process wrote — web, Celery worker, a management
command. Postgres is in every deployment (the embedded one for `make run`, the compose
service), so the same mechanism serves with and without `REDIS_URL`, with no second code
path to keep right.

In each web process one thread (`_Hub`) holds one extra connection with `LISTEN`, and wakes
the streams of that conversation. A stream (`conversation_events`) then reads what changed
from the database — the database stays the only source of truth, so a notification lost in
a reconnect costs nothing: after reconnecting, the hub wakes every stream to re-read. Between
events a stream holds no database connection; reads are limited to `READS_AT_ONCE` at a time
per process, so a burst of events cannot exhaust Postgres connections.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, connections

from chat.models import Conversation, Message
from core import shutdown

logger = logging.getLogger(__name__)

CHANNEL = "supportai_live"
KINDS = ("message", "status", "typing", "gone")  # gone: the conversation was deleted
HEARTBEAT_SECONDS = 15.0
GONE_CHECK_SECONDS = 3.0
READS_AT_ONCE = 4
STATUS_MEMORY_SECONDS = 30.0
_RESYNC = "resync"
_STOP = "stop"

_reads = threading.BoundedSemaphore(READS_AT_ONCE)


def event_notify_sql(*, conversation_id, kind: str) -> tuple[str, list[str]]:
    """The SQL expression (and its parameters) that wakes the live streams of a conversation,
    for writers that fold the notification into the statement doing the write."""
    if kind not in KINDS:
        raise ValueError(f"unknown live event kind {kind!r}")
    return "pg_notify(%s, %s)", [CHANNEL, f"{conversation_id}:{kind}"]


def conversation_event_publish(*, conversation_id, kind: str) -> None:
    """Wake the live streams of a conversation (delivered when the current transaction
    commits; at once outside one)."""
    expression, params = event_notify_sql(conversation_id=conversation_id, kind=kind)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {expression}", params)


def conversations_gone_publish(*, conversation_ids) -> None:
    """End the live streams of conversations being deleted (a privacy erase, a DELETE): one
    `NOTIFY` each, delivered when the deleting transaction commits."""
    ids = [str(conversation_id) for conversation_id in conversation_ids]
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_notify(%s, conversation_id || ':gone') FROM unnest(%s::text[]) AS conversation_id",
            [CHANNEL, ids],
        )


@dataclass(eq=False)
class _Listener:
    """One LISTEN thread and its own two flags. A new thread never inherits a flag of the one
    before it: a `connected` left set by a thread that is gone (or going) would let the first
    stream of the next one start before LISTEN, and miss what is committed in between."""

    thread: threading.Thread
    stopping: threading.Event
    connected: threading.Event


class _Hub:
    """One LISTEN connection per process; fans notifications out to the waiting streams."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.listeners: dict[str, set[queue.SimpleQueue]] = {}
        self.current: _Listener | None = None
        # When each conversation's status last changed (monotonic), for the last
        # STATUS_MEMORY_SECONDS: a stream starts from the row its request loaded, and a
        # change committed between that read and its subscription is found here.
        self.status_changed: dict[str, float] = {}

    @property
    def thread(self) -> threading.Thread | None:
        return self.current.thread if self.current is not None else None

    def subscribe(self, conversation_id: str) -> tuple[queue.SimpleQueue, float | None, threading.Event]:
        """(the stream's inbox, when this conversation's status last changed if lately, the
        event that tells the stream to end)."""
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        with self.lock:
            changed = self.status_changed.get(conversation_id)
            self.listeners.setdefault(conversation_id, set()).add(inbox)
            listener = self.current
            # A thread told to stop is leaving (it checks between waits): this stream needs
            # one that will still be listening.
            if listener is None or listener.stopping.is_set() or not listener.thread.is_alive():
                stopping, connected = threading.Event(), threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(stopping, connected), name="live-events", daemon=True
                )
                listener = self.current = _Listener(thread=thread, stopping=stopping, connected=connected)
                thread.start()
        # The first stream of a listener waits (briefly) for its LISTEN, so nothing committed
        # after the stream's first read can be missed; if it takes longer, the listener's
        # resync once it listens covers the gap.
        listener.connected.wait(5)
        return inbox, changed, listener.stopping

    def unsubscribe(self, conversation_id: str, inbox: queue.SimpleQueue) -> None:
        with self.lock:
            waiting = self.listeners.get(conversation_id)
            if waiting is not None:
                waiting.discard(inbox)
                if not waiting:
                    del self.listeners[conversation_id]

    def open_streams(self) -> int:
        with self.lock:
            return sum(len(inboxes) for inboxes in self.listeners.values())

    def stop(self) -> None:
        with self.lock:
            listener = self.current
        if listener is not None:
            listener.stopping.set()
        self._broadcast(_STOP)

    def _broadcast(self, kind: str) -> None:
        with self.lock:
            inboxes = [inbox for waiting in self.listeners.values() for inbox in waiting]
        for inbox in inboxes:
            inbox.put(kind)

    def _deliver(self, payload: str) -> None:
        conversation_id, _, kind = payload.partition(":")
        with self.lock:
            if kind == "status":
                now = time.monotonic()
                self.status_changed[conversation_id] = now
                if len(self.status_changed) > 1000:
                    self.status_changed = {
                        key: at for key, at in self.status_changed.items() if now - at < STATUS_MEMORY_SECONDS
                    }
            inboxes = list(self.listeners.get(conversation_id, ()))
        for inbox in inboxes:
            inbox.put(kind)

    def _run(self, stopping: threading.Event, connected: threading.Event) -> None:
        backoff = 0.5
        try:
            while not stopping.is_set():
                wrapper = connections.create_connection("default")
                try:
                    wrapper.ensure_connection()
                    raw = wrapper.connection
                    raw.autocommit = True
                    raw.execute(f"LISTEN {CHANNEL}")
                    connected.set()
                    self._broadcast(_RESYNC)  # anything sent while we were not listening
                    backoff = 0.5
                    while not stopping.is_set():
                        for notify in raw.notifies(timeout=1.0):
                            self._deliver(notify.payload)
                except Exception:
                    logger.warning("live events: the LISTEN connection failed; reconnecting", exc_info=True)
                    connected.clear()
                    stopping.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
                finally:
                    try:
                        wrapper.close()
                    except Exception:  # noqa: S110  (already broken; nothing left to release)
                        pass
        finally:
            connected.clear()


_hub = _Hub()
shutdown.on_stop(_hub.stop)


# Open streams per holder (a widget visitor, a client address) in this process: `stream_admit`.
_held_streams: dict[str, int] = {}
_held_streams_lock = threading.Lock()


def stream_admit(*, holders: list[tuple[str, int]]) -> Callable[[], None] | int:
    """Count one more open stream of each `(holder, limit)` in this web process, unless one of
    them holds its `limit` already (then nothing is counted and its index is returned): a
    stream holds a stream thread for minutes, and a visitor's token asking for one twice a
    second (its request budget allows it), or the sixty tokens an address may mint in an hour,
    would otherwise take every stream thread of every process and leave every organization's
    visitors without live updates. Returns the release, which may be called more than once."""
    with _held_streams_lock:
        for index, (holder, limit) in enumerate(holders):
            if _held_streams.get(holder, 0) >= limit:
                return index
        for holder, _limit in holders:
            _held_streams[holder] = _held_streams.get(holder, 0) + 1
    released = False

    def release() -> None:
        nonlocal released
        with _held_streams_lock:
            if released:
                return
            released = True
            for holder, _limit in holders:
                remaining = _held_streams.get(holder, 1) - 1
                if remaining > 0:
                    _held_streams[holder] = remaining
                else:
                    _held_streams.pop(holder, None)

    return release


def streams_stop(*, wait: float = 0.0) -> None:
    """End every open stream of this process (the web worker is stopping or restarting),
    and the LISTEN connection; `wait` seconds at most for that connection to close."""
    thread = _hub.thread
    _hub.stop()
    if wait and thread is not None:
        thread.join(wait)


def open_streams() -> int:
    return _hub.open_streams()


def listening() -> bool:
    thread = _hub.thread
    return thread is not None and thread.is_alive()


@dataclass(frozen=True)
class LiveEvent:
    kind: str  # "message", "status", "typing" or "ping"
    message: Message | None = None
    status: str = ""


def _connection_release() -> None:
    # Hold no database connection while waiting (not inside a transaction: a test's).
    if not connection.in_atomic_block:
        connection.close()


def _read_messages(conversation: Conversation, after) -> list[Message]:
    from chat import selectors

    with _reads:
        try:
            # One indexed query, the Last-Event-ID's position looked up inside it (an unknown
            # id sends the whole transcript): a reconnect every LIVE_STREAM_SECONDS per open
            # panel is the widget's only periodic call.
            return list(selectors.message_list_since(conversation=conversation, after=after))
        finally:
            _connection_release()


def _read_status(conversation: Conversation) -> str:
    with _reads:
        try:
            return (
                Conversation.objects.for_organization(conversation.organization_id)
                .filter(pk=conversation.pk)
                .values_list("handoff_status", flat=True)
                .first()
                or ""
            )
        finally:
            _connection_release()


def _never_gone() -> bool:
    return False


def _credential_still_valid(credential_valid: Callable[[], bool]) -> bool:
    with _reads:
        try:
            return credential_valid()
        finally:
            _connection_release()


def conversation_events(
    *,
    conversation: Conversation,
    after=None,
    client_gone: Callable[[], bool] = _never_gone,
    credential_valid: Callable[[], bool] | None = None,
) -> Iterator[LiveEvent]:
    """The live events of one conversation, for `LIVE_STREAM_SECONDS`: first its status and
    the messages after `after` (a message id, the client's Last-Event-ID), then each change as
    it is committed, and a `ping` every `HEARTBEAT_SECONDS` while nothing happens.

    Ends early when the web process stops, when `client_gone()` says the client left
    (checked every few seconds, so its thread is free long before a heartbeat write would
    notice), or when `credential_valid()` (asked every `LIVE_CREDENTIAL_CHECK_SECONDS`) says
    the credential that opened it was revoked, switched off, ran out or was issued to a
    visitor since erased: a stream never outlives its credential by more than that. It ends
    at once when the conversation is deleted (a privacy erase, a DELETE: `gone`). The client
    reconnects with Last-Event-ID (and a revoked credential then gets its 401).
    """
    conversation_id = str(conversation.pk)
    inbox, status_changed, stopping = _hub.subscribe(conversation_id)
    try:
        deadline = time.monotonic() + settings.LIVE_STREAM_SECONDS
        check_every = settings.LIVE_CREDENTIAL_CHECK_SECONDS
        next_check = time.monotonic() + check_every
        # The first status is the row the request just loaded (for its 404 and visitor
        # checks), not read again; unless the status changed lately, maybe between that read
        # and the subscription above (whose notification this stream would not get).
        if status_changed is not None and time.monotonic() - status_changed < STATUS_MEMORY_SECONDS:
            status = _read_status(conversation)
        else:
            status = conversation.handoff_status or ""
        yield LiveEvent("status", status=status)
        for message in _read_messages(conversation, after):
            after = message.pk
            yield LiveEvent("message", message=message)
        next_ping = time.monotonic() + HEARTBEAT_SECONDS
        while not stopping.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            if credential_valid is not None and now >= next_check:
                if not _credential_still_valid(credential_valid):
                    return
                next_check = time.monotonic() + check_every
            try:
                kinds = {
                    inbox.get(timeout=max(0.01, min(GONE_CHECK_SECONDS, next_ping - now, deadline - now)))
                }
            except queue.Empty:
                if client_gone():
                    return
                if time.monotonic() >= next_ping:
                    next_ping = time.monotonic() + HEARTBEAT_SECONDS
                    yield LiveEvent("ping")
                continue
            while True:  # take everything already queued: one read serves a burst
                try:
                    kinds.add(inbox.get_nowait())
                except queue.Empty:
                    break
            if _STOP in kinds or "gone" in kinds:
                return
            if kinds & {"status", _RESYNC}:
                current = _read_status(conversation)
                if current != status:
                    status = current
                    yield LiveEvent("status", status=status)
            if kinds & {"message", _RESYNC}:
                for message in _read_messages(conversation, after):
                    after = message.pk
                    yield LiveEvent("message", message=message)
            if "typing" in kinds:
                yield LiveEvent("typing")
    finally:
        _hub.unsubscribe(conversation_id, inbox)
