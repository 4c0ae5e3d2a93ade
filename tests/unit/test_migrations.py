"""Migrations run at start and bring every released schema to the current one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pos.db import open_database
from pos.migrations import CURRENT_VERSION, MIGRATIONS, SchemaTooNew, schema_version

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schemas"


def _schema(path: Path) -> set[tuple[str, str]]:
    con = sqlite3.connect(path)
    try:
        return {
            (name, " ".join(sql.split()))
            for name, sql in con.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'")
        }
    finally:
        con.close()


def test_every_released_version_has_a_fixture():
    for version, _, _ in MIGRATIONS:
        assert (FIXTURES / f"v{version}.sql").exists(), f"add tests/fixtures/schemas/v{version}.sql for migration {version}"


def test_fresh_database_is_current(tmp_path):
    db = open_database(tmp_path / "fresh.db")
    assert schema_version(db) == CURRENT_VERSION
    db.close()


@pytest.mark.parametrize("start", [0] + [v for v, _, _ in MIGRATIONS])
def test_migrates_from_every_earlier_version(tmp_path, start):
    fresh = tmp_path / "fresh.db"
    open_database(fresh).close()
    old = tmp_path / f"from-v{start}.db"
    if start:
        con = sqlite3.connect(old)
        con.executescript((FIXTURES / f"v{start}.sql").read_text())
        con.execute(f"PRAGMA user_version = {start}")
        con.execute("INSERT INTO setting (key, value) VALUES ('device_seq', '41')")
        con.commit()
        con.close()
    db = open_database(old)
    assert schema_version(db) == CURRENT_VERSION
    if start:
        assert db.execute_sql("SELECT value FROM setting WHERE key='device_seq'").fetchone()[0] == "41"
    db.close()
    assert _schema(old) == _schema(fresh)


def test_receipts_printed_before_the_series_keep_their_numbers(tmp_path):
    path = tmp_path / "v1.db"
    con = sqlite3.connect(path)
    con.executescript((FIXTURES / "v1.sql").read_text())
    con.execute("PRAGMA user_version = 1")
    for seq in (1, 2, 6):
        con.execute("INSERT INTO redemption VALUES (?, ?, 'D', 'H', '', '2026-11', 'card', '', 'holder', '', '', 'k', "
                    "1, 100, 0, NULL, '2026-11-15T02:00:00.000Z')", (f"r{seq}", seq))
    con.commit()
    con.close()
    open_database(path).close()
    con = sqlite3.connect(path)
    assert con.execute("SELECT seq, receipt_no FROM redemption ORDER BY seq").fetchall() == [(1, 1), (2, 2), (6, 6)]
    con.close()


def test_newer_schema_is_refused_and_untouched(tmp_path):
    path = tmp_path / "future.db"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {CURRENT_VERSION + 1}")
    con.close()
    with pytest.raises(SchemaTooNew, match="newer"):
        open_database(path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == CURRENT_VERSION + 1
    assert con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
