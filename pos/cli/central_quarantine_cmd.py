"""`ewarung central quarantine list`: every message the city holds back from the totals, one a line.

The report groups a device's flood of one rule in one period into one row and names this command
with the filters that list the group whole (sync.central.held)."""

from __future__ import annotations

import argparse
import csv
import sys

from pos.cli.common import fail

COLUMNS = ["rule", "severity", "device", "period", "household", "amount", "created_at", "msg_id", "detail"]


def register(inner: argparse._SubParsersAction, open_db) -> None:
    """Under `ewarung central`; `open_db(args)` opens the central database named by --db."""
    p = inner.add_parser("quarantine", help="messages held back from the totals (quarantined, voids without a sale)",
                         description="The messages the city stored but does not count: each quarantined message "
                                     "with the rule it failed, and each void still waiting for a sale the city "
                                     "never received (rule void_without_sale). `ewarung central report` lists "
                                     "them one by one, or one row for a device's flood of one rule in a period.")
    sub = p.add_subparsers(dest="quarantine_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="every held message, oldest first (filters combine)",
                        description="Every held message, one a line: rule, severity, device, period, household, "
                                    "amount, time, message id, what was wrong. Filters combine.")
    ls.add_argument("--device", metavar="D", help="only this device's messages, e.g. EW-SMD-0001")
    ls.add_argument("--rule", metavar="R", help="only this rule, e.g. content, card_clone, price, void_without_sale")
    ls.add_argument("--period", metavar="P", help="only this period (YYYY-MM; '' for messages with no period)")
    ls.add_argument("--csv", action="store_true", help="CSV on stdout (for a spreadsheet) instead of the table")
    ls.set_defaults(func=lambda args: (open_db(args), _list(args))[1])


def _list(args: argparse.Namespace) -> int:
    from sync.central.held import held_rows

    if args.period and not _is_period(args.period):
        return fail(f"--period {args.period!r} is not a period: give YYYY-MM, e.g. 2026-11 (or '' for none)")
    rows = held_rows(args.period, args.device, args.rule)
    if args.csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(rows)
        return 0
    count = 0
    for h in rows:
        count += 1
        print(f"{h.severity:<8} {h.rule:<18} {h.device:<16} {h.period or '-':<7} {h.household or '-':<20} "
              f"Rp {h.amount:>11,} {h.created_at:<24} {h.msg_id}  {h.detail}")
    if not count:
        asked = " ".join(f"--{k} {v}" for k, v in (("device", args.device), ("rule", args.rule),
                                                      ("period", args.period)) if v is not None)
        print(f"nothing held back{' for ' + asked if asked else ''} (`ewarung central report` lists every finding)")
    return 0


def _is_period(text: str) -> bool:
    from pos.period import Period

    try:
        Period.parse(text)
    except ValueError:
        return False
    return True
