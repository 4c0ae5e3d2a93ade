"""`ewarung printer ...`: the virtual printer, a test page, status, and printing what is waiting."""

from __future__ import annotations

import argparse
from pathlib import Path

from pos.cli.common import config_from, fail


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung printer` to the one command line (pos.cli.main lists the modules)."""
    p = subs.add_parser("printer", help="receipt printer: virtual printer, test page, status, pending jobs")
    inner = p.add_subparsers(dest="printer_command", metavar="ACTION", required=True)

    e = inner.add_parser(
        "emulate",
        help="run the virtual network printer on loopback (receipts become PNG files)",
        description="A virtual ESC/POS network printer on 127.0.0.1 for field testing without hardware. "
        "Every receipt is written to OUT as receipt-NNNN.png/.txt/.bin. Put it into a fault at any time "
        "with: echo paper_out > OUT/printer-state (ok | paper_out | paper_low | cover_open | offline).",
    )
    e.add_argument("--port", type=int, default=9100, help="TCP port (default 9100, like a real printer)")
    e.add_argument("--out", type=Path, default=Path("printed-receipts"), help="folder for the PNG receipts")
    e.add_argument("--width", type=int, choices=[58, 80], default=58, help="paper width in mm")
    fault = e.add_mutually_exclusive_group()
    fault.add_argument("--paper-out", action="store_true", help="start with no paper")
    fault.add_argument("--cover-open", action="store_true", help="start with the cover open")
    fault.add_argument("--offline", action="store_true", help="start silent (a printer that is off)")
    e.set_defaults(func=_emulate)

    t = inner.add_parser("test", help="print a test page on the configured printer")
    t.add_argument("--language", choices=["id", "en"])
    t.set_defaults(func=_test)

    s = inner.add_parser("status", help="ask the configured printer for its status (exit 1 on a fault)")
    s.set_defaults(func=_status)

    pp = inner.add_parser("print-pending", help="print receipts still waiting (after a printer fault was fixed)")
    pp.set_defaults(func=_print_pending)


def _emulate(args: argparse.Namespace) -> int:
    from hardware.printer.emulator import VirtualPrinter

    state = "paper_out" if args.paper_out else "cover_open" if args.cover_open else "offline" if args.offline else "ok"
    vp = VirtualPrinter(port=args.port, out_dir=args.out, width_mm=args.width, state=state)
    vp.on_printed = lambda rec: print(f"printed #{rec.number}: {rec.png} (job {rec.job_id or '-'})", flush=True)
    try:
        vp.start()
    except OSError as exc:
        return fail(f"cannot listen on 127.0.0.1:{args.port}: {exc}. Pick another --port or stop what uses it.")
    print(f"virtual printer on 127.0.0.1:{vp.port} ({args.width} mm, state {state}); receipts go to {vp.out_dir}", flush=True)
    print(f"faults: echo paper_out > {vp.state_file}   (ok | paper_out | paper_low | cover_open | offline)", flush=True)
    print("Ctrl-C to stop.", flush=True)
    import signal

    def interrupt(_sig, _frame):
        raise KeyboardInterrupt

    # Ctrl-C and `kill` both stop it cleanly, even when started with SIGINT ignored (a background job)
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        while True:
            vp._thread.join(1.0)  # type: ignore[union-attr]
    except KeyboardInterrupt:
        pass
    finally:
        vp.stop()
    return 0


def _describe(status) -> str:
    online = {True: "online", False: "OFFLINE", None: "unknown (this backend cannot report status)"}[status.online]
    cover = {True: ", cover OPEN", False: "", None: ""}[status.cover_open]
    return f"{online}, paper {status.paper}{cover}"


def _status(args: argparse.Namespace) -> int:
    from hardware.printer.backends import describe, fault_of
    from pos.printing import cashier_message
    from pos.roots.cli import printer

    config = config_from(args)
    st = printer(config).status()
    print(f"{describe(config.printer)}: {_describe(st)}")
    fault = fault_of(st)
    if fault:
        print(cashier_message(fault.kind, config.device.language))
        if fault.kind == "offline" and config.printer.kind in ("usb", "serial"):
            print("If `ewarung printer test` prints fine but status stays OFFLINE, this printer does not "
                  "answer status queries: set printer.status_query = false in the configuration.")
        return 1
    return 0


def _test(args: argparse.Namespace) -> int:
    import uuid

    from hardware.printer.backends import describe
    from pos.ports import PrinterFault
    from pos.printing import cashier_message
    from pos.roots.cli import printer as configured_printer

    config = config_from(args)
    language = args.language or config.device.language
    printer = configured_printer(config)
    try:
        printer.print_test_page(f"test-{uuid.uuid4().hex[:8]}", language=language, shop_name=config.device.shop_name)
    except PrinterFault as fault:
        return fail(f"{describe(config.printer)}: {fault}. {cashier_message(fault.kind, language)}")
    print(f"test page sent to {describe(config.printer)}")
    return 0


def _print_pending(args: argparse.Namespace) -> int:
    from pos.roots.cli import build_appliance, print_service

    app = build_appliance(config_from(args))
    try:
        svc = print_service(app)
        outcomes = svc.retry_unsent()
        if all(o.ok for o in outcomes):
            outcomes += svc.print_pending()
        for o in outcomes:
            print(f"job {o.job_id}: {o.state}{' (' + o.kind + ')' if o.kind else ''} {o.message}".rstrip())
        stuck = svc.stuck()
        for job in stuck:
            print(f"job {job.id} for redemption {job.redemption_id} may be partly printed: "
                  f"reprint it with `ewarung receipt reprint {job.redemption_id}`")
        if not outcomes and not stuck:
            print("nothing waiting to print")
        return 0 if all(o.ok for o in outcomes) else 1
    finally:
        app.close()
