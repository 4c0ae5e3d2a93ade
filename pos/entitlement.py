"""What a household may still take this period, and whether a basket fits.

Remaining = allowance - spent, where spent is the larger of
  * what this device knows: city-confirmed redemptions from the ledger (any shop) united with
    this device's own redemptions the city has not confirmed yet, each counted once by id,
    voided ones left out; and
  * what the card itself records as spent this period (its monotonic spend record, written
    at every shop, so an offline double spend across shops is caught).
The card record already includes this device's redemptions made with that card, so the two
are not added (that would charge a household twice); the larger one is the safe bound.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from pos.db import Redemption, RedemptionLine, Void
from pos.ledger import CatalogEntry, HouseholdRecord, Ledger, PlanRecord
from pos.period import Period
from pos.refusals import Reason, Refusal


@dataclass(frozen=True)
class QuotaState:
    """How many units of one quota-limited item a household has taken this period."""

    item: str
    max_qty: int
    used: int

    @property
    def remaining(self) -> int:
        """Units still allowed; never negative, even when more was taken than the quota allows."""
        return max(0, self.max_qty - self.used)


@dataclass(frozen=True)
class Spending:
    """What this device knows a household spent in a
    period: rupiah, and units per item for the quotas."""

    amount: int
    items: Counter


@dataclass(frozen=True)
class Entitlement:
    """Everything the counter needs to serve a household this period:
    allowance, what is spent (known and on the card) and quotas."""

    household: HouseholdRecord
    plan: PlanRecord
    period: Period
    allowance: int
    known_spent: int
    card_spent: int
    quotas: dict[str, QuotaState] = field(default_factory=dict)

    @property
    def spent(self) -> int:
        """The larger of what this device knows and what the card records: the card
        already counts this device's sales made with it, so adding would charge twice."""
        return max(self.known_spent, self.card_spent)

    @property
    def remaining(self) -> int:
        """Rupiah the household may still spend this period."""
        return max(0, self.allowance - self.spent)


@dataclass(frozen=True)
class PricedLine:
    """One basket line priced from the catalog."""

    item: CatalogEntry
    qty: int

    @property
    def amount(self) -> int:
        """The line's rupiah, price times quantity (integers: money never goes through floats)."""
        return self.item.price * self.qty


def known_spending(ledger: Ledger, household_id: str, period: Period) -> Spending:
    """Confirmed (ledger) united with local unconfirmed redemptions, minus local voids."""
    by_id: dict[str, tuple[int, dict[str, int]]] = {}
    for rec in ledger.confirmed(household_id, str(period)):
        by_id[rec.redemption_id] = (rec.amount, rec.items)
    local = (
        Redemption.select(Redemption.id, Redemption.total)
        .where((Redemption.household == household_id) & (Redemption.period == str(period)))
        .tuples()
    )
    voided = {
        rid
        for (rid,) in Void.select(Void.redemption)
        .join(Redemption)
        .where((Redemption.household == household_id) & (Redemption.period == str(period)))
        .tuples()
    }
    for rid, total in local:
        if rid in by_id:
            continue
        items: Counter = Counter()
        for code, qty in RedemptionLine.select(RedemptionLine.item_code, RedemptionLine.qty).where(
            RedemptionLine.redemption == rid
        ).tuples():
            items[code] += qty
        by_id[rid] = (total, dict(items))
    amount = 0
    items_total: Counter = Counter()
    for rid, (value, items) in by_id.items():
        if rid in voided:
            continue
        amount += value
        items_total.update(items)
    return Spending(amount, items_total)


def check_household_status(household: HouseholdRecord, today: date) -> None:
    """Refuse a household the city revoked or suspended, or one
    outside its validity dates, before anything is priced."""
    if household.status != "active":
        raise Refusal(Reason.HOUSEHOLD_REVOKED, f"{household.id} status {household.status}")
    if today < household.valid_from:
        raise Refusal(Reason.HOUSEHOLD_NOT_YET_VALID, f"{household.id} valid from {household.valid_from}")
    if today > household.valid_until:
        raise Refusal(Reason.HOUSEHOLD_EXPIRED, f"{household.id} valid until {household.valid_until}")


def assess(
    ledger: Ledger, household_id: str, period: Period, today: date, card_spent: int = 0
) -> Entitlement:
    """The household's entitlement this period; raises Refusal if it may not be served at all."""
    household = ledger.household(household_id)
    if household is None:
        raise Refusal(Reason.HOUSEHOLD_UNKNOWN, household_id)
    check_household_status(household, today)
    plan = ledger.plan(household.plan_code)
    if plan is None:
        raise Refusal(Reason.HOUSEHOLD_UNKNOWN, f"{household_id} has unknown plan {household.plan_code}")
    spending = known_spending(ledger, household_id, period)
    allowance = plan.allowance
    if plan.rollover:
        previous = period.previous()
        if household.valid_from <= date(previous.year, previous.month, 28):
            prev_spent = known_spending(ledger, household_id, previous).amount
            allowance += max(0, plan.allowance - prev_spent)
    quotas = {
        item: QuotaState(item, max_qty, spending.items.get(item, 0)) for item, max_qty in plan.quotas.items()
    }
    ent = Entitlement(household, plan, period, allowance, spending.amount, max(0, card_spent), quotas)
    if ent.remaining == 0:
        raise Refusal(Reason.ALLOWANCE_USED_UP, f"{household_id} spent {ent.spent} of {allowance}")
    return ent


def price_basket(
    ent: Entitlement, catalog: dict[str, CatalogEntry], basket: dict[str, int]
) -> tuple[list[PricedLine], int]:
    """Price the basket and check it against the catalog, quotas and the remaining allowance."""
    lines: list[PricedLine] = []
    for code, qty in basket.items():
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 0:
            raise ValueError(f"quantity of {code} must be a whole number >= 0, got {qty!r}")
        if qty == 0:
            continue
        entry = catalog.get(code)
        if entry is None:
            raise Refusal(Reason.ITEM_NOT_ELIGIBLE, code)
        quota = ent.quotas.get(code)
        if quota is not None and qty > quota.remaining:
            raise Refusal(Reason.QUOTA_EXCEEDED, f"{code}: {qty} asked, {quota.remaining} left of {quota.max_qty}")
        lines.append(PricedLine(entry, qty))
    if not lines:
        raise Refusal(Reason.EMPTY_BASKET)
    total = sum(line.amount for line in lines)
    if total > ent.remaining:
        raise Refusal(Reason.OVER_ALLOWANCE, f"basket {total} > remaining {ent.remaining}")
    return lines, total
