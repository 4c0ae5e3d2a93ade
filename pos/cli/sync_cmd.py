"""`ewarung sync`: run the store-and-forward daemon; `ewarung sync status`: what it is doing."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys

from pos.cli.common import config_from


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung sync` to the one command line (pos.cli.main lists the modules)."""
    p = subs.add_parser("sync", help="send redemptions to the city and receive ledger updates over MQTT",
                        description="Run the sync daemon (normally started by systemd as ewarung-sync.service).")
    p.add_argument("--once", action="store_true", help="connect, send everything queued, then exit")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--offline-limit", type=float, default=30, metavar="SECONDS",
                   help="with --once: give up (exit 1) when the broker stays out of reach this long (default 30)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every connection and ledger event")
    p.set_defaults(func=_run)
    inner = p.add_subparsers(dest="sync_command", metavar="ACTION")
    s = inner.add_parser("status", help="show queue depth, acknowledgements, ledger and connection state")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=_status)


def _run(args: argparse.Namespace) -> int:
    from pos.roots.sync import build_daemon

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s sync %(levelname)s %(message)s")
    config = config_from(args)
    if not config.mqtt.enabled:
        print("ewarung: mqtt.enabled = false in the configuration; nothing to do (set it to true to sync)")
        return 0
    daemon = build_daemon(config)

    def stop(*_):
        daemon.stop = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    gave_up = daemon.run(once=args.once, max_seconds=args.max_seconds, offline_limit_s=args.offline_limit)
    stats = daemon.drain.stats(daemon.clock.now())
    print(f"sync stopped: {stats['queued']} queued, {stats['published']} awaiting the city's ack, "
          f"{stats['acked']} acknowledged")
    if gave_up:
        print(f"ewarung sync --once: gave up: {gave_up}", file=sys.stderr)
        return 1
    return 0


def _status(args: argparse.Namespace) -> int:
    from sync.daemon import status_summary

    summary = status_summary(config_from(args))
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    s, o = summary["sync"], summary["outbox"]
    print(f"connection: {'online' if s.get('connected') else 'offline'}"
          + (f" ({s['last_error']})" if s.get("last_error") and not s.get("connected") else "")
          + (f", as of {s['at']}" if s.get("at") else " (the sync daemon has not run yet)"))
    print(f"outbox: {o['queued']} queued, {o['published']} sent but not yet acknowledged by the city, "
          f"{o['acked']} acknowledged; oldest unacknowledged {o['oldest_unacked_age_s']} s")
    print(f"ledger version: {s.get('ledger_version', '?')}")
    prog = s.get("snapshot_progress")
    if prog:
        print(f"receiving ledger snapshot {prog['version']}: {prog['received']}/{prog['total'] or '?'} chunks")
    print(f"last contact with the city: {summary['last_city_contact'] or 'never'}")
    return 0
