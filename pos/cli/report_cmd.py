"""`ewarung report end-of-day`: the day's sales, voids, cashiers and what is still queued."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from pos.cli.common import config_from, fail


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung report` to the one command line (pos.cli.main lists the modules)."""
    p = subs.add_parser("report", help="reports: end of day")
    inner = p.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    e = inner.add_parser("end-of-day", help="today's (or --date's) totals per item, voids, cashiers, queue")
    e.add_argument("--date", help="the day in WITA, YYYY-MM-DD (default: today in Samarinda)")
    e.add_argument("--csv", type=Path, metavar="FILE", help="also write the report as CSV")
    e.add_argument("--print", action="store_true", dest="do_print", help="also print it on the receipt printer")
    e.set_defaults(func=_end_of_day)


def _end_of_day(args: argparse.Namespace) -> int:
    from pos.end_of_day import build_end_of_day, write_csv
    from pos.money import format_rupiah
    from pos.period import WITA
    from pos.roots.cli import build_appliance, print_service

    config = config_from(args)
    app = build_appliance(config)
    try:
        now = app.clock.now()
        if args.date:
            try:
                day = date.fromisoformat(args.date)
            except ValueError:
                return fail(f"--date must look like 2026-11-15, got {args.date!r}", 2)
        else:
            day = now.astimezone(WITA).date()
        rep = build_end_of_day(day, device_id=config.device.id, shop_name=config.device.shop_name, now=now)
        print(f"End of day {day.isoformat()} (WITA), device {rep.device_id}")
        print(f"  sales: {rep.sales_count}, total {format_rupiah(rep.sales_total)}")
        for it in rep.items:
            print(f"    {it.code:10s} {it.qty:5d} {it.unit:8s} {format_rupiah(it.amount):>14s}  {it.name}")
        print(f"  voids: {rep.void_count}, {format_rupiah(rep.void_total)}")
        for c in rep.cashiers:
            print(f"  cashier {c.name}: {c.count} sales, {format_rupiah(c.total)}")
        print(f"  still queued for the city: {rep.queued_for_city}")
        if args.csv:
            args.csv.parent.mkdir(parents=True, exist_ok=True)
            with args.csv.open("w", encoding="utf-8", newline="") as fh:
                write_csv(rep, fh)
            print(f"  CSV written to {args.csv}")
        if args.do_print:
            outcome = print_service(app).print_end_of_day(rep)
            if not outcome.ok:
                return fail(f"report not printed: {outcome.message}")
            print("  printed")
        return 0
    finally:
        app.close()
