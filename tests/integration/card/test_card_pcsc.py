"""The SSN card through the real PC/SC stack: pcscd + vpcd + the virtual card + pyscard."""

from __future__ import annotations

import json

import pytest

from hardware.card.cardfile import CardFile
from pos.card_decision import decide
from pos.ledger import Ledger
from pos.refusals import Reason, Refusal
from tests.card_fixtures import today_and_period

pytestmark = pytest.mark.pcsc

PIN = "123456"


def _tap(stack, reader, path, *extra):
    proc = stack.insert(path, *extra)
    reader.events.wait("inserted")
    return proc


def _decide(reader, clock, pin=PIN):
    """What the counter does on a tap: authenticate, decide, PIN; returns (session, card, entitlement)."""
    s = reader.open_session()
    card = s.authenticate()
    today, period = today_and_period(clock)
    ent = decide(card, Ledger(), period, today)
    s.verify_pin(pin)
    return s, card, ent


EXPECTED = {
    "holder": None,
    "representative": None,
    "revoked": Reason.CARD_REVOKED,
    "expired": Reason.CARD_EXPIRED,
    "pin_blocked": Reason.PIN_BLOCKED,
    "used_up": Reason.ALLOWANCE_USED_UP,
    "forged": Reason.CARD_FORGED,
    "cloned": Reason.CARD_CLONED,
}


def test_every_deck_card_behaves_as_named(stack, reader, deck, city, clock):
    """One reader, the whole deck inserted and pulled one after the other, as a field tester does."""
    for role, reason in EXPECTED.items():
        proc = _tap(stack, reader, deck[role])
        try:
            s, card, ent = _decide(reader, clock)
        except Refusal as exc:
            assert exc.reason is reason, f"{role}: {exc}"
        else:
            assert reason is None, f"{role} was served, expected {reason}"
            assert card.certificate.household_id == city.notable[role]
            rec = s.record_spend(city.period, 25_000)
            assert rec.spent == 25_000 and rec.counter == 1
            s.close()
        stack.remove(proc)
        reader.events.wait("removed")
        if reason is not None:
            assert CardFile.load(deck[role]).memory.counter == (1 if role == "used_up" else 0), role


def test_pin_blocks_after_configured_tries(stack, reader, deck):
    _tap(stack, reader, deck["holder"])
    s = reader.open_session()
    assert s.authenticate().pin_tries_left == 3
    for left in (2, 1):
        with pytest.raises(Refusal) as e:
            s.verify_pin("654321")
        assert e.value.reason is Reason.PIN_WRONG and f"tries left {left}" in e.value.detail
    with pytest.raises(Refusal) as e:
        s.verify_pin("654321")
    assert e.value.reason is Reason.PIN_BLOCKED
    with pytest.raises(Refusal) as e:
        s.verify_pin(PIN)  # even the right PIN
    assert e.value.reason is Reason.PIN_BLOCKED
    assert CardFile.load(deck["holder"]).memory.pin_tries_left == 0


# the holder's APDUs in order: 1 select, 2 certificate, 3 internal authenticate,
# 4 verify PIN, 5 internal authenticate (PIN confirmed), 6 spend
STEPS = 6


@pytest.mark.parametrize("mode", ["--pull-at-apdu", "--pull-after-apdu"])
@pytest.mark.parametrize("step", range(1, STEPS + 1))
def test_card_pulled_at_every_apdu_step(stack, reader, deck, city, clock, mode, step):
    before = CardFile.load(deck["holder"]).memory
    _tap(stack, reader, deck["holder"], mode, str(step))
    with pytest.raises(Refusal) as e:
        s, _, _ = _decide(reader, clock)
        s.record_spend(city.period, 40_000)
    assert e.value.reason in (Reason.CARD_REMOVED, Reason.CARD_UNREADABLE), e.value
    reader.events.wait("removed")
    after = CardFile.load(deck["holder"])  # never torn
    json.loads(deck["holder"].read_text())
    m = after.memory
    card_wrote_spend = mode == "--pull-after-apdu" and step == 6
    # the card may finish its write while the terminal never hears the answer: then the card is
    # ahead (safe: the terminal commits nothing; the household's card shows the amount)
    assert (m.counter, m.spent) == ((1, 40_000) if card_wrote_spend else (before.counter, before.spent))
    assert m.pin_tries_left == before.pin_tries_left  # right PIN: decremented, then reset, atomically each
    # the reader recovers: the next card works
    _tap(stack, reader, deck["representative"])
    s, card, _ = _decide(reader, clock)
    assert card.certificate.household_id == city.notable["representative"]


def test_a_charge_the_terminal_never_heard_of_is_read_back(stack, reader, deck, city, clock):
    """The card executes SPEND and is pulled before its answer: the terminal has nothing, but the
    next terminal reads the charge back from the card, signed, with the redemption it was for."""
    from pos.card_proof import CardTransaction, lines_digest

    tx = CardTransaction("EW-TEST-01", "4b1d0c2e-7a77-4f0e-8f39-0d6f3c1b9a11", str(city.period), 40_000, 40_000,
                         lines_digest([("BERAS5", 1, 40_000)]))
    _tap(stack, reader, deck["holder"], "--pull-after-apdu", str(STEPS))
    with pytest.raises(Refusal):
        s, _, _ = _decide(reader, clock)
        s.spend(tx)
    reader.events.wait("removed")
    _tap(stack, reader, deck["holder"])
    s = reader.open_session()
    s.authenticate()
    back = s.last_transaction()
    assert (back.transaction, back.counter, back.op) == (tx, 1, 3)


def test_pcscd_restart_mid_session_and_recovery(stack, reader, deck, city, clock):
    _tap(stack, reader, deck["holder"])
    s = reader.open_session()
    s.authenticate()
    stack.stop()  # the reader is unplugged mid-session
    reader.events.wait("reader_lost")
    with pytest.raises(Refusal) as e:
        s.verify_pin(PIN)
    assert e.value.reason in (Reason.CARD_REMOVED, Reason.CARD_UNREADABLE)
    assert CardFile.load(deck["holder"]).memory.pin_tries_left == 3
    stack.start()  # plugged back in; the virtual card (still "in" the reader) reconnects by itself
    reader.events.wait("reader_back", timeout=15)
    reader.events.wait("inserted", timeout=15)
    s, card, ent = _decide(reader, clock)
    assert s.record_spend(city.period, 10_000).counter == 1
