"""Watchdog: a card that stops answering mid-session, through the real pcscd + vpcd.

The virtual card (`ewarung card insert --stall-at-apdu N`) never answers APDU N, and after SIGUSR1
answers none at all; pcsc-lite would wait for ever in SCardTransmit. The reader must give up after its deadline with a clear refusal and
a "card_not_answering" event, the card must not have been written, and after the card is pulled
and re-inserted the same reader object serves the next household.
"""

from __future__ import annotations

import time

import pytest

from hardware.card.cardfile import CardFile
from hardware.card.pcsc_reader import PcscReader
from pos.refusals import Reason, Refusal
from tests.card_fixtures import issuer_keys
from tests.integration.card.conftest import Events

pytestmark = pytest.mark.pcsc

PIN = "123456"
DEADLINE = 1.0


@pytest.fixture
def slow_reader(stack):
    r = PcscReader(issuer_keys(), name="Virtual PCD 00 00", poll_ms=100, transmit_timeout=DEADLINE,
                   allow_virtual=True)
    r.events = Events()
    r.subscribe(r.events)
    r.start()
    yield r
    r.stop()


def _serve(reader, period, spent):
    s = reader.open_session()
    try:
        s.authenticate()
        s.verify_pin(PIN)
        return s.record_spend(period, spent)
    finally:
        s.close()


# 1 select, 2 certificate, 3 internal authenticate, 4 verify PIN, 5 confirm PIN, 6 update spend
@pytest.mark.parametrize("step", [1, 3, 4, 6])
def test_stalled_card_gives_up_in_time_and_reader_recovers(stack, slow_reader, deck, city, step):
    before = CardFile.load(deck["holder"]).memory
    proc = stack.insert(deck["holder"], "--stall-at-apdu", str(step))
    slow_reader.events.wait("inserted")
    t0 = time.monotonic()
    with pytest.raises(Refusal) as e:
        _serve(slow_reader, city.period, before.spent + 30_000)
    waited = time.monotonic() - t0
    assert e.value.reason is Reason.CARD_UNREADABLE
    assert "not answering" in e.value.detail and "re-insert" in e.value.detail, e.value.detail
    assert waited < DEADLINE + 1.5, f"gave up after {waited:.2f} s"
    slow_reader.events.wait("card_not_answering", timeout=2)
    m = CardFile.load(deck["holder"]).memory  # the stalled APDU was never processed: card unchanged
    assert (m.counter, m.spent, m.pin_tries_left) == (before.counter, before.spent, before.pin_tries_left)
    # the cashier pulls the card and puts it back: the same reader object serves it
    stack.remove(proc)
    slow_reader.events.wait("removed")
    stack.insert(deck["holder"])
    slow_reader.events.wait("inserted")
    rec = _serve(slow_reader, city.period, before.spent + 30_000)
    assert rec.spent == before.spent + 30_000 and rec.counter == before.counter + 1


def test_sigusr1_hangs_the_inserted_card_mid_session_until_it_is_pulled(stack, slow_reader, deck, city):
    """`ewarung card insert` on SIGUSR1 (the field tester panel's "Kartu macet") answers no command
    from then on: the card, already authenticated, hangs at the PIN check and the reader gives up."""
    import signal

    before = CardFile.load(deck["holder"]).memory
    proc = stack.insert(deck["holder"])
    slow_reader.events.wait("inserted")
    s = slow_reader.open_session()
    try:
        s.authenticate()  # it answers until the signal
        proc.send_signal(signal.SIGUSR1)
        t0 = time.monotonic()
        with pytest.raises(Refusal) as e:
            s.verify_pin(PIN)
    finally:
        s.close()
    assert "not answering" in e.value.detail and time.monotonic() - t0 < DEADLINE + 1.5, e.value.detail
    slow_reader.events.wait("card_not_answering", timeout=2)
    assert proc.poll() is None, "SIGUSR1 ended the card process: it must stay in the reader, hung"
    assert CardFile.load(deck["holder"]).memory.pin_tries_left == before.pin_tries_left
    stack.remove(proc)
    slow_reader.events.wait("removed")
    stack.insert(deck["holder"])  # a fresh card process answers again
    slow_reader.events.wait("inserted")
    assert _serve(slow_reader, city.period, before.spent + 1_000).spent == before.spent + 1_000


def test_empty_vpcd_frame_no_longer_hangs_the_counter(stack, slow_reader, deck, city):
    """An empty answer frame leaves pcscd's vpcd driver waiting for ever (the stall the card fuzz
    had to avoid); with the watchdog the counter gets its refusal and the next card works."""
    import shutil
    import threading

    from hardware.card.applet import Applet
    from hardware.card.vpcd import VirtualCard
    from tests.integration.pcsc_stack import wait_for

    path = deck["holder"].with_name("empty-frame.card.json")
    shutil.copy(deck["holder"], path)
    vc = VirtualCard(Applet(CardFile.load(path)))
    vc.response_filter = lambda command, response: b"" if vc.apdus == 3 else response
    t = threading.Thread(target=vc.serve_forever, daemon=True)
    t.start()
    wait_for(vc.connected.is_set, 10, "in-process virtual card connected")
    slow_reader.events.wait("inserted")
    t0 = time.monotonic()
    with pytest.raises(Refusal) as e:
        _serve(slow_reader, city.period, 30_000)
    assert "not answering" in e.value.detail and time.monotonic() - t0 < DEADLINE + 1.5
    vc.stop()
    t.join(timeout=5)
    slow_reader.events.wait("removed")
    stack.insert(deck["holder"])
    slow_reader.events.wait("inserted")
    assert _serve(slow_reader, city.period, 30_000).spent == 30_000


# 3 internal authenticate, 4 last transaction (the recovery check): the counter is verifying the
# card; 5 verify PIN (the PIN screen)
@pytest.mark.parametrize("step", [3, 4, 5])
def test_stalled_card_abandons_the_counter_visit_with_its_own_screen(stack, slow_reader, deck, city, service, step):
    """The counter session over the real reader: the watchdog's event reaches it on the thread that
    made the card call (the session's thread here: InlineRunner), and the cashier sees the
    card-not-answering screen, not "card unreadable"; nothing is sold; re-inserted, the card serves."""
    from pos.db import Redemption
    from pos.ports import CardEvent
    from pos.printing import PrintService
    from pos.session import CounterSession, State
    from tests.fakes import FakePrinter

    s = CounterSession(service=service, reader=slow_reader, printing=PrintService.beside(service, FakePrinter()))
    slow_reader.subscribe(lambda ev: ev.kind == "card_not_answering" and s.card_event(ev))
    assert s.sign_in("kasir1", "1234", "pagi")
    before = CardFile.load(deck["holder"]).memory
    proc = stack.insert(deck["holder"], "--stall-at-apdu", str(step))
    slow_reader.events.wait("inserted")
    s.card_event(CardEvent("inserted"))  # the monitor thread's events are handed over on this thread
    if step == 5:
        assert s.state == State.HOUSEHOLD and s.choose_collector("holder")
        s.submit_pin(PIN)
    assert s.state == State.ERROR and s.error.fault == "card_not_answering", (s.state, s.error)
    assert "Kartu berhenti menjawab" in s.error.message("id") and s.basket == {}
    assert Redemption.select().count() == 0
    m = CardFile.load(deck["holder"]).memory
    assert (m.counter, m.spent, m.pin_tries_left) == (before.counter, before.spent, before.pin_tries_left)
    stack.remove(proc)
    slow_reader.events.wait("removed")
    s.card_event(CardEvent("removed"))
    assert s.state == State.IDLE
    stack.insert(deck["holder"])
    slow_reader.events.wait("inserted")
    s.card_event(CardEvent("inserted"))
    assert s.state == State.HOUSEHOLD and s.entitlement.household.id == city.notable["holder"]
