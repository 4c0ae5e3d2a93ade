"""Staff PINs against a guesser: each defence tested with the attack it stops (issue 19, item 2)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest

from pos import cashiers, journal
from pos.db import JournalEntry, OutboxMessage, StaffLock, open_database
from pos.printing import PrintService
from pos.refusals import Reason, Refusal
from pos.session import CounterSession, InlineRunner, State
from pos.signing import b64url_decode
from pos.staff_lockout import PinLimits, StaffLockout
from tests.fakes import FakeCardReader, FakePrinter

EVENT_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "schemas" / "event.json").read_text())
LIMITS = PinLimits()


@pytest.fixture
def lockout(service):
    return StaffLockout.beside(service)


@pytest.fixture
def checks(monkeypatch):
    """Every PIN actually compared with a stored hash: what a guesser learns from."""
    seen: list[str] = []
    real = cashiers.check_pin

    def counting(pin, stored):
        seen.append(pin)
        return real(pin, stored)

    monkeypatch.setattr(cashiers, "check_pin", counting)
    return seen


def refusal(cashier_id, pin, lockout, **kw) -> Refusal:
    with pytest.raises(Refusal) as info:
        cashiers.authenticate(cashier_id, pin, lockout=lockout, **kw)
    return info.value


def lock(cashier_id, lockout, clock, **kw) -> None:
    """Wrong PINs until the lockout, waiting out each delay."""
    for _ in range(LIMITS.lock_after):
        refusal(cashier_id, "0000", lockout, **kw)
        clock.advance(timedelta(hours=1))
    assert lockout.is_locked(cashier_id)


def events() -> list[dict]:
    rows = OutboxMessage.select().where(OutboxMessage.kind == "event").order_by(OutboxMessage.seq)
    out = []
    for row in rows:
        envelope = json.loads(b64url_decode(bytes(row.payload).split(b".")[1].decode()))
        jsonschema.validate(envelope, EVENT_SCHEMA)
        out.append(envelope["body"])
    return out


def test_a_guessing_loop_is_stopped_at_the_limit(lockout, clock, checks):
    for n in range(100):  # a patient guesser who waits out every delay
        try:
            cashiers.authenticate("kasir1", f"{n:04d}", lockout=lockout)
        except Refusal:
            pass
        clock.advance(timedelta(hours=1))
    assert len(checks) == LIMITS.lock_after  # only these PINs were ever compared
    assert refusal("kasir1", "1234", lockout).reason == Reason.STAFF_LOCKED  # the right one too, now
    assert len(checks) == LIMITS.lock_after


def test_the_wait_grows_and_is_a_refusal_not_a_sleep(lockout, clock, checks):
    reasons = [refusal("kasir1", "0000", lockout).reason for _ in range(LIMITS.free_tries - 1)]
    assert reasons == [Reason.CASHIER_PIN_WRONG] * (LIMITS.free_tries - 1)
    waits = []
    for _ in range(LIMITS.lock_after - LIMITS.free_tries):
        first = refusal("kasir1", "0000", lockout)
        assert first.reason == Reason.STAFF_PIN_WAIT
        waits.append(first.words["seconds"])
        clock.advance(timedelta(seconds=first.words["seconds"] - 1))
        early = refusal("kasir1", "1234", lockout)  # the right PIN, a second early: not even checked
        assert early.reason == Reason.STAFF_PIN_WAIT and early.words["seconds"] == 1
        assert "Coba lagi dalam 1 detik" in early.message() and "Try again in 1 s" in early.message("en")
        clock.advance(timedelta(seconds=1))
    assert waits == sorted(waits) and len(set(waits)) == len(waits) and waits[0] == LIMITS.first_wait_s
    assert "1234" not in checks
    assert refusal("kasir1", "0000", lockout).reason == Reason.STAFF_LOCKED


def test_a_right_pin_starts_the_count_afresh(lockout):
    for _ in range(LIMITS.free_tries - 1):
        refusal("kasir1", "0000", lockout)
    assert cashiers.authenticate("kasir1", "1234", lockout=lockout).id == "kasir1"
    assert StaffLock.get_or_none(StaffLock.cashier_id == "kasir1") is None
    assert refusal("kasir1", "0000", lockout).reason == Reason.CASHIER_PIN_WRONG


def test_a_clock_set_back_does_not_stretch_the_wait(lockout, clock):
    for _ in range(LIMITS.free_tries):
        refusal("kasir1", "0000", lockout)
    clock.advance(timedelta(days=-30))
    assert refusal("kasir1", "0000", lockout).words["seconds"] <= LIMITS.wait_after(LIMITS.free_tries)


def test_the_lockout_and_the_wait_survive_a_restart(tmp_path, city, service, lockout, clock):
    lock("spv1", lockout, clock, supervisor=True)
    for _ in range(LIMITS.free_tries):
        refusal("kasir2", "0000", lockout)
    service.db.close()
    db = open_database(tmp_path / "ewarung.db")  # the counter app restarted
    try:
        again = StaffLockout(db, clock)
        assert refusal("spv1", "9999", again).reason == Reason.STAFF_LOCKED
        assert refusal("kasir2", "2345", again).reason == Reason.STAFF_PIN_WAIT
        assert cashiers.authenticate("kasir1", "1234", lockout=again).id == "kasir1"  # per staff member
    finally:
        db.close()


def test_unlock_lets_them_in_and_is_journaled_and_reported(lockout, clock):
    lock("kasir1", lockout, clock)
    assert lockout.unlock("kasir1", by="spv1")
    assert not lockout.unlock("kasir1", by="spv1")  # nothing left to lift
    assert cashiers.authenticate("kasir1", "1234", lockout=lockout).id == "kasir1"
    assert events()[-1] == {"event": "staff_unlocked", "cashier": "kasir1", "by": "spv1", "failures": LIMITS.lock_after}


def test_every_failure_and_the_lockout_reach_the_outbox_and_the_journal_verifies(lockout, clock):
    refusal("nobody", "0000", lockout)
    lock("spv1", lockout, clock, supervisor=True)
    refusal("spv1", "0000", lockout, supervisor=True)  # locked: nothing checked, nothing written
    sent = events()
    assert [e["event"] for e in sent] == ["staff_pin_failed"] * (1 + LIMITS.lock_after) + ["staff_locked"]
    assert sent[0]["known"] is False and sent[1]["purpose"] == "approval"
    assert [e["failures"] for e in sent[1:-1]] == list(range(1, LIMITS.lock_after + 1))
    kinds = [e.kind for e in JournalEntry.select().order_by(JournalEntry.id)]
    assert kinds.count("staff_pin_failed") == 1 + LIMITS.lock_after and kinds.count("staff_locked") == 1
    assert journal.verify().ok


def _counter(service, runner=None) -> CounterSession:
    printer = FakePrinter()
    return CounterSession(service=service, reader=FakeCardReader(), printing=PrintService.beside(service, printer),
                          runner=runner or InlineRunner())


def test_the_counter_says_who_unlocks_and_a_supervisor_pin_there_does(service, clock):
    s = _counter(service)
    for _ in range(LIMITS.lock_after):
        s.sign_in("kasir1", "0000")
        clock.advance(timedelta(hours=1))
    assert s.state == State.SIGNED_OUT
    assert "ewarung cashier unlock kasir1" in s.notice_text() and "penyelia" in s.notice_text()
    assert "a supervisor picks their own name" in s.notice_text("en")
    s.sign_in("kasir1", "1234")
    assert s.state == State.SIGNED_OUT and "Rina Kasir" in s.notice_text()  # still locked
    s.sign_in("kasir2", "2345")  # a cashier cannot lift it: signs in as usual
    assert s.state == State.IDLE and s.cashier_id == "kasir2"
    s.sign_out()
    s.sign_in("kasir1", "1234")
    s.sign_in("spv1", "9999")
    assert s.state == State.SIGNED_OUT and "Rina Kasir" in s.notice_text() and "sudah dibuka" in s.notice_text()
    s.sign_in("kasir1", "1234")
    assert s.state == State.IDLE and s.cashier_id == "kasir1"


def test_a_supervisor_pin_on_overrides_and_voids_is_limited_per_supervisor(service, city):
    s = _counter(service)
    s.sign_in("kasir1", "1234")
    assert s.open_override()
    for _ in range(LIMITS.free_tries):
        s.start_override(city.notable["holder"], "card_damaged", "spv1", "0000")
    assert s.state == State.OVERRIDE and "Coba lagi dalam" in s.notice_text()
    s.cancel()
    assert s.open_history()
    for _ in range(LIMITS.lock_after):  # the void's PIN pad counts against the same supervisor
        s.void("no-such-sale", "wrong_items", "spv1", "0000")
        service.clock.advance(timedelta(hours=1))
    assert "Ibu Aminah" in s.notice_text() and StaffLockout.beside(service).is_locked("spv1")
    s.void("no-such-sale", "wrong_items", "spv1", "9999")
    assert "terkunci" in s.notice_text()
    assert not StaffLockout.beside(service).is_locked("kasir1")
    assert {e["purpose"] for e in events() if e["event"] == "staff_pin_failed"} == {"approval"}
