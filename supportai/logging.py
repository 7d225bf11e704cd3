"""Keep credentials out of logs: API secrets, bearer tokens and JWTs are masked."""

import logging
import re

_SECRET_PATTERNS = [
    re.compile(r"sk_[A-Za-z0-9_\-]{8,}"),
    re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"),
    re.compile(r"(?i)(bearer\s+)[^\s\"']+"),
    re.compile(r"(?i)(x-api-secret[\"']?\s*[:=]\s*[\"']?)[^\s\"',]+"),
    re.compile(
        r"(?i)([?&](?:api_?key|api_?secret|client_secret|secret|token|access_token|password)=)[^&\s\"']+"
    ),
]


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda match: match.group(1) + "[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class ForbiddenWithoutTracebackFilter(logging.Filter):
    """A 403 is an expected answer (an agent opening an owners' page), not a fault: Django
    logs it with the exception's full traceback, which buries real errors. Keep the one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
