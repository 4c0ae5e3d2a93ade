"""`ewarung card`: issue SSN card files, make the field testers' deck, insert/remove a virtual card.

The virtual card attaches to the real PC/SC stack through vsmartcard's vpcd driver (pcscd must
run with /etc/reader.conf.d/vpcd). `insert` holds the card in the reader while it runs (in the
foreground, or with --detach in the background with a pidfile in the run directory);
`remove` pulls it. SIGUSR1 makes the inserted card stop answering (a hung chip) until it is
pulled, so a counter's card-not-answering handling can be tried. Run directory:
$EWARUNG_RUN_DIR, else $XDG_RUNTIME_DIR/ewarung, else /tmp/ewarung-<uid>.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from datetime import date
from pathlib import Path

from pos.cli.common import fail


def run_dir() -> Path:
    """Where virtual card processes leave their pidfiles, so `ewarung card remove` finds them."""
    env = os.environ.get("EWARUNG_RUN_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return Path(xdg) / "ewarung" if xdg else Path(f"/tmp/ewarung-{os.getuid()}")


def pidfile(slot: int) -> Path:
    """The pidfile of the virtual card in vpcd slot `slot` (one card per slot)."""
    from hardware.card.vpcd import pidfile as in_run_dir

    return in_run_dir(run_dir(), slot)


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung card` to the one command line (pos.cli.main lists the modules)."""
    p = subs.add_parser("card", help="SSN smart cards: issue card files, tester deck, virtual card on vpcd")
    cs = p.add_subparsers(dest="card_command", metavar="ACTION", title="actions")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    i = cs.add_parser("issue", help="personalize a card file signed by the issuer key")
    i.add_argument("out", type=Path, help="card file to write (JSON)")
    i.add_argument("--household", required=True, help="household id, e.g. SSN-6472-0000001")
    i.add_argument("--card-id", help="card id (default CARD-<household>)")
    i.add_argument("--pin", default="123456", help="cardholder PIN, 4-12 digits (default 123456)")
    i.add_argument("--tries", type=int, default=3, help="PIN tries before the card blocks (default 3)")
    i.add_argument("--valid-from", type=date.fromisoformat, help="YYYY-MM-DD (default 1 January this year)")
    i.add_argument("--valid-until", type=date.fromisoformat, help="YYYY-MM-DD (default end of next year)")
    i.add_argument("--issuer-key", type=Path, help="issuer private key PEM (default: the sample city's DEMO issuer)")
    i.set_defaults(func=_issue)

    d = cs.add_parser("deck", help="make the field testers' card deck from the sample city")
    d.add_argument("dir", type=Path)
    d.add_argument("--issuer-key", type=Path, help="issuer private key PEM (default: the DEMO issuer)")
    d.set_defaults(func=_deck)

    ins = cs.add_parser(
        "insert", help="insert a virtual card into vpcd's reader (pcscd must be running)",
        description="Insert a virtual card into vpcd's reader; it stays in the reader while this runs (Ctrl-C, "
                    "SIGTERM or `ewarung card remove` pulls it).",
        epilog="Signals: SIGUSR1 makes the card stop answering from its next command on, like a chip that hung in "
               "the reader, until it is pulled: `kill -USR1 PID` (a --detach card's PID is in virtual-card-slotN.pid "
               "in the run directory: $EWARUNG_RUN_DIR, else $XDG_RUNTIME_DIR/ewarung, else /tmp/ewarung-UID). The "
               "counter's reader gives up on the card after its transmit timeout (5 s by default) and shows \"card "
               "stopped answering\". The demo's field tester panel does the same with its \"Kartu macet\" button.")
    ins.add_argument("cardfile", type=Path)
    ins.add_argument("--reader", type=int, default=0, choices=[0, 1], help="vpcd slot (0: port 35963, 1: 35964)")
    ins.add_argument("--host", default="127.0.0.1", help="where vpcd listens (default 127.0.0.1)")
    ins.add_argument("--detach", action="store_true", help="run in the background; `ewarung card remove` pulls it")
    ins.add_argument("--pull-at-apdu", type=int, metavar="N", help="testing: pull the card when APDU N arrives")
    ins.add_argument("--pull-after-apdu", type=int, metavar="N",
                     help="testing: process APDU N, then pull the card before answering")
    ins.add_argument("--stall-at-apdu", type=int, metavar="N",
                     help="testing: never answer APDU N (a hung chip), until the card is removed")
    ins.add_argument("--quiet", action="store_true")
    ins.set_defaults(func=_insert)

    r = cs.add_parser("remove", help="pull the virtual card inserted with `ewarung card insert`")
    r.add_argument("--reader", type=int, default=0, choices=[0, 1])
    r.set_defaults(func=_remove)

    n = cs.add_parser("info", help="show what a card file holds and whether its certificate verifies")
    n.add_argument("cardfile", type=Path)
    n.set_defaults(func=_info)


def _issuer(path: Path | None):
    from pos.sample_city import demo_key
    from pos.signing import load_private_key

    if path is None:
        return demo_key("issuer")
    try:
        return load_private_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SystemExit(fail(f"cannot load the issuer key {path}: {exc}", 2)) from None


def _issue(args: argparse.Namespace) -> int:
    from hardware.card.cardfile import CardFileError
    from hardware.card.issuing import IssueRequest, issue

    today = date.today()
    req = IssueRequest(
        card_id=args.card_id or f"CARD-{args.household}",
        household_id=args.household,
        valid_from=args.valid_from or date(today.year, 1, 1),
        valid_until=args.valid_until or date(today.year + 1, 12, 31),
        pin=args.pin,
        pin_tries=args.tries,
    )
    try:
        issue(args.out, req, _issuer(args.issuer_key))
    except (CardFileError, ValueError) as exc:
        return fail(f"{exc}; nothing written", 2)
    except OSError as exc:
        return fail(f"cannot write {args.out}: {exc.strerror}; nothing written", 2)
    print(f"issued {req.card_id} for {req.household_id} -> {args.out} (PIN {'*' * len(req.pin)}, {req.pin_tries} tries)")
    return 0


def _deck(args: argparse.Namespace) -> int:
    from hardware.card.issuing import make_deck
    from pos.clock import SystemClock
    from pos.period import WITA, Period

    now = SystemClock().now()
    paths = make_deck(args.dir, _issuer(args.issuer_key), now.astimezone(WITA).date(), str(Period.of(now)))
    for role, path in paths.items():
        print(f"{role:15} {path}")
    print(f"see {args.dir / 'README.md'} for what each card must do (every PIN is 123456)")
    return 0


def _insert(args: argparse.Namespace) -> int:
    from hardware.card.applet import Applet
    from hardware.card.cardfile import CardFile, CardFileError
    from hardware.card.vpcd import VirtualCard

    try:
        card = CardFile.load(args.cardfile)
    except CardFileError as exc:
        return fail(str(exc), 2)
    pid_path = pidfile(args.reader)
    if args.detach:
        return _detach(args, pid_path)
    log = (lambda s: None) if args.quiet else (lambda s: print(f"virtual card: {s}", file=sys.stderr, flush=True))
    vc = VirtualCard(Applet(card), host=args.host, slot=args.reader, pull_at_apdu=args.pull_at_apdu,
                     pull_after_apdu=args.pull_after_apdu, stall_at_apdu=args.stall_at_apdu, log=log)

    def on_term(signum, frame):
        vc.stop()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGUSR1, lambda signum, frame: vc.stop_answering())  # before the pidfile says we are in
    pid_path.parent.mkdir(parents=True, exist_ok=True)

    def connected() -> None:
        tmp = pid_path.with_suffix(".tmp")
        tmp.write_text(str(os.getpid()))
        os.replace(tmp, pid_path)

    try:
        vc.serve_forever(on_connected=connected)
    finally:
        if pid_path.exists() and pid_path.read_text().strip() == str(os.getpid()):
            pid_path.unlink()
    return 0


def _detach(args: argparse.Namespace, pid_path: Path) -> int:
    import subprocess

    if pid_path.exists():
        return fail(f"a virtual card is already in reader {args.reader}; run `ewarung card remove --reader {args.reader}`")
    argv = [sys.executable, "-m", "pos.cli.main", "card", "insert", str(args.cardfile), "--reader", str(args.reader),
            "--host", args.host, "--quiet"]
    for flag in ("pull_at_apdu", "pull_after_apdu", "stall_at_apdu"):  # the fault injection goes along
        if getattr(args, flag) is not None:
            argv += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    # no inherited stdout/stderr: a caller capturing this command's output would wait for the card to end
    proc = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pid_path.exists() and pid_path.read_text().strip() == str(proc.pid):
            print(f"card inserted in reader {args.reader} (pid {proc.pid}); `ewarung card remove` pulls it")
            return 0
        if proc.poll() is not None:
            return fail("the virtual card stopped; run it without --detach to see why")
        time.sleep(0.05)
    proc.terminate()
    return fail("vpcd did not accept the card within 10 s: is pcscd running with vsmartcard-vpcd? "
                "(`systemctl start pcscd` or `pcscd -f`)")


def _remove(args: argparse.Namespace) -> int:
    pid_path = pidfile(args.reader)
    try:
        pid = int(pid_path.read_text().strip())
    except (OSError, ValueError):
        return fail(f"no virtual card in reader {args.reader} (no {pid_path})")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_path.unlink(missing_ok=True)
        return fail(f"the virtual card process {pid} was already gone; cleaned up {pid_path}")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pid_path.exists():
        time.sleep(0.02)
    print(f"card removed from reader {args.reader}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from hardware.card import certificate
    from hardware.card.cardfile import CardFile, CardFileError
    from pos.cli.common import config_from
    from pos.roots.cli import issuer_public_keys

    try:
        card = CardFile.load(args.cardfile)
        parsed = certificate.parse(bytes.fromhex(card.memory.certificate_hex))
    except (CardFileError, ValueError) as exc:
        return fail(str(exc), 2)
    c, m = parsed.info, card.memory
    keys = issuer_public_keys(config_from(args), installed_only=True)
    issuer = keys.get(c.issuer_key_id)
    verdict = "unknown issuer key" if issuer is None else ("valid" if certificate.verify(parsed, issuer) else "INVALID")
    print(f"card id       {c.card_id}\nhousehold     {c.household_id}\nvalid         {c.valid_from} .. {c.valid_until}")
    print(f"issuer key    {c.issuer_key_id} (signature {verdict})")
    print(f"PIN tries     {m.pin_tries_left} of {m.pin_tries_max}")
    print(f"spend record  period {m.spend_period or '-'}, spent {m.spent}, transaction counter {m.counter}")
    return 0
