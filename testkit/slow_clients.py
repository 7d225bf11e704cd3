"""Slow and idle HTTP clients (Slowloris) on loopback, for `bench/slowloris.py` and the
regression test in `tests/test_attack_web.py`. No `main()`: `run_all.py` does not run it.

`SlowClients(host, port, slow=N, idle=M)` opens N connections that each send the start of a
request and then one more header line every `interval` seconds, never finishing it, plus M
connections that send nothing; `streams=[request bytes, …]` adds connections that send a whole
request (a live event stream) and then read whatever comes, for as long as it runs. A connection the server closes is opened again, as the attack
does, so the pressure stays at N + M for as long as it runs.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import requests


class SlowClients:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        slow: int,
        idle: int = 0,
        interval: float = 5.0,
        path: str = "/healthz",
        streams: list[bytes] = (),
    ) -> None:
        self.host, self.port = host, port
        self.slow, self.idle, self.interval, self.path = slow, idle, interval, path
        self.streams = list(streams)
        self.streaming = 0  # stream connections whose answer started with 200
        self.open_now = 0
        self.opened = 0
        self.closed_by_server = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()

    async def _one(self, index: int, *, sends: bool) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            self.opened += 1
            self.open_now += 1
            try:
                if sends:
                    writer.write(f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\n".encode())
                    await writer.drain()
                line = 0
                while not self._stop.is_set():
                    # Wait for the interval, or for the server to close the connection.
                    try:
                        data = await asyncio.wait_for(reader.read(1024), timeout=self.interval)
                    except TimeoutError:
                        data = None
                    if data == b"" or (data and not sends):
                        self.closed_by_server += 1
                        break
                    if data:  # an error answer (408/400): the server is closing it
                        self.closed_by_server += 1
                        break
                    if sends:
                        line += 1
                        writer.write(f"X-Slow-{index}-{line}: {'a' * 8}\r\n".encode())
                        await writer.drain()
            except (OSError, ConnectionError):
                self.closed_by_server += 1
            finally:
                self.open_now -= 1
                writer.close()

    async def _stream(self, request: bytes) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            self.opened += 1
            self.open_now += 1
            started = False
            try:
                writer.write(request)
                await writer.drain()
                first = await reader.read(1024)
                started = first.startswith(b"HTTP/1.1 200")
                self.streaming += started
                if not started:
                    await asyncio.sleep(5)  # refused (503): retry later, as the widget does
                while started and await reader.read(65536):
                    pass
            except (OSError, ConnectionError):
                pass
            finally:
                self.streaming -= started
                self.open_now -= 1
                writer.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        tasks = [asyncio.create_task(self._one(i, sends=True)) for i in range(self.slow)]
        tasks += [asyncio.create_task(self._one(self.slow + i, sends=False)) for i in range(self.idle)]
        tasks += [asyncio.create_task(self._stream(request)) for request in self.streams]
        self._ready.set()
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> SlowClients:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._main(),), daemon=True
        )
        self._thread.start()
        self._ready.wait(10)
        deadline = time.monotonic() + 30
        while self.open_now < self.slow + self.idle + len(self.streams) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc) -> None:
        assert self._loop is not None and self._stop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def latency_probe(url: str, *, seconds: float, timeout: float = 5.0, headers: dict | None = None) -> dict:
    """Sequential GETs, each on a new connection (a new visitor), for `seconds`.

    Returns the count, the failures (timeouts, refused, 5xx) and latency percentiles in ms
    of the answered ones.
    """
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            response = requests.get(url, timeout=timeout, headers={"Connection": "close", **(headers or {})})
            if response.status_code >= 500:
                failures += 1
            else:
                latencies.append((time.perf_counter() - started) * 1000)
        except requests.RequestException:
            failures += 1
        time.sleep(0.05)
    latencies.sort()

    def percentile(fraction: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(fraction * len(latencies)))], 1)

    return {
        "requests": len(latencies) + failures,
        "failed": failures,
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": percentile(0.95),
        "max_ms": round(latencies[-1], 1) if latencies else None,
    }
