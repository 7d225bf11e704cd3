"""Concurrency caps shared by every web process: at most N holders of a named group at once.

Rate limits count requests over an hour; they do not stop one organization from holding
every web thread at the same moment with requests that wait (a page that trickles 8 bytes
a second, an LLM provider that takes a minute). A cap on *concurrent* holders does: the
excess is refused at once (429/503 with `Retry-After`) instead of queueing behind them.

Two backends, chosen like the cache, so a cap means the same in every gunicorn process:

- **Redis** (`REDIS_URL` set): a sorted set per group whose members are leases and whose
  scores are their expiry (Redis's own clock). One Lua script drops expired leases,
  counts and adds, atomically. A holder that dies without releasing keeps its slot only
  until its lease expires (`lease_seconds`, sized above the longest the work may take).
- **Postgres** (no Redis, the default): session-level advisory locks, one per slot
  (`pg_try_advisory_lock(group, slot)`), on the calling thread's own connection (a web
  thread serves one request at a time, so it never holds two slots of one group). Postgres
  releases them when the holder's connection ends, so a killed process frees its slots
  at once. Needs a session-pooled or direct connection (not pgbouncer's transaction mode).

When Redis is configured but unreachable, the Postgres backend takes over: the caps stay
shared and enforced (for the length of the outage a group may briefly hold up to its limit
in each store), instead of failing open to "no cap" or closed to "no service".
"""

from __future__ import annotations

import logging
import math
import uuid
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection

from core.cache_guard import CacheUnavailable, cache_call

logger = logging.getLogger(__name__)

# Drops expired leases, then adds one if fewer than the limit are held; 1 = added.
_ACQUIRE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000) + 1000)
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Cap:
    """At most `limit` concurrent holders of `group` (0 or less: no cap)."""

    group: str
    limit: int


class CapReached(Exception):
    """Every slot of `cap.group` is held: the caller refuses the work (nothing was started)."""

    def __init__(self, cap: Cap) -> None:
        super().__init__(f"all {cap.limit} slots of {cap.group} are in use")
        self.cap = cap


@dataclass
class _RedisLease:
    key: str
    lease_id: str

    def release(self) -> None:
        from django.core.cache import cache

        try:
            cache_call(lambda: cache._cache.get_client(self.key, write=True).zrem(self.key, self.lease_id))
        except CacheUnavailable:
            pass  # the lease expires on its own


@dataclass
class _PostgresLease:
    group_key: int
    slot: int

    def release(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [self.group_key, self.slot])
        except DatabaseError:
            # The session is gone or unusable; closing it is what frees the lock for sure.
            logger.warning("could not release a concurrency slot; closing the database connection")
            connection.close()


def _redis_configured() -> bool:
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    return backend.endswith("RedisCache")


def _redis_acquire(cap: Cap, lease_seconds: float) -> _RedisLease | None:
    from django.core.cache import cache

    key = cache.make_key(f"slots:{cap.group}")
    lease_id = uuid.uuid4().hex

    def run() -> int:
        client = cache._cache.get_client(key, write=True)
        return client.eval(_ACQUIRE, 1, key, cap.limit, lease_seconds, lease_id)

    return _RedisLease(key=key, lease_id=lease_id) if cache_call(run) == 1 else None


def _group_key(group: str) -> int:
    """A signed 32-bit key for the group (advisory locks take two int4 keys: group, slot)."""
    return zlib.crc32(f"slots:{group}".encode()) - 2**31


def _postgres_acquire(cap: Cap) -> _PostgresLease | None:
    group_key = _group_key(cap.group)
    with connection.cursor() as cursor:
        # LIMIT 1 stops at the first slot whose lock was free, so exactly one is taken.
        cursor.execute(
            "SELECT slot FROM generate_series(0, %s - 1) AS slot"
            " WHERE pg_try_advisory_lock(%s::int, slot) LIMIT 1",
            [cap.limit, group_key],
        )
        row = cursor.fetchone()
    return _PostgresLease(group_key=group_key, slot=row[0]) if row else None


def slot_acquire(*, cap: Cap, lease_seconds: float):
    """A held slot of `cap` (call `.release()`), or None when all are held."""
    if _redis_configured():
        try:
            return _redis_acquire(cap, lease_seconds)
        except CacheUnavailable:
            pass  # shared cache down: the caps live on in Postgres
    return _postgres_acquire(cap)


@contextmanager
def slots_held(*, caps: Sequence[Cap], lease_seconds: float) -> Iterator[None]:
    """Holds one slot of every cap for the block, or raises CapReached naming the first full one.

    Caps are taken in the order given (the narrowest first, e.g. per organization before
    overall), so a tenant refused by its own cap never takes a slot of the shared one.
    """
    lease_seconds = max(1.0, math.ceil(lease_seconds))
    held = []
    try:
        for cap in caps:
            if cap.limit <= 0:
                continue
            lease = slot_acquire(cap=cap, lease_seconds=lease_seconds)
            if lease is None:
                raise CapReached(cap)
            held.append(lease)
        yield
    finally:
        for lease in reversed(held):
            lease.release()
