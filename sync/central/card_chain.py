"""The card counter chain across every device: each counter value is one charge the card signed.

The card's transaction counter goes up by one at every SPEND and never goes back
(docs/card-protocol.md), so across the whole city each (card, counter) belongs to exactly one
redemption. The same counter on two redemptions is a cloned card or a replayed proof (critical,
quarantined in the write path); a counter never seen is a charge the city has no sale for (the
device died before committing, or the sale is still on its way): the report asks to credit the
household, with the amount when the card's period totals on either side give it.
"""

from __future__ import annotations

import json

from sync.central.card_record import Charge, described, rise_findings, rise_of
from sync.central.message_store import Accepted, select_in, select_pairs
from sync.central.store import CardCounter, EventRecord, RedemptionRecord

CHARGED_NOT_SOLD = "card_charged_not_sold"


def _count(value: object) -> int | None:
    # `type() is int`: a JSON value is an int, a bool or neither (no other int subclass), and bool is refused
    return value if type(value) is int and 1 <= value < 2**31 else None


def _proof(body: dict) -> dict:
    card = body.get("card")
    proof = card.get("proof") if isinstance(card, dict) else None
    return proof if isinstance(proof, dict) else {}


NO_CARD: tuple[str, int | None, int] = ("", None, 0)


def card_of(body: dict) -> tuple[str, int | None, int]:
    """(card id, counter, card's period total after the charge) of a card sale; ('', None, 0) for an override."""
    card_id = body.get("card_id")
    if not card_id or type(card_id) is not str or body.get("mode", "card") != "card":
        return NO_CARD
    return card_id, _count(body.get("card_counter")), _count(_proof(body).get("period_total")) or 0


def charge_of(body: dict) -> tuple[str, int | None, int]:
    """(card id, counter, period total) of a card_charged_not_sold event."""
    card_id = body.get("card_id") if isinstance(body.get("card_id"), str) else ""
    proof = _proof(body)
    return card_id, _count(proof.get("counter")), _count(proof.get("period_total")) or 0


class ChainBatch:
    """The counters one batch uses, checked against the city's chain with one query."""

    COLUMNS = ["card_id", "counter", "redemption_id", "device", "msg_id", "kind", "period", "amount",
               "period_total", "created_at"]

    def __init__(self, new: list[Accepted]) -> None:
        self.rows: list[tuple] = []
        self.cards: dict[str, tuple[str, int | None, int]] = {}  # msg id -> card_of / charge_of, read once
        self.charge_events: list[Accepted] = []
        pairs = []
        for m in new:
            body = m.envelope["body"]
            if m.kind == "redemption":
                found = card_of(body)
            elif _is_charge(m):
                found = charge_of(body)
                self.charge_events.append(m)
            else:
                continue
            self.cards[m.envelope["id"]] = found
            if found[0] and found[1]:
                pairs.append((found[0], found[1]))
        self.taken: dict[tuple[str, int], tuple[str, str]] = {
            (c, n): (rid, dev) for c, n, rid, dev in select_pairs(
                "SELECT k.card_id, k.counter, k.redemption_id, k.device FROM (VALUES {values}) AS v "
                "JOIN central_card_counter k ON k.card_id = v.column1 AND k.counter = v.column2", pairs)
        } if pairs else {}

    def _claim(self, m: Accepted, card_id: str, counter: int, rid: str, kind: str, amount: int,
               period_total: int) -> tuple[str, str] | None:
        held = self.taken.get((card_id, counter))
        if held is not None:
            if held[0] == rid:
                return None  # the same charge (its sale after its charge event, or the reverse)
            return ("card_clone", f"card {card_id} counter {counter} was already charged for redemption {held[0]} "
                                  f"on {held[1]}: a cloned card or a replayed proof")
        self.taken[(card_id, counter)] = (rid, m.device)
        body = m.envelope["body"]
        self.rows.append((card_id[:255], counter, rid[:255], m.device, m.envelope["id"], kind,
                          str(body.get("period", ""))[:16], amount, period_total, m.envelope["created_at"][:255]))
        return None

    def sale(self, m: Accepted) -> tuple[str, str] | None:
        """Claim the sale's counter; a counter another redemption holds is a clone or a replay."""
        body = m.envelope["body"]
        card_id, counter, period_total = self.cards[m.envelope["id"]]
        if not card_id or counter is None:
            return None
        return self._claim(m, card_id, counter, body["redemption_id"], "sale", _count(body["total"]) or 0, period_total)

    def charges(self, out) -> None:
        """Claim the counters of card_charged_not_sold events; one that another sale holds is quarantined
        (a credit claimed for a charge that was sold)."""
        from sync.central.quarantine import quarantine_message

        for m in self.charge_events:
            if m.envelope["id"] in out.quarantine:
                continue
            body = m.envelope["body"]
            card_id, counter, period_total = self.cards[m.envelope["id"]]
            rid = body.get("redemption_id")
            if not card_id or counter is None or not isinstance(rid, str):
                continue
            problem = self._claim(m, card_id, counter, rid, "charge", _count(body.get("amount")) or 0, period_total)
            if problem:
                quarantine_message(out, m, *problem)

    def hotlist_spans(self) -> dict[str, list[tuple[str, str, str]]]:
        """{card: [(reason, listed_at, unlisted_at)]} for the batch's cards ever on the hotlist."""
        cards = [card for card, _, _ in self.cards.values()]  # charges' cards too: harmless, only sales ask
        spans: dict[str, list[tuple[str, str, str]]] = {}
        for card, reason, listed, unlisted in select_in(
                "SELECT card_id, reason, listed_at, unlisted_at FROM central_hotlist_span WHERE card_id IN ({in})",
                [c for c in cards if c]):
            spans.setdefault(card, []).append((reason, listed, unlisted))
        return spans


def _is_charge(m: Accepted) -> bool:
    return m.kind == "event" and m.envelope["body"].get("event") == CHARGED_NOT_SOLD


def chain_findings(period: str | None, finding) -> list:
    """Report: charges with no sale (credit the household), charges claimed for a sale the city holds
(no credit, but the shop is asked why), counters never seen, and charges that raised the card's record
by more than they signed (`card_record`)."""
    charges, gaps, risen = _walk(period, finding)
    out = []
    for e in EventRecord.select().where(EventRecord.event == CHARGED_NOT_SOLD).order_by(EventRecord.created_at):
        body = json.loads(e.body)
        rid, per = str(body.get("redemption_id", "")), str(body.get("period", ""))
        if period and per != period:
            continue
        if RedemptionRecord.get_or_none(RedemptionRecord.id == rid) is not None:
            out.append(finding("charge_for_sale_made", "warning", e.household, per, e.device, None,
                               f"{e.device} reported card {body.get('card_id', '')} charged with nothing sold for "
                               f"redemption {rid}, but that sale is in the totals: no credit is due. Ask the shop "
                               "why (a commit that reported a failure but held, or a false claim)"))
            continue
        card_id, counter, _ = charge_of(body)
        charge = charges.get((card_id, counter))
        out.append(finding("card_charged_not_sold", "warning", e.household, per, e.device, _count(body.get("amount")),
                           f"card {body.get('card_id', '')} charged for redemption {rid} on {e.device} and no sale "
                           "was committed: credit the household this amount"
                           + (f" ({described(charge)})" if charge else "")))
    return out + gaps + rise_findings(risen, finding)


def _walk(period: str | None, finding) -> tuple[dict[tuple[str, int], Charge], list, list[Charge]]:
    """One pass over the chain, card by card in counter order: the charges not sold by (card,
    counter), the gap findings, and the charges (of `period`) whose rise exceeds what they signed."""
    charges: dict[tuple[str, int], Charge] = {}
    gaps: list = []
    risen: list[Charge] = []
    last: Charge | None = None
    for row in CardCounter.select(
            CardCounter.card_id, CardCounter.counter, CardCounter.period, CardCounter.amount,
            CardCounter.period_total, CardCounter.kind, CardCounter.redemption_id, CardCounter.msg_id,
            CardCounter.device, CardCounter.created_at).order_by(CardCounter.card_id, CardCounter.counter
                                                                 ).tuples().iterator():
        card, counter, per, amount, total = row[:5]
        before = last if last is not None and last.card == card else None
        c = last = Charge(*row, rise_of(counter, per, total, before))
        if c.kind == "charge":
            charges[(card, counter)] = c
        if period and per != period:
            continue
        if c.rise is not None and c.rise > amount:
            risen.append(c)
        previous = before.counter if before else 0
        if counter == previous + 1:
            continue
        missing = counter - previous - 1
        gone = (total - amount) - before.period_total if before and before.period == per else None
        span = f"{previous + 1}" if missing == 1 else f"{previous + 1}-{counter - 1}"
        gaps.append(finding("card_counter_gap", "warning", card, per, "", gone,
                            f"card counter(s) {span} never reached the city: charges without a sale, or sales "
                            "still on their way (see missing_seq); credit the household if no sale arrives"
                            + (f"; the card's record rose Rp {gone:,} over them (by its totals on either side; "
                               "their signed amounts are unknown)" if gone is not None
                               else "; amount unknown (the charges span periods)")))
    return charges, gaps, risen
