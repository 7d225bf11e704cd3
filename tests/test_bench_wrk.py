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
from pathlib import Path

import pytest

from testkit.loopback import LoopbackHandler, ScriptedServer

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = '{"content": "How do I reset my password? (ticket {n})"}'

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


class _Recorder(LoopbackHandler):
    def do_POST(self):
        body = self.body_read().decode()
        with self.owner.lock:
            self.owner.requests.append(body)
        try:
            self.payload_send(201, b"{}")
        except (BrokenPipeError, ConnectionResetError):  # wrk closes its connections when time is up
            pass


class _BodyRecorder(ScriptedServer):
    """Records each POST's body (`requests`) and answers 201."""

    handler_class = _Recorder


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
    server = _BodyRecorder().start()
    url = f"http://127.0.0.1:{server.port}/api/v1/sessions/x/messages"
    try:
        first = _wrk_run(url)
        first_bodies = list(server.requests)
        second = _wrk_run(url)
        second_bodies = server.requests[len(first_bodies) :]
    finally:
        server.stop()
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
