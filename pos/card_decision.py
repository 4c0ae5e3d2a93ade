"""The counter's decision on an authenticated SSN card (pure domain logic).

Certificate dates, then the hotlist, then the card's spend record (one dated in a future period is
refused: it would count as nothing here for good), then the household and its entitlement, with
what the card itself records as spent this period (the card's record only counts in its own period).
"""

from __future__ import annotations

from datetime import date

from pos.entitlement import Entitlement, assess
from pos.ledger import Ledger
from pos.period import Period
from pos.ports import AuthenticatedCard
from pos.refusals import Reason, Refusal


def decide(card: AuthenticatedCard, ledger: Ledger, period: Period, today: date) -> Entitlement:
    """The household's entitlement for an authenticated card, or a Refusal:
    certificate dates and the hotlist are checked before the ledger, and
    the card's own spend record counts only in its own period."""
    cert = card.certificate
    if today < cert.valid_from:
        raise Refusal(Reason.CARD_NOT_YET_VALID, f"{cert.card_id} valid from {cert.valid_from}")
    if today > cert.valid_until:
        raise Refusal(Reason.CARD_EXPIRED, f"{cert.card_id} valid until {cert.valid_until}")
    hot = ledger.hotlist_reason(cert.card_id)
    if hot is not None:
        raise Refusal(Reason.CARD_REVOKED, f"{cert.card_id}: {hot}")
    if card.spend.period > str(period):  # both exact YYYY-MM (hardware.card.client), so text order is time order
        raise Refusal(Reason.CARD_PERIOD_FUTURE, f"{cert.card_id} records {card.spend.period}, now is {period}")
    card_spent = card.spend.spent if card.spend.period == str(period) else 0
    return assess(ledger, cert.household_id, period, today, card_spent=card_spent)
