"""`ewarung sync --once` against a real mosquitto: bounded when the broker is out of reach, and
`ewarung sync status` no longer says "online" once it has stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from mqtt_test_support import ROOT, free_port, outbox_states, run_sync_once

from pos.redemption import RedemptionRequest

pytestmark = pytest.mark.mqtt


def _ewarung(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pos.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_once_gives_up_on_an_unreachable_broker(sync_env, service, city):
    service.redeem(RedemptionRequest(city.notable["holder"], "kasir1", {"TAHU": 1}))
    text = sync_env["config"].read_text().replace(f"port = {sync_env['broker'].port}", f"port = {free_port()}")
    sync_env["config"].write_text(text)
    t0 = time.monotonic()
    out = _ewarung("--config", str(sync_env["config"]), "sync", "--once", "--offline-limit", "3", timeout=40)
    took = time.monotonic() - t0
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "gave up" in out.stderr and "no connection to the broker for 3 s" in out.stderr
    assert "cannot reach broker" in out.stderr, out.stderr
    assert took < 20, f"--once took {took:.1f} s"
    assert outbox_states(sync_env["dir"] / "ewarung.db") == {"queued": 1}


def test_status_is_offline_after_once_stopped(sync_env, service, city):
    service.redeem(RedemptionRequest(city.notable["holder"], "kasir1", {"TAHU": 1}))
    result = run_sync_once(sync_env)
    assert result.returncode == 0, result.stderr
    status = json.loads(_ewarung("--config", str(sync_env["config"]), "sync", "status", "--json").stdout)
    assert status["sync"]["connected"] is False
    assert status["sync"]["last_error"] == "the sync daemon is not running"
    human = _ewarung("--config", str(sync_env["config"]), "sync", "status").stdout
    assert human.startswith("connection: offline (the sync daemon is not running)"), human
