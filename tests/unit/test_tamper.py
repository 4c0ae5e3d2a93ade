"""Tampering the other tests do not reach, at the device: rolled-back and replayed ledger versions,
oversized payloads, and forged acknowledgements and resend requests signed by a key the device
trusts for something else. Central's side: tests/central/test_tamper_central.py.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from datetime import timedelta

import pytest

from pos.clock import iso
from pos.sample_city import demo_key
from pos.signing import MAX_TOKEN_BYTES, EcdsaSigner, canonical_json, jws_sign
from sync.acks import RESEND_SCHEMA, AckRefused, build_ack, parse_ack
from sync.ledger_format import (
    LEDGER_TYP,
    SnapshotBuilder,
    build_delta,
    build_hotlist,
    snapshot_tables_from_db,
)
from sync.ledger_intake import LedgerIntake, LedgerRefused
from tests.unit.test_sync_daemon import FakeLink, daemon, outbox_sent, states  # noqa: F401

LEDGER = EcdsaSigner(demo_key("ledger"), "ledger")
CENTRAL = EcdsaSigner(demo_key("central"), "central")


def _ledger_digest(db) -> str:
    h = hashlib.sha256()
    for table in ("ledger_state", "household", "representative", "plan", "catalog_item", "hotlist_entry"):
        for row in db.execute_sql(f'SELECT * FROM "{table}" ORDER BY 1').fetchall():
            h.update(repr(row).encode())
    return h.hexdigest()


def _snapshot(db_path, clock, version):
    conn = sqlite3.connect(db_path)
    b = SnapshotBuilder("samarinda", version, iso(clock.now()), iso(clock.now() + timedelta(days=5)), LEDGER, 25)
    chunks = list(b.chunks(snapshot_tables_from_db(conn)))
    conn.close()
    return b.manifest(), chunks


def test_rolled_back_and_replayed_ledger_versions_refused(db, city, clock, tmp_path):
    intake = LedgerIntake(db, {"ledger": demo_key("ledger").public_key()}, "samarinda", clock)
    now, later = iso(clock.now()), iso(clock.now() + timedelta(days=3))
    hid = city.notable["holder"]
    v2_manifest, v2_chunks = _snapshot(tmp_path / "ewarung.db", clock, 2)  # captured while v1 is live
    d3 = build_delta("samarinda", 3, 2, now, later, LEDGER, upserts={"plans": [["NEW", "Baru", 1000, 0]]})
    hot1 = build_hotlist("samarinda", 1, now, later, LEDGER, add=[("CARD-X", "lost", now)])
    for token in (*v2_chunks, v2_manifest, d3, hot1):
        intake.handle(token)
    assert intake.live_version() == 3
    rollback_delta = build_delta("samarinda", 2, 1, now, later, LEDGER,  # would undo the suspension below
                                 upserts={"households": [[hid, "X", "A", "BPNT", "active", "2026-01-01", "2027-12-31"]]})
    live = _ledger_digest(db)
    attempts = {
        "replayed delta v3": d3,
        "rolled-back delta v2 (base 1)": rollback_delta,
        "replayed snapshot v2 manifest": v2_manifest,
        "replayed snapshot v2 chunk": v2_chunks[0],
        "replayed hotlist serial 1": hot1,
        "hotlist serial 0": build_hotlist("samarinda", 0, now, later, LEDGER, remove=["CARD-X"]),
    }
    for name, token in attempts.items():
        with pytest.raises(LedgerRefused) as exc:
            intake.handle(token)
        # the very delta applied last comes again whenever the broker redelivers the retained one
        assert exc.value.code == ("already_current" if name == "replayed delta v3" else "old_version"), name
        assert intake.live_version() == 3 and _ledger_digest(db) == live, name
    # an older snapshot's chunk arriving while a newer one is being received
    v5_manifest, v5_chunks = _snapshot(tmp_path / "ewarung.db", clock, 5)
    _, v4_chunks = _snapshot(tmp_path / "ewarung.db", clock, 4)
    intake.handle(v5_chunks[0])
    with pytest.raises(LedgerRefused, match="older than the snapshot 5 being received"):
        intake.handle(v4_chunks[1])
    assert intake.live_version() == 3 and _ledger_digest(db) == live


def big_payload(n: int) -> bytes:
    """n bytes shaped like a token (header, payload, signature): an oversized MQTT payload."""
    return b"eyJhbGciOiJFUzI1NiJ9." + b"A" * (n - 30) + b".AAAA"


@pytest.mark.parametrize("size", [MAX_TOKEN_BYTES + 1, 4 * 1024 * 1024])
def test_oversized_payloads_refused_quickly_at_the_device(db, city, clock, size):
    payload = big_payload(size)
    t0 = time.monotonic()
    with pytest.raises(AckRefused):
        parse_ack(payload, {"central": demo_key("central").public_key()}, "EW-A-0001")
    intake = LedgerIntake(db, {"ledger": demo_key("ledger").public_key()}, "samarinda", clock)
    with pytest.raises(LedgerRefused) as exc:
        intake.handle(payload)
    assert exc.value.code == "bad_signature"
    assert time.monotonic() - t0 < 10, "refusing a big payload must not take long"


def test_forged_acks_and_resends_signed_with_other_trusted_keys(daemon, clock, device):  # noqa: F811
    d, link = daemon
    for _ in range(5):
        d.step()
        link.events.pubacks += [(mid, True, "Success") for _, _, mid in outbox_sent(link)]
    assert states().count("published") == 10
    ack_topic = f"ewarung/v1/devices/{device.device_id}/ack"
    resend_topic = f"ewarung/v1/devices/{device.device_id}/resend"
    ledger_as_central = EcdsaSigner(demo_key("ledger"), "central")
    forged = [
        (ack_topic, build_ack(device.device_id, iso(clock.now()), LEDGER, ranges=[[1, 10]])),  # ledger key, kid ledger
        (ack_topic, build_ack(device.device_id, iso(clock.now()), ledger_as_central, ranges=[[1, 10]])),
        (ack_topic, jws_sign(canonical_json({"schema": "ewarung.ack/1", "device": device.device_id, "ids": [],
                                             "ranges": [[1, 10]]}), CENTRAL, LEDGER_TYP)),  # wrong typ
        (resend_topic, build_ack(device.device_id, iso(clock.now()), ledger_as_central, ranges=[[1, 10]],
                                 schema=RESEND_SCHEMA)),
    ]
    sent_before = len(outbox_sent(link))
    for i, (topic, token) in enumerate(forged):
        link.events.messages.append((topic, token, 100 + i, 1))
    d.step()
    assert states() == ["published"] * 10 + ["queued"] * 4, "nothing acked or requeued; 4 events queued"
    assert len(outbox_sent(link)) - sent_before <= 4, "only the refusal events were sent"
