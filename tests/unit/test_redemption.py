"""The redemption service: one durable transaction, refusals write nothing, voids compensate."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pos import journal
from pos.db import JournalEntry, OutboxMessage, PrintJob, Redemption, RedemptionLine, Void
from pos.entitlement import assess
from pos.messages import MESSAGE_TYP
from pos.period import Period
from pos.redemption import DATA_PROBLEM_NOTE_MAX, VOID_REASONS, Collector, RedemptionRequest
from pos.refusals import Reason, Refusal
from pos.signing import jws_verify


def _counts():
    return tuple(m.select().count() for m in (Redemption, RedemptionLine, OutboxMessage, JournalEntry, PrintJob, Void))


def test_redeem_writes_everything_in_one_go(service, city, signer):
    hid = city.notable["holder"]
    result = service.redeem(RedemptionRequest(hid, "kasir1", {"BERAS5": 1, "GULA1": 2}, card_id="C1"))
    assert result.total == 72_500 + 2 * 18_000
    assert result.remaining_after == 200_000 - result.total
    red = Redemption.get_by_id(result.redemption_id)
    assert red.seq == 1 and red.collector_name and red.ledger_version == 1
    msg = OutboxMessage.get(OutboxMessage.seq == red.seq)
    token = jws_verify(bytes(msg.payload), {"EW-TEST-0001": signer.public_key()}, MESSAGE_TYP)
    body = token.json()
    assert body["seq"] == 1 and body["body"]["redemption_id"] == red.id and body["body"]["total"] == result.total
    assert PrintJob.get(PrintJob.redemption_id == red.id).state == "pending"
    assert journal.verify().ok


def test_sequence_numbers_are_gapless_across_kinds(service, city):
    hid = city.notable["holder"]
    a = service.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
    service.flag_problem(city.notable["revoked"], "moved", "pindah ke Balikpapan", "kasir1")
    v = service.void(a.redemption_id, "wrong_quantity", "kasir1", "spv1")
    b = service.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
    assert [a.seq, v.seq, b.seq] == [1, 3, 4]
    assert [m.seq for m in OutboxMessage.select().order_by(OutboxMessage.seq)] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "role, basket, reason",
    [
        ("revoked", {"TAHU": 1}, Reason.HOUSEHOLD_REVOKED),
        ("expired", {"TAHU": 1}, Reason.HOUSEHOLD_EXPIRED),
        ("not_yet_valid", {"TAHU": 1}, Reason.HOUSEHOLD_NOT_YET_VALID),
        ("used_up", {"TAHU": 1}, Reason.ALLOWANCE_USED_UP),
        ("holder", {"ROKOK": 1}, Reason.ITEM_NOT_ELIGIBLE),
        ("holder", {"BERAS5": 3}, Reason.OVER_ALLOWANCE),
        ("quotas", {"BERAS5": 3}, Reason.QUOTA_EXCEEDED),
        ("holder", {}, Reason.EMPTY_BASKET),
        ("partly_spent", {"BERAS5": 1}, Reason.OVER_ALLOWANCE),
    ],
)
def test_refusals_write_nothing(service, city, role, basket, reason):
    before = _counts()
    with pytest.raises(Refusal) as exc:
        service.redeem(RedemptionRequest(city.notable[role], "kasir1", basket))
    assert exc.value.reason is reason
    assert exc.value.message("id") and exc.value.message("en")
    assert _counts() == before


def test_unknown_household_and_representative(service, city):
    with pytest.raises(Refusal) as exc:
        service.redeem(RedemptionRequest("SSN-0000-9999999", "kasir1", {"TAHU": 1}))
    assert exc.value.reason is Reason.HOUSEHOLD_UNKNOWN
    with pytest.raises(Refusal) as exc:
        service.redeem(
            RedemptionRequest(city.notable["holder"], "kasir1", {"TAHU": 1}, collector=Collector("representative", "X"))
        )
    assert exc.value.reason is Reason.REPRESENTATIVE_UNKNOWN


def test_representative_collects_and_is_recorded(service, city):
    from pos.ledger import Ledger

    hid = city.notable["representative"]
    rep = Ledger().household(hid).representatives[0]
    result = service.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}, collector=Collector("representative", rep.id)))
    red = Redemption.get_by_id(result.redemption_id)
    assert (red.collected_by, red.collector_id, red.collector_name) == ("representative", rep.id, rep.name)


def test_void_restores_allowance_once_and_only_in_window(service, city, clock):
    hid = city.notable["holder"]
    r = service.redeem(RedemptionRequest(hid, "kasir1", {"BERAS5": 2}))
    ledger = service.ledger
    period = Period.of(clock.now())
    assert assess(ledger, hid, period, clock.now().date()).remaining == 200_000 - 145_000
    service.void(r.redemption_id, "wrong_items", "kasir1", "spv1")
    assert assess(ledger, hid, period, clock.now().date()).remaining == 200_000
    with pytest.raises(Refusal) as exc:
        service.void(r.redemption_id, "wrong_items", "kasir1", "spv1")
    assert exc.value.reason is Reason.ALREADY_VOIDED
    late = service.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
    clock.advance(timedelta(minutes=31))
    with pytest.raises(Refusal) as exc:
        service.void(late.redemption_id, "cashier_mistake", "kasir1", "spv1")
    assert exc.value.reason is Reason.VOID_WINDOW_PASSED
    assert Redemption.select().count() == 2  # never deleted


def test_card_record_bounds_spending(service, city, clock):
    """A card that says it spent more elsewhere (offline shop) limits what is left here."""
    hid = city.notable["holder"]
    with pytest.raises(Refusal) as exc:
        service.redeem(RedemptionRequest(hid, "kasir1", {"BERAS5": 1}, card_spent=150_000))
    assert exc.value.reason is Reason.OVER_ALLOWANCE
    ok = service.redeem(RedemptionRequest(hid, "kasir1", {"BERAS5": 1}, card_spent=100_000))
    assert ok.remaining_after == 200_000 - 100_000 - 72_500


def test_ledger_age_and_offline_caps(service, city, clock):
    from dataclasses import replace

    hid = city.notable["holder"]
    clock.advance(timedelta(days=8))
    with pytest.raises(Refusal) as exc:
        service.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
    assert exc.value.reason is Reason.LEDGER_TOO_OLD
    clock.advance(timedelta(days=-8))
    service.policy = replace(service.policy, offline_max_value=10_000)
    service.redeem(RedemptionRequest(hid, "kasir1", {"BERAS5": 1}))
    with pytest.raises(Refusal) as exc:
        service.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
    assert exc.value.reason is Reason.OFFLINE_CAP_REACHED


def test_period_is_wita_month(service, city, clock):
    from dataclasses import replace
    from datetime import UTC, datetime

    service.policy = replace(service.policy, ledger_max_age_hours=24 * 30, offline_max_days=30)
    # 30 Nov 2026 17:00 UTC is already 1 December 01:00 in Samarinda.
    clock.set(datetime(2026, 11, 30, 17, 0, tzinfo=UTC))
    hid = city.notable["used_up"]  # used up in November only
    r = service.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
    assert r.period == "2026-12"


def test_override_cap_holds_at_the_start_and_at_the_commit(service, city):
    """One cap, one place: the override screen is refused past it, and so is a commit that raced it."""
    from dataclasses import replace

    hid = city.notable["holder"]
    service.policy = replace(service.policy, override_cap_per_period=1)
    with pytest.raises(ValueError):
        service.start_override(hid, "because", "spv1", "kasir1")
    ent = service.start_override(hid, "card_damaged", "spv1", "kasir1")
    assert ent.household.id == hid
    assert JournalEntry.select().where(JournalEntry.kind == "override_start").count() == 1
    override = RedemptionRequest(hid, "kasir1", {"TAHU": 1}, mode="override", override_reason="card_damaged")
    service.redeem(override)
    with pytest.raises(Refusal) as exc:
        service.start_override(city.notable["representative"], "card_forgotten", "spv1", "kasir1")
    assert exc.value.reason is Reason.OVERRIDE_CAP_REACHED
    before = _counts()
    with pytest.raises(Refusal) as exc:
        service.redeem(override)
    assert exc.value.reason is Reason.OVERRIDE_CAP_REACHED and _counts() == before


def test_history_is_newest_first_and_marks_voids(service, city):
    hid = city.notable["holder"]
    first = service.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
    second = service.redeem(RedemptionRequest(hid, "kasir1", {"GULA1": 1}))
    service.void(first.redemption_id, "wrong_items", "kasir1", "spv1")
    rows = service.history()
    assert [(r.redemption_id, r.voided) for r in rows] == [(second.redemption_id, False), (first.redemption_id, True)]
    assert service.history(limit=1)[0].receipt_no == second.receipt_no


def test_receipt_numbers_have_no_holes_when_other_messages_take_sequence_numbers(service, city):
    """Refusals reported to the city, data problems and voids take message sequence numbers; the
    cashier and auditors read receipts 1, 2, 3 all the same (issue 21, item 6)."""
    hid = city.notable["holder"]
    first = service.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
    service.record_event("card_refused", {"reason": "card_forged"})
    service.flag_problem(hid, "moved", "", "kasir1")
    voided = service.void(first.redemption_id, "wrong_items", "kasir1", "spv1")
    second = service.redeem(RedemptionRequest(hid, "kasir1", {"GULA1": 1}))
    assert (first.receipt_no, second.receipt_no) == (1, 2)
    assert second.seq > first.seq + 1  # the message sequence stays as the contract has it
    assert voided.receipt_no == first.receipt_no
    assert [r.receipt_no for r in service.history()] == [2, 1]


@pytest.mark.parametrize("reason", ["salah barang", "", "WRONG_ITEMS"])
def test_a_void_reason_not_on_the_core_list_is_refused_and_nothing_is_written(service, city, reason):
    """Void reasons were once free text the screen alone limited: the core now takes only its codes,
    which the slip and the city word, and says which to pick."""
    sale = service.redeem(RedemptionRequest(city.notable["holder"], "kasir1", {"TAHU": 1}))
    before = _counts()
    with pytest.raises(ValueError, match="pick the one") as exc:
        service.void(sale.redemption_id, reason, "kasir1", "spv1")
    assert all(code in str(exc.value) for code in VOID_REASONS)
    assert _counts() == before


def test_every_void_reason_is_worded_for_the_slip():
    from pos.wording import WORDING

    assert VOID_REASONS and all(f"void.{code}" in WORDING for code in VOID_REASONS)


def test_a_data_reports_note_reaches_the_city_cut_at_the_cores_limit(service, city, signer):
    """The note page lets a cashier type less; the core keeps the city's limit, whoever calls it."""
    seq = service.flag_problem(city.notable["revoked"], "moved", "x" * (DATA_PROBLEM_NOTE_MAX + 100), "kasir1")
    body = jws_verify(bytes(OutboxMessage.get(OutboxMessage.seq == seq).payload),
                      {"EW-TEST-0001": signer.public_key()}, MESSAGE_TYP).json()["body"]
    assert body["note"] == "x" * DATA_PROBLEM_NOTE_MAX
