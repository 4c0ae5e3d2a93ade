"""The central database's schema as older releases left it is brought to the current one on open."""

from __future__ import annotations

import uuid

import pytest

OVERRIDES = ("SELECT household, period, total, created_at FROM central_redemption "
             "WHERE mode = 'override' AND household IN ({in})")  # card_record.rise_findings' query


def _indexes(db, table: str) -> set[str]:
    from peewee import SqliteDatabase

    if isinstance(db, SqliteDatabase):
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE tablename = %s"
    return {name for (name,) in db.execute_sql(sql, (table,)).fetchall()}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_indexes_older_releases_made_are_dropped_and_the_reports_still_read(backend, request, tmp_path):
    """A database made before central_redemption's device and household indexes were dropped still
    has them, and each stored sale would keep paying for them: opening the database drops them (on
    SQLite and PostgreSQL) and adds the household index of override sales; the fleet page's
    per-device counts and the report's lookup of a household's override sales still answer."""
    from pos.clock import parse_iso
    from sync.central.fleet import fleet_data
    from sync.central.message_store import select_in
    from sync.central.store import DROPPED_INDEXES, DeviceState, RedemptionRecord, open_central

    url = tmp_path / "old.db" if backend == "sqlite" else request.getfixturevalue("pg_server").createdb(
        f"schema_{uuid.uuid4().hex[:12]}")
    db = open_central(url)
    db.execute_sql('DROP INDEX "central_redemption_override_household"')  # as older releases made the table
    for column in ("device", "household"):
        db.execute_sql(f'CREATE INDEX "central_redemption_{column}" ON "central_redemption" ("{column}")')
    assert set(DROPPED_INDEXES) <= _indexes(db, "central_redemption")
    db.close()
    db = open_central(url)
    try:
        assert not set(DROPPED_INDEXES) & _indexes(db, "central_redemption")
        assert {"central_redemption_period", "central_redemption_created_at",
                "central_redemption_override_household"} <= _indexes(db, "central_redemption")
        for rid, mode in (("R-1", "card"), ("R-2", "override")):
            RedemptionRecord.create(id=rid, msg_id=f"M-{rid}", device="EW-A-0001", seq=int(rid[-1]), household="SSN-1",
                                    period="2026-11", total=45000, mode=mode, created_at="2026-11-14T02:00:00.000Z")
        assert select_in(OVERRIDES, ["SSN-1", "SSN-2"]) == [("SSN-1", "2026-11", 45000, "2026-11-14T02:00:00.000Z")]
        if backend == "sqlite":  # the report's lookup is served by the partial index, not a scan of every sale
            plan = db.execute_sql("EXPLAIN QUERY PLAN " + OVERRIDES.replace("{in}", "?, ?"), ("SSN-1", "SSN-2"))
            assert "central_redemption_override_household" in str(plan.fetchall())
        DeviceState.create(device="EW-A-0001")
        rows = fleet_data(parse_iso("2026-11-14T03:00:00.000Z"))["devices"]
        assert [(r["device"], r["redemptions_today"], r["amount_today"]) for r in rows] == [("EW-A-0001", 2, 90000)]
    finally:
        db.close()


def test_a_new_database_gets_large_pages_and_an_older_one_keeps_its_own(tmp_path):
    """New central databases are made with SQLITE_PAGE_SIZE pages in WAL mode; a database an older
    release made with SQLite's default 4 KB pages opens as it is (the size changes only at a VACUUM
    outside WAL mode), still in WAL mode, and stores and reads messages."""
    import sqlite3

    from sync.central.store import SQLITE_PAGE_SIZE, Message, open_central

    db = open_central(tmp_path / "new.db")
    try:
        assert db.execute_sql("PRAGMA page_size").fetchone()[0] == SQLITE_PAGE_SIZE > 4096
        assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()
    old = sqlite3.connect(tmp_path / "old.db")
    old.execute("PRAGMA page_size = 4096")
    old.execute("PRAGMA journal_mode = wal")
    old.execute("CREATE TABLE made_by_an_older_release (x)")
    old.commit()
    old.close()
    db = open_central(tmp_path / "old.db")
    try:
        assert db.execute_sql("PRAGMA page_size").fetchone()[0] == 4096
        assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        Message.create(id="M-1", device="EW-A-0001", seq=1, kind="redemption", created_at="2026-11-14T02:00:00.000Z",
                       received_at="2026-11-14T02:00:01.000Z", token="t" * 1600)
        assert Message.get_by_id("M-1").token == "t" * 1600
    finally:
        db.close()
