"""A device reaches the city's current ledger whatever it missed (issue 17), on the real stacks:
mosquitto, `ewarung central serve` and the device's `ewarung sync` process.

The city published a snapshot (v1) and two deltas (v2, v3) over eight days and blocked two cards
(hotlist serials 1 and 2; only the newest stays retained). A device set up today receives the
retained delta v3, which does not fit the nothing it has, and asks; central answers with a
snapshot built now from its database: version 3, both blocked cards, and what households spent
at other shops. Within a minute the device sells, refuses both cards, and counts the other
shops' spending; a second device, online, counts the first one's sale within seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest

from pos.clock import SystemClock, iso
from pos.messages import device_topic
from pos.sample_city import demo_key, write_beneficiary_csv
from pos.signing import EcdsaSigner
from tests.card_fixtures import card_sale
from tests.central.devices import ROOT, Shop, clear_retained, stop_process
from tests.soak_rig import wait_for

pytestmark = pytest.mark.mqtt
CITY = "samarinda"
LEDGER = EcdsaSigner(demo_key("ledger"), "ledger")
BLOCKED = ("CARD-SSN-6472-0000002", "CARD-SSN-6472-0000003")


def retain(port: int, messages: list[tuple[str, bytes]], retained: bool = True) -> None:
    """Publish as `central publish-ledger --broker` does: deltas and hotlists retained."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="city-publisher", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1, retain=retained).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def start_central(db, port: int, log_path) -> subprocess.Popen:
    log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        [sys.executable, "-m", "pos.cli.main", "central", "--db", str(db), "serve", "--broker", f"127.0.0.1:{port}",
         "--http", "off", "--group", "", "--client-id", "central-convergence"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=log, cwd=ROOT)


def city_history(db, csv, shops: list[Shop], now: datetime) -> list[tuple[str, bytes]]:
    """Eight days of the city's releases, as recorded in its database; what stays retained."""
    from sync.central.ledger_publish import publish_ledger
    from sync.central.store import Device, RedemptionRecord, open_central

    central = open_central(db)
    try:
        for shop in shops:
            Device.create(id=shop.device_id, public_key_pem=shop.public_pem().decode(), added_at=iso(now))
        kw = {"signer": LEDGER, "city": CITY, "csv_path": csv}
        publish_ledger(now=now - timedelta(days=8), kind="snapshot", **kw)
        hot1 = publish_ledger(None, signer=LEDGER, city=CITY, now=now - timedelta(days=7), kind="hotlist",
                              hotlist=[(BLOCKED[0], "lost")])
        publish_ledger(now=now - timedelta(days=5), kind="delta", **kw)
        hot2 = publish_ledger(None, signer=LEDGER, city=CITY, now=now - timedelta(days=3), kind="hotlist",
                              hotlist=[(BLOCKED[1], "stolen")])
        v3 = publish_ledger(now=now - timedelta(days=2), kind="delta", **kw)
        assert (hot1.version, hot2.version, v3.version) == (1, 2, 3)
        # another shop's sale the city stored this period
        from pos.period import Period

        RedemptionRecord.create(id="other-shop-sale", msg_id="m-1", device="EW-OTHER-0001", seq=1,
                                household="SSN-6472-0000001", period=str(Period.of(now)), total=150_000,
                                items='{"BERAS5": 2}', created_at=iso(now - timedelta(hours=1)))
        return [*v3.messages(CITY), *hot2.messages(CITY)]
    finally:
        central.close()


def test_new_device_after_snapshot_and_two_deltas_sells_within_a_minute(mosquitto, tmp_path):
    from pos.db import database, open_database
    from pos.device import DeviceIdentity
    from pos.ledger import Ledger
    from pos.policy import Policy
    from pos.redemption import Collector, RedemptionRequest, RedemptionService
    from pos.refusals import Refusal

    now = datetime.now(UTC)
    csv = tmp_path / "households.csv"
    write_beneficiary_csv(csv, households=40, seed=7, now=now - timedelta(days=8))
    db = tmp_path / "central.db"
    # ids of their own: the broker keeps a device's session (and QoS 1 messages queued for it, such as
    # test_fleet_convergence's hotlists for its EW-CONV-* shops) across the tests sharing it
    shop, other = Shop(tmp_path, "EW-LCONV-0001", mosquitto.port), Shop(tmp_path, "EW-LCONV-0002", mosquitto.port)
    retained = city_history(db, csv, [shop, other], now)
    topics = [t for t, _ in retained]
    central = start_central(db, mosquitto.port, tmp_path / "central.log")
    try:
        retain(mosquitto.port, retained)
        started = time.monotonic()
        shop.start_sync()
        other.start_sync()
        wait_for(lambda: shop.ledger_version() >= 3, 60, "the new device on ledger v3")
        took = time.monotonic() - started
        blocked = wait_for(lambda: shop.sql("SELECT card_id FROM hotlist_entry ORDER BY card_id"), 10, "the hotlist")
        assert [c for (c,) in blocked] == list(BLOCKED)
        device_db = open_database(shop.db_path)
        database.initialize(device_db)
        try:
            ledger = Ledger()
            assert all(ledger.hotlist_reason(c) for c in BLOCKED)
            assert [r.redemption_id for r in ledger.confirmed("SSN-6472-0000001", ledger_period(now))] == [
                "other-shop-sale"]
            identity = DeviceIdentity(shop.device_id, "SHOP-0001", "Warung", "Samarinda")
            signer = EcdsaSigner(shop.key, shop.device_id)
            service = RedemptionService(device_db, ledger, identity, signer, SystemClock(), Policy())
            with pytest.raises(Refusal, match="remaining 50000"):  # Rp 150,000 spent at another shop
                card_sale(service, RedemptionRequest("SSN-6472-0000001", "kasir1", {"BERAS5": 1},
                                                     collector=Collector()))
            sale = card_sale(service, RedemptionRequest("SSN-6472-0000001", "kasir1", {"TELUR10": 1},
                                                        collector=Collector()))
            assert sale.remaining_after == 200_000 - 150_000 - 27_000
        except Refusal as exc:
            raise AssertionError(f"the device refused the sale: {exc.reason} {exc}") from None
        finally:
            device_db.close()
        assert took < 60, took
        wait_for(lambda: other.sql("SELECT 1 FROM confirmed_redemption WHERE redemption_id = ?", sale.redemption_id),
                 20, "the other device counting this sale")
        wait_for(lambda: converged(db, [shop.device_id, other.device_id]), 30, "both devices reported converged")
    finally:
        other.stop_sync()
        shop.stop_sync()
        stop_process(central)
        # the shops' retained status too: a later `central serve` on this broker would refuse them
        clear_retained(mosquitto.port, [*topics, *(device_topic(s.device_id, "status") for s in (shop, other))])


def converged(db, devices: list[str]) -> bool:
    """Both devices' heartbeats reported the city's hotlist serial and ledger digest."""
    from sync.central.convergence import divergences
    from sync.central.store import DeviceLedger, open_central

    central = open_central(db)
    try:
        reported = {r.device for r in DeviceLedger.select()}
        return set(devices) <= reported and not divergences()
    finally:
        central.close()


def ledger_period(now: datetime) -> str:
    from pos.period import Period

    return str(Period.of(now))
