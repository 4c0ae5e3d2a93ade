"""The city's cross-message checks (issue #16, item 4): each attack a registered device key can
sign, across messages or devices, is quarantined or reported critical; honest sales land once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from pos.period import WITA
from sync.central.report import reconcile
from sync.central.store import (
    CardCounter,
    Message,
    PendingVoid,
    Quarantined,
    RedemptionRecord,
    VoidRecord,
)
from tests.central.city_messages import Till, publish_city, send


def _rules() -> dict[str, str]:
    return {q.msg_id: q.rule for q in Quarantined.select()}


def _critical(clock, kind: str | None = None) -> list:
    return [f for f in reconcile(now=clock.now()) if f.severity == "critical" and (kind is None or f.kind == kind)]


def test_content_problems_are_stored_acked_and_quarantined(consumer, clock):
    a = Till("EW-A-0001", clock.now())
    sale = a.sale("SSN-1", {"BERAS5": 1}, counter=1)
    out = send(consumer, sale, problems=("card signature does not verify",))
    assert (out.stored, out.quarantined, len(out.acks)) == (1, 1, 1)  # acked: the device keeps its sequence
    assert Message.select().count() == 1 and RedemptionRecord.select().count() == 0
    q = Quarantined.get()
    assert (q.rule, q.severity, q.household, q.ref) == ("content", "critical", "SSN-1", sale[1]["body"]["redemption_id"])
    found = _critical(clock, "content")
    assert len(found) == 1 and "card signature does not verify" in found[0].detail
    assert CardCounter.select().count() == 0  # an unverified proof claims no counter


def test_redemption_id_collision_is_quarantined_not_dropped(on_db, clock):
    a, b = Till("EW-A-0001", clock.now()), Till("EW-B-0002", clock.now())
    first = a.sale("SSN-1", {"BERAS5": 1}, counter=1)
    rid = first[1]["body"]["redemption_id"]
    again = b.sale("SSN-2", {"GULA1": 1}, card="CARD-SSN-2", counter=1, rid=rid)
    same_batch = b.sale("SSN-2", {"GULA1": 2}, card="CARD-SSN-2", counter=2, rid=rid)
    send(on_db, first)
    out = send(on_db, again, same_batch)
    assert out.stored == 2 and Message.select().count() == 3
    assert RedemptionRecord.get_by_id(rid).device == "EW-A-0001" and RedemptionRecord.select().count() == 1
    assert _rules() == {again[1]["id"]: "id_collision", same_batch[1]["id"]: "id_collision"}
    assert len(_critical(clock, "id_collision")) == 2


def test_card_counter_used_twice_is_a_clone(on_db, clock):
    a, b = Till("EW-A-0001", clock.now()), Till("EW-B-0002", clock.now())
    send(on_db, a.sale("SSN-1", {"BERAS5": 1}, counter=7))
    clone = b.sale("SSN-1", {"BERAS5": 1}, counter=7)  # the same card's counter at another shop
    twin = b.sale("SSN-1", {"GULA1": 1}, counter=8)
    replay = b.sale("SSN-1", {"GULA1": 1}, counter=8)  # and twice in one batch
    send(on_db, clone, twin, replay)
    assert _rules() == {clone[1]["id"]: "card_clone", replay[1]["id"]: "card_clone"}
    assert RedemptionRecord.select().count() == 2
    found = _critical(clock, "card_clone")
    assert len(found) == 2 and "cloned card or a replayed proof" in found[0].detail


def test_charged_not_sold_and_counter_gaps_are_credited(consumer, clock):
    a = Till("EW-A-0001", clock.now())
    send(consumer, a.sale("SSN-1", {"BERAS5": 1}, counter=1, period_total=72_500))
    charge = a.charged_not_sold("SSN-1", "CARD-SSN-1", counter=2, amount=18_000, period_total=90_500)
    # counter 3 never reaches the city: 36,000 by the card's own totals
    send(consumer, charge, a.sale("SSN-1", {"GULA1": 1}, counter=4, period_total=144_500))
    findings = {f.kind: f for f in reconcile(now=clock.now())}
    credit = findings["card_charged_not_sold"]
    assert (credit.severity, credit.amount, credit.subject) == ("warning", 18_000, "SSN-1")
    gap = findings["card_counter_gap"]
    assert (gap.amount, gap.subject) == (36_000, "CARD-SSN-1") and "counter(s) 3 " in gap.detail
    # a credit claimed for a counter a sale holds: quarantined
    claim = a.charged_not_sold("SSN-1", "CARD-SSN-1", counter=1, amount=72_500, period_total=72_500)
    send(consumer, claim)
    assert _rules() == {claim[1]["id"]: "card_clone"}
    assert [f.amount for f in reconcile(now=clock.now()) if f.kind == "card_charged_not_sold"] == [18_000]


def test_charge_event_then_its_sale_is_no_credit(consumer, clock):
    a = Till("EW-A-0001", clock.now())
    sale = a.sale("SSN-1", {"BERAS5": 1}, counter=1)
    charge = a.charged_not_sold("SSN-1", "CARD-SSN-1", counter=1, amount=72_500, period_total=72_500,
                                rid=sale[1]["body"]["redemption_id"])
    send(consumer, charge)
    send(consumer, sale)  # the sale did land after all: the same charge, not a clone
    assert Quarantined.select().count() == 0
    findings = {f.kind: f for f in reconcile(now=clock.now())}
    assert "card_charged_not_sold" not in findings  # no credit for a charge that was sold
    asked = findings["charge_for_sale_made"]  # but the claim is not silent either
    assert (asked.severity, asked.subject, asked.amount) == ("warning", "SSN-1", None)
    assert sale[1]["body"]["redemption_id"] in asked.detail


def test_unit_prices_are_the_named_ledger_versions(consumer, clock, tmp_path):
    publish_city(tmp_path, clock.now())  # v1: BERAS5 at 72,500
    publish_city(tmp_path, clock.now(), kind="delta", prices={"BERAS5": 75_000})  # v2
    a = Till("EW-A-0001", clock.now())
    honest_v1 = a.sale("SSN-1", {"BERAS5": 1}, counter=1, version=1)
    honest_v2 = a.sale("SSN-1", {"BERAS5": 1}, counter=2, version=2, prices={"BERAS5": 75_000})
    cheap = a.sale("SSN-1", {"BERAS5": 1}, counter=3, version=2)  # v1's price under v2
    inflated = a.sale("SSN-2", {"GULA1": 1}, counter=1, version=2, prices={"GULA1": 180_000})
    invented = a.sale("SSN-2", {"GULA1": 1}, counter=2, version=9)
    send(consumer, honest_v1, honest_v2, cheap, inflated, invented)
    assert _rules() == {cheap[1]["id"]: "price", inflated[1]["id"]: "price", invented[1]["id"]: "ledger_version"}
    assert {r.id for r in RedemptionRecord.select()} == {honest_v1[1]["body"]["redemption_id"],
                                                          honest_v2[1]["body"]["redemption_id"]}
    assert "never published" in Quarantined.get(Quarantined.rule == "ledger_version").reason


def _hotlist(now, add=(), remove=()):
    from pos.sample_city import demo_key
    from pos.signing import EcdsaSigner
    from sync.central.ledger_publish import publish_ledger

    publish_ledger(None, signer=EcdsaSigner(demo_key("ledger"), "ledger"), city="samarinda", now=now, kind="hotlist",
                   hotlist=[(c, "hilang") for c in add], unlist=list(remove))


def test_card_hotlisted_at_the_sales_time(consumer, clock):
    now = clock.now()
    _hotlist(now, add=["CARD-SSN-1"])
    _hotlist(now + timedelta(hours=2), remove=["CARD-SSN-1"])
    a = Till("EW-A-0001", now)
    before = a.sale("SSN-1", {"GULA1": 1}, counter=1, at=now - timedelta(hours=1))
    listed = a.sale("SSN-1", {"GULA1": 1}, counter=2, at=now + timedelta(hours=1))
    lifted = a.sale("SSN-1", {"GULA1": 1}, counter=3, at=now + timedelta(hours=3))
    send(consumer, before, listed, lifted)
    assert _rules() == {listed[1]["id"]: "hotlisted"}
    assert RedemptionRecord.select().count() == 2
    assert "hilang" in _critical(clock, "hotlisted")[0].detail


def test_void_only_by_the_selling_device_for_its_amount_in_the_window(consumer, clock):
    a, b = Till("EW-A-0001", clock.now()), Till("EW-B-0002", clock.now())
    s1, s2, s3, s4 = (a.sale("SSN-1", {"GULA1": 1}, counter=n) for n in (1, 2, 3, 4))
    send(consumer, s1, s2, s3, s4)
    cross = b.void(s1)  # another shop erases A's sale from the totals
    short = a.void(s2, amount=1)
    honest = a.void(s4)
    twice = a.void(s4)
    late = a.void(s3, after=timedelta(hours=2))  # last: a device's messages are made in time order
    send(consumer, cross, short, honest, twice, late)
    assert _rules() == {cross[1]["id"]: "void", short[1]["id"]: "void", late[1]["id"]: "void", twice[1]["id"]: "void"}
    assert [v.redemption_id for v in VoidRecord.select()] == [s4[1]["body"]["redemption_id"]]
    reasons = {q.msg_id: q.reason for q in Quarantined.select()}
    assert "only the selling device may void" in reasons[cross[1]["id"]]
    assert "window is 30 min" in reasons[late[1]["id"]]
    assert "already voided" in reasons[twice[1]["id"]]


def test_void_of_a_quarantined_sale_is_quarantined(consumer, clock):
    a = Till("EW-A-0001", clock.now())
    bad = a.sale("SSN-1", {"GULA1": 1}, counter=1)
    send(consumer, bad, problems=("total is not the sum of the lines",))
    void = a.void(bad)
    send(consumer, void)
    assert _rules()[void[1]["id"]] == "void" and VoidRecord.select().count() == 0


def test_void_before_its_sale_waits_and_is_judged_when_the_sale_arrives(consumer, clock):
    a, b = Till("EW-A-0001", clock.now()), Till("EW-B-0002", clock.now())
    sale = a.sale("SSN-1", {"GULA1": 1}, counter=1)
    own, foreign = a.void(sale), b.void(sale)
    send(consumer, own, foreign)  # the sale's message is still on its way
    assert PendingVoid.select().count() == 2 and VoidRecord.select().count() == 0
    assert len(_critical(clock, "void_without_sale")) == 2
    send(consumer, sale)
    assert PendingVoid.select().count() == 0
    assert [v.id for v in VoidRecord.select()] == [own[1]["body"]["void_id"]]
    assert _rules() == {foreign[1]["id"]: "void"}
    assert _critical(clock, "void_without_sale") == []
    # a waiting void whose sale comes in a batch of more sales than voids wait (read whole, not looked up)
    later = a.sale("SSN-2", {"GULA1": 2}, counter=2)
    waiting = a.void(later)
    send(consumer, waiting)
    send(consumer, a.sale("SSN-1", {"GULA1": 1}, counter=3), later, a.sale("SSN-2", {"GULA1": 1}, counter=4))
    assert PendingVoid.select().count() == 0 and _critical(clock, "void_without_sale") == []
    assert {v.id for v in VoidRecord.select()} == {own[1]["body"]["void_id"], waiting[1]["body"]["void_id"]}


def test_allowance_across_devices_with_rollover(on_db, clock, tmp_path):
    publish_city(tmp_path, clock.now())  # SSN-OLD: LANSIA, 150,000 a month, rollover
    a, b = Till("EW-A-0001", clock.now()), Till("EW-B-0002", clock.now())
    october = a.sale("SSN-OLD", {"BERAS5": 1}, counter=1, period="2026-10", at=clock.now() - timedelta(days=30))
    send(on_db, october, a.sale("SSN-OLD", {"GULA1": 5}, counter=2), b.sale("SSN-OLD", {"GULA1": 5}, counter=3))
    # 180,000 in November: within 150,000 + 77,500 carried from October
    assert _critical(clock) == []
    assert _critical_for_period(clock, "2026-11") == []
    send(on_db, b.sale("SSN-OLD", {"GULA1": 3}, counter=4))  # 234,000 of 227,500, at two shops
    over = _critical(clock, "overspend")
    assert [(f.subject, f.period, f.amount, f.devices) for f in over] == [("SSN-OLD", "2026-11", 6_500,
                                                                         "EW-A-0001,EW-B-0002")]
    assert "Rp 77,500 carried over from 2026-10" in over[0].detail
    assert [f.amount for f in _critical_for_period(clock, "2026-11")] == [6_500]


def _critical_for_period(clock, period):
    return [f for f in reconcile(now=clock.now(), period=period) if f.severity == "critical"]


def test_overrides_beyond_the_citys_caps(consumer, clock):
    from sync.central.city_policy import set_city_policy

    a, b = Till("EW-A-0001", clock.now()), Till("EW-B-0002", clock.now())
    send(consumer, *(a.sale("SSN-1", {"GULA1": 1}, override=True) for _ in range(2)),
         b.sale("SSN-1", {"GULA1": 1}, override=True), *(b.sale(f"SSN-{n}", {"GULA1": 1}, override=True)
                                                         for n in range(3, 6)))
    caps = {(f.subject, f.devices) for f in _critical(clock, "override_cap")}
    assert caps == {("SSN-1", "")}  # 3 for one household across shops, the city's cap is 2
    set_city_policy(override_cap_device=3, override_cap_household=3)
    assert {f.subject for f in _critical(clock, "override_cap")} == {"EW-B-0002"}  # 4 at one device


def test_honest_multi_device_day_has_no_critical_finding(on_db, clock, tmp_path):
    consumer = on_db
    publish_city(tmp_path, clock.now())
    a, b = Till("EW-A-0001", clock.now()), Till("EW-B-0002", clock.now())
    s1 = a.sale("SSN-1", {"BERAS5": 1}, counter=1, period_total=72_500)
    s2 = b.sale("SSN-1", {"GULA1": 2}, counter=2, period_total=108_500)  # the same card at the next shop
    s3 = a.sale("SSN-2", {"GULA1": 1}, counter=1)
    s4 = b.sale("SSN-OLD", {"GULA1": 1}, override=True)  # damaged card, supervisor override
    v3 = a.void(s3)
    s5 = a.sale("SSN-2", {"GULA1": 1}, counter=2, period_total=18_000)
    send(consumer, s1, s2)
    send(consumer, s3, s4, v3)
    send(consumer, s5, s1, s3)  # devices resend what was not yet acked: duplicates
    assert _critical(clock) == [] and Quarantined.select().count() == 0
    ids = sorted(r.id for r in RedemptionRecord.select())
    assert ids == sorted(m[1]["body"]["redemption_id"] for m in (s1, s2, s3, s4, s5))
    assert [v.redemption_id for v in VoidRecord.select()] == [s3[1]["body"]["redemption_id"]]
    assert {f.kind for f in reconcile(now=clock.now())} <= {"void", "offline"}


def test_report_exits_1_on_a_critical_finding_and_policy_cli(tmp_path, clock, capsys):
    from pos.cli.main import main
    from sync.central.consumer import CentralConsumer
    from sync.central.store import open_central

    path = tmp_path / "c.db"
    db = open_central(path)
    from pos.sample_city import demo_key
    from pos.signing import EcdsaSigner

    consumer = CentralConsumer(EcdsaSigner(demo_key("central"), "central"), clock)
    a = Till("EW-A-0001", clock.now())
    first = a.sale("SSN-1", {"GULA1": 1}, counter=1)
    send(consumer, first, a.sale("SSN-1", {"GULA1": 1}, counter=1))
    db.close()
    assert main(["central", "--db", str(path), "report"]) == 1
    assert "card_clone" in capsys.readouterr().out
    assert main(["central", "--db", str(path), "policy", "set", "--void-window-minutes", "45",
                 "--clock-step-back-seconds", "60"]) == 0
    assert main(["central", "--db", str(path), "policy", "show"]) == 0
    shown = capsys.readouterr().out
    assert "void window:                45 min" in shown and "clock step back allowed:    60 s" in shown
    assert main(["central", "--db", str(path), "policy", "set"]) == 1
    with pytest.raises(SystemExit) as done:
        main(["central", "policy", "--help"])
    assert done.value.code == 0 and "flags overrides beyond the caps" in capsys.readouterr().out.replace("\n", " ")


def test_a_database_from_before_the_histories_is_backfilled(tmp_path, clock, central_signer):
    from sync.central.consumer import CentralConsumer
    from sync.central.store import CatalogPrice, HotlistSpan, open_central

    path = tmp_path / "old.db"
    db = open_central(path)
    publish_city(tmp_path, clock.now())
    _hotlist(clock.now(), add=["CARD-SSN-2"])
    db.execute_sql("DROP TABLE central_catalog_price")  # as a database from before them had none
    db.execute_sql("DROP TABLE central_hotlist_span")
    db.close()
    db = open_central(path)
    try:
        assert CatalogPrice.select().count() == 12 and HotlistSpan.select().count() == 1
        a = Till("EW-A-0001", clock.now())
        cheap = a.sale("SSN-1", {"BERAS5": 1}, counter=1, prices={"BERAS5": 1})
        stolen = a.sale("SSN-2", {"GULA1": 1}, counter=1, at=clock.now() + timedelta(minutes=1))
        send(CentralConsumer(central_signer, clock), cheap, stolen)
        assert _rules() == {cheap[1]["id"]: "price", stolen[1]["id"]: "hotlisted"}
    finally:
        db.close()


def test_a_message_dated_back_along_its_devices_sequence(on_db, clock):
    """Attack 12b: the device key signs a sale dated (and booked into) last month after this month's
    sales, in the same batch and in a later one; a void dated back into its sale's window. Each is
    quarantined: its sequence number says it was made after a later-dated message. Honest: a clock
    corrected back by a few seconds (NTP), and a gap filled late, in its place in time."""
    a = Till("EW-A-0001", clock.now())
    now = clock.now()
    first = a.sale("SSN-1", {"GULA1": 1}, counter=1, at=now)
    corrected = a.sale("SSN-1", {"GULA1": 1}, counter=2, at=now - timedelta(seconds=20))  # NTP stepped back
    back = a.sale("SSN-2", {"GULA1": 1}, counter=1, at=now - timedelta(days=20), period="2026-10")
    send(on_db, first, corrected, back)
    later = a.sale("SSN-2", {"GULA1": 1}, counter=2, at=now - timedelta(days=20), period="2026-10")
    sale = a.sale("SSN-1", {"GULA1": 1}, counter=3, at=now + timedelta(hours=3))
    send(on_db, later, sale)  # judged against seq 2, not against seq 3 (itself dated back)
    void = a.void(sale, after=timedelta(minutes=5))
    a.now = now + timedelta(hours=4)
    after = a.sale("SSN-1", {"GULA1": 1}, counter=4)
    busy = a.sale("SSN-1", {"GULA1": 1}, counter=5, at=now + timedelta(hours=6))  # the shop sold on
    void_back = a.void(after, after=timedelta(minutes=5))  # made after 6 h, dated into the sale's window
    rules = _rules()
    assert rules == {back[1]["id"]: "created_at", later[1]["id"]: "created_at"}, rules
    send(on_db, void, after, busy, void_back)
    assert _rules()[void_back[1]["id"]] == "created_at"
    assert "dated back" in Quarantined.get(Quarantined.msg_id == back[1]["id"]).reason
    counted = {r.id for r in RedemptionRecord.select()}
    assert {m[1]["body"]["redemption_id"] for m in (first, corrected, sale, after, busy)} <= counted
    assert [v.redemption_id for v in VoidRecord.select()] == [sale[1]["body"]["redemption_id"]]
    assert back[1]["body"]["redemption_id"] not in counted


def test_a_gap_filled_late_is_judged_against_the_message_before_it(on_db, clock):
    """A device's seq 2 arrives after seq 3 (a lost message resent): judged against seq 1, stored.
    A forged seq 4, held back and sent after seq 5, dated last month: judged against seq 3."""
    a = Till("EW-A-0001", clock.now())
    now = clock.now()
    s1, s2, s3 = (a.sale("SSN-1", {"GULA1": 1}, counter=n, at=now + timedelta(minutes=n)) for n in (1, 2, 3))
    forged = a.sale("SSN-2", {"GULA1": 1}, counter=1, at=now - timedelta(days=20), period="2026-10")
    s5 = a.sale("SSN-1", {"GULA1": 1}, counter=5, at=now + timedelta(minutes=5))
    send(on_db, s1, s3)
    send(on_db, s2)
    send(on_db, s5)
    assert _rules() == {}
    send(on_db, forged)
    assert _rules() == {forged[1]["id"]: "created_at"}
    assert RedemptionRecord.select().count() == 4


def test_a_sale_the_citys_list_did_not_allow_at_its_time(on_db, clock, tmp_path):
    """Attack 13: the device key signs sales, with the household's genuine card, for a household
    whose validity had ended, one the city revoked, and one dropped from the list: each judged by
    the list as it stood at the sale's time, quarantined. Honest: the revoked household's sale made
    before the revocation (arriving after it) stays counted."""
    now = clock.now()
    publish_city(tmp_path, now - timedelta(days=10), listed={"SSN-1": ("active", "2026-01-01", "2026-11-10")})
    publish_city(tmp_path, now + timedelta(hours=1), kind="delta", listed={
        "SSN-1": ("active", "2026-01-01", "2026-11-10"), "SSN-2": ("revoked", "2026-01-01", "2027-12-31"),
        "SSN-OLD": None})
    a = Till("EW-A-0001", now)
    ended = a.sale("SSN-1", {"GULA1": 1}, counter=1, at=now)
    before = a.sale("SSN-2", {"GULA1": 1}, counter=1, at=now)
    revoked = a.sale("SSN-2", {"GULA1": 1}, counter=2, at=now + timedelta(hours=2))
    dropped = a.sale("SSN-OLD", {"GULA1": 1}, counter=1, at=now + timedelta(hours=2))
    send(on_db, ended, before, revoked, dropped)
    assert _rules() == {m[1]["id"]: "household" for m in (ended, revoked, dropped)}
    assert [r.id for r in RedemptionRecord.select()] == [before[1]["body"]["redemption_id"]]
    reasons = {q.msg_id: q.reason for q in Quarantined.select()}
    assert "valid 2026-01-01..2026-11-10" in reasons[ended[1]["id"]]
    assert "was revoked on the city's list" in reasons[revoked[1]["id"]]
    assert "was removed" in reasons[dropped[1]["id"]]
    assert len(_critical(clock, "household")) == 3


def test_the_list_a_sale_is_judged_by_is_read_again_after_each_release(on_db, clock, tmp_path):
    """The consumer keeps the households' history it read between releases: a revocation published
    between two batches holds the next sale, and the last day of a household's dates ends at
    midnight in Samarinda (WITA), to the millisecond."""
    now = clock.now()
    publish_city(tmp_path, now - timedelta(days=10), listed={"SSN-1": ("active", "2026-01-01", "2026-11-20")})
    a = Till("EW-A-0001", now)
    last_day = datetime(2026, 11, 20, 23, 59, 59, 999_000, tzinfo=WITA)
    send(on_db, a.sale("SSN-2", {"GULA1": 1}, counter=1, at=now), a.sale("SSN-1", {"GULA1": 1}, counter=1, at=now))
    publish_city(tmp_path, now + timedelta(hours=1), kind="delta", listed={
        "SSN-1": ("active", "2026-01-01", "2026-11-20"), "SSN-2": ("revoked", "2026-01-01", "2027-12-31")})
    revoked = a.sale("SSN-2", {"GULA1": 1}, counter=2, at=now + timedelta(hours=2))
    in_time = a.sale("SSN-1", {"GULA1": 1}, counter=2, at=last_day)
    too_late = a.sale("SSN-1", {"GULA1": 1}, counter=3, at=last_day + timedelta(milliseconds=1))
    send(on_db, revoked, in_time, too_late)
    assert _rules() == {revoked[1]["id"]: "household", too_late[1]["id"]: "household"}
    assert "not on the sale's date 2026-11-21" in Quarantined.get(Quarantined.msg_id == too_late[1]["id"]).reason
    assert RedemptionRecord.select().count() == 3


def test_a_database_from_before_the_household_history_is_backfilled(tmp_path, clock):
    """An older central database has the list but no history: it is taken as standing since the
    last release, so a sale after it for a revoked household is held, one before it is not judged."""
    from sync.central.store import HouseholdSpan, open_central

    path = tmp_path / "old.db"
    db = open_central(path)
    now = clock.now()
    publish_city(tmp_path, now - timedelta(days=1), listed={"SSN-2": ("revoked", "2026-01-01", "2027-12-31")})
    HouseholdSpan.delete().execute()  # as a database from before the history was kept
    db.close()
    db = open_central(path)
    assert [(h.household, h.status) for h in HouseholdSpan.select().order_by(HouseholdSpan.household)] == [
        ("SSN-1", "active"), ("SSN-2", "revoked"), ("SSN-OLD", "active")]
    from sync.central.household_history import HouseholdBook

    book = HouseholdBook(["SSN-2"])
    assert "revoked" in book.problem("SSN-2", "2026-11-15T02:00:00.000Z")
    assert book.problem("SSN-2", "2026-11-13T02:00:00.000Z") is None
    db.close()
