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
    version: int
    issued_at: datetime
    expires_at: datetime
    applied_at: datetime
    kind: str


@dataclass(frozen=True)
class RepresentativeRecord:
    id: str
    name: str
    relation: str


@dataclass(frozen=True)
class HouseholdRecord:
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
    code: str
    name_id: str
    name_en: str
    unit: str
    price: int

    def name(self, language: str = "id") -> str:
        return self.name_en if language == "en" else self.name_id


@dataclass(frozen=True)
class PlanRecord:
    code: str
    name: str
    allowance: int
    rollover: bool
    quotas: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfirmedRecord:
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
        self._refresh()
        return self._catalog

    def plan(self, code: str) -> PlanRecord | None:
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
        row = HotlistEntry.get_or_none(HotlistEntry.card_id == card_id)
        return row.reason if row else None

    def confirmed(self, household_id: str, period: str) -> list[ConfirmedRecord]:
        query = ConfirmedRedemption.select().where(
            (ConfirmedRedemption.household == household_id) & (ConfirmedRedemption.period == period)
        )
        return [ConfirmedRecord(r.redemption_id, r.amount, json.loads(r.items)) for r in query]
