"""The card signs first, then the sale is committed with its proof: what a lost SPEND answer, a
failed commit and a card charged without a sale lead to, through the session and the real Applet."""

from __future__ import annotations

import json

import pytest

from hardware.card import apdu, evidence
from hardware.card.fake import demo_issuer_keys
from pos.card_proof import charge_evidence, redemption_evidence
from pos.db import JournalEntry, OutboxMessage, Redemption
from pos.printing import PrintService
from pos.redemption import CHARGE_EVENT
from pos.session import CounterSession, InlineRunner, State
from pos.signing import b64url_decode
from tests.fakes import FakeCard, FakeCardReader, FakePrinter


@pytest.fixture
def reader():
    return FakeCardReader()


@pytest.fixture
def session(service, reader):
    s = CounterSession(service=service, reader=reader, printing=PrintService.beside(service, FakePrinter()),
                       runner=InlineRunner())
    reader.subscribe(s.card_event)
    assert s.sign_in("kasir1", "1234", "pagi")
    return s


@pytest.fixture
def card(city):
    hid = city.notable["holder"]
    return FakeCard(f"CARD-{hid}", hid)


def to_confirm(session, reader, card, code="GULA1"):
    reader.insert(card)
    assert session.state == State.HOUSEHOLD, (session.state, session.error)
    assert session.choose_collector("holder") and session.submit_pin(card.pin)
    assert session.add(code) and session.to_confirm()


def messages(kind):
    return [json.loads(b64url_decode(bytes(m.payload).decode().split(".")[1])) for m in OutboxMessage.select().where(OutboxMessage.kind == kind)
            .order_by(OutboxMessage.seq)]


def charge_events():
    return [m for m in messages("event") if m["body"].get("event") == CHARGE_EVENT]


def swallow(*ins):
    """A wedge between reader and card: commands with an instruction in `ins` reach the card, and
    their answer never comes back; everything else passes."""
    def hook(command: bytes, response: bytes) -> bytes:
        if command[1] in ins:
            raise_lost()
        return response
    return hook


def raise_lost():
    from hardware.card.client import TransportError

    raise TransportError("the answer never came back")


def test_a_card_sale_carries_the_cards_proof_that_the_city_verifies(session, reader, card, device):
    to_confirm(session, reader, card)
    session.confirm()
    assert session.state == State.DONE
    [msg] = messages("redemption")
    assert msg["schema"] == "ewarung.redemption/2"
    body = msg["body"]
    got = evidence.verify(redemption_evidence(device.device_id, body), evidence.CertificateCache(demo_issuer_keys()))
    assert got.info.card_id == body["card_id"] and got.info.household_id == body["household"]
    assert body["card"]["proof"]["op"] == 2 and body["card_counter"] == body["card"]["proof"]["counter"] == 1
    assert card.spend.spent == body["total"] == body["card"]["proof"]["period_total"]


def test_an_override_sale_has_no_card_evidence(session, city):
    session.open_override()
    session.start_override(city.notable["holder"], "card_damaged", "spv1", "9999")
    session.choose_collector("holder")
    session.add("GULA1")
    session.to_confirm()
    session.confirm()
    assert session.state == State.DONE
    [msg] = messages("redemption")
    assert msg["body"]["mode"] == "override" and msg["body"]["card"] is None


def test_a_card_that_refuses_the_spend_means_no_sale(session, reader, card, city):
    """The card says no (here: its record is past this sale's period total): nothing is committed."""
    to_confirm(session, reader, card)
    card.memory.spend_period, card.memory.spent = city.period, 10**9  # the card's record moved on behind the terminal's back
    session.confirm()
    assert session.state == State.ERROR and session.error.fault == "card_not_charged"
    assert "not charged" in session.error.message("en") and "tidak terpotong" in session.error.message("id")
    assert Redemption.select().count() == 0 and not messages("redemption") and not charge_events()


def test_a_wedge_that_blocks_the_spend_means_no_sale(session, reader, card):
    """The SPEND never reaches the card: read back, its last transaction is not this sale's."""
    to_confirm(session, reader, card)
    real = reader._transmit

    def blocked(command):
        if command[1] == apdu.INS_SPEND:
            raise_lost()
        return real(command)
    reader._transmit = blocked
    session.confirm()
    assert session.state == State.ERROR and session.error.fault == "card_not_charged"
    assert card.spend.counter == 0 and Redemption.select().count() == 0 and not charge_events()


def test_a_wedge_that_swallows_the_spend_answer_is_read_back_and_the_sale_committed(session, reader, card, device):
    """The card was charged but its answer was lost: the card's own last transaction (op 3), signed
    again over a fresh challenge, is this sale's, and the sale is committed with it."""
    to_confirm(session, reader, card)
    reader.transmit_hook = swallow(apdu.INS_SPEND)
    session.confirm()
    assert session.state == State.DONE, session.error
    [msg] = messages("redemption")
    assert msg["body"]["card"]["proof"]["op"] == 3
    evidence.verify(redemption_evidence(device.device_id, msg["body"]), evidence.CertificateCache(demo_issuer_keys()))
    assert card.spend.counter == 1 and card.spend.spent == msg["body"]["total"]


def test_spend_and_read_back_both_lost_means_no_sale_and_the_next_insertion_reports_once(session, reader, card,
                                                                                       device):
    """Never a sale without proof: the charge is unknown, nothing is sold; at the card's next
    insertion the device finds the charge it never committed and reports it, exactly once."""
    to_confirm(session, reader, card)
    reader.transmit_hook = swallow(apdu.INS_SPEND, apdu.INS_LAST_TX)
    session.confirm()
    assert session.state == State.ERROR and session.error.fault == "card_charge_unknown"
    assert "credits it back" in session.error.message("en")
    assert Redemption.select().count() == 0 and card.spend.counter == 1  # charged, not sold
    assert not charge_events()
    session.acknowledge()
    reader.pull()
    reader.transmit_hook = None
    reader.insert(card)
    assert session.state == State.HOUSEHOLD and session.notice == "charge_reported"
    assert "Reported to the city" in session.notice_text("en")
    [event] = charge_events()
    body = event["body"]
    assert body["household"] == card.household_id and body["card_id"] == card.card_id
    ev = charge_evidence(body)
    assert ev.transaction.device_id == device.device_id == event["device"] and ev.op == 3
    evidence.verify(ev, evidence.CertificateCache(demo_issuer_keys()))
    assert body["amount"] == ev.transaction.amount and body["redemption_id"] == ev.transaction.redemption_id
    session.cancel()
    reader.pull()
    reader.insert(card)  # the second insertion: already reported, not again
    assert session.notice != "charge_reported" and len(charge_events()) == 1


def test_a_commit_that_fails_after_the_card_signed_reports_the_charge_at_once(session, reader, card, monkeypatch):
    from pos.db import StorageFault

    def full_disk(*_a):
        raise StorageFault("disk_full", "database or disk is full")

    monkeypatch.setattr(session.service, "commit", full_disk)
    to_confirm(session, reader, card)
    session.confirm()
    assert session.state == State.ERROR and session.error.fault == "card_charged_not_sold"
    assert "city will credit" in session.error.message("en") and "disk is full" in session.error.detail
    assert Redemption.select().count() == 0 and card.spend.counter == 1
    [event] = charge_events()
    assert event["body"]["card"]["proof"]["op"] == 2
    monkeypatch.undo()
    session.acknowledge()
    reader.pull()
    reader.insert(card)  # committed nowhere, but reported already: not twice
    assert session.state == State.HOUSEHOLD and len(charge_events()) == 1


def test_when_the_database_refuses_even_the_event_the_next_insertion_reports_it(session, reader, card, monkeypatch):
    from pos.db import StorageFault

    def full_disk(*_a):
        raise StorageFault("disk_full", "database or disk is full")

    monkeypatch.setattr(session.service, "commit", full_disk)
    monkeypatch.setattr(session.service, "report_charge", full_disk)
    to_confirm(session, reader, card)
    session.confirm()
    assert session.error.fault == "card_charged_not_sold" and not charge_events()
    monkeypatch.undo()
    session.acknowledge()
    reader.pull()
    reader.insert(card)
    assert len(charge_events()) == 1 and session.notice == "charge_reported"
    assert JournalEntry.select().where(JournalEntry.kind == CHARGE_EVENT).count() == 1


def test_another_devices_last_transaction_is_not_reported_here(session, reader, card, service, device):
    """The card's last charge was made by another counter: that counter reports it, not this one."""
    from dataclasses import replace

    to_confirm(session, reader, card)
    monkey_device = replace(device, device_id="EW-OTHER-0002")
    service.device = monkey_device
    try:
        reader.transmit_hook = swallow(apdu.INS_SPEND, apdu.INS_LAST_TX)
        session.confirm()
        assert session.error.fault == "card_charge_unknown"
    finally:
        service.device = device
        reader.transmit_hook = None
    session.acknowledge()
    reader.pull()
    reader.insert(card)
    assert session.state == State.HOUSEHOLD and not charge_events()


def test_a_committed_sale_is_not_reported_at_the_next_insertion(session, reader, card):
    to_confirm(session, reader, card)
    session.confirm()
    session.finish()
    reader.pull()
    reader.insert(card)
    assert session.state == State.HOUSEHOLD and not charge_events()


def test_commit_refuses_a_card_sale_without_this_plans_proof(service, city):
    from pos.redemption import RedemptionRequest

    plan = service.prepare(RedemptionRequest(city.notable["holder"], "kasir1", {"GULA1": 1}, card_id="C"))
    other = service.prepare(RedemptionRequest(city.notable["holder"], "kasir1", {"GULA1": 1}, card_id="C"))
    assert plan.transaction.period == city.period and plan.transaction.amount == plan.total
    with pytest.raises(ValueError, match="proof"):
        service.commit(plan, None)
    from pos.card_proof import CardProof

    foreign = CardProof(other.transaction, 1, 2, bytes(16), bytes(32), b"sig")
    with pytest.raises(ValueError, match="proof"):
        service.commit(plan, foreign)
    assert Redemption.select().count() == 0


def test_the_card_is_asked_to_record_only_the_current_period(session, reader, card, city):
    """A card whose record is last month's: the sale is this month's, its period total this sale
    alone; last month's spending never carries into the transaction the card signs."""
    from pos.period import Period

    last_month = str(Period.parse(city.period).previous())
    card.memory.spend_period, card.memory.spent = last_month, 150_000
    to_confirm(session, reader, card)
    session.confirm()
    assert session.state == State.DONE, session.error
    [msg] = messages("redemption")
    assert msg["body"]["period"] == city.period
    assert msg["body"]["card"]["proof"]["period_total"] == msg["body"]["total"] == card.spend.spent
    assert card.spend.period == city.period


def test_a_visit_across_the_month_end_signs_the_new_month_without_the_old_spending(session, reader, card, city,
                                                                                   clock):
    """Card read on the last evening of the month (its record: 20,000 this month), confirmed after
    midnight: the card signs the new month, whose total is this sale alone."""
    from dataclasses import replace
    from datetime import datetime, timedelta

    from pos.period import WITA, Period

    lenient = replace(session.policy, ledger_max_age_hours=24 * 60, ledger_expired_action="warn", offline_max_days=60)
    session.policy = session.service.policy = lenient  # the sample ledger is mid-month's: let it serve at month end
    card.memory.spend_period, card.memory.spent = city.period, 20_000
    p = Period.parse(city.period)
    month_end = datetime(p.year + (p.month == 12), p.month % 12 + 1, 1, tzinfo=WITA) - timedelta(minutes=2)
    clock.set(month_end)
    to_confirm(session, reader, card)
    clock.advance(timedelta(minutes=4))
    session.confirm()
    assert session.state == State.DONE, session.error
    [msg] = messages("redemption")
    new_month = str(Period.of(clock.now()))
    assert msg["body"]["period"] == new_month != city.period
    assert msg["body"]["card"]["proof"]["period_total"] == msg["body"]["total"]
    assert (card.spend.period, card.spend.spent) == (new_month, msg["body"]["total"])


def test_card_sale_helper_makes_honest_traffic_for_other_tests(service, city, device):
    """tests.card_fixtures.card_sale: the counter's order without a screen; its messages verify and
    the same household's card keeps its record across sales."""
    from pos.redemption import RedemptionRequest
    from tests.card_fixtures import card_sale

    hid = city.notable["holder"]
    first = card_sale(service, RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
    second = card_sale(service, RedemptionRequest(hid, "kasir1", {"GULA1": 1}))
    certs = evidence.CertificateCache(demo_issuer_keys())
    bodies = [m["body"] for m in messages("redemption")]
    assert [b["redemption_id"] for b in bodies] == [first.redemption_id, second.redemption_id]
    for body in bodies:
        evidence.verify(redemption_evidence(device.device_id, body), certs)
    assert bodies[1]["card"]["proof"]["period_total"] == first.total + second.total
    assert [b["card_counter"] for b in bodies] == [1, 2]
