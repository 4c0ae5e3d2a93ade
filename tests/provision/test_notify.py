"""sd_notify against a real AF_UNIX datagram NOTIFY_SOCKET bound here, from a child process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid

import pytest

from tests.conftest import ROOT

CHILD = """
import os, sys
from firmware_config import systemd_notify as n
assert n.ready("ledger v7, 0 queued")
assert n.status("draining 3")
interval = n.watchdog_interval_s()
print(interval)
assert n.watchdog()
assert n.stopping()
"""


def _child(address: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": address, **(extra_env or {})}
    return subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=30)


def _receive(sock: socket.socket, n: int) -> list[str]:
    sock.settimeout(5)
    return [sock.recv(4096).decode() for _ in range(n)]


def _bound(address) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    return sock


def test_protocol_over_a_filesystem_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    with _bound(path) as sock:
        # WATCHDOG_PID names another process: the child must not think the watchdog is its own
        res = _child(path, {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == "None"
        assert _receive(sock, 4) == ["READY=1\nSTATUS=ledger v7, 0 queued", "STATUS=draining 3", "WATCHDOG=1", "STOPPING=1"]


def test_protocol_over_an_abstract_socket():
    name = f"ewarung-test-{uuid.uuid4().hex}"
    with _bound("\0" + name) as sock:
        res = _child("@" + name, {"WATCHDOG_USEC": "30000000"})
        assert res.returncode == 0, res.stderr
        assert float(res.stdout) == 15.0  # half the period: ping twice per WatchdogSec
        assert _receive(sock, 4)[0].startswith("READY=1")


def test_watchdog_for_this_pid(monkeypatch):
    from firmware_config import systemd_notify as n

    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert n.watchdog_interval_s() == 30.0
    monkeypatch.delenv("WATCHDOG_USEC")
    assert n.watchdog_interval_s() is None


def test_without_notify_socket_nothing_is_sent(monkeypatch):
    from firmware_config import systemd_notify as n

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert n.ready() is False and n.watchdog() is False


def test_a_dead_socket_is_reported(tmp_path, monkeypatch):
    from firmware_config import systemd_notify as n

    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    with pytest.raises(OSError):
        n.ready()
