"""What to do when this web process begins a graceful stop (a restart, a recycled worker,
Ctrl-C): the gunicorn worker calls `stop_begin()`; apps register with `on_stop`, so the
platform core knows no app (open live event streams end this way, see chat/live.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

_callbacks: list[Callable[[], None]] = []


def on_stop(callback: Callable[[], None]) -> None:
    if callback not in _callbacks:
        _callbacks.append(callback)


def stop_begin() -> None:
    for callback in list(_callbacks):
        try:
            callback()
        except Exception:
            logger.exception("a stop callback failed")
