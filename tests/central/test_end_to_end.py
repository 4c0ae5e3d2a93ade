"""End to end, every part real: PostgreSQL, mosquitto, pcscd + vpcd with the virtual card, the
device's `ewarung sync` process and the city's `ewarung central serve` process.

The city publishes a ledger with `ewarung central publish-ledger`; each device, having none, asks
for it and its sync daemon applies it. At each shop a cashier serves the household through the
COUNTER SESSION (pos.session.CounterSession, the state machine the Kivy screens drive; here the
test thread plays the UI thread) reading the household's card through pcscd + vpcd, entering the
PIN, building the basket and confirming; the receipt goes to the configured file printer and the
card's spend record is updated. The redemption crosses mosquitto; central stores it in
PostgreSQL and acknowledges it; the device marks its outbox row acknowledged.

Two shops, one household, both offline. vpcd gives pcscd one reader per slot and the counter
watches one, so the two shops' counters run one after the other on the same reader, each with
its own device database, config and sync process. With ONE card the card's own spend record stops
the double spend (the second shop sees what the first one wrote on the card). With TWO valid
cards (a replacement card issued while the old one is still in the family's hands, not yet
hotlisted) each shop stays within the allowance on its own; only central's reconciliation can
find the overspend, and it does. The city then hotlists the old card (`ewarung central hotlist
add --broker`): the counter refuses it as revoked; it lifts the block (`hotlist remove`): the
counter no longer calls the card revoked, but refuses it as used up, for by then central has
published both shops' sales as confirmed spending to every device.

Central is started and known to be subscribed (it stored a probe status) before any device
connects: a device without a ledger asks for a snapshot once per connection.
"""

from __future__ import annotations

import queue
import time
from datetime import date

import pytest

from hardware.card.cardfile import CardFile
from pos.messages import device_topic, ledger_topic
from pos.refusals import Reason
from pos.sample_city import demo_key, write_beneficiary_csv
from sync.central.consumer import CentralConsumer, MqttRunner
from sync.central.report import reconcile, to_table
from sync.central.store import DeviceState, Message, RedemptionRecord, open_central
from tests.central.devices import ROOT, Shop, clear_retained, publish_status, stop_process
from tests.conftest import run_ewarung as ewarung

pytestmark = pytest.mark.mqtt
PIN = "123456"
HOLDER = "SSN-6472-0000001"  # BPNT, Rp 200,000 a month, in the sample city's list


def wait_for(pred, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def pcsc(tmp_path):
    from tests.integration.pcsc_stack import PcscStack

    stack = PcscStack()
    stack.run_dir = tmp_path / "run"
    stack.run_dir.mkdir()
    stack.start()
    yield stack
    stack.shutdown()


class CentralProcess:
    """`ewarung central serve` against PostgreSQL and the test broker, as the city runs it."""

    def __init__(self, db_url: str, port: int, log_path) -> None:
        import os
        import subprocess
        import sys

        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pos.cli.main", "central", "--db", db_url, "serve",
             "--broker", f"127.0.0.1:{port}", "--http", "off", "--group", "city", "--client-id", "central-e2e"],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=self.log, stderr=self.log, cwd=ROOT)

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


def _issue(path, card_id: str, household: str, today: date):
    from hardware.card.issuing import IssueRequest, issue

    issue(path, IssueRequest(card_id, household, date(today.year, 1, 1), date(today.year + 1, 12, 31), pin=PIN),
          demo_key("issuer"))
    return path


def _serve(counter, pcsc, cardfile, basket: dict[str, int]):
    """A cashier at the counter: card in, holder collects, PIN, basket, confirm, card out."""
    from pos.session import State

    s = counter.session
    card = pcsc.insert(cardfile)
    try:
        counter.state(State.HOUSEHOLD, "the card read, authenticated and decided")
        assert s.entitlement.household.id == HOLDER
        assert s.choose_collector("holder")
        counter.state(State.PIN)
        assert s.submit_pin(PIN)
        counter.state(State.BASKET, "the PIN verified by the card")
        for code, qty in basket.items():
            for _ in range(qty):
                assert s.add(code), (code, s.notice)
        assert s.to_confirm() and s.confirm()
        counter.state(State.DONE, "the sale committed, card updated, receipt printed")
        sale = s.sale
        assert sale.card_updated and sale.printed, sale
        assert s.finish()
    finally:
        pcsc.remove(card)
    counter.until(lambda x: not x.card_present, 10, "the card pulled")
    return sale


def _refusal(shop, pcsc, cardfile):
    """Sign in at the shop's counter, tap the card: (refusal reason or None if served, remaining)."""
    from pos.session import State

    counter = shop.counter()
    try:
        counter.open_shift()
        card = pcsc.insert(cardfile)
        try:
            counter.until(lambda s: s.state in (State.HOUSEHOLD, State.ERROR) and not s.busy, 15, "the decision")
            s = counter.session
            return (s.error.reason if s.state == State.ERROR else None), s.remaining
        finally:
            pcsc.remove(card)
    finally:
        counter.close()


@pytest.mark.pcsc
@pytest.mark.slow
def test_ledger_to_counter_card_to_central_and_back(pg_server, mosquitto, pcsc, tmp_path):
    from pos import cashiers
    from pos.clock import SystemClock
    from pos.db import open_database
    from pos.period import WITA
    from pos.session import State

    now = SystemClock().now()
    today = now.astimezone(WITA).date()
    db_url = pg_server.createdb("e2e")
    shops = [Shop(tmp_path, "EW-E2E-0001", mosquitto.port), Shop(tmp_path, "EW-E2E-0002", mosquitto.port)]
    central = None
    db = None
    try:
        # the city: beneficiary list -> signed ledger v1 (several chunks, as for a real city), devices registered
        csv_path = tmp_path / "list.csv"
        write_beneficiary_csv(csv_path, households=40, seed=2026, now=now)
        out = ewarung("central", "--db", db_url, "publish-ledger", str(csv_path), "--chunk-rows", "15")
        assert out.returncode == 0, out.stderr
        assert "ledger v1 (snapshot): 40 household rows" in out.stdout, out.stdout
        for shop in shops:
            (shop.dir / "device.pub.pem").write_bytes(shop.public_pem())
            out = ewarung("central", "--db", db_url, "device", "add", shop.device_id,
                          "--key", str(shop.dir / "device.pub.pem"), "--shop", f"SHOP-{shop.device_id[-4:]}")
            assert out.returncode == 0, out.stderr
        db = open_central(db_url)
        central = CentralProcess(db_url, mosquitto.port, tmp_path / "central.log")
        publish_status(mosquitto.port, shops[0])  # retained: central gets it once it has subscribed
        wait_for(lambda: DeviceState.get_or_none(DeviceState.device == shops[0].device_id), 30,
                 what="central serve subscribed and storing")
        # devices with no ledger connect, ask for a snapshot, central republishes it, sync applies it
        for shop in shops:
            shop.start_sync()
        for shop in shops:
            wait_for(lambda s=shop: s.ledger_version() == 1, 60, what=f"{shop.device_id} applying ledger v1")
        assert shops[0].sql("SELECT count(*) FROM household") == [(40,)]
        for shop in shops:  # the shop's cashier (provisioning's job on a real device)
            shop_db = open_database(shop.db_path)
            cashiers.add_cashier("kasir1", "Kasir Satu", "1234")
            shop_db.close()

        # shop 1, online: the counter serves the household's card; central acknowledges the sale
        card_a = _issue(tmp_path / "card-a.json", f"CARD-{HOLDER}-A", HOLDER, today)
        counter = shops[0].counter()
        try:
            counter.open_shift()
            first = _serve(counter, pcsc, card_a, {"BERAS5": 2})
        finally:
            counter.close()
        assert first.total == 145_000 and first.remaining_after == 55_000
        assert CardFile.load(card_a).memory.spent == 145_000  # the card's own spend record
        assert shops[0].receipts.stat().st_size > 0  # the receipt went to the configured printer
        wait_for(lambda: shops[0].outbox().get("acked", 0) >= 1, 40, what="EW-E2E-0001 outbox acked")
        row = shops[0].sql("SELECT state FROM outbox_message m WHERE m.kind = 'redemption'")
        assert row == [("acked",)], row
        stored = RedemptionRecord.get_by_id(first.redemption_id)
        assert (stored.device, stored.card_id, stored.total, stored.household) == \
            ("EW-E2E-0001", f"CARD-{HOLDER}-A", 145_000, HOLDER)

        # both shops go offline (sync stopped)
        for shop in shops:
            shop.stop_sync()
        counter = shops[1].counter()
        try:
            counter.open_shift()
            # the same card at another offline shop: its spend record says what shop 1 sold
            card = pcsc.insert(card_a)
            try:
                counter.state(State.HOUSEHOLD, "card A decided at shop 2")
                assert counter.session.remaining == 55_000
                assert counter.session.cancel()
            finally:
                pcsc.remove(card)
            counter.until(lambda s: not s.card_present, 10, "card A pulled")
            # a second valid card of the same household (replacement, old one not hotlisted): shop 2
            # knows nothing of shop 1's sale and the new card has no spend, so it serves again
            card_b = _issue(tmp_path / "card-b.json", f"CARD-{HOLDER}-B", HOLDER, today)
            second = _serve(counter, pcsc, card_b, {"BERAS5": 2, "GULA1": 1})
        finally:
            counter.close()
        assert second.total == 163_000 and second.remaining_after == 37_000
        assert shops[1].outbox().get("queued", 0) >= 1  # offline: waiting in the outbox

        # back online: sync drains, central stores in PostgreSQL and acks end to end
        for shop in shops:
            shop.start_sync()
        for shop in shops:
            wait_for(lambda s=shop: s.outbox().get("acked", 0) >= 1 and not s.outbox().get("queued")
                     and not s.outbox().get("published"), 60, what=f"{shop.device_id} outbox acked")
        assert shops[1].sql("SELECT state FROM outbox_message WHERE kind = 'redemption'") == [("acked",)]
        stored = {r.id: r for r in RedemptionRecord.select()}
        assert set(stored) == {first.redemption_id, second.redemption_id}
        assert stored[second.redemption_id].card_id == f"CARD-{HOLDER}-B"
        # central publishes what it stored as confirmed-spending deltas: the ledger moves on from v1
        wait_for(lambda: getattr(DeviceState.get_or_none(DeviceState.device == "EW-E2E-0002"), "ledger_version", 0) > 1,
                 20, what="EW-E2E-0002's heartbeat at central")
        findings = reconcile(now=SystemClock().now())
        over = [f for f in findings if f.kind == "overspend"]
        assert [(f.subject, f.devices, f.amount) for f in over] == [(HOLDER, "EW-E2E-0001,EW-E2E-0002", 108_000)], \
            to_table(findings, SystemClock().now())
        assert Message.select().where(Message.kind == "redemption").count() == 2
        out = ewarung("central", "--db", db_url, "report")
        assert HOLDER in out.stdout and out.returncode == 1, out.stdout + out.stderr  # overspend is critical

        # the city blocks the old card, then lifts the block: both reach the counter through mosquitto
        old_card = f"CARD-{HOLDER}-A"
        hot = "SELECT reason FROM hotlist_entry WHERE card_id = ?"
        out = ewarung("central", "--db", db_url, "hotlist", "add", old_card, "--reason", "kartu diganti",
                      "--broker", f"127.0.0.1:{mosquitto.port}")
        assert out.returncode == 0, out.stderr
        wait_for(lambda: shops[1].sql(hot, old_card) == [("kartu diganti",)], 30, what="the hotlist at EW-E2E-0002")
        assert _refusal(shops[1], pcsc, card_a) == (Reason.CARD_REVOKED, 0)
        out = ewarung("central", "--db", db_url, "hotlist", "remove", old_card,
                      "--broker", f"127.0.0.1:{mosquitto.port}")
        assert out.returncode == 0, out.stderr
        wait_for(lambda: shops[1].sql(hot, old_card) == [], 30, what="the block lifted at EW-E2E-0002")
        # the card is no longer refused as revoked; the city confirmed both shops' sales to every device, so
        # shop 2 now knows the household spent Rp 308,000 of its Rp 200,000 and serves it nothing more
        wait_for(lambda: len(shops[1].sql("SELECT redemption_id FROM confirmed_redemption")) == 2, 30,
                 what="both shops' sales confirmed at EW-E2E-0002")
        assert _refusal(shops[1], pcsc, card_a) == (Reason.ALLOWANCE_USED_UP, 0)
    finally:
        for shop in shops:
            shop.stop_sync()
        clear_retained(mosquitto.port, [device_topic(shop.device_id, "status") for shop in shops]
                       + [ledger_topic("samarinda", leaf) for leaf in ("delta", "hotlist")])
        if central:
            central.stop()
        if db:
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
