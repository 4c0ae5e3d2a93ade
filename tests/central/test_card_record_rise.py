"""A charge that raised the card's record by more than the card signed (attack 1d: a wedge lowering
the SPEND amount) is a `card_record_rise` warning with the allowance the household lost on its card,
less what its override sales not yet folded into a card explain (sync/central/card_record.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from hardware.card.fake import FakeCard
from pos.card_proof import CardTransaction, lines_digest
from sync.central.consumer import Incoming
from sync.central.registry import add_device
from sync.central.report import reconcile
from tests.central import card_sales
from tests.central.city_messages import Till, send


def _kinds(clock, *kinds: str) -> dict[str, list]:
    found = reconcile(now=clock.now())
    return {k: [f for f in found if f.kind == k] for k in kinds}


def test_a_charge_not_sold_that_raised_the_record_more_than_it_signed(on_db, clock):
    a = Till("EW-A-0001", clock.now())
    send(on_db, a.sale("SSN-1", {"BERAS5": 1}, counter=1, period_total=72_500))
    # a wedge lowered GULA1 x2 (36,000) to Rp 1; the card recorded the total the counter asked for
    send(on_db, a.charged_not_sold("SSN-1", "CARD-SSN-1", counter=2, amount=1, period_total=108_500))
    found = _kinds(clock, "card_charged_not_sold", "card_record_rise")
    [credit], [rise] = found["card_charged_not_sold"], found["card_record_rise"]
    assert credit.amount == 1 and "the card signed Rp 1; its record rose Rp 36,000" in credit.detail
    assert (rise.severity, rise.subject, rise.period, rise.devices, rise.amount) == (
        "warning", "SSN-1", "2026-11", "EW-A-0001", 35_999)
    assert rise.detail.startswith("credit the household Rp 35,999 more: the card's record rose Rp 36,000 but it "
                                  "signed Rp 1 (card CARD-SSN-1 counter 2, charge not sold ")
    assert "a reader wedge lowering the signed amount, or override sales the city has not received" in rise.detail
    assert not any(f.kind == "card_record_rise" for f in reconcile(now=clock.now(), period="2026-10"))


def test_override_sales_made_before_explain_a_rise_once(on_db, clock):
    """A terminal may fold the household's sales without the card into the card's record: the override
    sales made before a charge, not already used by an earlier rise, are not flagged."""
    t0 = clock.now() - timedelta(hours=2)
    a, b = Till("EW-A-0001", clock.now()), Till("EW-B-0002", t0)
    send(on_db, b.sale("SSN-2", {"GULA1": 1}, override=True, at=t0))  # 18,000 without the card
    # the card's first charge of the month folds that override in: rose 36,000, signed 18,000
    send(on_db, a.sale("SSN-2", {"GULA1": 1}, card="CARD-SSN-2", counter=1, period_total=36_000,
                          at=t0 + timedelta(minutes=30)))
    assert _kinds(clock, "card_record_rise")["card_record_rise"] == []
    # a later override (after the charge below) explains nothing of it; the first one is used up
    send(on_db, a.charged_not_sold("SSN-2", "CARD-SSN-2", counter=2, amount=1, period_total=54_000))
    send(on_db, b.sale("SSN-2", {"GULA1": 1}, override=True, at=clock.now() + timedelta(minutes=5)))
    [rise] = _kinds(clock, "card_record_rise")["card_record_rise"]
    assert (rise.subject, rise.amount) == ("SSN-2", 17_999) and "counter 2" in rise.detail


def test_a_partly_explained_rise_and_an_unknown_rise_after_a_gap(on_db, clock):
    t0 = clock.now() - timedelta(hours=1)
    a = Till("EW-A-0001", clock.now())
    send(on_db, a.sale("SSN-1", {"GULA1": 1}, override=True, at=t0))  # 18,000 the card may catch up with
    send(on_db, a.charged_not_sold("SSN-1", "CARD-SSN-1", counter=1, amount=1, period_total=90_500))
    [rise] = _kinds(clock, "card_record_rise")["card_record_rise"]
    assert rise.amount == 90_500 - 1 - 18_000 and "Rp 18,000 of it is explained" in rise.detail
    # counter 3 after a gap: the rise over counters 2-3 is the gap's; no rise is claimed for counter 3
    send(on_db, a.charged_not_sold("SSN-1", "CARD-SSN-1", counter=3, amount=1, period_total=200_000))
    found = _kinds(clock, "card_charged_not_sold", "card_record_rise", "card_counter_gap")
    assert [f.amount for f in found["card_record_rise"]] == [rise.amount]
    [gap] = found["card_counter_gap"]
    assert gap.amount == 200_000 - 1 - 90_500 and "the card's record rose Rp 109,499 over them" in gap.detail
    assert any("its record's rise is unknown (counter 2 never reached the city)" in f.detail
               for f in found["card_charged_not_sold"])


def test_a_real_card_charged_through_a_lowering_wedge(central, central_signer, clock):
    """The same with the card applet's own signed charge (tests/central/card_sales.py), verified by the
    consumer as a device's message: an honest sale, an override, then SPEND with the amount lowered to 1."""
    from sync.central.consumer import CentralConsumer

    shop = card_sales.Counter("EW-CV-0001")
    add_device(shop.device_id, shop.pem().encode(), shop_id="SHOP-0001", now=clock.now())
    consumer = CentralConsumer(central_signer, clock)
    card = card_sales.at_counter(FakeCard("SSN-CV-0001", "SMD-000001"))
    honest = card.charge(shop.device_id)
    lines = card_sales.LINES
    basket = sum(q * p for _, q, p in lines)
    asked = CardTransaction(shop.device_id, str(uuid.uuid4()), card_sales.PERIOD, 1,
                            honest.transaction.period_total + basket, lines_digest(lines))
    card.session.spend(asked)  # the card signs Rp 1 and records the period total the counter asked for
    last = card.session.last_transaction()
    assert last is not None and (last.transaction.amount, last.counter) == (1, 2)

    def incoming(body: dict, leaf: str, created_at: str) -> Incoming:
        return Incoming(f"ewarung/v1/devices/{shop.device_id}/{leaf}", shop.sign(body, leaf, created_at=created_at))

    override = card_sales.override_body("SMD-000001", (("GULA1", 1, 18_000),))
    out = consumer.process([incoming(card_sales.sale_body(card.auth, honest), "redemption", "2026-11-15T01:00:00.000Z"),
                            incoming(override, "redemption", "2026-11-15T01:30:00.000Z"),
                            incoming(card_sales.charge_body(card.auth, last), "event", "2026-11-15T02:00:00.000Z")])
    assert (out.stored, out.quarantined) == (3, 0)
    found = _kinds(clock, "card_charged_not_sold", "card_record_rise")
    assert [f.amount for f in found["card_charged_not_sold"]] == [1]
    [rise] = found["card_record_rise"]
    assert (rise.subject, rise.amount) == ("SMD-000001", basket - 1 - 18_000)
    assert f"the card's record rose Rp {basket:,} but it signed Rp 1" in rise.detail
