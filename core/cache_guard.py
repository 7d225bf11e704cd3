"""Calls to the shared cache (Redis) that must not take requests down with it.

When a cache call fails, the circuit opens for `OPEN_SECONDS`: callers get
`CacheUnavailable` at once instead of each waiting for a connect timeout (2 s per call
with the settings' socket timeouts), then one call is let through to probe recovery.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError

logger = logging.getLogger(__name__)

OPEN_SECONDS = 5.0
T = TypeVar("T")

try:  # the Redis client is installed with the Redis cache backend
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover
    RedisError = OSError  # type: ignore[misc,assignment]

CACHE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, DatabaseError)


class CacheUnavailable(Exception):
    pass


_lock = threading.Lock()
_open_until = 0.0
_last_warning = 0.0


def cache_call(function: Callable[[], T]) -> T:
    """Run `function` (which talks to the cache); raise CacheUnavailable if it cannot."""
    global _open_until, _last_warning
    now = time.monotonic()
    if now < _open_until:
        raise CacheUnavailable("cache circuit open")
    try:
        return function()
    except CACHE_ERRORS as error:
        with _lock:
            _open_until = time.monotonic() + OPEN_SECONDS
            if now - _last_warning > 30:
                _last_warning = now
                logger.warning("shared cache unavailable (%s); degrading", error.__class__.__name__)
        raise CacheUnavailable(str(error.__class__.__name__)) from error


def cache_circuit_reset() -> None:
    global _open_until
    _open_until = 0.0
