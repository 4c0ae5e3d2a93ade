"""`ewarung receipt verify TOKEN` and `ewarung receipt reprint REDEMPTION`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pos.cli.common import config_from, fail


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung receipt` to the one command line (pos.cli.main lists the modules)."""
    p = subs.add_parser("receipt", help="verify a receipt's QR code, or reprint a receipt")
    inner = p.add_subparsers(dest="receipt_command", metavar="ACTION", required=True)
    v = inner.add_parser(
        "verify",
        help="check the signed token in a receipt's QR code",
        description="Checks the QR code's token (JWS ES256, typ ewarung-receipt+jws) against the device "
        "public key (DATA_DIR/keys/device.pub.pem, or --key), and against this device's records if present.",
    )
    v.add_argument("token", help="the QR code's text (three base64url parts joined by dots)")
    v.add_argument("--key", type=Path, help="device public key (PEM); default DATA_DIR/keys/device.pub.pem")
    v.set_defaults(func=_verify)
    r = inner.add_parser("reprint", help="reprint a receipt from history (marked SALINAN if the original printed)")
    r.add_argument("redemption", help="redemption id, or the receipt number printed as 'No'")
    r.set_defaults(func=_reprint)


def _verify(args: argparse.Namespace) -> int:
    from pos.money import format_rupiah
    from pos.receipt import RECEIPT_TYP
    from pos.signing import BadSignature, jws_peek, jws_verify, load_public_key

    config = config_from(args)
    path = args.key or config.data_dir / "keys" / "device.pub.pem"
    try:
        key = load_public_key(path.read_bytes())
    except FileNotFoundError:
        return fail(f"device public key {path} not found; pass --key FILE (the device's .pub.pem)", 2)
    except ValueError as exc:
        return fail(f"{path} is not a P-256 public key in PEM: {exc}", 2)
    try:
        kid = jws_peek(args.token.strip())["kid"]
        if args.key is None and kid != config.device.id:
            raise BadSignature(f"signed by device {kid!r}, not this device ({config.device.id}); pass that device's key with --key")
        claims = jws_verify(args.token.strip(), {kid: key}, RECEIPT_TYP).json()
    except BadSignature as exc:
        print(f"INVALID receipt: {exc}")
        return 1
    print(f"VALID receipt signed by device {kid}")
    print(f"  redemption {claims.get('r')}\n  receipt no {claims.get('n')}\n  household {claims.get('h')}\n"
          f"  period {claims.get('p')}\n  total {format_rupiah(int(claims.get('t', 0)))}")
    if config.database_path.exists():
        from pos.db import Redemption, Void, open_database

        db = open_database(config.database_path)
        try:
            red = Redemption.get_or_none(Redemption.id == claims.get("r"))
            if red is None:
                print("  not in this device's database (another device, or a replaced one)")
            elif (red.receipt_no, red.total, red.household) != (claims.get("n"), claims.get("t"), claims.get("h")):
                print("  DOES NOT MATCH this device's record")
                return 1
            else:
                voided = Void.select().where(Void.redemption == red.id).exists()
                print("  matches this device's record" + (" (VOIDED later)" if voided else ""))
        finally:
            db.close()
    return 0


def _reprint(args: argparse.Namespace) -> int:
    from pos.db import Redemption
    from pos.roots.cli import build_appliance, print_service

    app = build_appliance(config_from(args))
    try:
        ref = args.redemption.strip()
        red = Redemption.get_or_none(Redemption.id == ref)
        if red is None and ref.isdigit():
            red = Redemption.get_or_none(Redemption.receipt_no == int(ref))
        if red is None:
            return fail(f"no redemption {ref!r} on this device; use the id or the receipt number (No) on the receipt")
        outcome = print_service(app).reprint(red.id)
        if outcome.ok:
            print(f"receipt No {red.receipt_no:06d} printed (job {outcome.job_id})")
            return 0
        return fail(f"not printed ({outcome.kind or outcome.state}): {outcome.message}")
    finally:
        app.close()
