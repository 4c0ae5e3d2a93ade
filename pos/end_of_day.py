"""End-of-day report (pure domain): what this device did on one WITA calendar day.

Counts and totals per item (voided sales left out), voids, per cashier, and how many
redemptions and voids are still queued for the city. Written as CSV for the office and
printed on the receipt printer through the printer adapter.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TextIO

from pos.clock import iso
from pos.db import Cashier, OutboxMessage, Redemption, RedemptionLine, Void
from pos.period import WITA


@dataclass(frozen=True)
class ItemTotal:
    """How much of one item left the shop today: what the office reconciles stock against."""

    code: str
    name: str
    unit: str
    qty: int
    amount: int


@dataclass(frozen=True)
class CashierTotal:
    """One cashier's sales today, so a till count can be traced to a person."""

    cashier_id: str
    name: str
    count: int
    total: int


@dataclass(frozen=True)
class VoidEntry:
    """One void today, with its reason and cashier: voids are what an audit looks at first."""

    receipt_no: int
    void_no: int
    amount: int
    reason: str
    cashier_id: str


@dataclass(frozen=True)
class EndOfDayReport:
    """What the device did on one day, built once and shown, printed or written as CSV alike."""

    day: date
    device_id: str
    shop_name: str
    generated_at: datetime
    sales_count: int
    sales_total: int
    items: tuple[ItemTotal, ...]
    void_count: int
    void_total: int
    voids: tuple[VoidEntry, ...]
    cashiers: tuple[CashierTotal, ...]
    queued_for_city: int
    overrides: int = 0
    extra: dict = field(default_factory=dict)


def day_bounds(day: date) -> tuple[str, str]:
    """[start, end) of a WITA calendar day as stored timestamps (UTC ISO, comparable as text)."""
    start = datetime.combine(day, time(0), tzinfo=WITA).astimezone(UTC)
    return iso(start), iso(start + timedelta(days=1))


def build_end_of_day(day: date, *, device_id: str, shop_name: str, now: datetime) -> EndOfDayReport:
    """Count one WITA day from the database (voided sales left out), for the screen, paper and CSV."""
    start, end = day_bounds(day)
    sales = list(
        Redemption.select().where((Redemption.created_at >= start) & (Redemption.created_at < end)).order_by(Redemption.seq)
    )
    voided_ids = {rid for (rid,) in Void.select(Void.redemption).tuples()}
    kept = [r for r in sales if r.id not in voided_ids]
    items: dict[str, list] = {}
    if kept:
        for ln in RedemptionLine.select().where(RedemptionLine.redemption.in_([r.id for r in kept])):
            row = items.setdefault(ln.item_code, [ln.item_name, ln.unit, 0, 0])
            row[2] += ln.qty
            row[3] += ln.amount
    names = {c.id: c.name for c in Cashier.select()}
    per_cashier: dict[str, list[int]] = {}
    for r in kept:
        c = per_cashier.setdefault(r.cashier_id, [0, 0])
        c[0] += 1
        c[1] += r.total
    voids = [
        VoidEntry(v.redemption.receipt_no or v.redemption.seq, v.seq, v.redemption.total, v.reason, v.cashier_id)
        for v in Void.select().join(Redemption).where((Void.created_at >= start) & (Void.created_at < end)).order_by(Void.seq)
    ]
    queued = (
        OutboxMessage.select()
        .where((OutboxMessage.state != "acked") & (OutboxMessage.kind.in_(("redemption", "void"))))
        .count()
    )
    return EndOfDayReport(
        day=day,
        device_id=device_id,
        shop_name=shop_name,
        generated_at=now,
        sales_count=len(kept),
        sales_total=sum(r.total for r in kept),
        items=tuple(ItemTotal(code, *row) for code, row in sorted(items.items())),
        void_count=len(voids),
        void_total=sum(v.amount for v in voids),
        voids=tuple(voids),
        cashiers=tuple(
            CashierTotal(cid, names.get(cid, cid), n, total) for cid, (n, total) in sorted(per_cashier.items())
        ),
        queued_for_city=queued,
        overrides=sum(1 for r in kept if r.mode == "override"),
    )


CSV_HEADER = ["section", "key", "name", "count", "qty", "amount_rupiah", "note"]


def write_csv(report: EndOfDayReport, fh: TextIO) -> None:
    """One table, a `section` column per kind of row: summary, item, cashier, void."""
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(CSV_HEADER)
    w.writerow(["summary", "day", report.day.isoformat(), "", "", "", "WITA"])
    w.writerow(["summary", "device", report.device_id, "", "", "", report.shop_name])
    w.writerow(["summary", "sales", "", report.sales_count, "", report.sales_total, "voided sales excluded"])
    w.writerow(["summary", "voids", "", report.void_count, "", report.void_total, ""])
    w.writerow(["summary", "overrides", "", report.overrides, "", "", "sales without card (supervisor)"])
    w.writerow(["summary", "queued_for_city", "", report.queued_for_city, "", "", "redemptions and voids not yet acknowledged"])
    for it in report.items:
        w.writerow(["item", it.code, it.name, "", it.qty, it.amount, it.unit])
    for c in report.cashiers:
        w.writerow(["cashier", c.cashier_id, c.name, c.count, "", c.total, ""])
    for v in report.voids:
        w.writerow(["void", v.receipt_no, "", 1, "", v.amount, f"void no {v.void_no}: {v.reason} (by {v.cashier_id})"])
