"""Card tap benchmark: pcscd's card-present event -> authenticated decision, through pcscd + vpcd.

Per tap: the virtual card connects to vpcd; our PC/SC monitor sees pcscd report the card
(t0: the "inserted" event on the monitor thread); then open a session, SELECT, read the
certificate and verify it, internal authenticate with a fresh challenge (spend record inside),
and decide (certificate dates, hotlist, ledger lookup, entitlement): t1. vpcd's own
insertion poll happens before t0 and is excluded (DESIGN.md). Baseline in the same run: one
APDU round trip (GET DATA state) through pcscd + vpcd.

    python -m bench.bench_card            # 200 taps (minutes: vpcd polls insert and removal)
"""

from __future__ import annotations

import json
import queue
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def _pct(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run(quick: bool = False) -> list[dict]:
    """The card tap rows against their budget, with the one-APDU
    round trip as baseline (pcscd and vpcd must be installed)."""
    sys.path.insert(0, str(ROOT))
    from hardware.card import apdu
    from hardware.card.applet import Applet
    from hardware.card.cardfile import CardFile
    from hardware.card.certificate import key_id
    from hardware.card.issuing import make_deck
    from hardware.card.pcsc_reader import PcscReader
    from hardware.card.vpcd import VirtualCard
    from pos.card_decision import decide
    from pos.db import open_database
    from pos.ledger import Ledger
    from pos.period import WITA, Period
    from pos.sample_city import build_sample_city, demo_key
    from tests.integration.pcsc_stack import PcscStack, wait_for

    taps = 10 if quick else 200
    round_trips = 100 if quick else 2000
    now = datetime.now(UTC)
    today, period = now.astimezone(WITA).date(), Period.of(now)
    tmp = Path(tempfile.mkdtemp(prefix="bench-card-"))
    db = open_database(tmp / "ewarung.db")
    build_sample_city(db, households=2000, now=now)
    ledger = Ledger()
    issuer = demo_key("issuer")
    keys = {key_id(issuer.public_key()): issuer.public_key()}
    deck = make_deck(tmp / "deck", issuer, today, str(period))

    stack = PcscStack()
    stack.run_dir = tmp
    stack.start()
    stack.wait_card_state(present=False)
    reader = PcscReader(keys, name="Virtual PCD 00 00", poll_ms=100, allow_virtual=True)
    events: queue.Queue = queue.Queue()
    reader.subscribe(lambda ev: events.put((ev.kind, time.perf_counter())))
    reader.start()
    applet = Applet(CardFile.load(deck["holder"]))
    latencies: list[float] = []
    try:
        for i in range(taps):
            vc = VirtualCard(applet)
            t = threading.Thread(target=vc.serve_forever, daemon=True)
            t.start()
            while True:
                kind, t0 = events.get(timeout=15)
                if kind == "inserted":
                    break
            session = reader.open_session()
            card = session.authenticate()
            ent = decide(card, ledger, period, today)
            t1 = time.perf_counter()
            latencies.append((t1 - t0) * 1000)
            if i == 0:
                # baseline: one APDU round trip through pcscd + vpcd (same session, same run)
                rtt: list[float] = []
                cmd = apdu.get_state()
                for _ in range(round_trips):
                    a = time.perf_counter()
                    session._transmit(cmd)
                    rtt.append((time.perf_counter() - a) * 1000)
            session.close()
            assert ent.remaining > 0
            vc.stop()
            t.join(timeout=5)
            while True:
                kind, _ = events.get(timeout=15)
                if kind == "removed":
                    break
            if not quick and i % 20 == 0:
                print(f"  tap {i + 1}/{taps}: {latencies[-1]:.1f} ms", file=sys.stderr)
        wait_for(lambda: True, 1, "")
    finally:
        reader.stop()
        stack.shutdown()
        db.close()
    p50, p99 = _pct(latencies, 50), _pct(latencies, 99)
    base = _pct(rtt, 50)
    return [
        {"name": "card tap: pcscd card-present -> authenticated decision", "p50": round(p50, 2),
         "p99": round(p99, 2), "value": None, "unit": "ms", "budget": "p99 <= 100 ms",
         "baseline": round(base, 3), "baseline_name": "one APDU round trip through pcscd+vpcd (p50)",
         "ok": p99 <= 100, "notes": f"{taps} taps; select, certificate verify, internal authenticate (ECDSA P-256), "
         f"card decision with ledger lookup (2,000 households); vpcd insertion poll excluded; "
         f"APDU round trip p99 {_pct(rtt, 99):.3f} ms over {round_trips}"},
    ]


def main() -> None:
    """`python -m bench.bench_card`: print the rows and write bench/results/card.json."""
    rows = run(quick="--quick" in sys.argv)
    for r in rows:
        print(json.dumps(r))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "card.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
