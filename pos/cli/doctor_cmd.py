"""`ewarung doctor`: check this appliance and say what to fix."""

from __future__ import annotations

import argparse
import sys


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung doctor` to the one command line (pos.cli.main lists the modules)."""
    p = subs.add_parser(
        "doctor",
        help="check config, keys, database, reader, printer, broker, clock and disk; exit 1 and say what to fix",
    )
    p.add_argument("--test-page", action="store_true", help="also print a test page on the receipt printer")
    p.add_argument("--min-free-mb", type=int, default=200, help="free disk space needed in the data directory (default 200)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the printer and broker (default 3)")
    p.add_argument("--no-receipt", action="store_true", help="do not print the provisioning receipt and QR code")
    p.set_defaults(func=_doctor)


def device_config_path(args: argparse.Namespace) -> str | None:
    """--config, else $EWARUNG_CONFIG, else the provisioned /etc/ewarung/ewarung.toml (sudo drops
    the environment), else None (the built-in demo)."""
    import os
    from pathlib import Path

    from firmware_config.config import ENV_VAR
    from firmware_config.provision import CONFIG_PATH

    return args.config or os.environ.get(ENV_VAR) or (CONFIG_PATH if Path(CONFIG_PATH).exists() else None)


def _doctor(args: argparse.Namespace) -> int:
    from firmware_config.doctor import qr_text, run_checks

    path = device_config_path(args)
    results = run_checks(
        path,
        min_free_bytes=args.min_free_mb * 1024 * 1024,
        print_test_page=args.test_page,
        timeout=args.timeout,
        progress=lambda name: print(f"checking {name}...", file=sys.stderr),
    )
    for r in results:
        mark = "FAIL" if not r.ok else ("warn" if r.warn else " ok ")
        print(f"[{mark}] {r.name:9} {r.message}")
    failed = [r for r in results if not r.ok]
    print()
    if failed:
        print(f"doctor: {len(failed)} problem(s): {', '.join(r.name for r in failed)}. Fix them as described above and run `ewarung doctor` again.")
    else:
        print("doctor: all checks passed")
    if not args.no_receipt and results[0].ok:
        from firmware_config.config import load_config

        cfg = load_config(path)
        print()
        print("=== E-Warung provisioning receipt ===")
        print(f"device id : {cfg.device.id}")
        print(f"shop      : {cfg.device.shop_id}  {cfg.device.shop_name}")
        print(f"status    : {'OK' if not failed else 'NEEDS ATTENTION: ' + ', '.join(r.name for r in failed)}")
        print(qr_text(cfg.device.id))
    return 1 if failed else 0
