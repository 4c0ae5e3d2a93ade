"""`ewarung central ...` as an operator runs it (separate processes, real files)."""

from __future__ import annotations

import pytest

from pos.sample_city import demo_key, write_beneficiary_csv
from pos.signing import public_pem
from tests.central.fleet_login import PASSWORD, USER, login, status
from tests.conftest import NOW, run_ewarung


def test_publish_ledger_reports_bad_rows_by_line_and_publishes_nothing(tmp_path):
    db = str(tmp_path / "c.db")
    good = tmp_path / "list.csv"
    write_beneficiary_csv(good, households=20, seed=2026, now=NOW)
    lines = good.read_text().splitlines()
    lines[3] = lines[3].replace("BPNT", "GOLD", 1) if "BPNT" in lines[3] else lines[3].split(",", 1)[0] + ",x,y,GOLD,active,2026-01-01,2026-12-31,"
    lines[7] = "SSN-6472-9999999,Siti,Lok Bahu,BPNT,active,2026-13-01,2026-12-31,"
    lines[9] = lines[2]  # duplicate household id
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    r = run_ewarung("central", "--db", db, "publish-ledger", str(bad))
    assert r.returncode == 1
    assert "line 4: plan 'GOLD'" in r.stderr
    assert "line 8: valid_from '2026-13-01' is not a date" in r.stderr
    assert "line 10: household_id" in r.stderr and "already on line 3" in r.stderr
    assert "nothing was published" in r.stderr and "--skip-bad-rows" in r.stderr
    r = run_ewarung("central", "--db", db, "publish-ledger", str(good), "--out", str(tmp_path / "v1.jws"))
    assert r.returncode == 0, r.stderr
    assert "ledger v1 (snapshot): 20 household rows" in r.stdout
    r = run_ewarung("central", "--db", db, "publish-ledger", str(bad), "--skip-bad-rows")
    assert r.returncode == 0 and "ledger v2" in r.stdout and "skipped 3 bad row(s)" in r.stderr
    r = run_ewarung("central", "--db", db, "publish-ledger", str(good), "--kind", "delta")
    assert r.returncode == 0 and "ledger v3 (delta)" in r.stdout


def test_device_registry_and_report_cli(tmp_path):
    db = str(tmp_path / "c.db")
    pub = tmp_path / "dev.pub.pem"
    pub.write_bytes(public_pem(demo_key("device").public_key()))
    r = run_ewarung("central", "--db", db, "device", "add", "EW-DEMO-0001", "--key", str(pub), "--shop", "SMD-01")
    assert r.returncode == 0, r.stderr
    again = run_ewarung("central", "--db", db, "device", "add", "EW-DEMO-0001", "--key", str(pub))
    assert again.returncode == 1 and "--replace" in again.stderr
    notkey = tmp_path / "x.pem"
    notkey.write_text("hello")
    r = run_ewarung("central", "--db", db, "device", "add", "EW-X", "--key", str(notkey))
    assert r.returncode == 1 and "not an EC P-256 public key" in r.stderr
    r = run_ewarung("central", "--db", db, "device", "list")
    assert "EW-DEMO-0001" in r.stdout and "SMD-01" in r.stdout and "active" in r.stdout
    r = run_ewarung("central", "--db", db, "report")
    assert r.returncode == 0 and "nothing to report" in r.stdout
    r = run_ewarung("central", "--db", db, "report", "--csv", "-")
    assert r.stdout.startswith("severity,kind,subject,period,devices,amount,detail")
    assert run_ewarung("central", "--help").returncode == 0


@pytest.mark.mqtt
def test_serve_stores_acks_and_serves_the_fleet_page(tmp_path, mosquitto, make_device, clock):
    """`ewarung central serve` as a process: a signed redemption in, a signed ack out, the page up."""
    import os
    import queue
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    import paho.mqtt.client as mqtt

    from pos.signing import jws_verify
    from tests.central.servers import free_port
    from tests.conftest import ROOT

    db = str(tmp_path / "serve.db")
    dev = make_device("EW-SRV-0001", register=False)
    pub = tmp_path / "dev.pub.pem"
    pub.write_bytes(dev.public_pem())
    assert run_ewarung("central", "--db", db, "device", "add", "EW-SRV-0001", "--key", str(pub)).returncode == 0
    assert run_ewarung("central", "--db", db, "fleet-account", "add", USER, "--password-stdin",
                       input=PASSWORD + "\n").returncode == 0
    http = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pos.cli.main", "central", "--db", db, "serve", "--broker", f"127.0.0.1:{mosquitto.port}",
         "--http", f"127.0.0.1:{http}", "--client-id", "central-cli-test", "--group", "cli"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    acks: queue.Queue = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev-srv", protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: acks.put(m.payload)
    try:
        dev.redeem(dev.city.notable["holder"], {"BERAS5": 1})
        client.connect("127.0.0.1", mosquitto.port)
        client.subscribe("ewarung/v1/devices/EW-SRV-0001/ack", qos=1)
        client.loop_start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=1).read() == b"ok\n":
                    break
            except OSError:
                time.sleep(0.2)
        msg = dev.outbox()[0]
        # the page can be up before the consumer's shared subscription is: a device resends until acknowledged
        # (the consumer de-duplicates by id), so does this test, instead of guessing how long subscribing takes
        raw = None
        while raw is None and time.monotonic() < deadline + 20:
            client.publish(msg.topic, bytes(msg.payload), qos=1).wait_for_publish(10)
            try:
                raw = acks.get(timeout=2)
            except queue.Empty:
                continue
        assert raw is not None, "no ack from central serve within 40 s"
        ack = jws_verify(raw, {"central": demo_key("central").public_key()}, "ewarung-ack+jws").json()
        assert ack["ids"] == [msg.msg_id]
        signed_in, code, _, _ = login(f"http://127.0.0.1:{http}")
        assert code == 303
        assert "EW-SRV-0001" in status(signed_in, f"http://127.0.0.1:{http}/")[1]
    finally:
        client.loop_stop()
        client.disconnect()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "stopped: stored 1, duplicates 0, rejected 0" in out
    assert "DEMO central key" in out
    assert "believing cards of the DEMO issuer" in out
