"""The central database's schema as older releases left it is brought to the current one on open."""

from __future__ import annotations

import uuid

import pytest


def _indexes(db, table: str) -> set[str]:
    from peewee import SqliteDatabase

    if isinstance(db, SqliteDatabase):
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE tablename = %s"
    return {name for (name,) in db.execute_sql(sql, (table,)).fetchall()}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_index_older_releases_made_is_dropped_and_the_reports_still_read(backend, request, tmp_path):
    """A database made before central_redemption's device index was dropped still has it, and each
    stored sale would keep paying for it: opening the database drops it (on SQLite and PostgreSQL),
    and the fleet page's per-device counts, the one query grouping sales by device, still answer."""
    from pos.clock import parse_iso
    from sync.central.fleet import fleet_data
    from sync.central.store import DROPPED_INDEXES, DeviceState, RedemptionRecord, open_central

    url = tmp_path / "old.db" if backend == "sqlite" else request.getfixturevalue("pg_server").createdb(
        f"schema_{uuid.uuid4().hex[:12]}")
    db = open_central(url)
    db.execute_sql('CREATE INDEX "central_redemption_device" ON "central_redemption" ("device")')  # as it was made
    assert set(DROPPED_INDEXES) <= _indexes(db, "central_redemption")
    db.close()
    db = open_central(url)
    try:
        assert not set(DROPPED_INDEXES) & _indexes(db, "central_redemption")
        assert {"central_redemption_period", "central_redemption_created_at"} <= _indexes(db, "central_redemption")
        RedemptionRecord.create(id="R-1", msg_id="M-1", device="EW-A-0001", seq=1, household="SSN-1",
                                period="2026-11", total=45000, created_at="2026-11-14T02:00:00.000Z")
        DeviceState.create(device="EW-A-0001")
        rows = fleet_data(parse_iso("2026-11-14T03:00:00.000Z"))["devices"]
        assert [(r["device"], r["redemptions_today"], r["amount_today"]) for r in rows] == [("EW-A-0001", 1, 45000)]
    finally:
        db.close()
