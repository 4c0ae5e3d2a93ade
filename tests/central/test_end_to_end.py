"""End to end with real mosquitto and real PostgreSQL: central publishes a ledger, the device
applies it, a sale is redeemed, it crosses MQTT, central stores and acks it, the device marks
the outbox row acked. (Card + counter session replace RedemptionService.redeem at merge.)"""

from __future__ import annotations

import queue
import time

import pytest

from pos.db import LedgerState, OutboxMessage
from pos.sample_city import demo_key, write_beneficiary_csv
from pos.signing import EcdsaSigner
from sync.central.consumer import CentralConsumer, MqttRunner
from sync.central.ledger_publish import publish_ledger
from sync.central.publish import publish_retained
from sync.central.registry import add_device
from sync.central.report import reconcile
from sync.central.store import Message, RedemptionRecord, open_central
from tests.central.device_side import DeviceLink, apply_snapshot

pytestmark = pytest.mark.mqtt

LEDGER_KEYS = {"ledger": demo_key("ledger").public_key()}
CENTRAL_KEYS = {"central": demo_key("central").public_key()}


def _wait(pred, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_ledger_to_device_to_central_and_back(pg_server, mosquitto, make_device, central_signer, clock, tmp_path):
    db = open_central(pg_server.createdb("e2e"))
    runner = None
    links = []
    try:
        # the city publishes its ledger from the beneficiary list
        csv_path = tmp_path / "list.csv"
        write_beneficiary_csv(csv_path, households=40, seed=2026, now=clock.now())
        result = publish_ledger(csv_path, signer=EcdsaSigner(demo_key("ledger"), "ledger"), city="samarinda",
                                now=clock.now())
        publish_retained(f"127.0.0.1:{mosquitto.port}", "samarinda", result)
        # two devices, registered at central; each starts from a stale sample ledger
        a, b = make_device("EW-E2E-0001", register=False), make_device("EW-E2E-0002", register=False)
        for dev in (a, b):
            add_device(dev.device_id, dev.public_pem(), shop_id=dev.identity.shop_id, now=clock.now())
        consumer = CentralConsumer(central_signer, clock)
        runner = MqttRunner(consumer, "127.0.0.1", mosquitto.port, client_id="central-e2e-1", group="city")
        runner.start()
        assert runner.connected.wait(10)
        for dev in (a, b):
            dev.use()
            link = DeviceLink(mosquitto.port, dev.device_id, "samarinda", CENTRAL_KEYS)
            links.append(link)
            topic, token = link.inbox.get(timeout=10)  # the retained snapshot
            assert topic == "ewarung/v1/ledger/samarinda/snapshot"
            assert apply_snapshot(dev.db, token, LEDGER_KEYS, clock.now()) == 1
            assert LedgerState.get_by_id(1).version == 1 and LedgerState.get_by_id(1).kind == "snapshot"
        # both shops offline: the same household spends at each (card/counter session wired at merge)
        holder = "SSN-6472-0000001"
        sales = [a.redeem(holder, {"BERAS5": 2}), b.redeem(holder, {"BERAS5": 2, "GULA1": 1})]
        # back online: the outbox drains over MQTT, central stores in PostgreSQL and acks
        for dev, link in zip((a, b), links, strict=True):
            dev.use()
            assert link.publish_outbox() == 1
            topic, ack = link.inbox.get(timeout=15)
            assert topic == f"ewarung/v1/devices/{dev.device_id}/ack"
            assert link.apply_ack(ack, clock.now()) == 1
            assert [r.state for r in OutboxMessage.select()] == ["acked"]
        assert {r.id for r in RedemptionRecord.select()} == {s.redemption_id for s in sales}
        # a redelivery (device restarted before it saw the ack) is stored once and acked again
        a.use()
        OutboxMessage.update(state="queued").execute()
        links[0].publish_outbox()
        _, again = links[0].inbox.get(timeout=15)
        assert links[0].apply_ack(again, clock.now()) == 1
        assert _wait(lambda: runner.totals.duplicates == 1)
        assert Message.select().count() == 2 and RedemptionRecord.select().count() == 2
        over = [f for f in reconcile(now=clock.now()) if f.kind == "overspend"]
        assert [(f.subject, f.devices, f.amount) for f in over] == [(holder, "EW-E2E-0001,EW-E2E-0002", 108_000)]
    finally:
        for link in links:
            link.close()
        if runner:
            runner.stop()
        db.close()


def test_shared_subscription_splits_load_and_nothing_is_lost(mosquitto, make_device, central_signer, clock, tmp_path):
    """Two consumers in one $share group: each gets part of the traffic; all stored once, all acked."""
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
        time.sleep(0.3)
        households = [f"SSN-6472-{i:07d}" for i in range(10, 30)]
        for k in range(60):
            dev.redeem(households[k % len(households)], {"TEMPE": 1})
        dev.use()
        link = DeviceLink(mosquitto.port, dev.device_id, "samarinda", CENTRAL_KEYS)
        try:
            assert link.publish_outbox() == 60
            acked = 0
            deadline = time.monotonic() + 20
            while acked < 60 and time.monotonic() < deadline:
                try:
                    topic, token = link.inbox.get(timeout=1)
                except queue.Empty:
                    continue
                if topic.endswith("/ack"):
                    acked += link.apply_ack(token, clock.now())
            assert acked == 60
        finally:
            link.close()
        assert RedemptionRecord.select().count() == 60
        stored = [r.totals.stored for r in runners]
        assert sum(stored) == 60 and all(n > 0 for n in stored), stored
    finally:
        for r in runners:
            r.stop()
        db.close()
