"""Start and stop real processes (gunicorn, Celery workers, redis-server, Postgres) for the
benchmarks in `bench/` and the chaos tests in `tests/`.

Every helper returns the `subprocess.Popen` it started; `process_stop` ends that process
and the children it spawned (found by parent pid), never anything matched by name.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOG_DIR = ROOT / ".data" / "bench-logs"
UNLIMITED = 1_000_000_000  # a rate limit no scenario reaches


def log_path(name: str) -> Path:
    """A fresh log file for one started process (`.data/bench-logs/<name>-<time>.log`)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return LOG_DIR / f"{name}-{int(time.time())}.log"


def auth_headers(key: dict) -> dict[str, str]:
    """API-key headers for a key as `tenant_provision` returns it."""
    return {"X-API-Key": key["client_id"], "X-API-Secret": key["client_secret"]}


def free_port() -> int:
    """A free loopback port: the kernel's choice, or with `TEST_PORTS=8600-8699` (checkouts
    sharing a host, each given its own range) the first free one in that range from a random
    start, so two processes of one checkout seldom race for the same port."""
    span = os.environ.get("TEST_PORTS", "")
    if not span:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    low, high = (int(part) for part in span.split("-", 1))
    ports = list(range(low, high + 1))
    start = random.randrange(len(ports))
    for port in ports[start:] + ports[:start]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"TEST_PORTS={span}: no free port")


def gunicorn_command(*, port: int, workers: int = 2, threads: int = 8) -> list[str]:
    """The web server as `scripts/run.py` (`make run`) starts it, on loopback: every other
    setting comes from `gunicorn.conf.py`, the one place for them."""
    return [
        str(BIN / "gunicorn"),
        "supportai.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]


def base_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update({key: value for key, value in overrides.items() if value is not None})
    return env


def _spawn(command: list[str], *, env: dict[str, str], log_path: Path | None) -> subprocess.Popen:
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603


def http_wait(url: str, *, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def gunicorn_start(
    *, env: dict[str, str], workers: int = 2, threads: int = 8, log_path: Path | None = None
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = _spawn(
        gunicorn_command(port=port, workers=workers, threads=threads), env=env, log_path=log_path
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        http_wait(f"{base_url}/healthz", process=process)
    except Exception:
        process_stop(process)
        raise
    return process, base_url


def celery_worker_start(
    *,
    env: dict[str, str],
    queues: str = "default,ingestion",
    concurrency: int = 1,
    log_path: Path | None = None,
    extra: list[str] | None = None,
) -> subprocess.Popen:
    command = [
        str(BIN / "celery"),
        "-A",
        "supportai",
        "worker",
        "-Q",
        queues,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"proof-{os.getpid()}-{time.monotonic_ns()}@%h",
        *(extra or []),
    ]
    return _spawn(command, env=env, log_path=log_path)


def celery_worker_wait_ready(log_path: Path, *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_path.exists() and b"ready." in log_path.read_bytes():
            return
        time.sleep(0.2)
    raise TimeoutError(
        "the Celery worker did not become ready:\n" + log_path.read_text(errors="replace")[-3000:]
    )


def redis_server_start(*, port: int | None = None) -> tuple[subprocess.Popen, int]:
    """A private redis-server (no persistence) on a free loopback port."""
    port = port or free_port()
    process = subprocess.Popen(  # noqa: S603
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],  # noqa: S607
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process, port
        except OSError:
            time.sleep(0.05)
    process_stop(process)
    raise TimeoutError("redis-server did not start")


def process_stop(
    process: subprocess.Popen | None, *, sig: int = signal.SIGTERM, timeout: float = 15.0
) -> None:
    """Stop a process we started and its descendants (by pid, never by name)."""
    if process is None or process.poll() is not None:
        return
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    for child in descendants:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def process_children(process: subprocess.Popen) -> list[psutil.Process]:
    try:
        return psutil.Process(process.pid).children(recursive=False)
    except psutil.NoSuchProcess:
        return []


def manage_json(*args: str, env: dict[str, str]) -> dict:
    """Run a `manage.py … --json` command and parse what it prints."""
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
    )


def tenant_provision(*, env: dict[str, str], name: str, rate_limit: int, keys: int = 1) -> dict:
    """A fresh organization and `keys` API keys, made with the operator commands."""
    stamp = f"{int(time.time() * 1000)}-{os.getpid()}"
    organization = manage_json(
        "create_organization",
        "--name",
        f"{name} {stamp}",
        "--owner-email",
        f"bench-{stamp}@example.com",
        "--owner-password",
        "bench-password-123",
        "--rate-limit",
        str(rate_limit),
        env=env,
    )
    credentials = [
        manage_json("create_api_key", "--org", organization["slug"], "--name", f"key {index}", env=env)
        for index in range(keys)
    ]
    return {**organization, "keys": credentials}


def database_url_for(database: dict) -> str:
    """A DATABASE_URL for a Django DATABASES entry (Unix socket or TCP)."""
    from supportai.database_urls import database_url

    return database_url(database, scheme="postgres")


def rss_bytes(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss
