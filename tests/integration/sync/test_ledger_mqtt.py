"""Ledger updates over a real broker: refusals with events, snapshot resume across kill -9."""

from __future__ import annotations

import signal
import sqlite3
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from mqtt_test_support import start_sync, validate_token, wait_for
from paho.mqtt.enums import CallbackAPIVersion

from pos.clock import iso
from pos.sample_city import demo_key
from pos.signing import EcdsaSigner, canonical_json, jws_sign
from sync.ledger_format import SnapshotBuilder, build_delta, build_hotlist, snapshot_tables_from_db

pytestmark = pytest.mark.mqtt
DEVICE = "EW-TEST-0001"
LEDGER = EcdsaSigner(demo_key("ledger"), "ledger")


def now() -> datetime:
    return datetime.now(UTC)


class Publisher:
    def __init__(self, port: int) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-ledger-publisher", protocol=mqtt.MQTTv5)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def send(self, leaf: str, token: bytes) -> None:
        self.c.publish(f"ewarung/v1/ledger/samarinda/{leaf}", token, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def ledger_version(db_path) -> int:
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        row = conn.execute("SELECT version FROM ledger_state WHERE id=1").fetchone()
        return row[0] if row else 0
    finally:
        conn.close()


def test_bad_ledger_updates_refused_with_events(sync_env, schemas, city_stub):
    port = sync_env["broker"].port
    city_side = city_stub(client_id="city-ledger-refusals", ack=False)
    pub = Publisher(port)
    proc = start_sync(sync_env)
    db_path = sync_env["dir"] / "ewarung.db"
    t0, t1 = iso(now()), iso(now() + timedelta(days=2))
    good = build_delta("samarinda", 2, 1, t0, t1, LEDGER, upserts={"plans": [["NEW", "Baru", 1000, 0]]})
    for token in (good, build_hotlist("samarinda", 1, t0, t1, LEDGER, add=[("CARD-Z", "lost", t0)])):
        validate_token(token, schemas)
    head, payload, sig = good.split(b".")
    bad = {
        "unsigned": b"eyJhbGciOiJub25lIn0." + payload + b".",
        "tampered": head + b"." + payload[:-3] + b"xyz." + sig,
        "forged": build_delta("samarinda", 2, 1, t0, t1, EcdsaSigner(demo_key("central"), "ledger")),
        "old": jws_sign(  # version 1 = the live version: a replay
            canonical_json({"schema": "ewarung.ledger-delta/1", "city": "samarinda", "version": 1, "base_version": 0,
                            "issued_at": t0, "expires_at": t1, "upserts": {}, "deletes": {}}), LEDGER, "ewarung-ledger+jws"),
        "expired": build_delta("samarinda", 3, 1, iso(now() - timedelta(days=3)), iso(now() - timedelta(days=1)), LEDGER),
        "other_city": build_delta("balikpapan", 2, 1, t0, t1, LEDGER),
    }
    try:
        wait_for(lambda: city_side.raw.get("status"), 15, what="daemon online")
        for token in bad.values():
            pub.send("delta", token)
        wait_for(lambda: len(city_side.raw.get("event", [])) >= len(bad), 20, what="one event per refusal")
        assert ledger_version(db_path) == 1
        pub.send("delta", good)
        pub.send("hotlist", build_hotlist("samarinda", 1, t0, t1, LEDGER, add=[("CARD-Z", "lost", t0)]))
        wait_for(lambda: ledger_version(db_path) == 2 and _hotlist_reason(db_path, "CARD-Z") == "lost", 10,
                 what="the good delta and the hotlist applied")  # two messages: the hotlist may land after the delta
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        pub.close()
    events = [validate_token(t, schemas)["body"] for t in city_side.raw["event"]]
    codes = sorted(e["code"] for e in events if e["event"] == "ledger_refused")
    assert codes == sorted(["bad_signature", "bad_signature", "bad_signature", "old_version", "expired", "wrong_city"])
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT reason FROM hotlist_entry WHERE card_id='CARD-Z'").fetchone() == ("lost",)
    conn.close()


def _hotlist_reason(db_path, card_id: str) -> str | None:
    conn = sqlite3.connect(db_path)
    try:
        row = conn.execute("SELECT reason FROM hotlist_entry WHERE card_id=?", (card_id,)).fetchone()
    except sqlite3.OperationalError:  # the daemon's schema not there yet
        return None
    finally:
        conn.close()
    return row[0] if row else None


def test_snapshot_resumes_after_kill_and_swaps_atomically(sync_env, schemas):
    port = sync_env["broker"].port
    db_path = sync_env["dir"] / "ewarung.db"
    src = sqlite3.connect(db_path)
    src.execute("UPDATE household SET name = 'Versi Tiga' WHERE id = 'SSN-6472-0000010'")
    builder = SnapshotBuilder("samarinda", 3, iso(now()), iso(now() + timedelta(days=5)), LEDGER, chunk_rows=8)
    chunks = list(builder.chunks(snapshot_tables_from_db(src)))
    src.rollback()
    src.close()
    manifest = builder.manifest()
    validate_token(manifest, schemas)
    validate_token(chunks[0], schemas)
    half = len(chunks) // 2
    pub = Publisher(port)
    proc = start_sync(sync_env)
    try:
        wait_for(lambda: (sqlite3.connect(db_path).execute(
            "SELECT 1 FROM setting WHERE key='sync.status'").fetchone()), 15, what="daemon running")
        pub.send("snapshot", manifest)
        for c in chunks[:half]:
            pub.send("snapshot", c)

        def progress():
            import json

            row = sqlite3.connect(db_path).execute("SELECT value FROM setting WHERE key='sync.status'").fetchone()
            p = json.loads(row[0]).get("snapshot_progress") if row else None
            return p if p and p["received"] == half else None

        p = wait_for(progress, 15, what="half the snapshot staged")
        assert p == {"version": 3, "received": half, "total": len(chunks)}
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert ledger_version(db_path) == 1, "a half-received snapshot never replaces the live ledger"
        for c in chunks[half:]:
            pub.send("snapshot", c)  # the broker keeps them for the device's persistent session
        proc = start_sync(sync_env)
        wait_for(lambda: ledger_version(db_path) == 3, 20, what="snapshot applied after restart")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
        pub.close()
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT name FROM household WHERE id='SSN-6472-0000010'").fetchone() == ("Versi Tiga",)
    assert conn.execute("SELECT count(*) FROM household").fetchone() == (60,)
    assert not conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'stage_%'").fetchall()
    conn.close()


def test_device_without_ledger_requests_a_snapshot(sync_env, schemas, city_stub):
    db_path = sync_env["dir"] / "ewarung.db"
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("DELETE FROM ledger_state")
    conn.close()
    city_side = city_stub(client_id="city-request", ack=False)
    proc = start_sync(sync_env)
    try:
        wait_for(lambda: city_side.raw.get("request"), 15, what="a snapshot request")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    req = validate_token(city_side.raw["request"][0], schemas)
    assert req["seq"] is None and req["body"] == {"request": "snapshot", "have_version": 0, "have_hotlist": 0,
                                                  "reason": "no ledger on this device"}


def test_ack_tokens_match_schema(schemas):
    from sync.acks import RESEND_SCHEMA, build_ack

    central = EcdsaSigner(demo_key("central"), "central")
    validate_token(build_ack(DEVICE, iso(now()), central, ids=["7c0e2a4e-1f7b-4b8e-9a55-3f1c2d7e9b10"], ranges=[[1, 5]]),
                   schemas)
    validate_token(build_ack(DEVICE, iso(now()), central, ranges=[[3, 3]], schema=RESEND_SCHEMA), schemas)
