"""End to end with real mosquitto, real PostgreSQL and the device's real sync daemon (`ewarung sync`):
central publishes a ledger; each device, having none, asks for it and applies it; a sale is
redeemed (RedemptionService.redeem stands in for card + counter session until those merge); it
crosses MQTT; central stores it in PostgreSQL and acknowledges; the device marks it acked.
Two shops sell to the same household while offline: the reconciliation report finds it."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pos.sample_city import demo_key, write_beneficiary_csv, write_demo_keys
from pos.signing import EcdsaSigner, private_pem, public_pem
from sync.central.consumer import CentralConsumer, MqttRunner
from sync.central.ledger_publish import publish_ledger
from sync.central.registry import add_device
from sync.central.report import reconcile, to_table
from sync.central.store import DeviceState, Message, RedemptionRecord, open_central

pytestmark = pytest.mark.mqtt
ROOT = Path(__file__).resolve().parents[2]


def wait_for(pred, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Shop:
    """One device: data dir, own key, config pointing at the broker, `ewarung sync` as a process."""

    def __init__(self, root: Path, device_id: str, port: int) -> None:
        self.device_id, self.dir = device_id, root / device_id
        write_demo_keys(self.dir / "keys")
        self.key = ec.generate_private_key(ec.SECP256R1())
        (self.dir / "keys" / "device.key.pem").write_bytes(private_pem(self.key))
        (self.dir / "keys" / "device.key.pem").chmod(0o600)
        self.config = self.dir / "ewarung.toml"
        self.config.write_text(
            f'[device]\nid = "{device_id}"\nshop_id = "SHOP-{device_id[-4:]}"\ndata_dir = "{self.dir}"\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nheartbeat_s = 5\ninflight = 64\n'
        )
        self.db_path = self.dir / "ewarung.db"
        self.proc: subprocess.Popen | None = None

    def public_pem(self) -> bytes:
        return public_pem(self.key.public_key())

    def start_sync(self) -> None:
        log = open(self.dir / "sync.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pos.cli.main", "--config", str(self.config), "sync", "-v"],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=log, cwd=ROOT)

    def stop_sync(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def sql(self, query: str) -> list:
        conn = sqlite3.connect(self.db_path, timeout=10)
        try:
            return conn.execute(query).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def ledger_version(self) -> int:
        rows = self.sql("SELECT version FROM ledger_state WHERE id = 1")
        return rows[0][0] if rows else 0

    def outbox(self) -> dict:
        return dict(self.sql("SELECT state, count(*) FROM outbox_message GROUP BY state"))

    def redeem(self, household: str, basket: dict, clock):
        """The sale, written by the counter's RedemptionService into the device database."""
        from pos.db import open_database
        from pos.device import DeviceIdentity
        from pos.ledger import Ledger
        from pos.policy import Policy
        from pos.redemption import RedemptionRequest, RedemptionService

        db = open_database(self.db_path)
        try:
            ident = DeviceIdentity(self.device_id, f"SHOP-{self.device_id[-4:]}", "Warung", "Samarinda")
            service = RedemptionService(db, Ledger(), ident, EcdsaSigner(self.key, self.device_id), clock, Policy())
            return service.redeem(RedemptionRequest(household, "kasir1", basket))
        finally:
            db.close()


def test_ledger_to_device_to_central_and_back(pg_server, mosquitto, central_signer, tmp_path):
    from pos.clock import SystemClock

    clock = SystemClock()
    db = open_central(pg_server.createdb("e2e"))
    shops = [Shop(tmp_path, "EW-E2E-0001", mosquitto.port), Shop(tmp_path, "EW-E2E-0002", mosquitto.port)]
    runner = None
    try:
        csv_path = tmp_path / "list.csv"
        write_beneficiary_csv(csv_path, households=40, seed=2026, now=clock.now())
        published = publish_ledger(csv_path, signer=EcdsaSigner(demo_key("ledger"), "ledger"), city="samarinda",
                                   now=clock.now(), chunk_rows=15)  # several chunks, as for a real city
        assert published.version == 1 and len(published.tokens) > 4
        for shop in shops:
            add_device(shop.device_id, shop.public_pem(), shop_id=f"SHOP-{shop.device_id[-4:]}", now=clock.now())
        runner = MqttRunner(CentralConsumer(central_signer, clock), "127.0.0.1", mosquitto.port,
                            client_id="central-e2e-1", group="city", snapshot_every=0.5)
        runner.start()
        assert runner.connected.wait(10)
        # devices with no ledger connect, ask for a snapshot, central republishes it, sync applies it
        for shop in shops:
            shop.start_sync()
        for shop in shops:
            wait_for(lambda s=shop: s.ledger_version() == 1, 40, what=f"{shop.device_id} applying ledger v1")
        assert shops[0].sql("SELECT count(*) FROM household") == [(40,)]
        # the shops go offline (sync stopped) and both sell to the same household
        for shop in shops:
            shop.stop_sync()
        holder = "SSN-6472-0000001"  # BPNT, Rp 200,000 a month
        sales = [shops[0].redeem(holder, {"BERAS5": 2}, clock), shops[1].redeem(holder, {"BERAS5": 2, "GULA1": 1}, clock)]
        assert [s.total for s in sales] == [145_000, 163_000]  # each shop alone stays within the allowance
        # back online: sync drains the outbox, central stores in PostgreSQL and acks end to end
        for shop in shops:
            shop.start_sync()
        for shop in shops:
            wait_for(lambda s=shop: s.outbox().get("acked", 0) >= 1 and not s.outbox().get("queued")
                     and not s.outbox().get("published"), 40, what=f"{shop.device_id} outbox acked")
        stored = {r.id: r for r in RedemptionRecord.select()}
        assert set(stored) == {s.redemption_id for s in sales}
        assert {stored[s.redemption_id].device for s in sales} == {"EW-E2E-0001", "EW-E2E-0002"}
        wait_for(lambda: DeviceState.get_by_id("EW-E2E-0001").ledger_version == 1, 15, what="heartbeat at central")
        findings = reconcile(now=clock.now())
        over = [f for f in findings if f.kind == "overspend"]
        assert [(f.subject, f.devices, f.amount) for f in over] == [(holder, "EW-E2E-0001,EW-E2E-0002", 108_000)], \
            to_table(findings, clock.now())
        assert Message.select().where(Message.kind == "redemption").count() == 2
    finally:
        for shop in shops:
            shop.stop_sync()
        if runner:
            runner.stop()
        db.close()


def test_shared_subscription_splits_load_and_nothing_is_lost(mosquitto, make_device, central_signer, clock, tmp_path):
    """Two consumers in one $share group: each gets part of the traffic; all stored once, all acked."""
    import paho.mqtt.client as mqtt

    from pos.signing import jws_verify

    db = open_central(tmp_path / "shared.db")
    dev = make_device("EW-SHR-0001")
    runners = []
    try:
        for i in range(2):
            r = MqttRunner(CentralConsumer(central_signer, clock), "127.0.0.1", mosquitto.port,
                           client_id=f"central-share-{i}", group="split", batch_max=20)
            r.start()
            assert r.connected.wait(10)
            runners.append(r)
        households = [f"SSN-6472-{i:07d}" for i in range(10, 30)]
        for k in range(60):
            dev.redeem(households[k % len(households)], {"TEMPE": 1})
        acks: queue.Queue = queue.Queue()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev-shr", protocol=mqtt.MQTTv5)
        client.on_message = lambda c, u, m: acks.put(m.payload)
        client.connect("127.0.0.1", mosquitto.port)
        client.subscribe("ewarung/v1/devices/EW-SHR-0001/ack", qos=1)
        client.loop_start()
        time.sleep(0.3)
        try:
            for m in dev.outbox():
                client.publish(m.topic, bytes(m.payload), qos=1).wait_for_publish(10)
            acked: set[str] = set()
            deadline = time.monotonic() + 20
            keys = {"central": demo_key("central").public_key()}
            while len(acked) < 60 and time.monotonic() < deadline:
                try:
                    acked.update(jws_verify(acks.get(timeout=1), keys, "ewarung-ack+jws").json()["ids"])
                except queue.Empty:
                    continue
            assert acked == {m.msg_id for m in dev.outbox()}
        finally:
            client.loop_stop()
            client.disconnect()
        assert RedemptionRecord.select().count() == 60
        stored = [r.totals.stored for r in runners]
        assert sum(stored) == 60 and all(n > 0 for n in stored), stored
    finally:
        for r in runners:
            r.stop()
        db.close()


def test_no_ack_until_durable_database_outage(pg_server, mosquitto, make_device, central_signer, clock):
    """PostgreSQL down: the message is neither acknowledged to the device nor PUBACKed; once the
    database is back, the broker's redelivery is stored once and acknowledged."""
    import paho.mqtt.client as mqtt

    from pos.signing import jws_verify

    db = open_central(pg_server.createdb("outage"))
    dev = make_device("EW-OUT-0001")
    dev.redeem(dev.city.notable["holder"], {"BERAS5": 1})
    runner = MqttRunner(CentralConsumer(central_signer, clock), "127.0.0.1", mosquitto.port,
                        client_id="central-outage", group="outage")
    acks: queue.Queue = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev-outage", protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: acks.put(m.payload)
    try:
        runner.start()
        assert runner.connected.wait(10)
        client.connect("127.0.0.1", mosquitto.port)
        client.subscribe("ewarung/v1/devices/EW-OUT-0001/ack", qos=1)
        client.loop_start()
        time.sleep(0.3)
        pg_server.pause()
        try:
            msg = dev.outbox()[0]
            client.publish(msg.topic, bytes(msg.payload), qos=1).wait_for_publish(10)
            wait_for(lambda: runner.totals.failures >= 1, 15, what="the failed store")
            with pytest.raises(queue.Empty):
                acks.get(timeout=2)
        finally:
            pg_server.resume()
        ack = jws_verify(acks.get(timeout=30), {"central": demo_key("central").public_key()}, "ewarung-ack+jws").json()
        assert ack["ids"] == [msg.msg_id]
        db.close()  # this thread's connection died with the server; reconnect
        db.connect()
        assert RedemptionRecord.select().count() == 1 and runner.totals.stored == 1
    finally:
        client.loop_stop()
        client.disconnect()
        runner.stop()
        db.close()
