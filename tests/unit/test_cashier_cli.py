"""`ewarung cashier`: a technician adds, lists, re-PINs and disables the people who may sign in."""

from __future__ import annotations

import pytest

from tests.conftest import run_ewarung


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "ewarung.toml"
    path.write_text(f'[device]\nid = "EW-TEST-0001"\nshop_id = "SMD-TEST-01"\ndata_dir = "{tmp_path}"\n')
    return str(path)


def cashier(conf, *args, pin=None):
    return run_ewarung("--config", conf, "cashier", *args, input=pin)


def test_add_list_set_pin_disable_enable_all_journaled(conf, tmp_path):
    assert "nobody may sign in yet" in cashier(conf, "list").stdout
    res = cashier(conf, "add", "kasir7", "--name", "Siti Aminah", "--pin-stdin", pin="4321\n")
    assert res.returncode == 0, res.stderr
    cashier(conf, "add", "spv2", "--name", "Pak Budi", "--role", "supervisor", "--pin-stdin", pin="98765\n")
    listing = cashier(conf, "list").stdout
    assert "kasir7" in listing and "Siti Aminah" in listing and "supervisor" in listing

    from pos import cashiers, journal
    from pos.db import Cashier, JournalEntry, open_database

    db = open_database(tmp_path / "ewarung.db")
    try:
        assert cashiers.authenticate("kasir7", "4321").name == "Siti Aminah"
        assert cashiers.authenticate("spv2", "98765", supervisor=True)
    finally:
        db.close()
    assert cashier(conf, "set-pin", "kasir7", "--pin-stdin", pin="1111\n").returncode == 0
    assert cashier(conf, "disable", "kasir7").returncode == 0
    assert "DISABLED" in cashier(conf, "list").stdout
    assert cashier(conf, "enable", "kasir7").returncode == 0
    db = open_database(tmp_path / "ewarung.db")
    try:
        assert cashiers.check_pin("1111", Cashier.get_by_id("kasir7").pin_hash)
        assert journal.verify().ok
        kinds = [e.kind for e in JournalEntry.select().order_by(JournalEntry.id)]
        assert kinds == ["cashier_added", "cashier_added", "cashier_pin_set", "cashier_disabled", "cashier_enabled"]
    finally:
        db.close()


@pytest.mark.parametrize("args, pin, says", [
    (("add", "kasir8", "--name", "A", "--pin-stdin"), "12\n", "4 to 8 digits"),
    (("add", "kasir8", "--name", "A", "--pin-stdin"), "12ab\n", "4 to 8 digits"),
    (("add", "bad id!", "--name", "A", "--pin-stdin"), "1234\n", "must be 1-32 letters"),
    (("add", "kasir8", "--name", " ", "--pin-stdin"), "1234\n", "--name must not be empty"),
    (("set-pin", "nobody", "--pin-stdin"), "1234\n", "no cashier 'nobody'"),
    (("disable", "nobody"), None, "no cashier 'nobody'"),
])
def test_bad_input_says_what_to_do_and_changes_nothing(conf, tmp_path, args, pin, says):
    res = cashier(conf, *args, pin=pin)
    assert res.returncode == 2 and says in res.stderr
    assert "nobody may sign in yet" in cashier(conf, "list").stdout


def test_adding_an_existing_id_is_refused(conf):
    cashier(conf, "add", "kasir7", "--name", "Siti", "--pin-stdin", pin="4321\n")
    res = cashier(conf, "add", "kasir7", "--name", "Other", "--pin-stdin", pin="5555\n")
    assert res.returncode == 2 and "already exists" in res.stderr and "set-pin kasir7" in res.stderr


def test_unlock_lifts_a_lockout_made_by_another_process(conf, tmp_path):
    cashier(conf, "add", "kasir7", "--name", "Siti Aminah", "--pin-stdin", pin="4321\n")
    from datetime import timedelta

    from pos import cashiers, journal
    from pos.clock import FixedClock, SystemClock
    from pos.db import JournalEntry, open_database
    from pos.refusals import Reason, Refusal
    from pos.staff_lockout import PinLimits, StaffLockout

    db = open_database(tmp_path / "ewarung.db")
    clock = FixedClock(SystemClock().now())
    try:
        for _ in range(PinLimits().lock_after):  # a guesser who waits out every delay
            with pytest.raises(Refusal):
                cashiers.authenticate("kasir7", "0000", lockout=StaffLockout(db, clock))
            clock.advance(timedelta(hours=1))
    finally:
        db.close()
    assert "LOCKED" in cashier(conf, "list").stdout
    assert cashier(conf, "unlock", "nobody").returncode == 2
    res = cashier(conf, "unlock", "kasir7")
    assert res.returncode == 0 and "kasir7 unlocked" in res.stdout, res.stderr
    assert "was not locked" in cashier(conf, "unlock", "kasir7").stdout
    assert "LOCKED" not in cashier(conf, "list").stdout
    db = open_database(tmp_path / "ewarung.db")
    try:
        assert cashiers.authenticate("kasir7", "4321").id == "kasir7"
        entry = JournalEntry.select().where(JournalEntry.kind == "staff_unlocked").get()
        assert '"by":"technician"' in entry.data and journal.verify().ok
        with pytest.raises(Refusal) as info:
            cashiers.authenticate("kasir7", "0000")
        assert info.value.reason == Reason.CASHIER_PIN_WRONG
    finally:
        db.close()
