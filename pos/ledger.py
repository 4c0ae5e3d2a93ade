"""Read side of the ledger the city sends: households, plans, catalog, hotlist, confirmations.

Lookups go to SQLite by primary key every time (1,000,000 households never sit in memory);
plans and the catalog are small and cached per ledger version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime

from pos.clock import parse_iso
from pos.db import (
    CatalogItem,
    ConfirmedRedemption,
    HotlistEntry,
    Household,
    LedgerState,
    Plan,
    PlanQuota,
)


@dataclass(frozen=True)
class LedgerInfo:
    """Which ledger is live and how old it is: the risk policy
    refuses service on a missing, too old or expired ledger."""

    version: int
    issued_at: datetime
    expires_at: datetime
    applied_at: datetime
    kind: str


@dataclass(frozen=True)
class RepresentativeRecord:
    """A person registered to collect for a household, as the counter offers them."""

    id: str
    name: str
    relation: str


@dataclass(frozen=True)
class HouseholdRecord:
    """A household as the counter needs it to decide: plan, status,
    validity dates, who may collect; no national ID numbers."""

    id: str
    name: str
    area: str
    plan_code: str
    status: str
    valid_from: date
    valid_until: date
    representatives: tuple[RepresentativeRecord, ...] = ()


@dataclass(frozen=True)
class CatalogEntry:
    """An eligible item with its price in rupiah, named in both languages the counter speaks."""

    code: str
    name_id: str
    name_en: str
    unit: str
    price: int

    def name(self, language: str = "id") -> str:
        """The item's name in the screen or receipt language (Bahasa Indonesia unless "en")."""
        return self.name_en if language == "en" else self.name_id


@dataclass(frozen=True)
class PlanRecord:
    """A plan with its quotas, cached per ledger version because every sale prices against it."""

    code: str
    name: str
    allowance: int
    rollover: bool
    quotas: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfirmedRecord:
    """A redemption the city has confirmed (made at any shop), counted into what a household spent."""

    redemption_id: str
    amount: int
    items: dict[str, int]


class Ledger:
    """Queries over the live ledger tables."""

    def __init__(self) -> None:
        self._cache_version: int | None = None
        self._plans: dict[str, PlanRecord] = {}
        self._catalog: dict[str, CatalogEntry] = {}

    def info(self) -> LedgerInfo | None:
        """The live ledger's version and dates, or None before the first ledger arrives."""
        row = LedgerState.get_or_none(LedgerState.id == 1)
        if row is None:
            return None
        return LedgerInfo(
            row.version, parse_iso(row.issued_at), parse_iso(row.expires_at), parse_iso(row.applied_at), row.kind
        )

    def _refresh(self) -> None:
        info = LedgerState.select(LedgerState.version).where(LedgerState.id == 1).scalar()
        if info == self._cache_version and self._catalog:
            return
        quotas: dict[str, dict[str, int]] = {}
        for q in PlanQuota.select():
            quotas.setdefault(q.plan, {})[q.item] = q.max_qty
        self._plans = {
            p.code: PlanRecord(p.code, p.name, p.allowance, p.rollover, quotas.get(p.code, {})) for p in Plan.select()
        }
        self._catalog = {
            c.code: CatalogEntry(c.code, c.name_id, c.name_en, c.unit, c.price)
            for c in CatalogItem.select().where(CatalogItem.active == True).order_by(CatalogItem.code)  # noqa: E712
        }
        self._cache_version = info

    def catalog(self) -> dict[str, CatalogEntry]:
        """Eligible items by code, read again only when the ledger version changes."""
        self._refresh()
        return self._catalog

    def plan(self, code: str) -> PlanRecord | None:
        """A plan by code, from the per-version cache; None when the ledger lacks it."""
        self._refresh()
        return self._plans.get(code)

    def household(self, household_id: str) -> HouseholdRecord | None:
        """One household by id. Hot path (every card tap): plain SQL by primary key, no ORM."""
        db = Household._meta.database
        found = db.execute_sql(
            "SELECT id, name, area, plan, status, valid_from, valid_until FROM household WHERE id = ?",
            (household_id,),
        ).fetchone()
        if found is None:
            return None
        reps = tuple(
            RepresentativeRecord(*r)
            for r in db.execute_sql(
                "SELECT id, name, relation FROM representative WHERE household = ? ORDER BY id", (household_id,)
            ).fetchall()
        )
        hid, name, area, plan, status, valid_from, valid_until = found
        return HouseholdRecord(
            hid, name, area, plan, status, date.fromisoformat(valid_from), date.fromisoformat(valid_until), reps
        )

    def hotlist_reason(self, card_id: str) -> str | None:
        """Why a card is revoked, or None when it is not on the hotlist."""
        row = HotlistEntry.get_or_none(HotlistEntry.card_id == card_id)
        return row.reason if row else None

    def confirmed(self, household_id: str, period: str) -> list[ConfirmedRecord]:
        """A household's city-confirmed redemptions in a
        period, from every shop, for known_spending."""
        query = ConfirmedRedemption.select().where(
            (ConfirmedRedemption.household == household_id) & (ConfirmedRedemption.period == period)
        )
        return [ConfirmedRecord(r.redemption_id, r.amount, json.loads(r.items)) for r in query]
