"""Per-request phase timings, reported in the `Server-Timing` header.

Code that does a measurable phase wraps it: `with timing.phase("embed"): ...`. The
middleware opens a recorder per request and writes the totals (db, embed, retrieve, llm,
and app for the whole request) so a benchmark can split a chat turn; the middleware adds
cpu, the CPU time of the request's thread (Postgres's own work is not in it).
"""

from __future__ import annotations

import contextvars
import time
from collections import defaultdict
from contextlib import contextmanager

_recorder: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar(
    "supportai_timing", default=None
)


def start() -> contextvars.Token:
    return _recorder.set(defaultdict(float))


def stop(token: contextvars.Token) -> dict[str, float]:
    phases = _recorder.get() or {}
    _recorder.reset(token)
    return dict(phases)


def add(name: str, seconds: float) -> None:
    phases = _recorder.get()
    if phases is not None:
        phases[name] += seconds


@contextmanager
def phase(name: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        add(name, time.perf_counter() - started)


def database_wrapper(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        add("db", time.perf_counter() - started)


def header_value(phases: dict[str, float], total: float) -> str:
    parts = [f"{name};dur={seconds * 1000:.1f}" for name, seconds in sorted(phases.items())]
    parts.append(f"app;dur={total * 1000:.1f}")
    return ", ".join(parts)
