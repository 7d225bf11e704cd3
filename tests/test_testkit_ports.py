"""`testkit.processes.free_port` keeps to `TEST_PORTS` when set (checkouts sharing a host, each
with its own range of ports), and says so when the range is full."""

from __future__ import annotations

import socket

import pytest

from testkit.processes import free_port


def _bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_free_port_keeps_to_the_range_and_skips_a_taken_port(monkeypatch):
    taken = _bound()
    port = taken.getsockname()[1]
    taken.close()
    monkeypatch.setenv("TEST_PORTS", f"{port}-{port}")
    assert free_port() == port

    taken = _bound()
    try:
        monkeypatch.setenv("TEST_PORTS", f"{taken.getsockname()[1]}-{taken.getsockname()[1]}")
        with pytest.raises(RuntimeError, match="no free port"):
            free_port()
    finally:
        taken.close()


def test_free_port_without_a_range_is_the_kernels_choice(monkeypatch):
    monkeypatch.delenv("TEST_PORTS", raising=False)
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))  # it was free
