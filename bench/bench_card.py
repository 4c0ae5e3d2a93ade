"""Card tap benchmark: pcscd's card-present event -> authenticated decision, through pcscd + vpcd.

Per tap, what the counter's session does at an insertion (pos/session/visit.py): the virtual card
connects to vpcd; our PC/SC monitor sees pcscd report the card (t0: the "inserted" event on the
monitor thread); then open a session, SELECT, read the certificate and verify it, internal
authenticate with a fresh challenge (spend record inside), read the card's last transaction
signed over a fresh challenge and settle it (pos.sale_order.settle_last_charge: here the card's
last sale at this device, committed, so nothing to report), and decide (device caps, certificate
dates, hotlist, ledger lookup, entitlement): t1. vpcd's own insertion poll happens before t0 and
is excluded (DESIGN.md). Baseline in the same run: one APDU round trip (GET DATA state) through
pcscd + vpcd.

    python -m bench.bench_card            # 200 taps (minutes: vpcd polls insert and removal)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def _pct(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _counter(tmp: Path, now: datetime):
    """The device's database (sample city, 2,000 households) and its redemption service."""
    from pos.clock import SystemClock
    from pos.db import open_database
    from pos.device import DeviceIdentity
    from pos.ledger import Ledger
    from pos.policy import Policy
    from pos.redemption import RedemptionService
    from pos.sample_city import build_sample_city, demo_key
    from pos.signing import EcdsaSigner

    db = open_database(tmp / "ewarung.db")
    build_sample_city(db, households=2000, now=now)
    device = DeviceIdentity("EW-BENCH-0001", "SMD-BENCH", "E-Warung Bench", "Jl. Bench 1")
    return db, RedemptionService(db, Ledger(), device, EcdsaSigner(demo_key("device"), device.device_id),
                                 SystemClock(), Policy())


def _first_sale(service, applet, keys) -> None:
    """One sale at this device with the card (prepare, SPEND, commit), so each tap reads back a
    last transaction of this device's that it must find committed."""
    from hardware.card.fake import FakeReader
    from pos.redemption import RedemptionRequest
    from pos.sale_order import sell_with_card

    reader = FakeReader(keys)
    reader.insert(applet)
    card = reader.open_session()
    auth = card.authenticate()
    card.verify_pin("123456")
    spend = auth.spend
    plan = service.prepare(RedemptionRequest(auth.certificate.household_id, "kasir1", {"GULA1": 1},
                                             card_id=auth.certificate.card_id, card_spent=spend.spent if spend else 0,
                                             card_period=spend.period if spend else ""))
    sell_with_card(service, card, auth, plan)
    assert applet.card.memory.last_tx_hex, "the card keeps its last transaction"
    card.close()
    reader.pull()


def run(quick: bool = False) -> list[dict]:
    """The card tap rows against their budget, with the one-APDU
    round trip as baseline (pcscd and vpcd must be installed)."""
    sys.path.insert(0, str(ROOT))
    from bench.pcsc_card import inserted, pcsc_reader, wait_event
    from hardware.card import apdu
    from hardware.card.applet import Applet
    from hardware.card.cardfile import CardFile
    from hardware.card.certificate import key_id
    from hardware.card.issuing import make_deck
    from pos.period import WITA, Period
    from pos.policy import Policy
    from pos.sale_order import settle_last_charge
    from pos.sample_city import demo_key
    from pos.session.core import serve_card

    taps = 10 if quick else 200
    round_trips = 100 if quick else 2000
    now = datetime.now(UTC)
    today, period = now.astimezone(WITA).date(), Period.of(now)
    tmp = Path(tempfile.mkdtemp(prefix="bench-card-"))
    db, service = _counter(tmp, now)
    issuer = demo_key("issuer")
    keys = {key_id(issuer.public_key()): issuer.public_key()}
    deck = make_deck(tmp / "deck", issuer, today, str(period))
    applet = Applet(CardFile.load(deck["holder"]))
    _first_sale(service, applet, keys)
    policy = Policy()
    latencies: list[float] = []
    reported = 0
    try:
        with pcsc_reader(tmp, keys) as (reader, events):
            for i in range(taps):
                with inserted(applet):
                    t0 = wait_event(events, "inserted")
                    session = reader.open_session()
                    card = session.authenticate()
                    reported += settle_last_charge(service, session, card) is not None
                    ent = serve_card(service.ledger, policy, card, datetime.now(UTC))
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
                wait_event(events, "removed")
                if not quick and i % 20 == 0:
                    print(f"  tap {i + 1}/{taps}: {latencies[-1]:.1f} ms", file=sys.stderr)
    finally:
        db.close()
    assert reported == 0, "the card's last sale was committed here: nothing to report"
    p50, p99 = _pct(latencies, 50), _pct(latencies, 99)
    base = _pct(rtt, 50)
    return [
        {"name": "card tap: pcscd card-present -> authenticated decision", "p50": round(p50, 2),
         "p99": round(p99, 2), "value": None, "unit": "ms", "budget": "p99 <= 100 ms",
         "baseline": round(base, 3), "baseline_name": "one APDU round trip through pcscd+vpcd (p50)",
         "ok": p99 <= 100, "notes": f"{taps} taps; select, certificate verify, internal authenticate (ECDSA P-256), "
         "last transaction read back and verified (ECDSA P-256) and settled against this device's sales, "
         "device caps and card decision with ledger lookup (2,000 households); vpcd insertion poll excluded; "
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
