"""Property tests: no sequence of redemptions and voids lets a household exceed its allowance or
quotas; totals always reconcile; money is never a float."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos.db import OutboxMessage, Redemption, RedemptionLine, Void
from pos.entitlement import assess
from pos.period import WITA, Period
from pos.redemption import RedemptionRequest
from pos.refusals import Refusal
from pos.signing import b64url_decode

ITEMS = ["BERAS5", "TELUR10", "MINYAK1", "GULA1", "TAHU", "ROKOK"]
basket_st = st.dictionaries(st.sampled_from(ITEMS), st.integers(min_value=0, max_value=4), max_size=4)
op_st = st.one_of(
    st.tuples(st.just("redeem"), st.sampled_from(["holder", "quotas", "partly_spent", "lansia"]), basket_st,
              st.integers(min_value=0, max_value=250_000)),
    st.tuples(st.just("void"), st.integers(min_value=0, max_value=20)),
    st.tuples(st.just("wait"), st.integers(min_value=1, max_value=40)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op_st, max_size=25))
def test_no_sequence_overspends(service, city, clock, ops):
    service.policy = replace(service.policy, ledger_max_age_hours=24 * 365, offline_max_days=90)
    start = clock.now()
    done: list[str] = []
    for op in ops:
        if op[0] == "redeem":
            _, role, basket, card_spent = op
            try:
                service.redeem(RedemptionRequest(city.notable[role], "kasir1", basket, card_spent=card_spent))
                done.append(city.notable[role])
            except Refusal:
                pass
        elif op[0] == "void":
            rows = list(Redemption.select().order_by(Redemption.seq))
            if rows:
                with contextlib.suppress(Refusal):
                    service.void(rows[op[1] % len(rows)].id, "cashier_mistake", "kasir1", "spv1")
        else:
            clock.advance(timedelta(minutes=op[1]))

    ledger = service.ledger
    period = Period.of(clock.now())
    for role in ("holder", "quotas", "partly_spent", "lansia"):
        hid = city.notable[role]
        plan = ledger.plan(ledger.household(hid).plan_code)
        voided = {v.redemption_id for v in Void.select()}
        mine = [r for r in Redemption.select().where(Redemption.household == hid) if r.id not in voided]
        confirmed = sum(c.amount for c in ledger.confirmed(hid, str(period)))
        spent = confirmed + sum(r.total for r in mine)
        allowance = plan.allowance * (2 if plan.rollover else 1)  # rollover at most doubles
        assert spent <= allowance, (role, spent, allowance)
        for item, max_qty in plan.quotas.items():
            qty = sum(
                ln.qty for r in mine for ln in RedemptionLine.select().where(
                    (RedemptionLine.redemption == r.id) & (RedemptionLine.item_code == item))
            )
            assert qty <= max_qty, (role, item, qty, max_qty)
        try:
            ent = assess(ledger, hid, period, clock.now().astimezone(WITA).date())
            assert ent.remaining == max(0, ent.allowance - ent.known_spent)
        except Refusal:
            pass

    # totals reconcile: each redemption's total is the sum of its lines and the signed message says the same
    for r in Redemption.select():
        lines = list(r.lines)
        assert r.total == sum(ln.amount for ln in lines)
        assert all(ln.amount == ln.qty * ln.unit_price for ln in lines)
        assert all(type(v) is int for v in (r.total, r.remaining_after, *[ln.amount for ln in lines]))
        msg = OutboxMessage.get(OutboxMessage.seq == r.seq)
        body = json.loads(b64url_decode(bytes(msg.payload).decode().split(".")[1]))["body"]
        assert body["total"] == r.total and sum(ln["amount"] for ln in body["lines"]) == r.total
    seqs = [m.seq for m in OutboxMessage.select().order_by(OutboxMessage.seq)]
    assert seqs == list(range(1, len(seqs) + 1))
    clock.set(start)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_money_never_float(value):

    from pos.money import require_rupiah
    from pos.signing import canonical_json

    with pytest.raises(TypeError):
        require_rupiah(value)
    with pytest.raises(TypeError):
        canonical_json({"total": value})


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_rupiah_format_roundtrip(value):
    from pos.money import format_rupiah

    text = format_rupiah(value)
    assert int(text.replace("Rp ", "").replace(".", "")) == value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.text(alphabet="=+/ \n*.é\x00", min_size=1, max_size=3), st.integers(0, 400))
def test_b64url_decode_is_base64url_and_nothing_else(data, junk, where):
    """The city decodes every token part with it: a valid part gives the exact bytes, as text or
    as bytes; a part with padding, the standard alphabet, whitespace or any other character is
    refused, never silently skipped (one token, one spelling)."""
    from pos.signing import BadSignature, b64url

    text = b64url(data)
    assert b64url_decode(text) == data == b64url_decode(text.encode("ascii"))
    spoiled = text[:where] + junk + text[where:]
    with pytest.raises(BadSignature):
        b64url_decode(spoiled)
