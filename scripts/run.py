"""`make run`: the whole system in the foreground; Ctrl-C stops all of it.

Starts (or reuses) the embedded Postgres, migrates, seeds the demo organization on first
start, then runs gunicorn (web), a Celery worker (queues default + ingestion) and Celery
beat as child processes. When any child dies, or on Ctrl-C, everything is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
PORT = os.environ.get("PORT", "8000")


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=True)


def main() -> int:
    os.chdir(ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    manage("migrate", "--noinput", "-v", "0")
    manage("collectstatic", "--noinput", "-v", "0")
    manage("seed_demo", "--port", PORT)

    commands = {
        # Workers, threads, timeouts and the worker class come from gunicorn.conf.py.
        "web": [str(BIN / "gunicorn"), "supportai.wsgi:application", "--bind", f"0.0.0.0:{PORT}"],
        "worker": [
            str(BIN / "celery"),
            "-A",
            "supportai",
            "worker",
            "-Q",
            "default,ingestion",
            "--concurrency",
            os.environ.get("WORKER_CONCURRENCY", "2"),
            "--loglevel",
            "INFO",
        ],
        "beat": [
            str(BIN / "celery"),
            "-A",
            "supportai",
            "beat",
            "--loglevel",
            "INFO",
        ],
    }
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, command in commands.items():
        children[name] = subprocess.Popen(command, cwd=ROOT)
    print(f"\nSupportAI is running on http://127.0.0.1:{PORT}/  (Ctrl-C stops everything)\n", flush=True)

    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping.", flush=True)
                exit_code, stopping = child.returncode or 1, True
                break
        time.sleep(0.5)

    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    if not os.environ.get("DATABASE_URL"):
        from supportai.embedded_postgres import embedded_database_stop

        embedded_database_stop(Path(os.environ.get("SUPPORTAI_DATA_DIR", ROOT / ".data")))
    print("SupportAI stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
