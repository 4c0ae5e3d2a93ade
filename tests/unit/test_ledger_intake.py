"""Ledger intake without a broker: snapshot staging and swap, deltas, hotlist, refusals."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from pos.clock import iso
from pos.ledger import Ledger
from pos.sample_city import demo_key
from pos.signing import EcdsaSigner
from sync.ledger_format import SnapshotBuilder, build_delta, build_hotlist, snapshot_tables_from_db
from sync.ledger_intake import LedgerIntake, LedgerRefused


@pytest.fixture
def ledger_signer():
    return EcdsaSigner(demo_key("ledger"), "ledger")


@pytest.fixture
def intake(db, city, clock):
    return LedgerIntake(db, {"ledger": demo_key("ledger").public_key()}, "samarinda", clock)


def _snapshot(db_path, clock, signer, version, chunk_rows=7, expires=timedelta(days=10)):
    conn = sqlite3.connect(db_path)
    b = SnapshotBuilder("samarinda", version, iso(clock.now()), iso(clock.now() + expires), signer, chunk_rows)
    chunks = list(b.chunks(snapshot_tables_from_db(conn)))
    conn.close()
    return b.manifest(), chunks


def test_snapshot_applies_only_when_complete(db, city, clock, intake, ledger_signer, tmp_path):
    manifest, chunks = _snapshot(tmp_path / "ewarung.db", clock, ledger_signer, 2)
    assert len(chunks) > 5
    db.execute_sql("DELETE FROM household WHERE id = ?", (city.notable["holder"],))  # make live differ
    for c in chunks[:-1]:
        assert not intake.handle(c).applied
    assert intake.live_version() == 1
    assert Ledger().household(city.notable["holder"]) is None
    assert intake.progress()["received"] == len(chunks) - 1
    assert intake.handle(chunks[0]).detail == "duplicate chunk ignored"
    res = intake.handle(manifest)  # manifest after most chunks: still incomplete
    assert not res.applied
    res = intake.handle(chunks[-1])
    assert res.applied and intake.live_version() == 2
    assert Ledger().household(city.notable["holder"]) is not None
    assert db.execute_sql("SELECT count(*) FROM household").fetchone()[0] == 60
    assert Ledger().hotlist_reason("CARD-REVOKED-DEMO") == "reported stolen"
    idx = {r[1] for r in db.execute_sql("PRAGMA index_list('representative')").fetchall()}
    assert "representative_household" in idx
    assert intake.progress() == {}


def test_tampered_chunk_and_bad_manifest_refused(db, city, clock, intake, ledger_signer, tmp_path):
    manifest, chunks = _snapshot(tmp_path / "ewarung.db", clock, ledger_signer, 3)
    head, payload, sig = chunks[0].split(b".")
    tampered = head + b"." + payload[:-2] + (b"AA" if payload[-2:] != b"AA" else b"BB") + b"." + sig
    with pytest.raises(LedgerRefused) as exc:
        intake.handle(tampered)
    assert exc.value.code == "bad_signature"
    forged = EcdsaSigner(demo_key("device"), "ledger")
    fm, _ = _snapshot(tmp_path / "ewarung.db", clock, forged, 3)
    with pytest.raises(LedgerRefused, match="does not verify"):
        intake.handle(fm)
    assert intake.live_version() == 1


def test_old_and_expired_refused(db, city, clock, intake, ledger_signer, tmp_path):
    old, _ = _snapshot(tmp_path / "ewarung.db", clock, ledger_signer, 1)
    with pytest.raises(LedgerRefused) as exc:
        intake.handle(old)
    assert exc.value.code == "old_version"
    expired, _ = _snapshot(tmp_path / "ewarung.db", clock, ledger_signer, 5, expires=timedelta(seconds=-1))
    with pytest.raises(LedgerRefused) as exc:
        intake.handle(expired)
    assert exc.value.code in ("expired", "malformed")


def test_delta_in_order_and_hotlist(db, city, clock, intake, ledger_signer):
    now, later = iso(clock.now()), iso(clock.now() + timedelta(days=3))
    hid = city.notable["holder"]
    d2 = build_delta("samarinda", 2, 1, now, later, ledger_signer,
                     upserts={"households": [[hid, "Nama Baru", "Lok Bahu", "BPNT", "suspended", "2026-01-01", "2027-12-31"]]},
                     deletes={"representatives": [[f"{city.notable['representative']}-R1"]]})
    d3 = build_delta("samarinda", 3, 2, now, later, ledger_signer, upserts={"plans": [["NEW", "Baru", 1000, 0]]})
    with pytest.raises(LedgerRefused) as exc:
        intake.handle(d3)
    assert exc.value.code == "base_mismatch"
    assert intake.handle(d2).applied
    assert Ledger().household(hid).status == "suspended"
    assert Ledger().household(city.notable["representative"]).representatives == ()
    assert intake.live_version() == 3  # d3, held while it did not fit, applied right after d2
    with pytest.raises(LedgerRefused):
        intake.handle(d2)  # replay
    h = build_hotlist("samarinda", 1, now, later, ledger_signer, add=[("CARD-X", "lost", now)], remove=["CARD-REVOKED-DEMO"])
    assert intake.handle(h).applied
    assert Ledger().hotlist_reason("CARD-X") == "lost" and Ledger().hotlist_reason("CARD-REVOKED-DEMO") is None
    with pytest.raises(LedgerRefused):
        intake.handle(h)


def test_corrupt_chunk_data_refused_even_when_signed(db, city, clock, intake, ledger_signer):
    from pos.signing import canonical_json, jws_sign

    payload = {"schema": "ewarung.ledger-chunk/1", "city": "samarinda", "version": 9, "index": 0, "table": "households",
               "columns": ["id"], "count": 1, "data": "bm90LXpsaWI"}
    with pytest.raises(LedgerRefused) as exc:
        intake.handle(jws_sign(canonical_json(payload), ledger_signer, "ewarung-ledger+jws"))
    assert exc.value.code == "malformed"
    assert intake.live_version() == 1
