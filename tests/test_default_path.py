"""The path the README offers first, for real: `scripts/run.py` (what `make run` runs) with
REDIS_URL unset and its own data folder, so its own embedded Postgres is the database, the
cache and the Celery broker. Two instances run side by side on one host (issue 12: both used
to queue their tasks in libpq's default-socket Postgres, a system server shared by every
installation, or in nothing at all). Then the supervision of `make run` (issue 13): a worker
killed with -9 mid-task is restarted, the web tier keeps serving, and the source it was
processing comes back within a minute."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import requests

from testkit import processes
from testkit.documents import pdf_make, pdf_malformed
from testkit.sites import LoopbackSite, html_page

pytestmark = [pytest.mark.stack, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 420.0  # a fresh initdb + every migration + the embedder, on a busy 2-core box
INGEST_TIMEOUT = 120.0


@dataclass
class Stack:
    name: str
    data_dir: Path
    port: int
    log_path: Path
    env: dict
    process: subprocess.Popen | None = None
    client_id: str = ""
    client_secret: str = ""
    assistant_id: str = ""
    timings: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict:
        return {"X-API-Key": self.client_id, "X-API-Secret": self.client_secret}

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "scripts/run.py"],
            cwd=ROOT,
            env=self.env,
            stdout=open(self.log_path, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        """The demo credentials printed, then /readyz 200: a worker consumed a heartbeat."""
        deadline = self.started_at + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.name} exited:\n{self.log()[-4000:]}"
            found = re.search(r"client_id=(\S+)\s+client_secret=(\S+)", self.log())
            assistant = re.search(r"assistant_id: (\S+)", self.log())
            if found and assistant:
                self.client_id, self.client_secret = found.groups()
                self.assistant_id = assistant.group(1)
                try:
                    ready = requests.get(f"{self.url}/readyz", timeout=5)
                except requests.RequestException:
                    ready = None
                if ready is not None and ready.status_code == 200:
                    self.timings["ready_s"] = round(time.monotonic() - self.started_at, 1)
                    return
            time.sleep(1)
        raise AssertionError(f"{self.name} never became ready:\n{self.log()[-4000:]}")

    def post(self, path: str, **kwargs) -> dict:
        response = requests.post(f"{self.url}/api/v1/{path}", headers=self.headers, timeout=60, **kwargs)
        assert response.status_code in (201, 202), response.text
        return response.json()["data"]

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.url}/api/v1/{path}", headers=self.headers, timeout=30)

    def settled(self, kind: str, source_id: str, *, timeout: float = INGEST_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.get(f"knowledge/{kind}/{source_id}").json()["data"]
            if data["status"] in ("ready", "failed"):
                return data
            time.sleep(0.5)
        raise AssertionError(f"{self.name}: {kind} {source_id} still {data['status']}\n{self.log()[-4000:]}")

    def child(self, marker: str) -> psutil.Process | None:
        for child in psutil.Process(self.process.pid).children():
            try:
                if marker in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        return None

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            descendants = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            descendants = []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for leftover in descendants:  # only what this stack started
            try:
                leftover.kill()
            except psutil.NoSuchProcess:
                pass
        from supportai.embedded_postgres import embedded_database_stop

        embedded_database_stop(self.data_dir)  # a no-op when run.py already stopped it


def stack_env(*, data_dir: Path, port: int, allowlist: str) -> dict:
    env = processes.base_env(
        PORT=str(port),
        SUPPORTAI_DATA_DIR=str(data_dir),
        SCRAPE_ALLOWLIST=allowlist,
        EMBEDDED_POSTGRES_SHARED_BUFFERS="128MB",
        WEB_CONCURRENCY="1",
        LOG_LEVEL="INFO",
    )
    # The README's default path: no Redis, no external database, no LLM, nothing of the test run's.
    for name in ("REDIS_URL", "TEST_REDIS_URL", "DATABASE_URL", "MEDIA_ROOT", "LLM_MODEL", "XDG_RUNTIME_DIR"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def site():
    server = LoopbackSite()
    yield server
    server.close()


@pytest.fixture(scope="module")
def stacks(site, tmp_path_factory):
    started = []
    # The embedded server runs as its own user, which must reach the folder: not under
    # pytest's root-only temporary directory.
    data_root = Path(tempfile.mkdtemp(prefix="supportai-stack-"))
    data_root.chmod(0o755)
    try:
        for name in ("a", "b"):
            folder = tmp_path_factory.mktemp(f"stack-{name}")
            data_dir = data_root / name
            port = processes.free_port()
            stack = Stack(
                name=name,
                data_dir=data_dir,
                port=port,
                log_path=folder / "run.log",
                env=stack_env(data_dir=data_dir, port=port, allowlist=site.netloc),
            )
            stack.start()
            started.append(stack)
        for stack in started:
            stack.wait_ready()
        yield {stack.name: stack for stack in started}
    finally:
        for stack in started:
            stack.stop()
        shutil.rmtree(data_root, ignore_errors=True)


def _sources_cited(stack: Stack, question: str) -> set[str]:
    conversation = stack.post("conversations", json={"assistant_id": stack.assistant_id})
    answer = stack.post(f"conversations/{conversation['id']}/messages", json={"content": question})
    return {source.get("source_id") for source in answer["sources"]}


def test_two_instances_without_redis_each_ingest_their_own_sources(stacks, site):
    for name, stack in stacks.items():
        site.page(
            f"/guide-{name}",
            html_page(
                f"Shipping guide {name}",
                f"<p>The {name}-model blue widget ships within {4 + len(name)} days to every country.</p>",
            ),
        )
    site.page("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")

    posted = {}
    for name, stack in stacks.items():
        pdf = pdf_make([f"Instance {name} manual.", f"Warranty on the {name}-router: seven years."])
        posted[name] = {
            "sent": time.monotonic(),
            "pdf": stack.post(
                "knowledge/files", data={"file_type": "pdf"}, files={"file": ("manual.pdf", pdf)}
            )["id"],
            "url": stack.post("knowledge/urls", json={"url": site.url(f"/guide-{name}")})["id"],
            "broken": stack.post(
                "knowledge/files", data={"file_type": "pdf"}, files={"file": ("broken.pdf", pdf_malformed())}
            )["id"],
        }

    for name, stack in stacks.items():
        ids = posted[name]
        pdf = stack.settled("files", ids["pdf"])
        url = stack.settled("urls", ids["url"])
        broken = stack.settled("files", ids["broken"])
        stack.timings["all_settled_s"] = round(time.monotonic() - ids["sent"], 1)
        assert pdf["status"] == "ready", pdf
        assert url["status"] == "ready", url
        assert broken["status"] == "failed" and "damaged" in broken["error"], broken
        assert "Traceback" not in broken["error"]

        assert ids["pdf"] in _sources_cited(stack, f"How long is the warranty on the {name}-router?")
        assert ids["url"] in _sources_cited(stack, f"When does the {name}-model blue widget ship?")

        # Neither saw the other's sources or tasks.
        other = stacks["b" if name == "a" else "a"]
        assert other.get(f"knowledge/files/{ids['pdf']}").status_code == 404
    assert site.requests.count("/guide-a") == 1 and site.requests.count("/guide-b") == 1
    print({name: stack.timings for name, stack in stacks.items()})


def test_a_worker_killed_mid_task_is_restarted_and_its_source_comes_back(stacks, site):
    stack = stacks["a"]
    body = html_page("Slow page", "<p>The slow page says the warehouse opens at dawn.</p>")
    site.page("/slow", body, content_type="text/html", delay=6.0)
    source_id = stack.post("knowledge/urls", json={"url": site.url("/slow")})["id"]
    deadline = time.monotonic() + 60
    while site.requests.count("/slow") < 1:
        assert time.monotonic() < deadline, "the worker never started the task"
        time.sleep(0.2)
    assert stack.get(f"knowledge/urls/{source_id}").json()["data"]["status"] == "processing"

    worker = stack.child("worker -Q")
    killed_at = time.monotonic()
    os.kill(worker.pid, signal.SIGKILL)  # the Celery main process, as the red-team run did

    # The web tier keeps serving while the worker is down and restarting.
    for _ in range(10):
        assert requests.get(f"{stack.url}/healthz", timeout=5).status_code == 200
        assert stack.get("organization").status_code == 200
        time.sleep(0.3)
    source = stack.settled("urls", source_id, timeout=60)
    recovered_s = time.monotonic() - killed_at
    assert source["status"] == "ready", source
    assert recovered_s < 60
    assert stack.process.poll() is None
    # The re-queue command's line reaches the log when that process exits, which on a
    # loaded machine can be after the source it re-queued is already ready.
    deadline = time.monotonic() + 30
    while "re-queued 1 source(s) the dead worker was processing" not in stack.log():
        assert time.monotonic() < deadline, stack.log()[-3000:]
        time.sleep(0.5)
    assert "worker exited with -9; restarting" in stack.log()
    assert stack.child("worker -Q") not in (None, worker)

    beat = stack.child(" beat ")
    os.kill(beat.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while "beat exited with -9; restarting" not in stack.log() or stack.child(" beat ") in (None, beat):
        assert time.monotonic() < deadline, stack.log()[-3000:]
        time.sleep(0.5)
    assert stack.child(" beat ").is_running()
    print({"worker_killed_to_source_ready_s": round(recovered_s, 1)})


def test_make_run_stops_at_once_with_a_clear_message_when_the_broker_is_unreachable(tmp_path):
    env = processes.base_env(REDIS_URL=f"redis://127.0.0.1:{processes.free_port()}/0", PORT="1")
    recorded = ROOT / ".data" / "site_url"  # the address a run that starts leaves for commands
    before = recorded.read_text() if recorded.is_file() else None
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603
        [sys.executable, "scripts/run.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "The Celery broker at redis://127.0.0.1:" in output and "cannot be reached" in output
    assert "nothing was started" in output and "Traceback" not in output
    assert time.monotonic() - started < 60
    # A run that refused to start leaves no address behind: it recorded http://127.0.0.1:1,
    # which the checkout's `manage.py create_widget` then printed, and which a server the tests
    # started next took as its SITE_URL (embed snippets of another origin than the tests').
    assert (recorded.read_text() if recorded.is_file() else None) == before
