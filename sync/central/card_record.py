"""How far each charge raised the card's own record, against the amount the card signed for it.

SPEND lets a terminal set the card's period total above its record + the amount (a card catching up
with spending it does not know of, such as sales without the card: docs/card-protocol.md). So a
charge can raise the record by more than it signed: a reader wedge that lowers the SPEND amount and
relays the card's genuine answer (attack 1d: nothing sold, the charge reported at the signed Rp 1,
the record up by the whole basket), or a terminal asking for more. The household then has less
allowance left on its card than the city counts.

The rise of counter N is its period total less counter N-1's when both are the same period's, its
whole period total when N-1 is of an earlier period or N is 1 (a new period starts at 0), and
unknown when N-1 never reached the city. The city holds the household's sales without the card
(central_redemption mode 'override') but not which of them a terminal folded into the card, so it
counts as explaining a rise the override sales made before the charge (by the message's created_at:
for a charge reported at a later insertion, when it was reported) that earlier rises of the
household's cards in the period did not already use. What is left is `card_record_rise`.
"""

from __future__ import annotations

from typing import NamedTuple

from sync.central.message_store import select_in

RECORD_RISE = "card_record_rise"


class Charge(NamedTuple):
    """One counter of the city's chain (a central_card_counter row) with the rise of the card's record."""

    card: str
    counter: int
    period: str
    amount: int
    period_total: int
    kind: str  # sale | charge
    redemption_id: str
    msg_id: str
    device: str
    created_at: str
    rise: int | None  # None: counter - 1 never reached the city


def rise_of(counter: int, period: str, period_total: int, before: Charge | None) -> int | None:
    """How far this charge raised the card's record; `before` is the card's previous counter in the
    chain, or None."""
    if counter == 1:
        return period_total
    if before is None or before.counter != counter - 1:
        return None
    return period_total - before.period_total if before.period == period else period_total


def described(c: Charge) -> str:
    """The rise next to the signed amount, for a report line."""
    if c.rise is None:
        return f"the card signed Rp {c.amount:,}; its record's rise is unknown (counter {c.counter - 1} never reached the city)"
    return f"the card signed Rp {c.amount:,}; its record rose Rp {c.rise:,}"


def rise_findings(risen: list[Charge], finding) -> list:
    """`card_record_rise` warnings for the charges (rise above the signed amount) that the household's
    override sales not yet folded into a card do not explain (module docstring)."""
    if not risen:
        return []
    households = _households(risen)
    overrides: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for hh, per, total, created in select_in(
            "SELECT household, period, total, created_at FROM central_redemption "
            "WHERE mode = 'override' AND household IN ({in})", [h for h in households.values() if h]):
        overrides.setdefault((hh, per), []).append((created, total))
    folded: dict[tuple[str, str], int] = {}
    out = []
    for c in sorted(risen, key=lambda c: (c.created_at, c.card, c.counter)):
        hh = households.get(c.msg_id, "")
        key = (hh, c.period)
        excess = c.rise - c.amount
        before = sum(total for created, total in overrides.get(key, []) if created < c.created_at) if hh else 0
        explained = min(excess, max(0, before - folded.get(key, 0)))
        folded[key] = folded.get(key, 0) + explained
        if excess == explained:
            continue
        what = "charge not sold" if c.kind == "charge" else "sale"
        cause = ("a reader wedge lowering the signed amount" if c.kind == "charge"
                 else "a terminal asking the card to record more than the sale")
        out.append(finding(
            RECORD_RISE, "warning", hh or c.card, c.period, c.device, excess - explained,
            f"credit the household Rp {excess - explained:,} more: the card's record rose Rp {c.rise:,} but it "
            f"signed Rp {c.amount:,} (card {c.card} counter {c.counter}, {what} {c.redemption_id}); {cause}, or "
            "override sales the city has not received"
            + (f". Rp {explained:,} of it is explained by the household's override sales made before it "
               "and not yet counted against a rise of its cards" if explained else "")
            + ("" if hh else "; the household is unknown to the city, so no override sales were counted")))
    return out


def _households(risen: list[Charge]) -> dict[str, str]:
    """{message id: household} of the charges' messages: a counted sale (by its redemption id), a
    stored event, or a quarantined message (a sale quarantined after its counter was claimed)."""
    found = dict(select_in("SELECT msg_id, household FROM central_quarantine WHERE msg_id IN ({in})",
                           [c.msg_id for c in risen]))
    found.update(select_in("SELECT id, household FROM central_event WHERE id IN ({in})",
                           [c.msg_id for c in risen if c.kind == "charge"]))
    found.update(select_in("SELECT msg_id, household FROM central_redemption WHERE id IN ({in})",
                           [c.redemption_id for c in risen if c.kind == "sale"]))
    return found
