"""Parse untrusted documents in a child process with memory, CPU and wall-clock limits.

    with ParserSandbox() as sandbox:
        parsed = sandbox.parse("pdf", data)

One child serves many documents (a crawl parses its pages without paying a process start
per page). If a document breaks a limit the child is killed, the call raises
`ParseError("parse_limit", ...)`, and the next call starts a fresh child.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings

from knowledge.parsing import ParseError

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 60.0  # a loaded machine can take a while to import the parsers
RECYCLE_AFTER = 500  # documents per child, so memory fragmentation cannot build up


class ParserSandbox:
    def __init__(
        self,
        *,
        memory_bytes: int | None = None,
        cpu_seconds: int | None = None,
        wall_seconds: float | None = None,
        max_pages: int | None = None,
    ) -> None:
        # Explicit limits win; otherwise settings are read at each parse (never at import).
        self._memory_bytes = memory_bytes
        self._cpu_seconds = cpu_seconds
        self._wall_seconds = wall_seconds
        self._max_pages = max_pages
        self._process: subprocess.Popen | None = None
        self._process_limits: tuple[int, int] | None = None
        self._parsed = 0
        self.lock = threading.Lock()

    @property
    def memory_bytes(self) -> int:
        return self._memory_bytes or settings.KNOWLEDGE_PARSE_MEMORY_BYTES

    @property
    def cpu_seconds(self) -> int:
        return self._cpu_seconds or settings.KNOWLEDGE_PARSE_CPU_SECONDS

    @property
    def wall_seconds(self) -> float:
        return self._wall_seconds or settings.KNOWLEDGE_PARSE_WALL_SECONDS

    @property
    def max_pages(self) -> int:
        return self._max_pages or settings.KNOWLEDGE_MAX_PDF_PAGES

    def __enter__(self) -> ParserSandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _start(self) -> subprocess.Popen:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
        }
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "knowledge.sandbox_child", str(self.memory_bytes), str(self.cpu_seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
            env=env,
            close_fds=True,
        )

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)
        for stream in (process.stdin, process.stdout):
            if stream:
                stream.close()

    def _read_line(self, *, deadline: float, what: str) -> bytes:
        process = self._process
        answer = bytearray()
        descriptor = process.stdout.fileno()
        while not answer.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                if what == "start":
                    raise ParseError("parse_limit", "The document parser did not start in time.")
                raise ParseError(
                    "parse_limit", f"Parsing took longer than the {self.wall_seconds:.0f} s limit."
                )
            readable, _, _ = select.select([descriptor], [], [], remaining)
            if not readable:
                continue
            piece = os.read(descriptor, 1 << 20)
            if not piece:
                self.close()
                raise ParseError("parse_limit", "Parsing exceeded the memory or CPU limit and was stopped.")
            answer.extend(piece)
        return bytes(answer)

    def parse(self, kind: str, data: bytes, *, url: str = "") -> dict:
        limits = (self.memory_bytes, self.cpu_seconds)
        if (
            self._process is None
            or self._process.poll() is not None
            or self._parsed >= RECYCLE_AFTER
            or limits != self._process_limits
        ):
            self.close()
            self._process = self._start()
            self._process_limits = limits
            self._parsed = 0
            self._read_line(deadline=time.monotonic() + STARTUP_SECONDS, what="start")
        self._parsed += 1
        process = self._process
        header = json.dumps({"kind": kind, "url": url, "max_pages": self.max_pages, "size": len(data)})
        deadline = time.monotonic() + self.wall_seconds
        try:
            process.stdin.write(header.encode() + b"\n")
            process.stdin.write(data)
            process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            self.close()
            raise ParseError("parse_limit", "The document parser stopped unexpectedly.") from error

        answer = self._read_line(deadline=deadline, what="parse")
        response = json.loads(answer)
        if not response["ok"]:
            if response["code"] == "parse_limit":
                self.close()
            raise ParseError(response["code"], response["message"], detail=response.get("detail") or "")
        return response["result"]


_shared: ParserSandbox | None = None
_shared_lock = threading.Lock()


def sandbox_shared() -> ParserSandbox:
    """This process's long-lived sandbox (workers parse many documents; one child serves them).
    Callers hold `sandbox.lock` while parsing."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ParserSandbox()
        return _shared
