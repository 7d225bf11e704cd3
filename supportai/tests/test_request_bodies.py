"""`ChunkedBodies` without a server: what it hands on and what it refuses (the real gunicorn
round trip is tests/test_attack_input.py::test_a_chunked_body_is_read_like_one_with_a_length)."""

from __future__ import annotations

import io
import json

from supportai.request_bodies import ChunkedBodies


def _call(environ: dict) -> tuple[str, dict, bytes, dict]:
    seen: dict = {}

    def application(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [])
        return [environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))]

    answer: dict = {}

    def start_response(status, headers):
        answer.update(status=status, headers=dict(headers))

    body = b"".join(ChunkedBodies(application)(environ, start_response))
    return answer["status"], answer["headers"], body, seen


def test_a_terminated_chunked_body_gets_its_length():
    status, _headers, body, seen = _call(
        {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True, "wsgi.input": io.BytesIO(b"{}")}
    )
    assert (status, body, seen["CONTENT_LENGTH"]) == ("200 OK", b"{}", "2")


def test_a_body_with_a_length_is_left_alone():
    source = io.BytesIO(b"abc")
    _status, _headers, body, seen = _call({"CONTENT_LENGTH": "3", "wsgi.input": source})
    assert body == b"abc" and seen["wsgi.input"] is source


def test_a_server_that_does_not_end_the_input_gets_411_in_the_error_shape():
    status, headers, body, seen = _call(
        {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"{}")}
    )
    assert status.startswith("411") and headers["Content-Type"] == "application/json" and not seen
    assert json.loads(body)["status_code"] == 411
