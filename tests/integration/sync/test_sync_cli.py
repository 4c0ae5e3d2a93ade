"""`ewarung sync --help`, `ewarung sync status`, `ewarung sync --once`, and the benchmark smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from mqtt_test_support import ROOT, outbox_states, run_sync_once

from pos.redemption import RedemptionRequest

pytestmark = pytest.mark.mqtt


def ewarung(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pos.cli.main", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_help():
    out = ewarung("sync", "--help")
    assert out.returncode == 0 and "--once" in out.stdout and "status" in out.stdout


def test_once_then_status(sync_env, service, city):
    service.redeem(RedemptionRequest(city.notable["holder"], "kasir1", {"TAHU": 2}))
    result = run_sync_once(sync_env)
    assert result.returncode == 0, result.stderr
    assert "1 awaiting the city's ack" in result.stdout
    assert outbox_states(sync_env["dir"] / "ewarung.db") == {"published": 1}
    out = ewarung("--config", str(sync_env["config"]), "sync", "status", "--json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["outbox"]["published"] == 1 and status["sync"]["ledger_version"] == 1
    human = ewarung("--config", str(sync_env["config"]), "sync", "status")
    assert "1 sent but not yet acknowledged" in human.stdout


def test_unreachable_broker_keeps_everything_queued(sync_env, service, city):
    from mqtt_test_support import free_port

    service.redeem(RedemptionRequest(city.notable["holder"], "kasir1", {"TAHU": 1}))
    text = sync_env["config"].read_text().replace(f"port = {sync_env['broker'].port}", f"port = {free_port()}")
    sync_env["config"].write_text(text)
    out = subprocess.run([sys.executable, "-m", "pos.cli.main", "--config", str(sync_env["config"]), "sync",
                          "--max-seconds", "3"], capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert outbox_states(sync_env["dir"] / "ewarung.db") == {"queued": 1}
    status = json.loads(ewarung("--config", str(sync_env["config"]), "sync", "status", "--json").stdout)
    assert status["sync"]["connected"] is False and "cannot reach broker" in status["sync"]["last_error"]


@pytest.mark.slow
def test_bench_quick_rows_well_formed():
    from bench.bench_sync import run

    rows = run(quick=True)
    assert len(rows) == 3
    for r in rows:
        assert set(r) == {"name", "p50", "p99", "value", "unit", "budget", "baseline", "baseline_name", "ok", "notes"}
        assert r["value"] > 0 and r["baseline"] > 0
