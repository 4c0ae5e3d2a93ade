"""`ewarung config check FILE` and `ewarung config show`."""

from __future__ import annotations

import argparse
import json

from firmware_config.config import ConfigError, load_config, masked_dump
from pos.cli.common import config_from


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung config` to the one command line (pos.cli.main lists the modules)."""
    p = subs.add_parser("config", help="check or show the device configuration")
    inner = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = inner.add_parser("check", help="validate a configuration file and say what to fix")
    check.add_argument("file")
    check.set_defaults(func=_check)
    show = inner.add_parser("show", help="print the configuration in force, secrets masked")
    show.add_argument("--json", action="store_true", help="JSON instead of readable text")
    show.set_defaults(func=_show)


def _check(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        print(exc)
        return 1
    print(f"{args.file}: OK (device {cfg.device.id}, shop {cfg.device.shop_id}, data in {cfg.data_dir})")
    return 0


def _show(args: argparse.Namespace) -> int:
    data = masked_dump(config_from(args))
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    for section, values in data.items():
        if isinstance(values, dict):
            print(f"[{section}]")
            for key, value in values.items():
                print(f"{key} = {json.dumps(value, ensure_ascii=False)}")
            print()
    return 0
