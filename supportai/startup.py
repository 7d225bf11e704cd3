"""What every SupportAI process does first, before Django reads its settings.

Settings only read configuration; anything with a side effect happens here, once per
process start: `scripts/run.py`, `manage.py`, `supportai/wsgi.py` and `asgi.py` (gunicorn
and other servers), the Celery worker and beat (`worker_init` / `beat_init` in
`supportai/celery.py`) and the test suite (the root `conftest.py`) call
`process_start()`.

In development, with no `SECRET_KEY` it keeps a random per-install key in
`.data/secret_key` (so sessions survive restarts), and with no `DATABASE_URL` it starts
the embedded PostgreSQL (`supportai.embedded_postgres.ensure_started`). In production it
does nothing: the settings demand both values.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    return Path(os.environ.get("SUPPORTAI_DATA_DIR", BASE_DIR / ".data"))


def development_secret_key_ensure(directory: Path) -> None:
    key_file = directory / "secret_key"
    if key_file.exists():
        return
    directory.mkdir(parents=True, exist_ok=True)
    # Created with O_EXCL: two processes starting at once keep the first one's key.
    try:
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(50))


def process_start() -> None:
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)  # what settings will read too
    if os.environ.get("SUPPORTAI_ENV", "development") == "production":
        return
    directory = data_dir()
    if not os.environ.get("SECRET_KEY"):
        development_secret_key_ensure(directory)
    if not os.environ.get("DATABASE_URL"):
        from supportai.embedded_postgres import ensure_started

        ensure_started(directory)
