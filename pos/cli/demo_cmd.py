"""`ewarung demo`: the appliance in demo mode.

Without options: the counter app (Kivy) with the field tester's panel (virtual card deck,
virtual printer's receipts), the sample city, no hardware. On a machine without a display it
starts a private Xvfb and says how to see the screen. `--scripted` runs one fixed sale and its
void, then two refused cards, at the headless counter of `ewarung sale` (pos.cli.sale_cmd), and
prints every step instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pos.cli.common import progress_to

if TYPE_CHECKING:  # pragma: no cover
    from pos.cli.sale_cmd import HeadlessCounter


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung demo` to the one command line (pos.cli.main lists the modules)."""
    p = subs.add_parser("demo", help="run the appliance in demo mode (sample city, no hardware)")
    p.add_argument("--data-dir", type=Path, help="where the demo keeps its data (default ~/.local/share/ewarung-demo)")
    p.add_argument("--scripted", action="store_true", help="run the scripted counter session and exit")
    p.add_argument("--language", choices=["id", "en"], default="id")
    p.add_argument("--size", default="800x480", choices=["800x480", "1024x600"], help="touchscreen size (default 800x480)")
    p.add_argument("--exit-after", type=float, metavar="SECONDS", help=argparse.SUPPRESS)
    p.set_defaults(func=_dispatch, counter_process=True)


def _dispatch(args: argparse.Namespace) -> int:
    if args.scripted:
        return _run(args)
    from pos.cli import counter_cmd

    args.demo = True
    args.fullscreen = False
    return counter_cmd.run(args)


def _step(n: int, text: str) -> None:
    print(f"\n[{n}] {text}")


def _run(args: argparse.Namespace) -> int:
    """One fixed sale and its void, then two refused cards, at the headless counter of `ewarung sale`
    (the same session, reader and printer as the touchscreen), printed step by step."""
    from firmware_config.config import demo_config, load_config
    from pos.cli.sale_cmd import open_counter
    from pos.clock import SystemClock
    from pos.period import WITA
    from pos.roots.cli import ensure_demo_data

    config = load_config(args.config) if args.config else demo_config(args.data_dir)
    if config.demo is None:
        print("ewarung demo: this configuration has no [demo] section; use a demo configuration")
        return 2
    clock = SystemClock()
    _step(1, f"Sample city in {config.data_dir}")
    with progress_to(config.demo.households, "sample city") as progress:
        created = ensure_demo_data(config, clock, progress=progress)
    print("    created now" if created else "    already there (delete the directory to start over)")
    counter = open_counter(config, demo=True, language=args.language, clock=clock)
    try:
        info = counter.parts.appliance.ledger.info()
        print(f"    ledger v{info.version}, issued {info.issued_at.astimezone(WITA):%d-%m-%Y %H:%M} WITA")
        return _script(counter, args.language)
    finally:
        counter.close()


def _script(counter: HeadlessCounter, language: str) -> int:
    from pos import journal
    from pos.cli.sale_cmd import SaleScript
    from pos.db import OutboxMessage
    from pos.money import format_rupiah
    from pos.receipt import build_receipt
    from pos.receipt_text import render_text

    app = counter.parts.appliance
    _step(2, "Cashier signs in: kasir1 with PIN 1234")
    script = SaleScript(items={"BERAS5": 1, "TELUR10": 2, "MINYAK1": 2}, card="representative",
                        collector="representative", void_reason="wrong_items", supervisor="spv1", supervisor_pin="9999")
    counter.sign_in(script)
    name = getattr(counter.parts.deck_control, "reader_name", "")
    print(f"    signed in: {counter.session.cashier_name}; card deck: "
          + (f"pcscd + vpcd ({name})" if name else "in process"))

    _step(3, "The representative's card goes in; PIN 1234 on the card; basket: "
          + ", ".join(f"{q} x {app.ledger.catalog()[c].name(language)}" for c, q in script.items.items()))
    sale = counter.sale(script)
    if not sale["ok"]:
        print(f"    REFUSED ({sale['refusal']}): {sale['message']}")
        return 1
    print(f"    household {sale['household']}, collected by {sale['collector']}")
    print(f"    committed durably: receipt no {sale['receipt_no']}, total {format_rupiah(sale['total'])}, "
          f"remaining {format_rupiah(sale['remaining'])}; card updated: {sale['card_updated']}")

    _step(4, "Receipt (text preview of what the printer printed)")
    receipt = build_receipt(sale["redemption_id"], device=counter.parts.config.identity(), signer=app.signer,
                            language=language)
    for line in render_text(receipt):
        print("    | " + line)

    _step(5, "Supervisor spv1 voids the sale (wrong items), a compensating record")
    print(f"    voided receipt no {sale.get('voided_receipt_no')}: {sale.get('void_notice')}")

    for n, role in ((6, "used_up"), (7, "revoked")):
        _step(n, f"The {role.replace('_', ' ')} household's card goes in")
        refused = counter.sale(SaleScript(items={"BERAS5": 1}, card=role))
        print(f"    REFUSED ({refused.get('refusal')}): {refused.get('message')}")

    _step(8, "Outbox: signed messages waiting for the city (`ewarung sync` sends them)")
    for msg in OutboxMessage.select().order_by(OutboxMessage.seq.desc()).limit(3):
        print(f"    seq {msg.seq:4d} {msg.kind:10s} {msg.state:9s} {msg.topic} ({len(msg.payload)} bytes, JWS ES256)")
    report = journal.verify()
    _step(9, f"Journal: {report.entries} entries, hash chain {'OK' if report.ok else 'BROKEN'}")
    return 0 if report.ok and sale.get("voided") else 1
