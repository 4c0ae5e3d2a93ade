"""`ewarung demo-data`: write the deterministic sample city (ledger, DEMO keys, CSV)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung demo-data` to the one command line (pos.cli.main lists the modules)."""
    p = subs.add_parser("demo-data", help="write the sample city: ledger database, DEMO keys, beneficiary CSV")
    p.add_argument("--out", type=Path, required=True, help="directory to write into (created if needed)")
    p.add_argument("--households", type=int, default=500, help="number of households (up to 2,000,000)")
    p.add_argument("--seed", type=int, default=2026, help="same seed, same city")
    p.add_argument("--no-csv", action="store_true", help="skip the beneficiary CSV")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not 9 <= args.households <= 2_000_000:
        print("ewarung: --households must be between 9 and 2000000")
        return 2
    from pos import sample_city
    from pos.cli.common import progress_to
    from pos.clock import SystemClock
    from pos.db import open_database

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    now = SystemClock().now()
    keys = sample_city.write_demo_keys(out / "keys")
    db = open_database(out / "ewarung.db")
    with progress_to(args.households, "households") as progress:
        city = sample_city.build_sample_city(db, households=args.households, seed=args.seed, now=now, progress=progress)
    db.close()
    if not args.no_csv:
        sample_city.write_beneficiary_csv(out / "households.csv", households=args.households, seed=args.seed, now=now)
    print(f"sample city: {city.households} households, period {city.period}, ledger v{city.ledger_version}")
    print(f"database:    {out / 'ewarung.db'}")
    print(f"DEMO keys:   {', '.join(str(p) for p in keys.values())} (public .pub.pem beside them)")
    if not args.no_csv:
        print(f"CSV:         {out / 'households.csv'}")
    for role, hid in city.notable.items():
        print(f"  {role:14s} {hid}")
    return 0
