"""The counter session state machine, without Kivy: every flow, refusal and card pull."""

from __future__ import annotations

import base64
import dataclasses
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos.db import JournalEntry, OutboxMessage, Redemption, Void
from pos.printing import PrintService
from pos.refusals import Reason
from pos.session import CounterSession, DeferredRunner, InlineRunner, State
from tests.fakes import FakeCard, FakeCardReader, FakePrinter


@pytest.fixture
def reader():
    return FakeCardReader()


@pytest.fixture
def printer():
    return FakePrinter()


def make_session(service, reader, printer, runner=None, sign_in=True):
    s = CounterSession(service=service, reader=reader, printing=PrintService.beside(service, printer),
                       runner=runner or InlineRunner())
    reader.subscribe(s.card_event)
    if sign_in:
        assert s.sign_in("kasir1", "1234", "pagi")
        if isinstance(s.runner, DeferredRunner):
            s.runner.run_all()
        assert s.state == State.IDLE
    return s


@pytest.fixture
def session(service, reader, printer):
    return make_session(service, reader, printer)


def card_for(city, role, **kw):
    hid = city.notable[role]
    return FakeCard(f"CARD-{hid}", hid, **kw)


def to_basket(session, reader, card, collector=("holder", "")):
    reader.insert(card)
    assert session.state == State.HOUSEHOLD, (session.state, session.error)
    assert session.choose_collector(*collector)
    assert session.state == State.PIN
    assert session.submit_pin(card.pin)
    assert session.state == State.BASKET


def test_sign_in_wrong_pin_stays_signed_out(service, reader, printer):
    s = make_session(service, reader, printer, sign_in=False)
    assert s.state == State.SIGNED_OUT
    s.sign_in("kasir1", "0000", "pagi")
    assert s.state == State.SIGNED_OUT
    assert "PIN kasir salah" in s.notice_text()
    s.sign_in("kasir1", "1234", "siang")
    assert s.state == State.IDLE and s.cashier_name == "Rina Kasir" and s.shift == "siang"
    assert JournalEntry.select().where(JournalEntry.kind == "shift_start").count() == 1


def test_the_shift_picked_before_the_cashier_picks_is_the_sessions(service, reader, printer):
    """The sign-in screen starts on DEFAULT_SHIFT, the one a sign-in without a shift is journaled for."""
    from pos.session import DEFAULT_SHIFT, SHIFTS

    assert DEFAULT_SHIFT == SHIFTS[0] == "pagi"
    s = make_session(service, reader, printer, sign_in=False)
    assert s.sign_in("kasir1", "1234") and s.shift == DEFAULT_SHIFT


def test_only_staff_who_sell_sign_in_at_the_counter(service, reader, printer):
    """The sign-in screen lists AT_COUNTER only; the session refuses anyone else itself (a script,
    `ewarung sale --cashier tek1`): every sale must name someone who sells."""
    from pos.staff_roles import APPROVERS, AT_COUNTER

    assert "technician" not in AT_COUNTER and APPROVERS <= AT_COUNTER
    s = make_session(service, reader, printer, sign_in=False)
    assert s.sign_in("tek1", "4321", "pagi")  # the technician's right PIN
    assert s.state == State.SIGNED_OUT and s.notice == "not_at_counter" and not s.cashier_id
    assert not JournalEntry.select().where(JournalEntry.kind == "shift_start").exists()
    s.sign_in("spv1", "9999", "pagi")
    assert s.state == State.IDLE and s.cashier_id == "spv1"


def test_card_before_sign_in_is_refused(service, reader, printer, city):
    s = make_session(service, reader, printer, sign_in=False)
    reader.insert(card_for(city, "holder"))
    assert s.state == State.SIGNED_OUT and "Sign in first" in s.notice_text("en")


def test_holder_full_flow_commits_prints_and_updates_card(session, reader, printer, city):
    card = card_for(city, "holder")
    reader.insert(card)
    assert session.state == State.HOUSEHOLD
    ent = session.entitlement
    assert ent.household.id == city.notable["holder"] and ent.remaining == 200_000
    session.choose_collector("holder")
    session.submit_pin("1234")
    assert session.add("BERAS5") and session.add("TELUR10") and session.add("TELUR10")
    assert session.remove("TELUR10")
    assert session.basket == {"BERAS5": 1, "TELUR10": 1}
    assert session.basket_total == 72_500 + 27_000
    assert session.to_confirm() and session.state == State.CONFIRM
    assert session.confirm()
    assert session.state == State.DONE
    sale = session.sale
    assert sale.total == 99_500 and sale.remaining_after == 100_500 and sale.printed
    assert Redemption.get_by_id(sale.redemption_id).collected_by == "holder"
    assert card.spend.spent == 99_500 and card.spend.counter == 1
    assert len(printer.printed) == 1 and printer.printed[0][1].total == 99_500
    reader.pull()
    assert session.state == State.IDLE and session.basket == {} and session.sale is None


def test_second_visit_sees_card_spend(session, reader, city):
    card = card_for(city, "holder")
    to_basket(session, reader, card)
    session.add("BERAS5")
    session.to_confirm()
    session.confirm()
    reader.pull()
    reader.insert(card)
    assert session.entitlement.remaining == 200_000 - 72_500


def test_representative_collects(session, reader, city):
    card = card_for(city, "representative")
    reader.insert(card)
    reps = session.entitlement.household.representatives
    assert reps
    assert not session.choose_collector("representative", "NOT-A-REP")
    assert session.state == State.HOUSEHOLD and "wakil terdaftar" in session.notice_text()
    assert session.collector_name == session.entitlement.household.name  # the holder until chosen
    assert session.choose_collector("representative", reps[0].id)
    session.submit_pin("1234")
    session.add("MINYAK1")
    session.to_confirm()
    assert session.collector_name == reps[0].name  # what the confirm screen names
    session.confirm()
    row = Redemption.get_by_id(session.sale.redemption_id)
    assert row.collected_by == "representative" and row.collector_name == reps[0].name


def test_wrong_pin_counts_down_then_blocks(session, reader, city):
    card = card_for(city, "holder")
    reader.insert(card)
    session.choose_collector("holder")
    assert session.pin_tries_left == 3
    session.submit_pin("9999")
    assert session.state == State.PIN and session.pin_tries_left == 2 and "PIN salah" in session.notice_text()
    session.submit_pin("9998")
    assert session.pin_tries_left == 1
    session.submit_pin("9997")
    assert session.state == State.ERROR and session.error.reason == Reason.PIN_BLOCKED
    assert Redemption.select().count() == 0
    assert OutboxMessage.select().where(OutboxMessage.kind == "event").count() == 1


def test_pin_format_checked_before_the_card(session, reader, city):
    card = card_for(city, "holder")
    reader.insert(card)
    session.choose_collector("holder")
    assert not session.submit_pin("12")
    assert card.pin_tries_left == 3


@pytest.mark.parametrize(
    "make_card, reason",
    [
        (lambda c: card_for(c, "used_up"), Reason.ALLOWANCE_USED_UP),
        (lambda c: card_for(c, "revoked"), Reason.HOUSEHOLD_REVOKED),
        (lambda c: card_for(c, "expired"), Reason.HOUSEHOLD_EXPIRED),
        (lambda c: card_for(c, "not_yet_valid"), Reason.HOUSEHOLD_NOT_YET_VALID),
        (lambda c: FakeCard("CARD-REVOKED-DEMO", c.notable["holder"]), Reason.CARD_REVOKED),
        (lambda c: card_for(c, "holder", behaviour="forged"), Reason.CARD_FORGED),
        (lambda c: card_for(c, "holder", behaviour="cloned"), Reason.CARD_CLONED),
        (lambda c: card_for(c, "holder", behaviour="unreadable"), Reason.CARD_UNREADABLE),
        (lambda c: card_for(c, "holder", valid_until=date(2026, 1, 31)), Reason.CARD_EXPIRED),
        (lambda c: card_for(c, "holder", valid_from=date(2027, 1, 1)), Reason.CARD_NOT_YET_VALID),
        (lambda c: FakeCard("CARD-NOBODY", "SSN-6472-9999999"), Reason.HOUSEHOLD_UNKNOWN),
    ],
)
def test_refusals_show_error_with_message(session, reader, city, make_card, reason):
    reader.insert(make_card(city))
    assert session.state == State.ERROR
    assert session.error.reason == reason
    assert session.error.message("id") and session.error.message("en") != session.error.message("id")
    assert session.acknowledge() and session.state == State.IDLE


def test_forged_and_revoked_cards_are_reported_to_the_city(session, reader, city):
    before = OutboxMessage.select().where(OutboxMessage.kind == "event").count()
    reader.insert(card_for(city, "holder", behaviour="forged"))
    assert session.error.reason == Reason.CARD_FORGED
    session.acknowledge()
    assert session.notice == "take_card_out" and "Cabut kartu" in session.notice_text()
    reader.pull()
    reader.insert(card_for(city, "used_up"))  # an ordinary refusal: the screen only
    assert OutboxMessage.select().where(OutboxMessage.kind == "event").count() == before + 1


def test_a_card_recording_a_future_period_is_refused_and_reported_to_the_city(session, reader, city):
    """A record in a month that has not come counts as nothing here for good: some terminal wrote
    nonsense on the card, and the city must hear which card it is."""
    before = OutboxMessage.select().where(OutboxMessage.kind == "event").count()
    card = card_for(city, "holder")
    card.memory.spend_period, card.memory.spent = "9999-12", 5_000
    reader.insert(card)
    assert session.error.reason == Reason.CARD_PERIOD_FUTURE
    events = OutboxMessage.select().where(OutboxMessage.kind == "event")
    assert events.count() == before + 1
    body = bytes(events.order_by(OutboxMessage.seq.desc()).get().payload).split(b".")[1]
    assert b'"card_period_future"' in base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))


def test_ledger_too_old_refuses(session, reader, city, clock):
    from datetime import timedelta

    clock.advance(timedelta(days=8))
    reader.insert(card_for(city, "holder"))
    assert session.error.reason == Reason.LEDGER_TOO_OLD


def test_quota_and_allowance_limits(session, reader, city):
    to_basket(session, reader, card_for(city, "quotas"))
    assert session.add("BERAS5") and session.add("BERAS5")
    assert not session.add("BERAS5")
    assert "jatah" in session.notice_text() and session.basket["BERAS5"] == 2
    assert not session.can_add("BERAS5")
    for _ in range(10):
        session.add("AYAM1")
    assert session.basket_total <= session.remaining
    assert not session.can_add("AYAM1") or session.basket_total + 39_000 <= session.remaining


def test_over_allowance_refused(session, reader, city):
    to_basket(session, reader, card_for(city, "partly_spent"))
    assert session.remaining == 55_000
    assert not session.add("BERAS5") and "melebihi sisa" in session.notice_text()
    assert session.basket == {}


def test_empty_basket_cannot_confirm(session, reader, city):
    to_basket(session, reader, card_for(city, "holder"))
    assert not session.to_confirm() and session.state == State.BASKET


@pytest.mark.parametrize("step", ["household", "pin", "basket", "confirm"])
def test_card_pulled_at_every_step_returns_to_idle(session, reader, city, step):
    card = card_for(city, "holder")
    reader.insert(card)
    if step != "household":
        session.choose_collector("holder")
    if step in ("basket", "confirm"):
        session.submit_pin("1234")
        session.add("BERAS5")
    if step == "confirm":
        session.to_confirm()
    assert session.state == State(step)
    reader.pull()
    assert session.state == State.IDLE
    assert session.basket == {} and session.entitlement is None
    assert "dicabut" in session.notice_text()
    assert Redemption.select().count() == 0


def test_card_pulled_while_verifying_drops_late_result(service, reader, printer, city):
    runner = DeferredRunner()
    s = make_session(service, reader, printer, runner=runner)
    reader.insert(card_for(city, "holder"))
    assert s.state == State.VERIFYING
    reader.pull()
    assert s.state == State.IDLE
    runner.run_all()
    assert s.state == State.IDLE and s.entitlement is None


def test_card_pulled_while_pin_check_pending(service, reader, printer, city):
    runner = DeferredRunner()
    s = make_session(service, reader, printer, runner=runner)
    reader.insert(card_for(city, "holder"))
    runner.run_all()
    s.choose_collector("holder")
    s.submit_pin("1234")
    reader.pull()
    runner.run_all()
    assert s.state == State.IDLE


def test_card_pulled_while_confirming_sells_nothing(service, reader, printer, city):
    """The card signs first: a card pulled before it could sign means no sale, and the screen says
    the next insertion settles it (here there is nothing to settle: the card was never charged)."""
    runner = DeferredRunner()
    s = make_session(service, reader, printer, runner=runner)
    card = card_for(city, "holder")
    reader.insert(card)
    runner.run_all()
    s.choose_collector("holder")
    s.submit_pin("1234")
    runner.run_all()
    s.add("BERAS5")
    s.to_confirm()
    s.confirm()
    assert s.state == State.COMMITTING
    reader.pull()
    assert s.state == State.COMMITTING
    runner.run_all()
    assert s.state == State.ERROR and s.error.fault == "card_charge_unknown"
    assert "nothing was sold" in s.error.message("en")
    assert Redemption.select().count() == 0 and card.spend.spent == 0
    s.acknowledge()
    assert s.state == State.IDLE


def test_printer_fault_keeps_sale_and_reprint_works(session, reader, printer, city):
    printer.fault = "paper_out"
    to_basket(session, reader, card_for(city, "holder"))
    session.add("GULA1")
    session.to_confirm()
    session.confirm()
    assert session.state == State.DONE
    assert session.sale.print_fault == "paper_out" and not session.sale.printed
    assert Redemption.select().count() == 1 and printer.printed == []
    session.reprint()
    assert "Kertas printer habis" in session.notice_text()
    printer.fault = ""
    session.reprint()
    assert session.sale.printed and len(printer.printed) == 1
    assert not printer.printed[0][1].copy  # the first successful print is the original
    assert Redemption.select().count() == 1


def test_illegal_touches_change_nothing(session, reader, city):
    assert not session.confirm() and session.state == State.IDLE
    assert not session.add("BERAS5") and "not possible" in session.notice_text("en")
    assert not session.choose_collector("holder")
    assert not session.submit_pin("1234")
    assert not session.finish()
    reader.insert(card_for(city, "holder"))
    assert not session.confirm() and not session.add("BERAS5") and session.state == State.HOUSEHOLD
    assert not session.open_history() and session.state == State.HOUSEHOLD
    assert Redemption.select().count() == 0


def _sell(session, reader, card, item="BERAS5"):
    to_basket(session, reader, card)
    session.add(item)
    session.to_confirm()
    session.confirm()
    sale = session.sale
    reader.pull()
    return sale


def test_history_reprint_and_void_with_supervisor(session, reader, printer, city):
    sale = _sell(session, reader, card_for(city, "holder"))
    assert session.open_history() and session.state == State.HISTORY
    assert [r.redemption_id for r in session.history] == [sale.redemption_id]
    session.reprint(sale.redemption_id)
    assert printer.printed[-1][1].copy
    assert not session.void(sale.redemption_id, "", "spv1", "9999")
    session.void(sale.redemption_id, "wrong_items", "kasir1", "1234")
    assert "penyelia" in session.notice_text() and Void.select().count() == 0
    session.void(sale.redemption_id, "wrong_items", "spv1", "0000")
    assert Void.select().count() == 0
    session.void(sale.redemption_id, "wrong_items", "spv1", "9999")
    assert Void.select().count() == 1 and session.history[0].voided
    assert printer.printed[-1][1].kind == "void"
    session.void(sale.redemption_id, "wrong_items", "spv1", "9999")
    assert "sudah dibatalkan" in session.notice_text()
    session.cancel()
    assert session.state == State.IDLE


def test_end_of_day(session, reader, city):
    _sell(session, reader, card_for(city, "holder"))
    _sell(session, reader, card_for(city, "representative"), "MINYAK1")
    session.open_end_of_day()
    rep = session.day_report
    assert rep.sales_count == 2 and rep.sales_total == 72_500 + 17_500
    assert [(c.cashier_id, c.count, c.total) for c in rep.cashiers] == [("kasir1", 2, 90_000)]


def test_end_of_day_printed_from_the_screen(session, reader, printer, city):
    from pos.db import PrintJob

    _sell(session, reader, card_for(city, "holder"))
    assert not session.print_end_of_day()  # not on the end-of-day screen yet
    session.open_end_of_day()
    printer.fault = "paper_out"
    assert session.print_end_of_day()
    assert "Kertas" in session.notice_text() and session.printer_fault == "paper_out" and not printer.reports
    failed = PrintJob.get(PrintJob.kind == "end_of_day")
    assert failed.state == "failed" and failed.last_error.startswith("not_sent|paper_out")
    printer.fault = ""
    assert session.print_end_of_day()
    assert session.state == State.END_OF_DAY and not session.printer_fault
    [(job_id, report)] = printer.reports
    assert report.sales_total == 72_500 and PrintJob.get_by_id(job_id).state == "printed"


def test_typed_household_numbers_take_the_devices_area_code(session, service):
    """The keypad's digits become the city's household id with the area code of [device]."""
    assert session.household_id("42") == "SSN-6472-0000042" and session.household_prefix == "SSN-6472-"
    service.device = dataclasses.replace(service.device, area_code="6471")
    assert session.household_id("42") == "SSN-6471-0000042" and session.household_prefix == "SSN-6471-"
    assert session.household_number("SSN-6471-0000042") == "0000042"
    assert session.household_number("SSN-6472-0000042") == ""  # another city's id: typed afresh


def test_flag_data_problem_reaches_outbox(session, reader, city):
    hid = city.notable["revoked"]
    reader.insert(card_for(city, "revoked"))
    assert session.state == State.ERROR
    session.open_flag(hid)
    assert session.state == State.FLAG and session.flag_household == hid
    assert not session.flag_problem(hid, "nonsense")
    assert session.flag_problem(hid, "not_eligible", "pindah ke Balikpapan")
    msg = OutboxMessage.select().where(OutboxMessage.kind == "event").order_by(OutboxMessage.seq.desc()).get()
    assert b"." in msg.payload
    assert session.state == State.IDLE and "Reported" in session.notice_text("en")


def test_override_flow_is_capped_and_journaled(session, reader, printer, city, service):
    assert session.open_override()
    assert not session.start_override(city.notable["holder"], "because", "spv1", "9999")
    session.start_override(city.notable["holder"], "card_damaged", "kasir1", "1234")
    assert session.state == State.OVERRIDE and "penyelia" in session.notice_text()
    session.start_override(city.notable["holder"], "card_damaged", "spv1", "9999")
    assert session.state == State.HOUSEHOLD and session.mode == "override"
    session.choose_collector("holder")
    assert session.state == State.BASKET  # no card, no card PIN
    session.add("TELUR10")
    session.to_confirm()
    session.confirm()
    red = Redemption.get_by_id(session.sale.redemption_id)
    assert red.mode == "override" and red.override_reason == "card_damaged"
    assert JournalEntry.select().where(JournalEntry.kind == "override_start").count() == 1
    session.finish()
    # the policy cap
    import dataclasses

    service.policy = dataclasses.replace(service.policy, override_cap_per_period=1)
    session.policy = service.policy
    session.open_override()
    session.start_override(city.notable["representative"], "card_forgotten", "spv1", "9999")
    assert session.state == State.ERROR and session.error.reason == Reason.OVERRIDE_CAP_REACHED


def test_reader_lost_and_back(session, reader, city):
    to_basket(session, reader, card_for(city, "holder"))
    session.add("BERAS5")
    reader.unplug()
    assert session.state == State.ERROR and session.error.fault == "reader_lost"
    assert "Pembaca kartu" in session.error.message("id")
    assert not session.acknowledge()
    reader.plug()
    assert session.state == State.IDLE and session.basket == {}


def test_technician_and_language(session, printer):
    assert session.open_technician()
    session.test_reader()
    assert session.tech_results["reader"] == ("connected", "no card")
    printer.fault = "offline"
    session.test_printer()
    assert session.tech_results["printer"][0] == "offline" and session.printer_fault == "offline"
    session.set_language("en")
    assert session.language == "en"
    session.close_technician()
    assert session.state == State.IDLE


ACTIONS = st.sampled_from(
    ["insert_holder", "insert_used", "insert_forged", "pull", "holder", "rep", "pin_ok", "pin_bad",
     "add_rice", "add_eggs", "add_oil", "remove_rice", "to_confirm", "back", "confirm", "cancel",
     "finish", "ack", "reprint", "history", "eod", "run", "run", "unplug", "plug", "mute"]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(ACTIONS, min_size=1, max_size=40))
def test_random_touches_never_crash_or_commit_without_confirm(service, city, steps):
    reader, printer = FakeCardReader(), FakePrinter()
    runner = DeferredRunner()
    s = make_session(service, reader, printer, runner=runner)
    cards = {
        "insert_holder": card_for(city, "holder"),
        "insert_used": card_for(city, "used_up"),
        "insert_forged": card_for(city, "holder", behaviour="forged"),
    }
    before = Redemption.select().count()
    confirms = 0
    for step in steps:
        state_before = s.state
        if step in cards:
            reader.insert(cards[step])
        elif step == "pull":
            reader.pull()
        elif step == "holder":
            s.choose_collector("holder")
        elif step == "rep":
            s.choose_collector("representative", "X")
        elif step == "pin_ok":
            s.submit_pin("1234")
        elif step == "pin_bad":
            s.submit_pin("0000")
        elif step.startswith("add_"):
            s.add({"rice": "BERAS5", "eggs": "TELUR10", "oil": "MINYAK1"}[step[4:]])
        elif step == "remove_rice":
            s.remove("BERAS5")
        elif step == "confirm":
            if s.confirm():
                assert state_before == State.CONFIRM
                confirms += 1
        elif step == "run":
            runner.run_next()
        elif step == "unplug":
            reader.unplug()
        elif step == "plug":
            reader.plug()
        elif step == "mute":  # the card in the reader stops answering
            reader.stop_answering()
        else:
            getattr(s, {"to_confirm": "to_confirm", "back": "back", "cancel": "cancel", "finish": "finish",
                        "ack": "acknowledge", "reprint": "reprint", "history": "open_history",
                        "eod": "open_end_of_day"}[step])()
        assert Redemption.select().count() - before <= confirms
        if s.state == State.BASKET:
            assert s.basket_total <= s.remaining
        if s.state == State.IDLE:
            assert s.basket == {}
    runner.run_all()
    assert Redemption.select().count() - before <= confirms
    for c in cards.values():
        if c.pin_tries_left == 0:
            c.pin_tries_left = 3


def test_storage_fault_on_confirm_says_stop_and_call_the_technician(session, reader, city, monkeypatch):
    """The commit fails after the card signed: nothing sold, the charge reported, the technician called."""
    from pos.db import StorageFault

    def full_disk(*_a):
        raise StorageFault("disk_full", "database or disk is full")

    monkeypatch.setattr(session.service, "commit", full_disk)
    to_basket(session, reader, card_for(city, "holder"))
    session.add("GULA1")
    session.to_confirm()
    session.confirm()
    assert session.state == State.ERROR and session.error.fault == "card_charged_not_sold"
    assert "hubungi teknisi" in session.error.message("id") and "free space" in session.error.detail
    assert Redemption.select().count() == 0


# -- a card that stops answering (the reader's transmit watchdog) -------------------------------

NOT_ANSWERING_ID = "Kartu berhenti menjawab"


def _at_step(s, reader, runner, card, step):
    """Walk a visit to `step` (verifying leaves the card's first read pending in `runner`)."""
    reader.insert(card)
    if step == "verifying":
        return
    runner.run_all()
    if step == "household":
        return
    s.choose_collector("holder")
    if step == "pin":
        return
    s.submit_pin(card.pin)
    runner.run_all()
    s.add("BERAS5")
    if step == "confirm":
        s.to_confirm()


def _to_confirm(s, reader, card, code="GULA1"):
    to_basket(s, reader, card)
    assert s.add(code) and s.to_confirm()


def _assert_abandoned_with_card_not_answering(s):
    assert s.state == State.ERROR and s.error.fault == "card_not_answering" and s.error.reason is None
    text = s.error.message("id")
    assert NOT_ANSWERING_ID in text and "Cabut kartu, lalu masukkan kembali" in text
    assert "Tanpa kartu (izin penyelia)" in text and "Kartu rusak" in text  # the override and its reason
    assert "stopped answering" in s.error.message("en") and "supervisor override" in s.error.message("en")
    assert s.basket == {} and s.entitlement is None and s.card is None and not s.busy
    assert Redemption.select().count() == 0


@pytest.mark.parametrize("step", ["verifying", "household", "pin", "basket", "confirm"])
def test_card_not_answering_at_every_step_abandons_the_sale(service, reader, printer, city, step):
    runner = DeferredRunner()
    s = make_session(service, reader, printer, runner=runner)
    card = card_for(city, "holder")
    _at_step(s, reader, runner, card, step)
    assert s.state == State(step)
    reader.stop_answering()
    if step == "verifying":  # the pending read stalls: the event, then its CARD_UNREADABLE (dropped)
        runner.run_all()
    elif step == "pin":  # the PIN check stalls
        assert s.submit_pin(card.pin)
        runner.run_all()
    else:  # no card call on these screens: the watchdog's event alone
        reader._emit("card_not_answering")
        runner.run_all()
    _assert_abandoned_with_card_not_answering(s)
    assert card.spend.spent == 0
    # the cashier reads it; the card is still in: back to idle, asked to take it out
    assert s.acknowledge() and s.state == State.IDLE and s.notice == "take_card_out"
    reader.pull()
    reader.insert(card)  # pulled and inserted again: the card answers, the visit starts over
    runner.run_all()
    assert s.state == State.HOUSEHOLD and s.entitlement.remaining == 200_000


def test_card_not_answering_result_before_event_still_shows_the_dedicated_error(session, reader, city):
    """Whatever order the failing call and the event arrive in, the cashier sees the same screen."""
    from pos.refusals import Refusal

    reader.insert(card_for(city, "holder"))
    session._fail(Refusal(Reason.CARD_UNREADABLE, "card not answering"))
    reader._emit("card_not_answering")
    assert session.state == State.ERROR and session.error.fault == "card_not_answering"


def test_card_pulled_after_card_not_answering_clears_the_error(session, reader, city):
    to_basket(session, reader, card_for(city, "holder"))
    reader.stop_answering()
    reader._emit("card_not_answering")
    assert session.state == State.ERROR
    reader.pull()
    assert session.state == State.IDLE and session.error is None


@pytest.mark.parametrize("where", ["signed_out", "idle", "history", "done"])
def test_card_not_answering_outside_a_visit_changes_nothing(service, reader, printer, city, where):
    s = make_session(service, reader, printer, sign_in=where != "signed_out")
    if where == "history":
        s.open_history()
    if where == "done":
        _to_confirm(s, reader, card_for(city, "holder"))
        s.confirm()
    before = (s.state, s.error, s.notice, Redemption.select().count())
    reader._emit("card_not_answering")
    assert (s.state, s.error, s.notice, Redemption.select().count()) == before
    if where == "idle":  # and the next card is served as usual
        to_basket(s, reader, card_for(city, "holder"))


def test_card_not_answering_during_an_override_visit_is_ignored(session, reader, city):
    session.open_override()
    session.start_override(city.notable["holder"], "card_damaged", "spv1", "9999")
    session.choose_collector("holder")
    session.add("GULA1")
    reader._emit("card_not_answering")
    assert session.state == State.BASKET and session.basket == {"GULA1": 1}


def test_card_not_answering_at_confirm_sells_nothing(session, reader, city):
    """A card that stalls on the spend cannot be read back either: no sale, and the screen says the
    card's next insertion settles whether it was charged."""
    card = card_for(city, "holder")
    _to_confirm(session, reader, card)
    reader.stop_answering()
    session.confirm()
    assert session.state == State.ERROR and session.error.fault == "card_charge_unknown"
    assert Redemption.select().count() == 0 and card.spend.spent == 0


def test_card_pulled_during_pin_check_does_not_block_the_next_pin(service, reader, printer, city):
    runner = DeferredRunner()
    s = make_session(service, reader, printer, runner=runner)
    card = card_for(city, "holder")
    _at_step(s, reader, runner, card, "pin")
    s.submit_pin("1234")
    reader.pull()
    runner.run_all()
    assert not s.busy
    _at_step(s, reader, runner, card, "pin")
    assert s.submit_pin("1234")
    runner.run_all()
    assert s.state == State.BASKET


# -- the threading contract and the table of touches ------------------------------------------


class WatchingRunner:
    """Runs work inline, but checks that `work()` itself changed nothing the screens read: a
    worker's result is returned to `done`, never assigned from the worker thread."""

    def __init__(self) -> None:
        self.session = None
        self.works = 0

    def submit(self, work, done) -> None:
        before = self._seen()
        try:
            result, error = work(), None
        except Exception as exc:
            result, error = None, exc
        assert self._seen() == before, "work() changed the session from the worker"
        self.works += 1
        done(result, error)

    def _seen(self):
        s = self.session
        if s is None:
            return None
        return ({k: repr(v) for k, v in vars(s).items() if k != "runner"}, s.printing.language)


def test_worker_results_are_returned_never_assigned(service, reader, printer, city):
    runner = WatchingRunner()
    s = make_session(service, reader, printer, runner=runner, sign_in=False)
    runner.session = s
    assert s.sign_in("kasir1", "1234", "pagi")
    s.set_language("en")
    printer.fault = "paper_out"
    sale = _sell(s, reader, card_for(city, "holder"))
    assert not sale.printed and sale.print_fault == "paper_out"
    printer.fault = ""
    s.open_history()
    s.reprint(sale.redemption_id)
    s.void(sale.redemption_id, "wrong_items", "spv1", "9999")
    s.cancel()
    s.open_end_of_day()
    s.print_end_of_day()
    s.cancel()
    s.open_technician()
    s.test_printer()
    assert runner.works >= 10 and printer.printed[-1][1].language == "en"


def test_every_action_has_a_rule_and_a_refused_touch_changes_nothing(session):
    from pos.session import RULES, Action

    assert set(RULES) == set(Action)
    for action in Action:
        if session.state in RULES[action].states:
            continue
        before = (session.state, session.basket, session.error)
        session._may(action)
        assert (session.state, session.basket, session.error) == before
        assert session.notice == "not_possible_now" and session.notice_args == {"action": f"action.{action.value}"}


# -- issue 21: the counter as a cashier lives it ---------------------------------------------------


def test_take_the_card_out_goes_once_the_card_is_out(session, reader, city):
    """Item 3: "Cabut kartu dari pembaca." must not stay on the idle screen after the card is pulled."""
    reader.insert(card_for(city, "holder", behaviour="forged"))
    session.acknowledge()
    assert session.notice == "take_card_out"
    reader.pull()
    assert session.state == State.IDLE and session.notice == ""


def test_success_notices_are_told_apart_from_problems(session, reader, printer, city):
    """Item 3: a success must not look like an error (the screens colour by notice_is_success)."""
    sale = _sell(session, reader, card_for(city, "holder"))
    session.open_history()
    session.reprint(sale.redemption_id)
    assert session.notice == "receipt_printed" and session.notice_is_success
    session.void(sale.redemption_id, "wrong_items", "spv1", "0000")
    assert not session.notice_is_success


def test_void_wrong_supervisor_pin_names_the_supervisor_and_success_names_the_sale(session, reader, printer, city):
    """Item 4: a wrong supervisor PIN says so (not the cashier's PIN); the success names the voided
    sale's receipt number, not the void's own message number; item 5: it says what the household
    gets back and when."""
    first = _sell(session, reader, card_for(city, "holder"))
    reader.insert(card_for(city, "holder", behaviour="forged"))  # refused: reported, takes a message number
    session.acknowledge()
    reader.pull()
    session.open_history()
    session.void(first.redemption_id, "buyer_cancelled", "spv1", "0000")
    assert session.notice == "supervisor_pin_wrong" and "penyelia" in session.notice_text()
    assert "kasir" not in session.notice_text().lower() and session.last_voided == ""
    session.void(first.redemption_id, "buyer_cancelled", "spv1", "9999")
    assert session.last_voided == first.redemption_id
    assert session.notice_args["no"] == first.receipt_no == 1
    assert "Struk no. 1 dibatalkan" in session.notice_text() and "Dinas" in session.notice_text()


def test_a_void_reason_not_on_the_core_list_is_declined_before_the_supervisor_pin(session, reader, city):
    """The screen offers the core's VOID_REASONS; anything else is declined by the session itself,
    before a supervisor's PIN is checked (no wrong-PIN count, no void)."""
    sale = _sell(session, reader, card_for(city, "holder"))
    session.open_history()
    assert not session.void(sale.redemption_id, "salah barang", "spv1", "0000")
    assert session.notice == "void_needs_reason" and Void.select().count() == 0
    assert not JournalEntry.select().where(JournalEntry.kind == "staff_pin_failed").exists()


def test_void_slip_words_the_reason_names_the_supervisor_and_the_balance(session, reader, printer, city):
    """Item 4 and 5: the slip prints "Penerima batal", not `buyer_cancelled`, with the supervisor,
    the balance the card shows, and what the household gets back."""
    from pos.receipt_text import render_text

    sale = _sell(session, reader, card_for(city, "holder"))
    session.open_history()
    session.void(sale.redemption_id, "buyer_cancelled", "spv1", "9999")
    slip = printer.printed[-1][1]
    text = "\n".join(render_text(slip, 32))
    assert "Penerima batal" in text and "buyer_cancelled" not in text
    assert "Penyelia" in text and slip.supervisor_name and slip.supervisor_name in text
    assert "Sisa saldo di kartu" in text and "memutuskan penggantiannya" in slip.void_refund


def test_household_refusal_remembers_the_household_for_the_report(session, reader, city):
    """Item 9: "Laporkan" from a refusal about the household fills the household in."""
    from tests.fakes import FakeCard

    reader.insert(FakeCard("CARD-NOBODY", "SSN-6472-9999999"))
    assert session.error.reason == Reason.HOUSEHOLD_UNKNOWN
    assert session.error.household == "SSN-6472-9999999"
    assert session.open_flag(session.error.household) and session.flag_household == "SSN-6472-9999999"


def test_report_data_is_offered_for_a_refusal_about_the_household_not_for_a_wrong_card(session, reader, city):
    """The session, not the error screen, decides when "Report data" is offered: a household the
    ledger does not know, revoked or expired is the city's data to fix; a forged card or a device
    fault is not, and open_flag from such an error is refused as the screen hides it."""
    from tests.fakes import FakeCard

    reader.insert(FakeCard("CARD-NOBODY", "SSN-6472-9999999"))
    assert session.error.offers_report
    reader.pull()
    reader.insert(card_for(city, "holder", behaviour="forged"))
    assert session.error.reason == Reason.CARD_FORGED and not session.error.offers_report
    assert not session.open_flag(session.error.household)
    assert session.state == State.ERROR and session.notice == "not_possible_now"


def test_printer_state_read_while_idle_reaches_the_status_bar(session):
    """Item 8: paper out shows before a sale tries to print; a printer that cannot tell changes nothing."""
    from pos.ports import PrinterStatus
    from pos.printing import fault_of

    assert fault_of(PrinterStatus(True, "out")) == "paper_out"
    assert fault_of(PrinterStatus(False)) == "offline"
    assert fault_of(PrinterStatus(True, "ok", False)) == ""
    assert fault_of(PrinterStatus(None)) is None
    session.printer_polled(fault_of(PrinterStatus(True, "out")))
    assert session.printer_fault == "paper_out"
    session.printer_polled(None)
    assert session.printer_fault == "paper_out"
    session.printer_polled("")
    assert session.printer_fault == ""


def test_end_of_day_report_reads_as_text_for_the_tester_panel(session, reader, city):
    """Item 7: the printed report appears in the field tester's panel (its text form)."""
    from pos.receipt_text import report_text

    _sell(session, reader, card_for(city, "holder"))
    session.open_end_of_day()
    text = "\n".join(report_text(session.day_report, "id"))
    assert "LAPORAN TUTUP HARI" in text and "Belum terkirim ke Dinas" in text and "Rina Kasir" in text


def test_override_wrong_supervisor_pin_names_the_supervisor(session, city):
    """Item 4, the same words where a supervisor approves a card-less visit."""
    assert session.open_override()
    session.start_override(city.notable["holder"], "card_damaged", "spv1", "0000")
    assert session.state == State.OVERRIDE and session.notice == "supervisor_pin_wrong"
