"""Every device converges on the city's ledger, whatever happens to it (issue 17), on the real
stacks: several `ewarung sync` processes, one mosquitto, one `ewarung central serve`.

Devices join at random times, lose their connection (a loopback TCP proxy each, cut and brought
back), are killed with -9 and restarted, while the city publishes snapshots, deltas, hotlist
updates and (through central) the spending it stores. Seeded; `EWARUNG_CONVERGENCE_SECONDS`
sets how long the turbulence lasts (`make soak` runs it longer), `EWARUNG_CONVERGENCE_SEED` the
seed. At the end every device holds the city's version and ledger digest, and no device ever
lost a card block once it had it (it would have accepted the card again).
"""

from __future__ import annotations

import csv
import os
import random
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pos.clock import iso
from pos.period import Period
from pos.sample_city import demo_key, write_beneficiary_csv
from pos.signing import EcdsaSigner
from sync.ledger_format import live_digest
from tests.central.devices import Shop, clear_retained, stop_process
from tests.central.test_ledger_convergence import retain, start_central
from tests.integration.sync.tcp_proxy import CuttableProxy
from tests.soak_rig import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
CITY = "samarinda"
LEDGER = EcdsaSigner(demo_key("ledger"), "ledger")
DEVICES = 4
SECONDS = float(os.environ.get("EWARUNG_CONVERGENCE_SECONDS", "25"))
SEED = int(os.environ.get("EWARUNG_CONVERGENCE_SEED", "1707"))


class City:
    """The city office: edits the beneficiary list and publishes, as `publish-ledger --broker` does."""

    def __init__(self, db: Path, csv_path: Path, port: int, rng: random.Random) -> None:
        from sync.central.store import open_central

        self.db, self.csv, self.port, self.rng = db, csv_path, port, rng
        self.central = open_central(db)
        self.blocked: list[str] = []
        self.topics: set[str] = set()
        self.sales = 0

    def publish(self, kind: str, **kw) -> None:
        from sync.central.ledger_publish import publish_ledger
        from sync.central.store import write_transaction

        with write_transaction():  # take the write lock first: central serve writes the same file
            result = publish_ledger(self.csv if kind != "hotlist" else None, signer=LEDGER, city=CITY,
                                    now=datetime.now(UTC), kind=kind, **kw)
        messages = result.messages(CITY)
        if kind == "snapshot":  # not retained: for the devices online now
            retain(self.port, messages, retained=False)
        else:
            retain(self.port, messages)
            self.topics.update(t for t, _ in messages)

    def edit_households(self) -> None:
        """Change a few rows of the list (status, name), as a month's corrections would."""
        rows = list(csv.reader(self.csv.open(encoding="utf-8")))
        for row in self.rng.sample(rows[1:], 3):
            row[4] = "suspended" if row[4] == "active" else "active"
            row[1] = row[1].rstrip("*") + ("*" if self.rng.random() < 0.5 else "")
        with self.csv.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(rows)

    def block_card(self) -> None:
        card = f"CARD-SSN-6472-{len(self.blocked) + 100:07d}"
        self.blocked.append(card)
        self.publish("hotlist", hotlist=[(card, "lost")])

    def store_sale(self) -> None:
        """A sale some other shop sent, stored by central: its next confirmed-spending delta carries it."""
        from sync.central.store import RedemptionRecord, write_transaction

        self.sales += 1
        now = datetime.now(UTC)
        with write_transaction():
            RedemptionRecord.create(id=f"sale-{self.sales}", msg_id=f"m-{self.sales}", device="EW-ELSEWHERE",
                                    seq=self.sales, household=f"SSN-6472-{self.rng.randint(1, 40):07d}",
                                    period=str(Period.of(now)), total=8_000, items='{"TEMPE": 1}', created_at=iso(now))

    def current(self) -> tuple[int, str]:
        from sync.central.ledger_publish import city_digest, current_version

        return current_version()[0], city_digest()


class Device:
    """One shop's `ewarung sync` behind its own cuttable link."""

    def __init__(self, root: Path, n: int, broker_port: int) -> None:
        self.proxy = CuttableProxy(broker_port)
        self.shop = Shop(root, f"EW-CONV-{n:04d}", self.proxy.port)
        self.started = False
        self.cut_until = 0.0
        self.blocks_seen: set[str] = set()

    def start(self) -> None:
        self.shop.start_sync()
        self.started = True

    def kill(self) -> None:
        self.shop.proc.kill()
        self.shop.proc.wait()

    def hotlist(self) -> set[str] | None:
        rows = self.shop.sql("SELECT card_id FROM hotlist_entry")
        return {c for (c,) in rows} if rows or self.shop.ledger_version() else None

    def digest(self) -> str:
        conn = sqlite3.connect(self.shop.db_path, timeout=10)
        try:
            return live_digest(conn)
        except sqlite3.OperationalError:
            return ""
        finally:
            conn.close()


def test_devices_converge_through_joins_cuts_and_kills(mosquitto, tmp_path):
    from sync.central.store import Device as Registered

    rng = random.Random(SEED)
    csv_path = tmp_path / "households.csv"
    write_beneficiary_csv(csv_path, households=40, seed=SEED, now=datetime.now(UTC))
    city = City(tmp_path / "central.db", csv_path, mosquitto.port, rng)
    devices = [Device(tmp_path, n + 1, mosquitto.port) for n in range(DEVICES)]
    for d in devices:
        Registered.create(id=d.shop.device_id, public_key_pem=d.shop.public_pem().decode(), added_at=iso(datetime.now(UTC)))
    city.publish("snapshot")
    central = start_central(city.db, mosquitto.port, tmp_path / "central.log")
    lost: list[str] = []
    try:
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            time.sleep(rng.uniform(0.3, 1.2))
            action = rng.choice(["delta", "delta", "hotlist", "hotlist", "snapshot", "sale", "sale",
                                 "join", "join", "cut", "cut", "kill"])
            idle = [d for d in devices if not d.started]
            running = [d for d in devices if d.started]
            if action == "delta":
                city.edit_households()
                city.publish("delta")
            elif action == "snapshot":
                city.publish("snapshot")
            elif action == "hotlist":
                city.block_card()
            elif action == "sale":
                city.store_sale()
            elif action == "join" and idle:
                rng.choice(idle).start()
            elif action == "cut" and running:
                d = rng.choice(running)
                d.proxy.down, d.cut_until = True, time.monotonic() + rng.uniform(1, 5)
                d.proxy.cut()
            elif action == "kill" and running:
                d = rng.choice(running)
                d.kill()
                time.sleep(rng.uniform(0, 1))
                d.start()
            for d in devices:
                if d.proxy.down and time.monotonic() > d.cut_until:
                    d.proxy.down = False
                lost += check_blocks(d)
        for d in devices:
            d.proxy.down = False
            if not d.started:
                d.start()

        def converged() -> bool:
            nonlocal lost
            version, digest = city.current()
            for d in devices:
                lost += check_blocks(d)
            return all(d.shop.ledger_version() == version and d.digest() == digest for d in devices)

        wait_for(converged, 60, "every device on the city's version and digest")
        assert not lost, lost
        for d in devices:
            assert set(city.blocked) <= (d.hotlist() or set()), d.shop.device_id
    finally:
        for d in devices:
            d.shop.stop_sync()
            d.proxy.close()
        stop_process(central)
        city.central.close()
        clear_retained(mosquitto.port, sorted(city.topics))


def check_blocks(d: Device) -> list[str]:
    """A card block this device once had and has no longer (the test never lifts a block)."""
    now = d.hotlist()
    if now is None:
        return []
    gone = sorted(d.blocks_seen - now)
    d.blocks_seen |= now
    return [f"{d.shop.device_id} lost the block of {c}" for c in gone]
