"""The city side across restarts: what a killed or restarted `ewarung central serve` must not leave behind."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields after the command name (state first), None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie has ended; only its reaper is late


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            fields = _stat(int(d.name))
            if fields is not None and int(fields[1]) == pid:
                out.append(int(d.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.mqtt
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="central verifies in its own thread on one CPU: no workers")
def test_kill_9_of_central_serve_ends_its_signature_workers(tmp_path, mosquitto):
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pos.cli.main", "central", "--db", str(tmp_path / "c.db"), "serve",
             "--broker", f"127.0.0.1:{mosquitto.port}", "--http", "off", "--client-id", "central-kill-9",
             "--group", "kill"],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=subprocess.STDOUT)
    children: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # connected and announced: its last will is with the broker
            assert proc.poll() is None, log.read_text()
            state = _retained_state(mosquitto.port)
            if state and state.consumer == "central-kill-9" and state.online:
                break
            time.sleep(0.2)
        children = _children(proc.pid)
        workers = [p for p in children if "spawn_main" in _cmdline(p)]
        assert workers, f"no signature worker among {[_cmdline(p) for p in children]}\n{log.read_text()}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [f"{p}: {_cmdline(p)}" for p in children if _alive(p)]
    for p in children:  # do not leave them to the next test if the check fails
        if _alive(p):
            os.kill(p, signal.SIGKILL)
    assert not left, f"still running after kill -9 of central: {left}"
    state = _retained_state(mosquitto.port)
    assert state and state.consumer == "central-kill-9" and state.state == "offline", "central's last will"


def _retained_state(port: int):
    """The city's retained presence as a device reads it (checked with the central key), or None."""
    import queue

    import paho.mqtt.client as mqtt

    from pos.sample_city import demo_key
    from sync.presence import parse_state, state_topic

    got: queue.Queue = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-kill-9-state", protocol=mqtt.MQTTv5)
    c.on_message = lambda cl, u, m: got.put(bytes(m.payload))
    c.connect("127.0.0.1", port)
    c.subscribe(state_topic("samarinda"), qos=1)
    c.loop_start()
    try:
        token = got.get(timeout=2)
    except queue.Empty:
        return None
    finally:
        c.loop_stop()
        c.disconnect()
    return parse_state(token, {"central": demo_key("central").public_key()}, "samarinda")


def test_the_central_unit_keeps_one_client_id_across_restarts():
    """A persistent session is found again only under the same client id; the default
    (central-<host>-<pid>) changes on every restart, so the unit must pass one."""
    from firmware_config.units import render

    exec_start = next(ln for ln in render("ewarung-central.service").splitlines() if ln.startswith("ExecStart="))
    args = shlex.split(exec_start.split("=", 1)[1])
    assert args[1:3] == ["central", "serve"] and "--client-id" in args, exec_start
    client_id = args[args.index("--client-id") + 1]
    assert client_id and "$" not in client_id and "%p" not in client_id.lower(), client_id
