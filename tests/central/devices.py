"""Devices for the central tests.

SimDevice: a real device database with the sample city and the real RedemptionService, so the
messages central receives are the ones a counter writes: a card sale is charged on the household's
DEMO card (prepare, the card's SPEND, commit with its proof), the card shared by every device of
the test as the household carries it from shop to shop. Shop + HeadlessCounter: a whole device
as deployed (config file, `ewarung sync` process, the counter session on the real PC/SC reader)."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card.fake import FakeCard
from pos.clock import FixedClock
from pos.db import OutboxMessage, database, open_database
from pos.device import DeviceIdentity
from pos.ledger import Ledger
from pos.policy import Policy
from pos.redemption import Collector, RedemptionRequest, RedemptionService
from pos.sample_city import build_sample_city
from pos.signing import EcdsaSigner, public_pem
from tests.card_fixtures import card_sale


class SimDevice:
    """A device database with the real RedemptionService, selling on the households' cards in `wallet`
    (household -> FakeCard, shared by the devices of one test; made at first use)."""

    def __init__(self, root: Path, device_id: str, now: datetime, *, households: int = 30, city: bool = True,
                 wallet: dict[str, FakeCard] | None = None) -> None:
        self.device_id = device_id
        self.wallet = {} if wallet is None else wallet
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.signer = EcdsaSigner(self.key, device_id)
        self.clock = FixedClock(now)
        self.identity = DeviceIdentity(device_id, f"SHOP-{device_id[-4:]}", f"Warung {device_id}", "Samarinda")
        self.db = open_database(root / f"{device_id}.db")
        if city:
            self.city = build_sample_city(self.db, households=households, now=now)
        self.service = RedemptionService(self.db, Ledger(), self.identity, self.signer, self.clock, Policy())

    def public_pem(self) -> bytes:
        return public_pem(self.key.public_key())

    def use(self) -> None:
        database.initialize(self.db)

    def card(self, household: str) -> FakeCard:
        """The household's card, the same one at every device of the test."""
        return self.wallet.setdefault(household, FakeCard(f"CARD-{household}", household))

    def redeem(self, household: str, basket: dict[str, int], cashier: str = "kasir1", **kw):
        """A sale as the counter makes it: on the household's card, or, with mode="override" (and
        an override_reason), the supervised sale without a card."""
        self.use()
        req = RedemptionRequest(household, cashier, basket, collector=Collector(), **kw)
        if req.mode == "override":
            return self.service.redeem(req)
        return card_sale(self.service, req, card=self.card(household))

    def outbox(self, state: str | None = None) -> list[OutboxMessage]:
        self.use()
        q = OutboxMessage.select().order_by(OutboxMessage.seq)
        if state:
            q = q.where(OutboxMessage.state == state)
        return list(q)

    def incoming(self):
        from sync.central.consumer import Incoming

        return [Incoming(m.topic, bytes(m.payload)) for m in self.outbox()]


ROOT = Path(__file__).resolve().parents[2]


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM (a clean stop, as systemd does), SIGKILL after 15 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Shop:
    """One device: data dir, own key, config pointing at the broker, `ewarung sync` as a process,
    and a counter (`HeadlessCounter`) built from the same config."""

    def __init__(self, root: Path, device_id: str, port: int) -> None:
        from pos.sample_city import write_demo_keys
        from pos.signing import private_pem

        self.device_id, self.dir = device_id, root / device_id
        write_demo_keys(self.dir / "keys")
        self.key = ec.generate_private_key(ec.SECP256R1())
        (self.dir / "keys" / "device.key.pem").write_bytes(private_pem(self.key))
        (self.dir / "keys" / "device.key.pem").chmod(0o600)
        (self.dir / "keys" / "device.pub.pem").write_bytes(self.public_pem())
        self.config = self.dir / "ewarung.toml"
        self.receipts = self.dir / "receipts.bin"
        self.config.write_text(
            f'[device]\nid = "{device_id}"\nshop_id = "SHOP-{device_id[-4:]}"\ndata_dir = "{self.dir}"\n'
            f'[reader]\nkind = "pcsc"\nname = "Virtual PCD 00 00"\nvirtual = true\n'
            f'[printer]\nkind = "file"\npath = "{self.receipts}"\n'
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
        if self.proc:
            stop_process(self.proc)

    def sql(self, query: str, *params) -> list:
        conn = sqlite3.connect(self.db_path, timeout=10)
        try:
            return conn.execute(query, params).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def ledger_version(self) -> int:
        rows = self.sql("SELECT version FROM ledger_state WHERE id = 1")
        return rows[0][0] if rows else 0

    def outbox(self) -> dict:
        return dict(self.sql("SELECT state, count(*) FROM outbox_message GROUP BY state"))

    def counter(self) -> HeadlessCounter:
        return HeadlessCounter(self.config)


class HeadlessCounter:
    """The counter app without Kivy: the production composition (pos.roots.counter.build_counter: the
    appliance, the PC/SC reader and the ESC/POS printer from the device config) driving
    the real CounterSession. The test thread plays the UI thread: card events and finished
    worker jobs are queued to it, exactly as the app marshals them with Clock.schedule_once."""

    def __init__(self, config_path: Path) -> None:
        from firmware_config.config import load_config
        from pos.roots.counter import build_counter, counter_session
        from pos.session import ThreadRunner

        # python-escpos keeps its capabilities pickle here (tests/conftest.py points it into .venv)
        Path(os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(config_path.parent / "escpos"))).mkdir(
            parents=True, exist_ok=True)
        config = load_config(config_path)
        parts = build_counter(config, demo=False, language="en")
        self.reader, self.appliance = parts.reader, parts.appliance
        self.inbox: queue.Queue = queue.Queue()
        self.runner = ThreadRunner(self.inbox.put)
        self.session = counter_session(parts, self.runner)
        self.reader.subscribe(lambda ev: self.inbox.put(lambda: self.session.card_event(ev)))
        self.reader.start()

    def until(self, pred, timeout: float = 15.0, what: str = "the counter"):
        """Run the UI thread's queue until `pred(session)` holds."""
        deadline = time.monotonic() + timeout
        while True:
            value = pred(self.session)
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                s = self.session
                raise AssertionError(f"timed out waiting for {what}: state {s.state}, notice {s.notice!r}, "
                                     f"error {s.error and (s.error.reason, s.error.fault, s.error.detail)}")
            try:
                job = self.inbox.get(timeout=min(left, 0.05))
            except queue.Empty:
                continue
            job()

    def ready(self) -> None:
        """The reader found and its slot empty: vpcd takes one card per slot, so a card left in it
        (or another test on the same pcscd without /tmp/ewarung-pcscd.lock) would hide ours."""
        self.until(lambda s: s.reader_ok and self.reader.reader, 10, "the PC/SC reader")
        end = time.monotonic() + 0.5  # the monitor's first status poll reports a card already there
        self.until(lambda s: s.card_present or time.monotonic() > end, 2, "the reader's first status")
        assert not self.session.card_present, (
            f"a card is already in {self.reader.reader}: is another test using pcscd without "
            "/tmp/ewarung-pcscd.lock, or a virtual card left running (`ewarung card remove`)?")

    def open_shift(self, cashier: str = "kasir1", pin: str = "1234") -> None:
        """Reader ready and empty, the cashier signed in: the idle screen."""
        from pos.session import State

        self.ready()
        assert self.session.sign_in(cashier, pin)
        self.state(State.IDLE, f"{cashier} signed in")

    def state(self, state, what: str = "", timeout: float = 15.0) -> None:
        self.until(lambda s: s.state == state and not s.busy, timeout, what or f"state {state}")

    def close(self) -> None:
        self.reader.stop()
        self.runner.shutdown()
        self.appliance.close()


def publish_status(port: int, shop: Shop, state: str = "offline") -> None:
    """The shop's signed, retained status, as its sync daemon would publish it. Whenever central
    subscribes, the broker hands it over: a readiness probe for `central serve` that needs no
    hook in central (a device asks for its first snapshot once per connection, so the test must
    not start devices before central listens)."""
    import paho.mqtt.client as mqtt

    from pos.clock import SystemClock
    from pos.messages import device_topic
    from sync.status import signed, status_body

    payload = signed("status", shop.device_id, status_body(state), EcdsaSigner(shop.key, shop.device_id),
                     SystemClock().now())
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{shop.device_id}", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(device_topic(shop.device_id, "status"), payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def clear_retained(port: int, topics: list[str]) -> None:
    """Delete retained messages (devices' status, ledger deltas and hotlists) on the session's
    shared broker with empty retained messages, so later tests' clients do not receive them."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-cleanup", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic in topics:
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def release_count(db: str) -> int:
    """How many ledger/hotlist releases the central database at `db` has recorded."""
    from sync.central.store import LedgerRelease, open_central

    central = open_central(db)
    try:
        return LedgerRelease.select().count()
    finally:
        central.close()
