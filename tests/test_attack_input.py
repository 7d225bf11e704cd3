"""Input the database or the parser cannot hold (issue 13, item 8), sent to a real gunicorn.

A NUL character (`\\u0000`) is valid JSON and a valid query-string byte, but Postgres text
and jsonb cannot store it (`DataError`), and 100,000 nested `[` exhaust the JSON parser's
recursion (`RecursionError`): each was a 500. One guard at the parser level (the API's JSON,
form and multipart parsers, and the query string) now answers 400 in the error shape for
every endpoint, whoever the caller is, before any view or serializer sees the value."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
import requests

from testkit.fixtures import tenant_create
from tests.conftest import assert_error_shape

pytestmark = [pytest.mark.django_db(transaction=True)]

NUL = "\u0000"
DEEP = "[" * 100_000


@pytest.fixture
def stack(procs, live_env):
    tenant = tenant_create("Nul Org", rate_limit_per_hour=100_000)
    _web, url = procs.gunicorn(env=dict(live_env, LOG_LEVEL="WARNING"), workers=1)
    headers = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}
    assistant = requests.post(f"{url}/api/v1/assistants", json={"name": "A"}, headers=headers, timeout=30)
    assert assistant.status_code == 201, assistant.text
    return url, tenant, headers, assistant.json()["data"]["id"], procs


def _visitor(url: str, tenant) -> dict:
    minted = requests.post(
        f"{url}/api/v1/auth/widget-token", json={"client_id": tenant.client_id}, timeout=30
    )
    assert minted.status_code == 200, minted.text
    return {"Authorization": f"Bearer {minted.json()['token']}"}


def _refused(response) -> None:
    """400 in the error shape, and for the guard's reason (not some other validation)."""
    detail = assert_error_shape(response, 400)["detail"]
    assert any(word in detail for word in ("NUL", "nested too deeply", "lone surrogate")), detail


def test_nul_bytes_and_deep_nesting_are_a_400_everywhere(stack):
    url, tenant, headers, assistant_id, procs = stack
    api = f"{url}/api/v1"

    def post(path, body, auth=headers, **kwargs):
        return requests.post(f"{api}/{path}", json=body, headers=auth, timeout=30, **kwargs)

    # Operator API: traits (value and key), metadata, message metadata.
    _refused(post("contexts", {"user_reference": "u1", "traits": {"plan": f"pro{NUL}"}}))
    _refused(post("contexts", {"user_reference": "u1", "traits": {f"k{NUL}": "v"}}))
    _refused(post("contexts", {"user_reference": f"u{NUL}1"}))
    conversation = post("conversations", {"assistant_id": assistant_id, "customer_id": "c1"})
    assert conversation.status_code == 201, conversation.text
    conversation_id = conversation.json()["data"]["id"]
    _refused(post("conversations", {"assistant_id": assistant_id, "metadata": {"a": [NUL]}}))
    _refused(post(f"conversations/{conversation_id}/messages", {"content": "hi", "metadata": {"x": NUL}}))

    # An anonymous widget visitor (a token minted from the public client id alone).
    visitor = _visitor(url, tenant)
    _refused(post("sessions", {"assistant_id": assistant_id, "metadata": {"page": f"/{NUL}"}}, auth=visitor))
    session = post("sessions", {"assistant_id": assistant_id, "metadata": {"page": "/pricing"}}, auth=visitor)
    assert session.status_code == 201, session.text
    session_id = session.json()["data"]["id"]
    _refused(
        post(f"sessions/{session_id}/messages", {"content": "hi", "metadata": {"ref": NUL}}, auth=visitor)
    )
    _refused(post(f"sessions/{session_id}/messages", {"content": f"hi{NUL}"}, auth=visitor))

    # Query strings.
    for path in (
        "conversations?customer_id=%00",
        "sessions?visitor_id=%00",
        "contexts?user_reference=%00",
        "conversations?customer_id=a%00b",
        "knowledge/qa?assistant_id=%00",
    ):
        response = requests.get(f"{api}/{path}", headers=headers, timeout=30)
        _refused(response)
    _refused(requests.get(f"{url}/api/widget/config?widgetId=%00", headers=headers, timeout=30))

    # 100,000 nested arrays: authenticated, and on the public token endpoint.
    for path, auth in (("assistants", headers), ("auth/widget-token", {})):
        response = requests.post(
            f"{api}/{path}",
            data=DEEP,
            headers={**auth, "Content-Type": "application/json"},
            timeout=30,
        )
        _refused(response)
    nested = json.dumps({"assistant_id": assistant_id, "metadata": json.loads("[" * 200 + "]" * 200)})
    response = requests.post(
        f"{api}/conversations",
        data=nested,
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )
    _refused(response)

    # A lone surrogate cannot be encoded as UTF-8 for Postgres either.
    lone = '{"user_reference": "u2", "traits": {"a": "\\ud800"}}'
    response = requests.post(
        f"{api}/contexts", data=lone, headers={**headers, "Content-Type": "application/json"}, timeout=30
    )
    _refused(response)

    # Form and multipart bodies go through the same guard.
    form = requests.post(
        f"{api}/knowledge/qa",
        data={"assistant_id": assistant_id, "question": f"q{NUL}", "answer": "a"},
        headers=headers,
        timeout=30,
    )
    _refused(form)
    multipart = requests.post(
        f"{api}/knowledge/files",
        data={"assistant_id": assistant_id, "title": f"t{NUL}", "file_type": "txt"},
        files={"file": ("a.txt", b"hello", "text/plain")},
        headers=headers,
        timeout=30,
    )
    _refused(multipart)

    # Nothing of it was stored, and ordinary input still works.
    contexts = requests.get(f"{api}/contexts", headers=headers, timeout=30).json()["data"]
    assert contexts["count"] == 0
    ok = post("contexts", {"user_reference": "u1", "traits": {"plan": "pro", "nested": [[1, {"a": "b"}]]}})
    assert ok.status_code == 201, ok.text
    log = procs.log("web").read_text()
    assert "Traceback" not in log and "DataError" not in log and "RecursionError" not in log, log[-3000:]


def _raw_exchange(url: str, request: bytes) -> tuple[bytes, bytes]:
    """(status line and headers, body) of a request written byte for byte."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


def test_requests_the_web_server_refuses_are_answered_in_the_error_shape(procs, live_env):
    """What gunicorn refuses before the application runs (an over-long URL or header, a request
    line it cannot parse) and what the worker refuses itself (a head over 64 KiB) used to be a
    small HTML page or an empty body; SPEC: every error on every API path is the JSON shape."""
    _web, url = procs.gunicorn(env=dict(live_env, LOG_LEVEL="WARNING"), workers=1)
    assert_error_shape(requests.get(f"{url}/api/v1/assistants/?q={'a' * 5000}", timeout=30), 414)
    assert_error_shape(
        requests.get(f"{url}/api/v1/assistants/", headers={"X-Big": "a" * 9000}, timeout=30), 431
    )
    for status, request in (
        (400, b"NOT AN HTTP REQUEST LINE\r\n\r\n"),
        (431, b"GET /api/v1/assistants/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " + b"a" * 70000),
    ):
        head, body = _raw_exchange(url, request)
        assert head.startswith(b"HTTP/1.1 %d " % status), head
        assert b"\r\nContent-Type: application/json" in head, head
        assert json.loads(body) == {
            **json.loads(body),
            "status": "error",
            "status_code": status,
            "data": None,
        }
    # The operation's documented answers say so too.
    schema = requests.get(f"{url}/api/schema/?format=json", timeout=30).json()
    for status in ("408", "414", "431"):
        content = schema["paths"]["/api/v1/assistants/"]["get"]["responses"][status]["content"]
        assert list(content) == ["application/json"], (status, content)


def test_a_chunked_body_is_read_like_one_with_a_length(procs, live_env):
    """`Transfer-Encoding: chunked` (a client streaming its body, no Content-Length): gunicorn
    decodes it, and the API reads the same JSON or multipart form it would with a length. It
    read an empty body: "This field is required." A body over the largest any endpoint takes
    is refused with 413 in the error shape before it is all read."""
    tenant = tenant_create("Chunked Org", rate_limit_per_hour=100_000)
    _web, url = procs.gunicorn(
        env=dict(live_env, LOG_LEVEL="WARNING", KNOWLEDGE_MAX_FILE_BYTES="4096"), workers=1
    )
    headers = {"X-API-Key": tenant.client_id, "X-API-Secret": tenant.client_secret}

    def chunks(data: bytes, size: int = 7):
        for start in range(0, len(data), size):
            yield data[start : start + size]

    body = json.dumps({"user_reference": "streamed-1", "traits": {"plan": "pro"}}).encode()
    created = requests.post(
        f"{url}/api/v1/contexts",
        data=chunks(body),
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert created.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in created.request.headers
    assert created.status_code == 201, created.text
    assert created.json()["data"]["traits"] == {"plan": "pro"}

    boundary = "chunkedboundary"
    form = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nStreamed notes\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nReturns are accepted within 30 days.\r\n--{boundary}--\r\n"
    ).encode()
    uploaded = requests.post(
        f"{url}/api/v1/knowledge/files",
        data=chunks(form, 50),
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=30,
    )
    assert uploaded.status_code in (201, 202), uploaded.text
    assert uploaded.json()["data"]["title"] == "Streamed notes"

    too_big = requests.post(
        f"{url}/api/v1/contexts",
        data=chunks(b"x" * (4096 + 1024 * 1024 + 1), 64 * 1024),
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert_error_shape(too_big, 413)
    # The server is still there for the next client.
    again = requests.post(
        f"{url}/api/v1/contexts", json={"user_reference": "streamed-2"}, headers=headers, timeout=30
    )
    assert again.status_code == 201, again.text
