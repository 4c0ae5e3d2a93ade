"""`ewarung journal verify`: walk the hash chain and report the first broken link."""

from __future__ import annotations

import argparse


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung journal` to the one command line (pos.cli.main lists the modules)."""
    p = subs.add_parser("journal", help="inspect the append-only journal")
    inner = p.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    v = inner.add_parser("verify", help="check the journal's hash chain; exit 1 if it was tampered with")
    v.add_argument("--database", help="database file (default: the configured one)")
    v.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    from pos import journal
    from pos.cli.common import config_from
    from pos.db import JournalEntry, open_database

    path = args.database or config_from(args).database_path
    db = open_database(path)
    try:
        total = JournalEntry.select().count()
        from pos.cli.common import progress_bar

        with progress_bar(total, "journal") as bar:
            report = journal.verify(progress=lambda n: bar.update(n - bar.n))
    finally:
        db.close()
    if report.ok:
        print(f"journal OK: {report.entries} entries chain correctly")
        return 0
    print(
        f"journal BROKEN at entry {report.first_bad_id}: {report.problem}. "
        "Keep this device's database as evidence and call the program office; do not delete anything."
    )
    return 1
