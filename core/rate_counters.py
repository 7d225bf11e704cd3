"""Exact fixed-window counters for rate limits and budgets, on Redis or on Postgres.

`window_counts_increment` adds one to each given bucket and returns every bucket's count in
its current window, in one round trip whatever the number of buckets:
- Redis (`RATE_COUNTER_STORE = "redis"`, the default with `REDIS_URL`): a pipeline of
  `INCR` + `EXPIREAT` on keys that name their window, so the count is atomic and a key
  expires by itself when its window ends.
- Postgres (the default without Redis): one `INSERT … ON CONFLICT (key) DO UPDATE …
  RETURNING` on the UNLOGGED `supportai_rate_counter` table. The row lock that the upsert
  takes serializes concurrent increments of one key, so N concurrent requests get the
  counts 1..N exactly (Django's database cache, an `add` then a read-modify-write, let 455
  of 1,200 concurrent requests through a limit of 100). The window is computed from the
  database's clock inside the statement, so several web hosts agree on it.

Bucket keys are stored hashed (`stored_key`): the caller's key names a visitor, an email
address, an IP or a client id as given; the store sees its policy and a keyed hash of the rest,
so every stored key is short, fixed-length and safe for any cache backend, and names nobody.

Windows are aligned to the Unix epoch (an hourly window ends on the hour), so "resets at
14:00" is the same moment for every bucket of that size. Callers run outside any
transaction (rate limits are checked before a view's work starts): inside one, the row
lock would last until its commit.
Errors reach the caller as the store's own exceptions (RedisError, DatabaseError); wrap the
call in `core.cache_guard.cache_call` to degrade instead.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.utils.crypto import salted_hmac

PURGE_PROBABILITY = 0.001  # about one increment in a thousand also deletes ended windows
_POLICY = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_KEY_SALT = "supportai.rate_counters.stored_key"


def stored_key(key: str) -> str:
    """The name bucket `key` is stored under (a Redis key's middle, a Postgres row's key).

    Callers' keys are "<policy>:<who>", where <who> is a visitor id, an email address, an IP
    or a client id as it came (any length, spaces, control characters). The policy, a name
    from the code, stays readable; <who> becomes a keyed hash: HMAC-SHA256 under a key derived
    from SECRET_KEY (Django's `salted_hmac`), 32 hex digits. So the key is at most 73
    characters of [a-z0-9_:-] (memcached's rules, the table's 250) and the store names nobody;
    an outsider cannot compute a visitor's key. Changing SECRET_KEY starts every bucket afresh.
    """
    policy, separator, who = key.partition(":")
    if not separator or not _POLICY.fullmatch(policy):
        policy, who = "_", key  # "_" is no policy's name: no other key can be stored so
    return f"{policy}:{salted_hmac(_KEY_SALT, who, algorithm='sha256').hexdigest()[:32]}"


@dataclass(frozen=True)
class WindowCount:
    key: str
    window: int  # seconds
    count: int  # requests counted in the current window (including this one, when incremented)
    window_end: int  # Unix time at which the current window ends

    @property
    def reset(self) -> int:
        """Seconds until the window ends (at least 1, as headers and Retry-After want)."""
        return max(1, int(self.window_end - time.time()))


def _store() -> str:
    return settings.RATE_COUNTER_STORE


def _unique(buckets: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    seen: dict[str, int] = {}
    for key, window in buckets:
        if window < 1:
            raise ValueError(f"window must be at least one second, not {window}")
        seen.setdefault(key, int(window))
    return list(seen.items())


def window_counts_increment(*, buckets: Sequence[tuple[str, int]]) -> dict[str, WindowCount]:
    """Count one request in each (key, window seconds) bucket; returns {key: WindowCount}."""
    unique = _unique(buckets)
    if not unique:
        return {}
    if _store() == "postgres":
        return _postgres_increment(unique)
    return _redis_increment(unique)


def window_counts_read(*, buckets: Sequence[tuple[str, int]]) -> dict[str, WindowCount]:
    """The buckets' counts in their current windows, without counting anything."""
    unique = _unique(buckets)
    if not unique:
        return {}
    if _store() == "postgres":
        return _postgres_read(unique)
    return _redis_read(unique)


def window_counts_delete(*, keys: Sequence[str]) -> int:
    """Forget the Postgres rows of these exact bucket keys (a visitor's erasure); returns how
    many there were. Redis buckets expire with their window and are not touched."""
    if not keys:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM supportai_rate_counter WHERE key = ANY(%s::text[])",
            [[stored_key(key) for key in keys]],
        )
        return cursor.rowcount


def window_count_release(*, counted: WindowCount) -> None:
    """Take back one count from the window `counted` came from (nothing if that window has
    ended): for a request that was counted and then refused on a stricter condition, so
    that refused attempts do not use up a budget others still need."""
    if _store() == "postgres":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE supportai_rate_counter SET count = count - 1 "
                "WHERE key = %s AND window_end = %s AND count > 0",
                [stored_key(counted.key), counted.window_end],
            )
        return
    client, keyed = _redis_client_and_keys(
        [(counted.key, counted.window)], counted.window_end - counted.window
    )
    redis_key = keyed[0][3]
    if keyed[0][2] == counted.window_end:
        client.decr(redis_key)


# --- Postgres -----------------------------------------------------------------------

_UPSERT = """
WITH now AS (SELECT floor(extract(epoch FROM clock_timestamp()))::bigint AS ts),
input AS (SELECT * FROM unnest(%s::text[], %s::bigint[]) AS t(key, window_size))
INSERT INTO supportai_rate_counter AS c (key, window_end, count)
SELECT input.key, (now.ts / input.window_size + 1) * input.window_size, 1 FROM input, now
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN EXCLUDED.window_end > c.window_end THEN 1 ELSE c.count + 1 END,
    window_end = GREATEST(c.window_end, EXCLUDED.window_end)
RETURNING c.key, c.window_end, c.count
"""
_READ = """
SELECT key, window_end, count, floor(extract(epoch FROM clock_timestamp()))::bigint
FROM supportai_rate_counter WHERE key = ANY(%s::text[])
"""
_PURGE = """
DELETE FROM supportai_rate_counter
WHERE window_end <= floor(extract(epoch FROM clock_timestamp()))::bigint
"""


def _postgres_increment(buckets: list[tuple[str, int]]) -> dict[str, WindowCount]:
    windows = dict(buckets)
    named = {stored_key(key): key for key, _ in buckets}
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, [list(named), [window for _, window in buckets]])
        rows = [(named[stored], window_end, count) for stored, window_end, count in cursor.fetchall()]
        if random.random() < PURGE_PROBABILITY:
            # A row whose window has ended is worth nothing (the next increment restarts it):
            # dropping them keeps the table as small as the set of recently active buckets.
            cursor.execute(_PURGE)
    return {
        key: WindowCount(key=key, window=windows[key], count=int(count), window_end=int(window_end))
        for key, window_end, count in rows
    }


def _postgres_read(buckets: list[tuple[str, int]]) -> dict[str, WindowCount]:
    windows = dict(buckets)
    named = {stored_key(key): key for key, _ in buckets}
    with connection.cursor() as cursor:
        cursor.execute(_READ, [list(named)])
        rows = {
            named[stored]: (int(window_end), int(count), int(now))
            for stored, window_end, count, now in cursor
        }
    now = int(time.time())
    result = {}
    for key, window in buckets:
        window_end, count, now = rows.get(key, (0, 0, now))
        if window_end <= now:  # no row, or its window has ended: nothing counted in this one
            window_end, count = (now // window + 1) * window, 0
        result[key] = WindowCount(key=key, window=windows[key], count=count, window_end=window_end)
    return result


# --- Redis --------------------------------------------------------------------------


def _redis_client_and_keys(buckets: list[tuple[str, int]], now: int):
    cache = caches[settings.RATELIMIT_USE_CACHE]
    keyed = []
    for key, window in buckets:
        window_end = (now // window + 1) * window
        # The window is part of the key: a new window is a new key, and EXPIREAT drops the old.
        keyed.append(
            (key, window, window_end, cache.make_and_validate_key(f"rc:{stored_key(key)}:{window_end}"))
        )
    # Django's RedisCache keeps its redis-py client behind `_cache`; the pipeline below is
    # what makes N buckets one round trip.
    client = cache._cache.get_client(keyed[0][3], write=True)
    return client, keyed


def _redis_increment(buckets: list[tuple[str, int]]) -> dict[str, WindowCount]:
    now = int(time.time())
    client, keyed = _redis_client_and_keys(buckets, now)
    pipeline = client.pipeline(transaction=False)
    for _key, _window, window_end, redis_key in keyed:
        pipeline.incr(redis_key)
        pipeline.expireat(redis_key, window_end + 1)
    replies = pipeline.execute()
    return {
        key: WindowCount(key=key, window=window, count=int(replies[2 * index]), window_end=window_end)
        for index, (key, window, window_end, _redis_key) in enumerate(keyed)
    }


def _redis_read(buckets: list[tuple[str, int]]) -> dict[str, WindowCount]:
    now = int(time.time())
    client, keyed = _redis_client_and_keys(buckets, now)
    values = client.mget([redis_key for *_, redis_key in keyed])
    return {
        key: WindowCount(key=key, window=window, count=int(value or 0), window_end=window_end)
        for (key, window, window_end, _redis_key), value in zip(keyed, values, strict=True)
    }
