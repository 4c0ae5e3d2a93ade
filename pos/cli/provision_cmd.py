"""`ewarung provision`: set up this Raspberry Pi (or a directory tree) as an E-Warung appliance."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FLAGS_HELP = "every answer can be given as a flag (scripting); missing ones are asked for on a terminal"


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung provision` to the one command line (pos.cli.main lists the modules)."""
    p = subs.add_parser(
        "provision",
        help="turn a fresh Raspberry Pi OS Lite into an appliance (idempotent; --dry-run shows changes)",
        description="Writes the device config, device key and CSR, trust anchors, service user, data directory, "
        "udev rules, systemd units and boot configuration. Running it again changes nothing. " + FLAGS_HELP + ".",
    )
    p.add_argument("--root", default="/", help="provision into this directory tree instead of / (tests, image builds)")
    p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    p.add_argument("--non-interactive", action="store_true", help="never ask; fail listing missing answers")
    p.add_argument("--device-id", help="device id from the city's device list, e.g. EW-SMD-0042")
    p.add_argument("--shop-id")
    p.add_argument("--shop-name")
    p.add_argument("--shop-address")
    p.add_argument("--hotline")
    p.add_argument("--language", choices=["id", "en"])
    p.add_argument("--data-dir", help="database directory (default /var/lib/ewarung; /data/ewarung for a read-only root)")
    p.add_argument("--printer-kind", choices=["usb", "serial", "network", "file", "dummy"])
    p.add_argument("--printer-usb", metavar="VID:PID", help="USB printer ids as lsusb shows them, e.g. 04b8:0202")
    p.add_argument("--printer-serial", metavar="DEV", help="serial printer device (default /dev/serial0)")
    p.add_argument("--printer-host")
    p.add_argument("--printer-port", type=int)
    p.add_argument("--printer-width", type=int, choices=[58, 80])
    p.add_argument("--reader-name", help="part of the PC/SC reader name (default: the first reader)")
    p.add_argument("--broker-host")
    p.add_argument("--broker-port", type=int)
    p.add_argument("--broker-ca", type=Path, help="the broker's CA certificate (PEM); without it the system's CAs")
    p.add_argument("--insecure-plaintext-lab", action="store_true",
                   help="LAB ONLY: MQTT without TLS (household names and sales in clear); doctor reports it as a fault")
    p.add_argument("--device-cert", type=Path, help="this device's certificate, signed by the city from its CSR")
    p.add_argument("--issuer-key", type=Path, action="append", default=[], help="card issuer public key (PEM); repeatable")
    p.add_argument("--ledger-key", type=Path, help="ledger signer public key (PEM)")
    p.add_argument("--central-key", type=Path, help="city (central) public key (PEM)")
    p.add_argument("--display", choices=["dsi", "hdmi"], help="touchscreen connection (default dsi)")
    p.add_argument("--rotation", type=int, choices=[0, 90, 180, 270], help="screen rotation in degrees (default 0)")
    p.add_argument("--screen", metavar="WxH", help="screen size in pixels (default 800x480, the official 7\" display)")
    p.add_argument("--prefix", help="the virtualenv holding ewarung (default /opt/ewarung/venv)")
    p.add_argument("--update-repo", metavar="URL", help="the city's signed apt repository: take its releases unattended")
    p.add_argument("--update-key", type=Path, metavar="FILE", help="the city's release key (gpg --armor --export)")
    p.add_argument("--update-window", metavar="HH:MM-HH:MM", help="maintenance window, local time (default 22:00-05:00)")
    p.add_argument("--no-receipt", action="store_true", help="do not print the provisioning receipt")
    p.add_argument("--verbose", "-v", action="store_true", help="list unchanged items too")
    p.set_defaults(func=_provision)


def _answers(args: argparse.Namespace):
    from firmware_config.provision import Answers, parse_usb_id

    return Answers(
        device_id=args.device_id, shop_id=args.shop_id, shop_name=args.shop_name, shop_address=args.shop_address,
        hotline=args.hotline, language=args.language, data_dir=args.data_dir, printer_kind=args.printer_kind,
        printer_usb=parse_usb_id(args.printer_usb) if args.printer_usb else None, printer_serial=args.printer_serial,
        printer_host=args.printer_host, printer_port=args.printer_port, printer_width=args.printer_width,
        reader_name=args.reader_name, broker_host=args.broker_host, broker_port=args.broker_port,
        broker_ca=args.broker_ca, device_cert=args.device_cert, insecure_plaintext_lab=args.insecure_plaintext_lab,
        issuer_keys=list(args.issuer_key),
        ledger_key=args.ledger_key, central_key=args.central_key, display=args.display, rotation=args.rotation, screen=args.screen,
        prefix=args.prefix, update_repo=args.update_repo, update_key=args.update_key, update_window=args.update_window,
    )


def _ask(answers, args) -> None:
    from firmware_config.fsops import Changes
    from firmware_config.provision import PROMPTS, REQUIRED, existing_config, fill_from, missing

    installed = existing_config(Changes(Path(args.root)))
    filled = fill_from(answers, installed) if installed else answers
    gaps = missing(filled, installed)
    names = {flag: name for name, flag in REQUIRED.items()}
    for flag in gaps:
        name = names[flag]
        value = input(f"{PROMPTS[name]}: ").strip()
        if name == "issuer_keys":
            answers.issuer_keys = [Path(value)] if value else []
        elif name in ("ledger_key", "central_key"):
            setattr(answers, name, Path(value) if value else None)
        else:
            setattr(answers, name, value or None)


def _provision(args: argparse.Namespace) -> int:
    from firmware_config.provision import ProvisionError, provision

    try:
        answers = _answers(args)
        if not args.non_interactive and sys.stdin.isatty():
            _ask(answers, args)
        result = provision(answers, Path(args.root), dry_run=args.dry_run)
    except ProvisionError as exc:
        print(f"ewarung provision: {exc}", file=sys.stderr)
        return 2
    ch = result.changes
    for c in ch.items:
        if c.status != "unchanged" or args.verbose:
            print(f"{c.status:>12}  {c.path}  ({c.what})")
    for note in result.notes:
        print(f"        note  {note}")
    verb = "would change" if args.dry_run else "changed"
    print(f"provision: {len(ch.changed)} {verb}, {len(ch.items) - len(ch.changed)} unchanged")
    if not args.dry_run and not args.no_receipt:
        print()
        print_receipt(result.config, Path(args.root))
    return 0


def print_receipt(cfg, root: Path) -> None:
    """The provisioning receipt: what the technician writes on the device list, and a QR of the id."""
    from firmware_config.doctor import qr_text

    print("=== E-Warung provisioning receipt ===")
    print(f"device id : {cfg.device.id}")
    print(f"shop      : {cfg.device.shop_id}  {cfg.device.shop_name}")
    print(f"data dir  : {cfg.data_dir}")
    print(f"broker    : {cfg.mqtt.host}:{cfg.mqtt.port} tls={'on' if cfg.mqtt.use_tls else 'OFF (LAB ONLY)'}")
    print("CSR       : /etc/ewarung/keys/device.csr.pem  (send it to the city CA; install the certificate with")
    print("            `ewarung provision --device-cert FILE`)")
    print(qr_text(cfg.device.id))
