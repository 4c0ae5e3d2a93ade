from __future__ import annotations

from pos import journal
from pos.db import JournalEntry
from tests.conftest import run_ewarung


def _fill(n=5):
    for i in range(n):
        journal.append(f"2026-11-15T02:00:0{i}.000Z", "test", str(i), {"i": i})


def test_chain_verifies(db):
    _fill()
    report = journal.verify(batch=2)
    assert report.ok and report.entries == 5


def test_edit_is_found(db):
    _fill()
    JournalEntry.update(data='{"i":99}').where(JournalEntry.id == 3).execute()
    report = journal.verify()
    assert not report.ok and report.first_bad_id == 3 and "edited" in report.problem


def test_deletion_in_the_middle_is_found(db):
    _fill()
    JournalEntry.delete().where(JournalEntry.id == 2).execute()
    report = journal.verify()
    assert not report.ok and report.first_bad_id == 2


def test_rehashed_forgery_breaks_the_next_link(db):
    _fill()
    e = JournalEntry.get_by_id(2)
    forged = journal._digest(e.prev_hash, 2, e.at, e.kind, e.ref, '{"i":7}')
    JournalEntry.update(data='{"i":7}', hash=forged).where(JournalEntry.id == 2).execute()
    report = journal.verify()
    assert not report.ok and report.first_bad_id == 3


def test_cli_verify(tmp_path, db):
    _fill()
    path = db.database
    ok = run_ewarung("journal", "verify", "--database", path)
    assert ok.returncode == 0 and "journal OK: 5 entries" in ok.stdout
    JournalEntry.update(kind="x").where(JournalEntry.id == 4).execute()
    bad = run_ewarung("journal", "verify", "--database", path)
    assert bad.returncode == 1 and "BROKEN at entry 4" in bad.stdout
