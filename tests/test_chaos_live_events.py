"""Live event streams through the real web tier (gunicorn as `make run` starts it): a reply
committed elsewhere reaches an open stream; a restarted web worker ends its streams at once
and the client resumes with Last-Event-ID without missing anything; when every stream thread
is taken a new stream is refused at once with 503 + Retry-After while ordinary requests are
still served."""

from __future__ import annotations

import json
import socket
import time

import psutil
import pytest
import requests

from chat import services
from testkit.fixtures import tenant_create

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


class Stream:
    """An open SSE response read event by event."""

    def __init__(self, url: str, headers: dict, last_event_id: str | None = None) -> None:
        extra = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self.response = requests.get(
            url, headers={**headers, **extra, "Accept": "text/event-stream"}, stream=True, timeout=10
        )
        self.lines = self.response.iter_lines(decode_unicode=True)

    def next_event(self) -> tuple[str, str | None, dict] | None:
        """The next event, or None when the server ended the stream."""
        fields: dict[str, str] = {}
        for line in self.lines:
            if not line:
                if "event" in fields:
                    return fields["event"], fields.get("id"), json.loads(fields["data"])
                fields = {}
                continue
            if not line.startswith(":") and ": " in line:
                key, value = line.split(": ", 1)
                fields[key] = value
        return None

    def close(self) -> None:
        self.response.close()


@pytest.fixture
def stack(procs, live_env):
    tenant = tenant_create("Live Shop", rate_limit_per_hour=1_000_000)
    from assistants.models import Assistant

    assistant = Assistant.objects.create(organization=tenant.organization, name="Helper")
    session = services.session_create(organization=tenant.organization, assistant=assistant, visitor_id="v1")
    headers = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
    return tenant, session, headers


def test_a_restarted_worker_ends_its_streams_and_the_client_resumes_without_gaps(procs, live_env, stack):
    tenant, session, headers = stack
    web, url = procs.gunicorn(env=live_env, workers=1)
    events_url = f"{url}/api/v1/sessions/{session.pk}/events"
    stream = Stream(events_url, headers)
    assert stream.response.status_code == 200
    assert stream.next_event() == ("status", None, {"handoff_status": "bot"})

    sent = time.monotonic()
    first = services.operator_reply_post(conversation=session, user=tenant.owner, content="One")
    event = stream.next_event()
    while event and event[0] != "message":
        event = stream.next_event()
    assert event[1] == str(first.pk) and time.monotonic() - sent < 2

    # The worker restarts (a deploy, a recycled worker): its stream ends within seconds.
    [worker] = psutil.Process(web.pid).children()
    worker.terminate()
    stopped = time.monotonic()
    while stream.next_event() is not None:
        pass
    assert time.monotonic() - stopped < 5
    stream.close()
    # Meanwhile the operator writes again; the client comes back with its Last-Event-ID.
    second = services.operator_reply_post(conversation=session, user=tenant.owner, content="Two")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
    resumed = Stream(events_url, headers, last_event_id=str(first.pk))
    assert resumed.next_event()[0] == "status"
    kind, event_id, data = resumed.next_event()
    assert (kind, event_id, data["content"]) == ("message", str(second.pk), "Two")
    resumed.close()


def test_when_every_stream_thread_is_taken_a_new_stream_gets_503_and_requests_still_pass(
    procs, live_env, stack
):
    _tenant, session, headers = stack
    _web, url = procs.gunicorn(env=dict(live_env, WEB_STREAM_THREADS="2"), workers=1)
    events_url = f"{url}/api/v1/sessions/{session.pk}/events"
    held = [Stream(events_url, headers) for _ in range(2)]
    for stream in held:
        assert stream.next_event()[0] == "status"
    refused = requests.get(events_url, headers=headers, timeout=5)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
    assert refused.json()["status"] == "error"
    for _ in range(5):
        answer = requests.get(f"{url}/api/v1/organization", headers=headers, timeout=5)
        assert answer.status_code == 200
    held[0].close()
    deadline = time.monotonic() + 10  # the server notices the closed stream within seconds
    while time.monotonic() < deadline:
        again = Stream(events_url, headers)
        if again.response.status_code == 200:
            break
        again.close()
        time.sleep(1)
    assert again.response.status_code == 200
    again.close()
    held[1].close()


def test_a_stream_asked_for_in_another_spelling_still_takes_a_stream_thread(procs, live_env, stack):
    """The worker told streams from ordinary requests by the raw request line, while Django
    routes the decoded path: `…/%65vents`, `GET http://host/…/events`, `…/events#x` and a HEAD
    (answered by the GET view) each ran a minutes-long stream on an ordinary request thread,
    and eight of them left a worker unable to answer anyone. Now each takes a stream thread."""
    _tenant, session, headers = stack
    _web, url = procs.gunicorn(env=live_env, workers=1)  # 8 request threads
    host, port = url.removeprefix("http://").split(":")
    path = f"/api/v1/sessions/{session.pk}/events"
    credentials = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    spellings = [
        f"GET /api/v1/sessions/{session.pk}/%65vents",
        f"GET {url}{path}",
        f"GET {path}#x",
        f"HEAD {path}",
    ]
    held = []
    try:
        for spelling in spellings:
            for _ in range(8):
                sock = socket.create_connection((host, int(port)), timeout=10)
                sock.sendall(f"{spelling} HTTP/1.1\r\nHost: {host}:{port}\r\n{credentials}\r\n".encode())
                held.append(sock)
                head = sock.recv(4096)
                assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head, (spelling, head)
        for _ in range(3):
            answer = requests.get(f"{url}/api/v1/organization", headers=headers, timeout=5)
            assert answer.status_code == 200
    finally:
        for sock in held:
            sock.close()
