"""gunicorn's access log, with credentials masked.

gunicorn writes its access log itself (not through Django's LOGGING), and its request line
includes the query string: a client that puts a secret in `?api_key=sk_…` (which the API
refuses) would otherwise leave it in the logs. Loaded by `gunicorn.conf.py`."""

from __future__ import annotations

from gunicorn.glogging import Logger

from supportai.logging import redact


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}
