"""Request bodies sent with `Transfer-Encoding: chunked` (no Content-Length).

gunicorn decodes the chunks and marks the input as terminated (`wsgi.input_terminated`), but
Django reads a body only up to CONTENT_LENGTH: without one it saw an empty body, and a JSON
POST streamed by its client was refused with "This field is required." `ChunkedBodies` reads
such a body to its end first (spooled to disk past Django's in-memory size), up to the largest
body any endpoint accepts (a knowledge file and its form), and hands Django the same request
with its length; a larger one is refused with 413 in the error shape before it is all read.
"""

from __future__ import annotations

import json
from tempfile import SpooledTemporaryFile

from django.conf import settings

from core.api.envelope import error_body

# Room for a multipart form's other fields and boundaries around the largest knowledge file.
_FORM_OVERHEAD = 1024 * 1024
_READ_SIZE = 64 * 1024


def body_limit() -> int:
    return settings.KNOWLEDGE_MAX_FILE_BYTES + _FORM_OVERHEAD


class ChunkedBodies:
    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        if (
            environ.get("CONTENT_LENGTH")
            or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            return self.application(environ, start_response)
        if not environ.get("wsgi.input_terminated"):
            # A server that does not say the input ends would leave a read hanging.
            return _refuse(start_response, 411, "Length Required", "Send the body with a Content-Length.")
        limit = body_limit()
        body = SpooledTemporaryFile(max_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        size = 0
        source = environ["wsgi.input"]
        while chunk := source.read(_READ_SIZE):
            size += len(chunk)
            if size > limit:
                body.close()
                return _refuse(start_response, 413, "Request Entity Too Large", "Request body too large.")
            body.write(chunk)
        body.seek(0)
        environ["wsgi.input"] = body
        environ["CONTENT_LENGTH"] = str(size)
        return self.application(environ, start_response)


def _refuse(start_response, status: int, reason: str, detail: str) -> list[bytes]:
    payload = json.dumps(error_body(status, detail)).encode()
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Connection", "close"),
        ],
    )
    return [payload]
