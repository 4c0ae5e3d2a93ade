"""`ewarung central fleet-account`: the accounts that may sign in to the fleet page."""

from __future__ import annotations

import argparse
import sys

from pos.cli.common import fail


def register(inner: argparse._SubParsersAction, open_db) -> None:
    """Under `ewarung central`; `open_db(args)` opens the central database named by --db."""
    f = inner.add_parser("fleet-account", help="accounts that may sign in to the fleet page (scrypt-hashed passwords)")
    fsub = f.add_subparsers(dest="fleet_account_command", metavar="ACTION", required=True)
    fa = fsub.add_parser("add", help="add an account; the password is asked twice (or read from stdin)")
    fa.add_argument("username")
    fa.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    fa.add_argument("--replace", action="store_true", help="set a new password for an existing account")
    fl = fsub.add_parser("list", help="account names")
    fr = fsub.add_parser("remove", help="remove an account (its sessions end at their next request)")
    fr.add_argument("username")
    for sp, fn in ((fa, _add), (fl, _list), (fr, _remove)):
        sp.set_defaults(func=lambda args, fn=fn: (open_db(args), fn(args))[1])


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass("Password (at least 10 characters): ")
    return first if getpass.getpass("Password again: ") == first else None


def _add(args: argparse.Namespace) -> int:
    from pos.clock import SystemClock
    from sync.central.fleet_auth import AccountError, add_account

    password = _password(args)
    if password is None:
        return fail("the two passwords differ; nothing changed")
    try:
        add_account(args.username, password, SystemClock().now(), replace=args.replace)
    except AccountError as exc:
        return fail(f"{exc}; nothing changed")
    print(f"fleet page account {args.username} {'updated' if args.replace else 'added'}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from sync.central.fleet_auth import account_names

    names = account_names()
    print("\n".join(names) if names else "no fleet page accounts: add one with `ewarung central fleet-account add NAME`")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from sync.central.fleet_auth import AccountError, remove_account

    try:
        remove_account(args.username)
    except AccountError as exc:
        return fail(str(exc))
    print(f"fleet page account {args.username} removed")
    return 0
