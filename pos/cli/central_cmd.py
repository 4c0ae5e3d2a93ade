"""`ewarung central ...`: the city's reference consumer, ledger publisher, reconciliation, registry.

No paho import at module level (the MQTT client loads inside `serve`)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path

from pos.cli import broker_tls, central_policy_cmd, central_quarantine_cmd, fleet_account_cmd
from pos.cli.common import fail

DEFAULT_DB = "central.db"


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung central` to the one command line (pos.cli.main lists the modules)."""
    p = subs.add_parser("central", help="the city's side: consume device messages, publish ledgers, reconcile")
    p.add_argument("--db", default=os.environ.get("EWARUNG_CENTRAL_DB", DEFAULT_DB), metavar="PATH|URL",
                   help="central database: a SQLite file or a URL such as postgresql://user@host:5432/ewarung "
                        "(default $EWARUNG_CENTRAL_DB or ./central.db)")
    inner = p.add_subparsers(dest="central_command", metavar="ACTION", required=True)

    s = inner.add_parser("serve", help="consume devices' messages from the broker, store, acknowledge; serve the fleet page")
    s.add_argument("--broker", default="127.0.0.1:1883", metavar="HOST:PORT", help="MQTT 5 broker (default 127.0.0.1:1883)")
    s.add_argument("--group", default="ewarung-central",
                   help="shared-subscription group; instances in one group split the load ('' = plain subscriptions)")
    s.add_argument("--client-id", default=None, help="MQTT client id (default central-<hostname>-<pid>); keep it stable across restarts")
    s.add_argument("--key", metavar="PEM", help="central private key that signs acks (default: the DEMO central key)")
    s.add_argument("--ledger-key", metavar="PEM", help="ledger private key that signs the snapshots built for devices "
                   "that ask (default: the DEMO ledger key)")
    s.add_argument("--issuer-key", action="append", metavar="PUB.pem", dest="issuer_keys",
                   help="a card issuer's public key; the card sales it certified are believed (repeat for several "
                        "issuers; default: the DEMO issuer, with a warning)")
    s.add_argument("--username"), s.add_argument("--password-file", metavar="FILE")
    broker_tls.add_arguments(s)
    s.add_argument("--http", default="127.0.0.1:8470", metavar="HOST:PORT",
                   help="fleet page address (default loopback 127.0.0.1:8470; 'off' to disable)")
    s.add_argument("--batch", type=int, default=2000, help="messages stored per transaction (default 2000)")
    s.add_argument("--city", default="samarinda", help="city whose snapshot answers devices' requests")
    s.add_argument("--gap-retry", type=float, default=30.0, metavar="SECONDS", help="ask again for missing messages after this long")
    s.set_defaults(func=_serve)

    pl = inner.add_parser("publish-ledger", help="validate the beneficiary list CSV and publish a signed ledger update")
    pl.add_argument("csv", nargs="?", type=Path, help="beneficiary list: household_id,name,area,plan,status,valid_from,valid_until,representatives")
    pl.add_argument("--kind", choices=["snapshot", "delta", "hotlist"], default="snapshot")
    pl.add_argument("--hotlist", type=Path, metavar="CSV", help="cards to block: card_id,reason")
    pl.add_argument("--skip-bad-rows", action="store_true", help="publish the good rows even if some rows are bad (they are listed)")
    pl.add_argument("--city", default="samarinda")
    pl.add_argument("--key", metavar="PEM", help="ledger private key (default: the DEMO ledger key)")
    pl.add_argument("--valid-days", type=int, default=30, help="days until the update expires on devices")
    pl.add_argument("--broker", metavar="HOST:PORT",
                    help="also publish it (QoS 1; deltas and hotlists retained) to this broker; "
                         "a running `central serve` also answers devices' snapshot requests")
    pl.add_argument("--out", type=Path, metavar="FILE", help="also write the signed update to FILE")
    broker_tls.add_arguments(pl)
    pl.add_argument("--plans", type=Path, metavar="FILE",
                    help="the programme's plans (allowance, rollover, quotas) from FILE.json or FILE.csv, and the "
                         "catalog too if the JSON has \"catalog\"; default: the sample city's (docs/central.md)")
    pl.add_argument("--catalog", type=Path, metavar="FILE",
                    help="eligible items (code,name_id,name_en,unit,price) from FILE.json or FILE.csv")
    pl.add_argument("--chunk-rows", type=int, default=20_000, metavar="N",
                    help="rows per snapshot chunk (default 20000; smaller chunks suit slow links)")
    pl.set_defaults(func=_publish)

    h = inner.add_parser("hotlist", help="blocked cards: list them, block cards, lift a block (un-revoke a card)",
                         description="The hotlist blocks cards (by card id) on every device at once. A household "
                                     "is revoked or restored by the status column of the beneficiary list instead "
                                     "(publish-ledger --kind delta).")
    hsub = h.add_subparsers(dest="hotlist_command", metavar="ACTION", required=True)
    hl = hsub.add_parser("list", help="the cards on the hotlist, with reason, date and hotlist serial")
    hl.set_defaults(func=_hotlist_list)
    ha = hsub.add_parser("add", help="block cards: publish a signed hotlist update adding them")
    ha.add_argument("card_ids", nargs="+", metavar="CARD_ID", help="card id(s) to block, e.g. CARD-SSN-6472-0000001")
    ha.add_argument("--reason", required=True, help="why, e.g. lost, stolen, replaced (shown to the city, kept on devices)")
    hr = hsub.add_parser("remove", help="lift the block on cards (un-revoke): publish a signed hotlist update removing them",
                         description="Take cards off the hotlist: a signed hotlist update (next serial) tells every "
                                     "device to accept them again. Only cards on the hotlist can be removed; "
                                     "nothing is published if any given card is not on it.")
    hr.add_argument("card_ids", nargs="+", metavar="CARD_ID", help="card id(s) to take off the hotlist")
    for sp in (ha, hr):
        sp.add_argument("--city", default="samarinda")
        sp.add_argument("--key", metavar="PEM", help="ledger private key (default: the DEMO ledger key)")
        sp.add_argument("--valid-days", type=int, default=30, help="days until the update expires on devices")
        sp.add_argument("--broker", metavar="HOST:PORT", help="also publish it (QoS 1, retained) to this broker")
        sp.add_argument("--out", type=Path, metavar="FILE", help="also write the signed update to FILE")
        broker_tls.add_arguments(sp)
        sp.set_defaults(func=_hotlist_change)

    r = inner.add_parser("report", help="reconciliation: overspend across devices, voids, data problems, gaps, offline devices")
    r.add_argument("--period", help="only this period (YYYY-MM)")
    r.add_argument("--csv", dest="csv_out", metavar="FILE", help="write CSV to FILE ('-' for stdout) instead of the table")
    r.add_argument("--offline-hours", type=float, default=24.0, help="device counts as long offline after this (default 24)")
    r.add_argument("--queue", type=int, default=100, help="queue depth that counts as big (default 100)")
    r.add_argument("--stale-versions", type=int, default=1, help="ledger versions behind that count as stale (default 1)")
    r.set_defaults(func=_report)

    fleet_account_cmd.register(inner, _open)
    central_policy_cmd.register(inner, _open)
    central_quarantine_cmd.register(inner, _open)
    d = inner.add_parser("device", help="device registry: which devices may send, with which key")
    dsub = d.add_subparsers(dest="device_command", metavar="ACTION", required=True)
    da = dsub.add_parser("add", help="register a device and its public key")
    da.add_argument("device_id"), da.add_argument("--key", required=True, type=Path, metavar="PUB.pem")
    da.add_argument("--shop", default=""), da.add_argument("--replace", action="store_true", help="replace the key of a known device")
    da.set_defaults(func=_device_add)
    dl = dsub.add_parser("list", help="registered devices")
    dl.set_defaults(func=_device_list)
    dr = dsub.add_parser("retire", help="stop accepting new messages from a device")
    dr.add_argument("device_id")
    dr.set_defaults(func=_device_retire)


def _open(args):
    from sync.central.store import open_central

    try:
        return open_central(args.db)
    except Exception as exc:  # peewee/psycopg errors vary by backend; say which database
        raise SystemExit(f"ewarung: cannot open the central database {args.db}: {exc}") from None


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"ewarung: {text!r} is not HOST:PORT")
    return host, int(port)


def _serve(args) -> int:
    import logging
    import signal
    import socket
    import threading

    from pos.roots.central import consumer_runner
    from sync.central.fleet import FleetServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    _open(args)
    host, port = _hostport(args.broker)
    tls = broker_tls.tls_options(args, host)
    password = Path(args.password_file).read_text().strip() if args.password_file else None
    client_id = args.client_id or f"central-{socket.gethostname()}-{os.getpid()}"

    def on_batch(out) -> None:
        logging.info("stored %d, duplicates %d, rejected %d, status %d, resend requests %d",
                     out.stored, out.duplicates, out.rejected, out.status_updates, len(out.resends))

    runner = consumer_runner(args.key, host, port, client_id=client_id, group=args.group or None, batch_max=args.batch,
                        gap_retry=timedelta(seconds=args.gap_retry), on_batch=on_batch, tls=tls,
                        username=args.username, password=password, city=args.city,
                        ledger_key=args.ledger_key, issuer_key_files=args.issuer_keys)
    fleet = None
    if args.http != "off":
        fhost, fport = _hostport(args.http)
        fleet = FleetServer(fhost, fport).start()
        print(f"fleet page: http://{fhost}:{fleet.port}/", flush=True)
    runner.start()
    print(f"central consumer {client_id} on {host}:{port} (group {args.group or '-'}); Ctrl-C to stop", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    runner.stop()
    if fleet:
        fleet.stop()
    print(f"stopped: stored {runner.totals.stored}, duplicates {runner.totals.duplicates}, rejected {runner.totals.rejected}")
    return 0


def _publish(args) -> int:
    from pos.clock import SystemClock
    from pos.roots.central import signer
    from sync.central.ledger_publish import publish_ledger, read_hotlist_csv
    from sync.central.programme import load_programme

    _open(args)
    if args.chunk_rows < 1:
        raise SystemExit("ewarung: --chunk-rows must be at least 1")
    if args.kind != "hotlist" and args.csv is None:
        raise SystemExit("ewarung: give the beneficiary list CSV (see `ewarung central publish-ledger --help`)")
    if args.kind == "hotlist" and (args.plans or args.catalog):
        raise SystemExit("ewarung: a hotlist update carries no plans or catalog; drop --plans/--catalog")
    try:
        programme = load_programme(args.plans, args.catalog)
        hotlist = read_hotlist_csv(args.hotlist) if args.hotlist else []
        result = publish_ledger(args.csv, signer=signer(args.key, "ledger"), city=args.city, now=SystemClock().now(),
                                kind=args.kind, skip_bad_rows=args.skip_bad_rows, hotlist=hotlist,
                                valid_days=args.valid_days, chunk_rows=args.chunk_rows, programme=programme)
    except (ValueError, OSError) as exc:  # CsvRejected is a ValueError
        return fail(str(exc))
    if result.skipped:
        print(f"skipped {result.skipped} bad row(s) (listed above with --skip-bad-rows)", file=sys.stderr)
    return _emit(args, result)


def _emit(args, result) -> int:
    """Write (--out) and publish (--broker) a signed update, then say what it is."""
    if args.out:
        args.out.write_bytes(b"\n".join(result.tokens) + b"\n")
    if args.broker:
        from sync.central.publish import publish_retained

        publish_retained(args.broker, args.city, result, broker_tls.tls_options(args, _hostport(args.broker)[0]))
    what = (f"hotlist serial {result.version}:" if result.kind == "hotlist"
            else f"ledger v{result.version} ({result.kind}): {result.households} household rows,")
    print(f"{what} {len(result.tokens)} token(s), {result.size:,} bytes, sha256 {result.sha256[:16]}")
    return 0


def _hotlist_list(args) -> int:
    from sync.central.ledger_publish import hotlist_cards

    _open(args)
    cards = hotlist_cards()
    if not cards:
        print("the hotlist is empty")
    for c in cards:
        print(f"{c.card_id:<32} {c.listed_at:<26} serial {c.version:<5} {c.reason}")
    return 0


def _hotlist_change(args) -> int:
    from pos.clock import SystemClock
    from pos.roots.central import signer
    from sync.central.ledger_publish import publish_ledger

    _open(args)
    adding = args.hotlist_command == "add"
    if adding and not args.reason.strip():
        return fail("--reason must not be empty")
    try:
        result = publish_ledger(None, signer=signer(args.key, "ledger"), city=args.city, now=SystemClock().now(),
                                kind="hotlist", valid_days=args.valid_days,
                                hotlist=[(c, args.reason.strip()) for c in args.card_ids] if adding else [],
                                unlist=[] if adding else args.card_ids)
    except (ValueError, OSError) as exc:
        return fail(str(exc))
    print(f"{'blocked' if adding else 'unblocked'}: {', '.join(dict.fromkeys(args.card_ids))}")
    return _emit(args, result)


def _report(args) -> int:
    from pos.clock import SystemClock
    from sync.central.report import reconcile, to_csv, to_table

    _open(args)
    now = SystemClock().now()
    findings = reconcile(now=now, period=args.period, offline_after=timedelta(hours=args.offline_hours),
                         queue_threshold=args.queue, stale_versions=args.stale_versions)
    if args.csv_out:
        text = to_csv(findings)
        if args.csv_out == "-":
            sys.stdout.write(text)
        else:
            Path(args.csv_out).write_text(text, encoding="utf-8")
            print(f"{len(findings)} finding(s) written to {args.csv_out}")
    else:
        print(to_table(findings, now))
    return 1 if any(f.severity == "critical" for f in findings) else 0


def _device_add(args) -> int:
    from pos.clock import SystemClock
    from sync.central.registry import add_device

    _open(args)
    try:
        pem = args.key.read_bytes()
        add_device(args.device_id, pem, shop_id=args.shop, now=SystemClock().now(), replace=args.replace)
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    print(f"device {args.device_id} registered")
    return 0


def _device_list(args) -> int:
    from sync.central.registry import list_devices

    _open(args)
    rows = list_devices()
    if not rows:
        print("no devices registered; add one with `ewarung central device add ID --key PUB.pem`")
    for d in rows:
        print(f"{d.id:<20} {d.shop_id:<14} {d.status:<8} since {d.added_at}")
    return 0


def _device_retire(args) -> int:
    from sync.central.registry import set_status

    _open(args)
    try:
        set_status(args.device_id, "retired")
    except ValueError as exc:
        return fail(str(exc))
    print(f"device {args.device_id} retired: its new messages are refused")
    return 0
