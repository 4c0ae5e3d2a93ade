"""`ewarung cashier`: the people who may sign in at this counter (technician's job at provisioning).

PINs are typed at a hidden prompt (twice) or given on one line of stdin with --pin-stdin (for
scripts); they are kept only as scrypt hashes. Cashiers are never deleted: sales and the journal
name them, so a cashier who leaves is disabled. Every change is journaled.
"""

from __future__ import annotations

import argparse
import sys

from pos.cli.common import config_from, fail
from pos.staff_roles import ROLES


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung cashier` to the one command line (pos.cli.main lists the modules)."""
    p = subs.add_parser("cashier", help="cashiers and supervisors who may sign in: list, add, set a PIN, disable")
    inner = p.add_subparsers(dest="cashier_command", metavar="ACTION", required=True)
    ls = inner.add_parser("list", help="everyone who may sign in, with role and whether they are active")
    ls.set_defaults(func=_list)
    add = inner.add_parser("add", help="add a cashier, supervisor or technician with a 4-8 digit PIN")
    add.add_argument("cashier_id", metavar="ID", help="short id shown on receipts, e.g. kasir3")
    add.add_argument("--name", required=True, help="the person's name as shown on the sign-in screen")
    add.add_argument("--role", choices=ROLES, default="cashier", help="supervisors approve voids and overrides")
    add.add_argument("--pin-stdin", action="store_true", help="read the PIN from one line of stdin instead of asking")
    add.set_defaults(func=_add)
    pin = inner.add_parser("set-pin", help="give someone a new PIN (forgotten PIN)")
    pin.add_argument("cashier_id", metavar="ID")
    pin.add_argument("--pin-stdin", action="store_true", help="read the PIN from one line of stdin instead of asking")
    pin.set_defaults(func=_set_pin)
    for action, active in (("disable", False), ("enable", True)):
        sub = inner.add_parser(action, help=f"{action} sign-in for someone (sales stay in their name)")
        sub.add_argument("cashier_id", metavar="ID")
        sub.set_defaults(func=_set_active, active=active)
    unlock = inner.add_parser("unlock", help="lift the lockout after too many wrong PINs (journaled)")
    unlock.add_argument("cashier_id", metavar="ID")
    unlock.set_defaults(func=_unlock)


def _open(args: argparse.Namespace):
    from pos.db import open_database

    return open_database(config_from(args).database_path)


def _read_pin(args: argparse.Namespace) -> str:
    if args.pin_stdin:
        return sys.stdin.readline().strip()
    import getpass

    first = getpass.getpass("PIN (4-8 digits): ")
    if getpass.getpass("PIN again: ") != first:
        raise ValueError("the two PINs differ; nothing was changed, try again")
    return first


def _journal(kind: str, cashier_id: str, data: dict) -> None:
    from pos import journal
    from pos.clock import SystemClock, iso

    journal.append(iso(SystemClock().now()), kind, cashier_id, data)


def _list(args: argparse.Namespace) -> int:
    from pos.db import Cashier, StaffLock

    db = _open(args)
    try:
        rows = list(Cashier.select().order_by(Cashier.role, Cashier.id))
        locked = {r.cashier_id for r in StaffLock.select().where(StaffLock.locked_at != "")}
    finally:
        db.close()
    if not rows:
        print("nobody may sign in yet: add someone with `ewarung cashier add ID --name NAME`")
        return 0
    for c in rows:
        print(f"{c.id:12s} {c.role:11s} {'active' if c.active else 'DISABLED':8s} {c.name}"
              + ("  LOCKED: `ewarung cashier unlock` lifts it" if c.id in locked else ""))
    return 0


def _add(args: argparse.Namespace) -> int:
    from pos import cashiers
    from pos.db import Cashier, durable_transaction

    cid, name = args.cashier_id.strip(), args.name.strip()
    if not cid or len(cid) > 32 or not cid.replace("-", "").replace("_", "").isalnum():
        return fail(f"ID {args.cashier_id!r} must be 1-32 letters, digits, - or _", 2)
    if not name:
        return fail("--name must not be empty", 2)
    try:
        pin = _read_pin(args)
    except ValueError as exc:
        return fail(str(exc), 2)
    db = _open(args)
    try:
        if Cashier.get_or_none(Cashier.id == cid) is not None:
            return fail(f"{cid} already exists: use `ewarung cashier set-pin {cid}` or `enable {cid}`", 2)
        with durable_transaction(db):
            cashiers.add_cashier(cid, name, pin, args.role)
            _journal("cashier_added", cid, {"name": name, "role": args.role})
    except ValueError as exc:
        return fail(f"{exc}; nothing was changed", 2)
    finally:
        db.close()
    print(f"added {args.role} {cid} ({name})")
    return 0


def _set_pin(args: argparse.Namespace) -> int:
    from pos import cashiers

    try:
        pin_hash = cashiers.hash_pin(_read_pin(args))
    except ValueError as exc:
        return fail(f"{exc}; nothing was changed", 2)
    if failed := _change(args, "cashier_pin_set", pin_hash=pin_hash):
        return failed
    print(f"new PIN set for {args.cashier_id}")
    return 0


def _set_active(args: argparse.Namespace) -> int:
    if failed := _change(args, "cashier_enabled" if args.active else "cashier_disabled", active=args.active):
        return failed
    print(f"{args.cashier_id} {'enabled' if args.active else 'disabled'}; the counter app shows it after a restart")
    return 0


def _unlock(args: argparse.Namespace) -> int:
    """The technician's way to lift a lockout (a supervisor's is their PIN at the counter's sign-in)."""
    from pos.clock import SystemClock
    from pos.db import Cashier
    from pos.staff_lockout import StaffLockout

    db = _open(args)
    try:
        if Cashier.get_or_none(Cashier.id == args.cashier_id) is None:
            return fail(f"no cashier {args.cashier_id!r}: `ewarung cashier list` shows who exists", 2)
        lifted = StaffLockout(db, SystemClock()).unlock(args.cashier_id, by="technician")
    finally:
        db.close()
    print(f"{args.cashier_id} unlocked; they can sign in again" if lifted else f"{args.cashier_id} was not locked")
    return 0


def _change(args: argparse.Namespace, journal_kind: str, **fields) -> int:
    """Update one cashier's row and journal it in one durable transaction; non-zero if there is no such cashier."""
    from pos.db import Cashier, durable_transaction

    db = _open(args)
    try:
        with durable_transaction(db):
            if Cashier.update(**fields).where(Cashier.id == args.cashier_id).execute() != 1:
                return fail(f"no cashier {args.cashier_id!r}: `ewarung cashier list` shows who exists", 2)
            _journal(journal_kind, args.cashier_id, {})
    finally:
        db.close()
    return 0
