"""`ewarung demo`: the appliance in demo mode.

Without options: the counter app (Kivy) with the field tester's panel (virtual card deck,
virtual printer's receipts), the sample city, no hardware. On a machine without a display it
starts a private Xvfb and says how to see the screen. `--scripted` runs a scripted counter
session against the sample city and prints every step instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pos.cli.common import progress_to


def register(subs: argparse._SubParsersAction) -> None:
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
    from firmware_config.config import demo_config, load_config
    from pos import cashiers, journal
    from pos.appliance import build_appliance, ensure_demo_data
    from pos.clock import SystemClock
    from pos.entitlement import assess
    from pos.money import format_rupiah
    from pos.period import WITA, Period
    from pos.receipt import build_receipt
    from pos.receipt_text import render_text
    from pos.redemption import Collector, RedemptionRequest
    from pos.refusals import Refusal
    from pos.sample_city import NOTABLE, household_id

    config = load_config(args.config) if args.config else demo_config(args.data_dir)
    if config.demo is None:
        print("ewarung demo: this configuration has no [demo] section; use a demo configuration")
        return 2
    clock = SystemClock()
    _step(1, f"Sample city in {config.data_dir}")
    with progress_to(config.demo.households, "sample city") as progress:
        created = ensure_demo_data(config, clock, progress=progress)
    print("    created now" if created else "    already there (delete the directory to start over)")
    app = build_appliance(config, clock)
    info = app.ledger.info()
    print(f"    ledger v{info.version}, issued {info.issued_at.astimezone(WITA):%d-%m-%Y %H:%M} WITA")

    _step(2, "Cashier signs in: kasir1 with PIN 1234")
    cashier = cashiers.authenticate("kasir1", "1234")
    print(f"    signed in: {cashier.name} ({cashier.role})")

    roles = {role: household_id(i) for i, role in NOTABLE.items()}
    now = clock.now()
    period = Period.of(now)
    today = now.astimezone(WITA).date()
    hid = roles["representative"]
    _step(3, f"Household {hid} comes to the counter (card reading arrives with the SSN card issue)")
    ent = assess(app.ledger, hid, period, today)
    h = ent.household
    print(f"    {h.name}, {h.area}; plan {ent.plan.name}")
    print(f"    period {period}: allowance {format_rupiah(ent.allowance)}, spent {format_rupiah(ent.spent)}, "
          f"remaining {format_rupiah(ent.remaining)}")
    rep = h.representatives[0]
    print(f"    collected by registered representative {rep.name} ({rep.relation})")

    basket = {"BERAS5": 1, "TELUR10": 2, "MINYAK1": 2}
    _step(4, "Basket: " + ", ".join(f"{q} x {app.ledger.catalog()[c].name(args.language)}" for c, q in basket.items()))
    result = app.redemptions.redeem(
        RedemptionRequest(hid, cashier.id, basket, card_id=f"CARD-{hid}", collector=Collector("representative", rep.id))
    )
    print(f"    committed durably: receipt no {result.receipt_no}, total {format_rupiah(result.total)}, "
          f"remaining {format_rupiah(result.remaining_after)}")

    _step(5, "Receipt (text preview; the thermal printer arrives with the receipts issue)")
    receipt = build_receipt(result.redemption_id, device=config.identity(), signer=app.signer, language=args.language)
    for line in render_text(receipt):
        print("    | " + line)

    _step(6, f"Household {roles['used_up']} has used up this month's allowance")
    try:
        assess(app.ledger, roles["used_up"], period, today)
    except Refusal as exc:
        print(f"    REFUSED ({exc.reason.value}): {exc.message(args.language)}")
    _step(7, f"Household {roles['revoked']} was revoked by the city")
    try:
        assess(app.ledger, roles["revoked"], period, today)
    except Refusal as exc:
        print(f"    REFUSED ({exc.reason.value}): {exc.message(args.language)}")

    _step(8, "Supervisor voids the sale (wrong items), a compensating record")
    cashiers.authenticate("spv1", "9999", supervisor=True)
    void = app.redemptions.void(result.redemption_id, "salah barang", cashier.id, "spv1")
    after = assess(app.ledger, hid, period, today)
    print(f"    void no {void.seq}; remaining is back to {format_rupiah(after.remaining)}")

    from pos.db import OutboxMessage

    _step(9, "Outbox: signed messages waiting for the city (the sync daemon arrives with the sync issue)")
    for msg in OutboxMessage.select().order_by(OutboxMessage.seq.desc()).limit(3):
        print(f"    seq {msg.seq:4d} {msg.kind:10s} {msg.state:9s} {msg.topic} ({len(msg.payload)} bytes, JWS ES256)")
    report = journal.verify()
    _step(10, f"Journal: {report.entries} entries, hash chain {'OK' if report.ok else 'BROKEN'}")
    app.close()
    return 0 if report.ok else 1
