"""`make run`: the whole system in the foreground; Ctrl-C stops all of it.

Starts (or reuses) the embedded Postgres, checks that the broker answers, migrates, seeds the
demo organization on first start, then runs gunicorn (web), a Celery worker (queues default
+ ingestion) and Celery beat as supervised children: one that dies is logged and restarted
with backoff while the others keep serving. When the worker died, the sources it was
processing are queued again as soon as it is back (its unacknowledged messages die with it
on the Postgres broker, and would otherwise wait for the 20-minute stuck-source sweep).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
PORT = os.environ.get("PORT", "8000")
# Loopback only unless told: the demo organization's login is printed for anyone to read, and
# ALLOWED_HOSTS trusts a client's Host header, so on 0.0.0.0 every machine on the network
# could sign in as the demo owner by sending "Host: 127.0.0.1" (found on a new-user walk).
BIND_ADDRESS = os.environ.get("BIND_ADDRESS", "") or "127.0.0.1"

# Restart delays: 1, 2, 4 … capped, reset once a child has stayed up for STABLE_AFTER seconds.
BACKOFF_MAX_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0


def log(message: str) -> None:
    print(f"[run {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=True)


def web_command() -> list[str]:
    # Workers, threads, timeouts and the worker class come from gunicorn.conf.py.
    host = f"[{BIND_ADDRESS}]" if ":" in BIND_ADDRESS else BIND_ADDRESS
    return [str(BIN / "gunicorn"), "supportai.wsgi:application", "--bind", f"{host}:{PORT}"]


def worker_command() -> list[str]:
    return [
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
    ]


def beat_command() -> list[str]:
    return [str(BIN / "celery"), "-A", "supportai", "beat", "--loglevel", "INFO"]


def site_url_record(data_dir: Path) -> None:
    """Leaves this run's address in the data folder: `manage.py create_widget` (and any command
    that prints a link) run by hand in another shell, without PORT, then uses it instead of
    127.0.0.1:8000 (settings._site_url). An explicit SITE_URL is recorded as given."""
    address = os.environ.get("SITE_URL") or os.environ.get("PUBLIC_BASE_URL") or f"http://127.0.0.1:{PORT}"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "site_url").write_text(address.rstrip("/") + "\n")


def _die_with_supervisor() -> None:
    """Runs in each child before exec (Linux): if this supervisor dies, even by SIGKILL, the
    child gets SIGTERM instead of living on as an orphan outside any terminal's reach."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def lost_tasks_requeue(died_at: datetime) -> subprocess.Popen:
    """The one worker of `make run` died: what it was processing will never be acknowledged."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "sources_requeue_lost", "--started-before", died_at.isoformat()],
        cwd=ROOT,
    )


@dataclass
class Child:
    """One supervised process. `after_restart` runs (given when the previous one died) once a
    replacement has been started."""

    name: str
    command: list[str]
    after_restart: object = None
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_due: float = 0.0
    died_at: datetime | None = None
    helpers: list = field(default_factory=list)

    def start(self) -> None:
        # Its own process group, so a dead child's orphans (a Celery pool process still
        # running a task) can be ended with it, and Ctrl-C reaches only this supervisor.
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, start_new_session=True, preexec_fn=_die_with_supervisor
        )
        self.started_at = time.monotonic()
        if self.died_at is not None and self.after_restart is not None:
            self.helpers.append(self.after_restart(self.died_at))
        self.died_at = None

    def check(self) -> None:
        """Notice a death (log it, end its orphans, schedule the restart) or restart when due."""
        self.helpers = [helper for helper in self.helpers if helper.poll() is None]
        if self.process is None:
            if time.monotonic() >= self.restart_due:
                log(f"{self.name}: restarting (restart {self.failures})")
                self.start()
            return
        if self.process.poll() is None:
            return
        returncode = self.process.returncode
        self.group_kill()
        self.process = None
        self.died_at = datetime.now(UTC)
        if time.monotonic() - self.started_at >= STABLE_AFTER_SECONDS:
            self.failures = 0
        self.failures += 1
        delay = min(BACKOFF_MAX_SECONDS, 2.0 ** (self.failures - 1))
        self.restart_due = time.monotonic() + delay
        log(f"{self.name} exited with {returncode}; restarting in {delay:.0f} s (the others keep running)")

    def group_kill(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        self.group_kill()
        for helper in self.helpers:
            helper.kill()


def main() -> int:
    os.chdir(ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    from supportai.startup import process_start

    process_start()  # the embedded Postgres (and the development key), once, before any child
    try:
        manage("broker_check")
    except subprocess.CalledProcessError:
        log("the Celery broker cannot be reached (see above); nothing was started.")
        return 1
    # Only a run that starts leaves its address for the commands run beside it: one that
    # refused to start (the broker check above) must not repoint them at a port nothing serves.
    site_url_record(Path(os.environ.get("SUPPORTAI_DATA_DIR", ROOT / ".data")))
    manage("migrate", "--noinput", "-v", "0")
    manage("collectstatic", "--noinput", "-v", "0")
    manage("seed_demo", "--port", PORT)

    # The table of supervised children; each is restarted on its own when it dies.
    children = [
        Child("web", web_command()),
        Child("worker", worker_command(), after_restart=lost_tasks_requeue),
        Child("beat", beat_command()),
    ]
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for child in children:
        child.start()
    print(f"\nSupportAI is running on http://127.0.0.1:{PORT}/  (Ctrl-C stops everything)\n", flush=True)
    if BIND_ADDRESS not in ("127.0.0.1", "::1", "localhost"):
        print(
            f"Listening on {BIND_ADDRESS}: other machines can reach it, and the demo login printed on first "
            "start signs in there too. Change that user's password or delete the demo organization.\n",
            flush=True,
        )

    while not stopping:
        for child in children:
            child.check()
        time.sleep(0.5)

    for child in children:
        child.terminate()
    deadline = time.monotonic() + 15
    for child in children:
        child.wait(deadline)
    if not os.environ.get("DATABASE_URL"):
        from supportai.embedded_postgres import embedded_database_stop

        embedded_database_stop(Path(os.environ.get("SUPPORTAI_DATA_DIR", ROOT / ".data")))
    print("SupportAI stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
