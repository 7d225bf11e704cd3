"""Concurrency caps (core.concurrency) on both backends: Redis leases and Postgres
advisory locks. Holders are real threads (each with its own database connection) and real
processes killed with SIGKILL, never patched."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection

from core import concurrency
from core.cache_guard import cache_circuit_reset
from core.concurrency import Cap, CapReached, slots_held
from testkit import processes

pytestmark = pytest.mark.django_db(transaction=True)

POSTGRES_CACHE = {
    "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "supportai_cache"}
}


@pytest.fixture(params=["redis", "postgres"])
def backend(request, settings):
    if request.param == "postgres":
        settings.CACHES = POSTGRES_CACHE
    else:
        assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    return request.param


class Holder:
    """A thread that holds slots of `caps` until released (its own database connection)."""

    def __init__(self, caps, *, lease_seconds: float = 30) -> None:
        self.caps = caps
        self.lease_seconds = lease_seconds
        self.ready = threading.Event()
        self.release = threading.Event()
        self.refused: Cap | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)
        if self.refused is not None:
            self.thread.join(10)  # its connection is closed before the test database goes

    def _run(self) -> None:
        try:
            with slots_held(caps=self.caps, lease_seconds=self.lease_seconds):
                self.ready.set()
                self.release.wait(30)
        except CapReached as refused:
            self.refused = refused.cap
            self.ready.set()
        finally:
            connection.close()

    def stop(self) -> None:
        self.release.set()
        self.thread.join(10)


def _group(name: str) -> str:
    return f"test:{name}:{time.monotonic_ns()}"


def test_at_most_limit_holders_then_a_released_slot_is_free_again(backend):
    cap = Cap(group=_group("limit"), limit=2)
    first, second = Holder([cap]), Holder([cap])
    assert first.refused is None and second.refused is None
    third = Holder([cap])
    assert third.refused == cap
    first.stop()
    fourth = Holder([cap])
    assert fourth.refused is None
    second.stop()
    fourth.stop()


def test_refused_by_its_own_cap_a_tenant_takes_no_shared_slot(backend):
    mine, shared = Cap(group=_group("org-a"), limit=1), Cap(group=_group("all"), limit=2)
    holder = Holder([mine, shared])
    refused = Holder([mine, shared])
    assert refused.refused == mine
    # One shared slot is still free for another organization, then none.
    other = Holder([Cap(group=_group("org-b"), limit=1), shared])
    assert other.refused is None
    third = Holder([Cap(group=_group("org-c"), limit=1), shared])
    assert third.refused == shared
    holder.stop()
    other.stop()


def test_no_cap_when_the_limit_is_zero(backend):
    cap = Cap(group=_group("off"), limit=0)
    holders = [Holder([cap]) for _ in range(3)]
    assert all(holder.refused is None for holder in holders)
    for holder in holders:
        holder.stop()


_HOLD_IN_CHILD = """
import os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
import django
django.setup()
from django.conf import settings
if sys.argv[2] == "postgres":
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache",
                                   "LOCATION": "supportai_cache"}}
from core.concurrency import Cap, slots_held
with slots_held(caps=[Cap(group=sys.argv[1], limit=1)], lease_seconds=float(sys.argv[3])):
    print("held", flush=True)
    time.sleep(120)
"""


def _child_holding(group: str, backend: str, lease_seconds: float) -> subprocess.Popen:
    env = processes.base_env(DATABASE_URL=processes.database_url_for(connection.settings_dict))
    child = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", _HOLD_IN_CHILD, group, backend, str(lease_seconds)],
        cwd=processes.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_killed_holder_does_not_keep_its_slot(backend):
    """Postgres frees a dead session's locks at once; a Redis lease expires on its own."""
    group = _group("crash")
    lease_seconds = 2.0
    child = _child_holding(group, backend, lease_seconds)
    cap = Cap(group=group, limit=1)
    try:
        assert Holder([cap]).refused == cap  # held by the other process
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    deadline = time.monotonic() + lease_seconds + 5
    while True:
        holder = Holder([cap])
        if holder.refused is None:
            holder.stop()
            break
        assert time.monotonic() < deadline, "the killed holder's slot was never freed"
        time.sleep(0.2)


def test_redis_down_the_caps_live_on_in_postgres(settings):
    port = processes.free_port()  # nothing listens there
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    cache_circuit_reset()
    try:
        cap = Cap(group=_group("fallback"), limit=1)
        holder = Holder([cap])
        assert holder.refused is None
        assert Holder([cap]).refused == cap
        holder.stop()
        assert Holder([cap]).refused is None
    finally:
        cache_circuit_reset()


def test_postgres_slots_are_advisory_locks_of_the_holder_session(settings):
    settings.CACHES = POSTGRES_CACHE
    cap = Cap(group=_group("locks"), limit=3)
    holder = Holder([cap])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = %s",
            [concurrency._group_key(cap.group) % 2**32],
        )
        assert cursor.fetchone()[0] == 1
    holder.stop()
