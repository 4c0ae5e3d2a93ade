"""`ewarung`: the appliance's single command line. Subcommands live in modules listed below.

Each module has `register(subparsers)`; it must not import heavy libraries (kivy, pyscard,
escpos, paho) at module level, so `ewarung --help` stays fast and works without hardware.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from pos import __version__

COMMAND_MODULES = [
    "pos.cli.config_cmd",
    "pos.cli.demo_data_cmd",
    "pos.cli.journal_cmd",
    "pos.cli.demo_cmd",
    "pos.cli.printer_cmd",
    "pos.cli.receipt_cmd",
    "pos.cli.report_cmd",
    "pos.cli.provision_cmd",
    "pos.cli.doctor_cmd",
    "pos.cli.backup_cmd",
    "pos.cli.cashier_cmd",
    "pos.cli.counter_cmd",
    "pos.cli.sale_cmd",
    "pos.cli.sync_cmd",
    "pos.cli.central_cmd",
    "pos.cli.card_cmd",
]

# Modules the counter process never needs but its libraries would load (resident memory on a
# device with a 150 MB budget): peewee's optional PostgreSQL driver (about 6 MB), and the system
# OpenSSL, which asyncio (loaded by Kivy's clock) wants for TLS and hashlib for its fast hashes
# (about 8 MB). The counter talks TLS to no one (the sync daemon does the MQTT); its hashes are the
# stdlib's own SHA-2 and cryptography's scrypt and PBKDF2, from the OpenSSL that cryptography
# carries for card signatures anyway. tests/unit/test_counter_process.py runs the counter's code
# this way.
COUNTER_NEVER_LOADS = ("psycopg2", "ssl", "_ssl", "_hashlib")


def keep_counter_modules_out() -> None:
    """Make `import` of COUNTER_NEVER_LOADS raise ImportError in this process (each importer has a
    fallback); call it before anything imports them."""
    for module in COUNTER_NEVER_LOADS:
        sys.modules.setdefault(module, None)


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand registered (tests read the help from it too)."""
    parser = argparse.ArgumentParser(
        prog="ewarung",
        description="E-Warung POS: point-of-sale appliance for the SSN food-assistance program.",
    )
    parser.add_argument("--version", action="version", version=f"ewarung {__version__}")
    parser.add_argument(
        "--config", metavar="FILE", help="device configuration (TOML); default $EWARUNG_CONFIG or the built-in demo"
    )
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subs)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a configuration or setup problem ends with its message and exit code 2,
    never a traceback, since the technician must act on it."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "counter_process", False):
        keep_counter_modules_out()
    from firmware_config.config import ConfigError
    from pos.roots import SetupError

    try:
        return int(args.func(args) or 0)
    except (ConfigError, SetupError) as exc:
        print(f"ewarung: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ewarung ... | head`: the reader has gone, which is not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 141


if __name__ == "__main__":
    sys.exit(main())
