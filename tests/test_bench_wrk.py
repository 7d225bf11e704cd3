"""`bench.common.wrk_run`'s "{n}" bodies: every request of a run is different, and so are two
runs' against the same server (the web-tier bench's chat turns are measured right after a
warm-up run; with the same numbering the measured run repeated the warm-up's questions, which
the web workers' query-embedding caches answered without a forward pass). Run as a subprocess,
like the other bench tests (tests never import bench), against a loopback server that records
the bodies it receives."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from testkit.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = '{"content": "How do I reset my password? (ticket {n})"}'

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


class _Recorder(BaseHTTPRequestHandler):
    bodies: list[str] = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        with self.lock:
            self.bodies.append(body)
        try:
            self.send_response(201)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        except (BrokenPipeError, ConnectionResetError):  # wrk closes its connections when time is up
            pass

    def log_message(self, *args):
        pass


def _wrk_run(url: str) -> dict:
    script = (
        "import json, sys; from bench import common; "
        f"print(json.dumps(common.wrk_run(url={url!r}, concurrency=2, duration=1, threads=2, "
        f"headers={{}}, method='POST', body={TEMPLATE!r})))"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def test_each_run_numbers_its_bodies_under_a_prefix_of_its_own():
    _Recorder.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/sessions/x/messages"
    try:
        first = _wrk_run(url)
        first_bodies = list(_Recorder.bodies)
        second = _wrk_run(url)
        second_bodies = _Recorder.bodies[len(first_bodies) :]
    finally:
        server.shutdown()
        server.server_close()
    assert first["codes"] == {"201": first["requests"]} and second["codes"] == {"201": second["requests"]}
    pattern = re.compile(
        r'\{"content": "How do I reset my password\? \(ticket ([0-9a-f]{8})-(\d+)x(\d+)\)"\}'
    )
    prefixes = []
    for bodies in (first_bodies, second_bodies):
        assert len(bodies) >= 2
        matches = [pattern.fullmatch(body) for body in bodies]
        assert all(matches), [body for body, match in zip(bodies, matches, strict=True) if not match][:3]
        assert len({match.group(1) for match in matches}) == 1  # one prefix per run
        prefixes.append(matches[0].group(1))
    assert prefixes[0] != prefixes[1]
    # wrk numbers each run's requests from 1 again: only the prefix tells the runs apart.
    numbering = [{body.split("-", 1)[1] for body in bodies} for bodies in (first_bodies, second_bodies)]
    assert numbering[0] & numbering[1]
    everything = first_bodies + second_bodies
    assert len(set(everything)) == len(everything)
