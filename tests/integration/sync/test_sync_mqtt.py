"""The sync daemon against a real mosquitto: end-to-end acks, outages, kill -9, schemas."""

from __future__ import annotations

import signal
import time

import pytest
from mqtt_test_support import outbox_states, start_sync, validate_token, wait_for

from pos.redemption import RedemptionRequest
from pos.sample_city import household_id
from tests.card_fixtures import card_sale

pytestmark = pytest.mark.mqtt
DEVICE = "EW-TEST-0001"


def redeem_many(service, n: int, start: int = 0) -> None:
    """n one-item card sales (each with its card's proof) spread over ordinary households (10..60)."""
    for i in range(start, start + n):
        card_sale(service, RedemptionRequest(household_id(10 + i % 50), "kasir1", {"TAHU": 1}))


def queue_events(db, device, signer, n: int) -> None:
    """n sequenced device-fault events, written in one transaction (fast to prepare, same outbox path)."""
    from pos.db import durable_transaction
    from pos.outbox import enqueue

    with durable_transaction(db):
        for i in range(n):
            enqueue("event", {"event": "device_fault", "component": "printer", "detail": f"test {i}"},
                    device=device, signer=signer, created_at="2026-11-15T02:00:00.000Z")


def all_acked(env, total: int):
    return lambda: outbox_states(env["dir"] / "ewarung.db").get("acked", 0) == total


def stop(proc) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)


def test_end_to_end_ack_status_and_schemas(sync_env, service, city, schemas, city_stub):
    redeem_many(service, 20)
    sale = card_sale(service, RedemptionRequest(city.notable["holder"], "kasir1", {"BERAS5": 1}))
    service.void(sale.redemption_id, "wrong_quantity", "kasir1", "spv1")
    service.flag_problem(city.notable["revoked"], "moved", "pindah ke Balikpapan", "kasir1")
    total = 23
    city_side = city_stub(client_id="city-e2e")
    proc = start_sync(sync_env)
    try:
        wait_for(all_acked(sync_env, total), 30, what="all messages acknowledged by the city")
        wait_for(lambda: city_side.raw.get("heartbeat"), 15, what="a heartbeat")
    finally:
        stop(proc)
    assert sorted(city_side.first_seen) == list(range(1, total + 1))
    assert city_side.first_seen == sorted(city_side.first_seen), "drained in sequence order"
    kinds = set()
    for leaf in ("redemption", "void", "event", "status", "heartbeat"):
        for token in city_side.raw[leaf]:
            obj = validate_token(token, schemas)
            kinds.add(obj["schema"])
    assert {"ewarung.redemption/2", "ewarung.void/1", "ewarung.event/1", "ewarung.status/1",
            "ewarung.heartbeat/1"} <= kinds
    hb = validate_token(city_side.raw["heartbeat"][-1], schemas)["body"]
    assert hb["ledger"]["version"] == 1 and hb["reader"]["state"] == "unknown"
    statuses = [validate_token(t, schemas)["body"]["state"] for t in city_side.raw["status"]]
    assert "online" in statuses and statuses[-1] == "offline"  # clean stop publishes offline


def test_last_will_offline_on_kill(sync_env, service, schemas, city_stub):
    city_side = city_stub(client_id="city-will", ack=False)

    def states():
        return [validate_token(t, schemas)["body"]["state"] for t in list(city_side.raw.get("status", []))]

    proc = start_sync(sync_env)
    try:
        wait_for(lambda: "online" in states(), 15, what="online status")
        proc.kill()
        proc.wait()
        # the broker sees the TCP connection drop and publishes the will at once
        wait_for(lambda: states()[-1] == "offline" and states().index("online") < len(states()) - 1, 20,
                 what="the last will")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_broker_outage_then_all_delivered_in_order(sync_env, service, city_stub):
    broker = sync_env["broker"]
    city_side = city_stub(client_id="city-outage")
    proc = start_sync(sync_env)
    try:
        redeem_many(service, 40)
        wait_for(all_acked(sync_env, 40), 30, what="first batch acknowledged")
        broker.stop()
        redeem_many(service, 60, start=40)  # the shop keeps selling while the broker is down
        time.sleep(2)
        assert outbox_states(sync_env["dir"] / "ewarung.db").get("queued", 0) == 60
        broker.start()
        wait_for(all_acked(sync_env, 100), 90, what="everything acknowledged after the outage")
    finally:
        stop(proc)
    assert sorted(set(city_side.first_seen)) == list(range(1, 101)), "no gaps, nothing lost"
    assert city_side.first_seen == sorted(city_side.first_seen), "first arrivals in sequence order"


def test_broker_restarted_again_and_again(sync_env, service, db, signer, city_stub):
    """The broker goes away and comes back repeatedly mid-drain while the shop keeps selling."""
    import os
    import random

    cycles = int(os.environ.get("EWARUNG_BROKER_CYCLES", "6"))
    rng = random.Random(int(os.environ.get("EWARUNG_BROKER_SEED", "2026")))
    broker = sync_env["broker"]
    queue_events(db, service.device, signer, 5000)
    total = 5000
    unacked_at_outage = []
    city_side = city_stub(client_id="city-cycles")
    db_path = sync_env["dir"] / "ewarung.db"
    proc = start_sync(sync_env)
    try:
        for cycle in range(cycles):
            acked = outbox_states(db_path).get("acked", 0)
            wait_for(lambda a=acked: outbox_states(db_path).get("acked", 0) > a, 60, interval=0.02,
                     what=f"progress before outage {cycle + 1}")
            time.sleep(rng.uniform(0, 0.3))
            broker.stop()
            unacked_at_outage.append(total - outbox_states(db_path).get("acked", 0))
            redeem_many(service, 5, start=total)  # sales go on while the broker is down
            total += 5
            time.sleep(rng.uniform(0.2, 1.5))
            broker.start()
        wait_for(all_acked(sync_env, total), 120, what=f"all {total} acknowledged after {cycles} outages")
    finally:
        stop(proc)
    assert sorted(set(city_side.first_seen)) == list(range(1, total + 1)), "no gaps, nothing lost"
    assert sum(1 for n in unacked_at_outage if n > 0) >= 2, f"outages must hit a drain: {unacked_at_outage}"


def test_kill_9_mid_drain_loses_nothing(sync_env, service, db, signer, city_stub):
    n = 3000
    redeem_many(service, 100)
    queue_events(db, service.device, signer, n - 100)
    city_side = city_stub(client_id="city-kill", duplicate_acks=True)
    proc = start_sync(sync_env)
    db_path = sync_env["dir"] / "ewarung.db"
    wait_for(lambda: outbox_states(db_path).get("acked", 0) > 100, 30, interval=0.02, what="drain started")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    mid = outbox_states(db_path)
    assert mid.get("acked", 0) < n, f"kill came too late to test anything: {mid}"
    proc = start_sync(sync_env)
    try:
        wait_for(all_acked(sync_env, n), 60, what="all acknowledged after restart")
    finally:
        stop(proc)
    assert sorted(set(city_side.first_seen)) == list(range(1, n + 1))


def test_forged_ack_refused_with_event(sync_env, service, schemas, city_stub):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from pos.sample_city import demo_key
    from pos.signing import EcdsaSigner
    from sync.acks import build_ack

    redeem_many(service, 3)
    city_side = city_stub(client_id="city-forged", ack=False)
    proc = start_sync(sync_env)
    db_path = sync_env["dir"] / "ewarung.db"
    try:
        wait_for(lambda: outbox_states(db_path).get("published", 0) == 3, 20, what="published, not acked")
        forger = EcdsaSigner(demo_key("device"), "central")  # right kid, wrong key
        ids = list(city_side.seen_ids)
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="forger", protocol=mqtt.MQTTv5)
        c.connect("127.0.0.1", sync_env["broker"].port)
        c.loop_start()
        c.publish(f"ewarung/v1/devices/{DEVICE}/ack", build_ack(DEVICE, "2026-11-15T02:00:00.000Z", forger, ids=ids),
                  qos=1).wait_for_publish(5)
        wait_for(lambda: city_side.raw.get("event"), 20, what="an ack_refused event")
        c.loop_stop()
        c.disconnect()
    finally:
        stop(proc)
    ev = validate_token(city_side.raw["event"][0], schemas)
    assert ev["body"]["event"] == "ack_refused" and "does not verify" in ev["body"]["reason"]
    assert outbox_states(db_path).get("acked", 0) == 0
