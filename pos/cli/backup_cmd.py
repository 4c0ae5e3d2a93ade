"""`ewarung backup` and `ewarung restore`: move the database and identity to a replacement device."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CONFIG_PATH = "/etc/ewarung/ewarung.toml"


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung backup`, `ewarung restore` to the one command line (pos.cli.main lists the modules)."""
    b = subs.add_parser(
        "backup",
        help="write the database and device identity to one archive (safe while the appliance runs)",
        description="The archive holds the device's private key: keep it on the technician's encrypted stick.",
    )
    b.add_argument("output", type=Path, help="archive to write, e.g. /media/usb/EW-SMD-0042.tar.gz")
    b.add_argument("--root", default="/", help="device tree root (tests, image builds)")
    _key_argument(b)
    b.add_argument("--new-key", action="store_true", help="make the backup key file first (refused if it exists)")
    b.set_defaults(func=_backup)
    r = subs.add_parser(
        "restore",
        help="install a backup on a replacement device (refuses a device that already has sales)",
        description="Stop the services first: `systemctl stop ewarung-counter ewarung-sync`. The old device must "
        "not be used again after its backup.",
    )
    r.add_argument("archive", type=Path)
    r.add_argument("--root", default="/", help="device tree root (tests, image builds)")
    _key_argument(r)
    r.add_argument(
        "--sequence-gap",
        type=int,
        default=0,
        help="skip N sequence numbers, only if the old device may have sold after the backup (the city sees the gap)",
    )
    r.set_defaults(func=_restore)


def _key_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key",
        type=Path,
        required=True,
        help="the technician's backup key file (HMAC-SHA256); keep it apart from the archives",
    )


def _config_path(args) -> str:
    return args.config or CONFIG_PATH


def _backup(args: argparse.Namespace) -> int:
    from firmware_config.backup import BackupError, backup, load_backup_key, new_backup_key

    try:
        if args.new_key:
            new_backup_key(args.key)
            print(f"new backup key written to {args.key} (mode 0600): keep it apart from the archives")
        info = backup(Path(_config_path(args)), args.output, load_backup_key(args.key), Path(args.root))
    except BackupError as exc:
        print(f"ewarung backup: {exc}", file=sys.stderr)
        return 1
    print(f"backup {info.backup_id} written to {info.path} (mode 0600: it holds the device key)")
    print(f"device {info.device_id}, last sequence {info.last_sequence}, outbox {info.outbox or 'empty'}")
    for name, digest in info.files.items():
        print(f"  {digest}  {name}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from firmware_config.backup import BackupError, load_backup_key, restore

    try:
        info = restore(args.archive, load_backup_key(args.key), Path(args.root), args.sequence_gap, config_path=_config_path(args))
    except BackupError as exc:
        print(f"ewarung restore: {exc}", file=sys.stderr)
        return 1
    print(f"restored {info.backup_id}: this is now device {info.device_id}")
    print(f"next sequence number {info.next_sequence}; {info.requeued} unacknowledged message(s) will be sent again, {info.acked} stay acknowledged")
    print("Run `ewarung doctor`, then `systemctl start ewarung-sync ewarung-counter`.")
    return 0
