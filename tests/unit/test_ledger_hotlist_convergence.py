"""The hotlist survives a snapshot (issue 17): entries newer than the snapshot stay, missed
serials are noticed, and a rebuild of the live version is taken only when it brings something."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from pos.clock import iso
from pos.ledger import Ledger
from pos.sample_city import demo_key
from pos.signing import EcdsaSigner
from sync.ledger_format import SnapshotBuilder, build_hotlist, live_digest, snapshot_tables_from_db
from sync.ledger_intake import LedgerIntake, LedgerRefused

SIGNER = EcdsaSigner(demo_key("ledger"), "ledger")


@pytest.fixture
def intake(db, city, clock):
    return LedgerIntake(db, {"ledger": demo_key("ledger").public_key()}, "samarinda", clock)


def snapshot(db_path, clock, version: int, serial: int, later: timedelta = timedelta()) -> list[bytes]:
    """A snapshot of the database's own ledger, as the city builds one on request."""
    conn = sqlite3.connect(db_path)
    try:
        issued = clock.now() + later
        b = SnapshotBuilder("samarinda", version, iso(issued), iso(issued + timedelta(days=10)), SIGNER, 50,
                            hotlist_serial=serial)
        return [*b.chunks(snapshot_tables_from_db(conn)), b.manifest()]
    finally:
        conn.close()


def hotlist(clock, serial: int, add=(), remove=()) -> bytes:
    t0 = iso(clock.now())
    return build_hotlist("samarinda", serial, t0, iso(clock.now() + timedelta(days=2)), SIGNER,
                         add=[(c, "lost", t0) for c in add], remove=list(remove))


def apply(intake, tokens):
    return [intake.handle(t) for t in tokens][-1]


def test_hotlist_newer_than_the_snapshot_survives_it(db, clock, intake, tmp_path):
    tokens = snapshot(tmp_path / "ewarung.db", clock, 2, serial=0)  # built before the block
    assert intake.handle(hotlist(clock, 1, add=["CARD-NEW-BLOCK"])).applied
    assert apply(intake, tokens).applied and intake.live_version() == 2
    assert Ledger().hotlist_reason("CARD-NEW-BLOCK") == "lost"
    assert (intake.hotlist_serial(), intake.hotlist_complete()) == (1, 1)


def test_missed_hotlist_serials_are_noticed_and_a_rebuild_brings_them(db, clock, intake, tmp_path):
    assert not intake.handle(hotlist(clock, 1, add=["CARD-A"])).missing
    result = intake.handle(hotlist(clock, 3, add=["CARD-C"]))  # serial 2 never arrived
    assert result.applied and result.missing and intake.hotlist_complete() == 1
    # the city's rebuild of the live version (1) includes serial 2's card and serial 3
    db.execute_sql("INSERT INTO hotlist_entry VALUES ('CARD-B', 'stolen', '2026-01-01', 1)")
    tokens = snapshot(tmp_path / "ewarung.db", clock, 1, serial=3, later=timedelta(seconds=1))
    db.execute_sql("DELETE FROM hotlist_entry WHERE card_id = 'CARD-B'")
    assert apply(intake, tokens).applied and intake.live_version() == 1
    assert Ledger().hotlist_reason("CARD-B") == "stolen" and Ledger().hotlist_reason("CARD-C")
    assert (intake.hotlist_serial(), intake.hotlist_complete()) == (3, 3)
    with pytest.raises(LedgerRefused) as exc:  # the same build again, or another: nothing new
        intake.handle(snapshot(tmp_path / "ewarung.db", clock, 1, serial=3, later=timedelta(seconds=2))[0])
    assert exc.value.code == "already_current"


def test_a_later_build_of_one_version_replaces_a_partial_one(db, clock, intake, tmp_path):
    first = snapshot(tmp_path / "ewarung.db", clock, 2, serial=0)
    second = snapshot(tmp_path / "ewarung.db", clock, 2, serial=0, later=timedelta(seconds=5))
    for token in first[:3]:
        intake.handle(token)
    assert apply(intake, second).applied and intake.live_version() == 2


def test_digest_follows_content_not_order(db, clock, intake, tmp_path):
    conn = sqlite3.connect(tmp_path / "ewarung.db")
    try:
        before = live_digest(conn)
        conn.execute("INSERT INTO hotlist_entry VALUES ('CARD-X', 'lost', '2026-01-01', 1)")
        assert live_digest(conn) != before
        conn.execute("DELETE FROM hotlist_entry WHERE card_id = 'CARD-X'")
        assert live_digest(conn) == before
    finally:
        conn.close()


def test_a_delta_ahead_of_the_ledger_is_held_until_it_fits(db, clock, intake):
    from sync.ledger_format import build_delta

    t0, t1 = iso(clock.now()), iso(clock.now() + timedelta(days=2))
    v3 = build_delta("samarinda", 3, 2, t0, t1, SIGNER, upserts={"plans": [["NEW", "Baru", 1000, 0]]})
    with pytest.raises(LedgerRefused) as exc:
        intake.handle(v3)
    assert exc.value.code == "base_mismatch" and exc.value.version == 3
    assert intake.handle(build_delta("samarinda", 2, 1, t0, t1, SIGNER)).applied
    assert intake.live_version() == 3 and Ledger().plan("NEW") is not None
