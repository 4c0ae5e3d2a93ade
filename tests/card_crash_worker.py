"""A child process that sells with card files in the counter's order, to be killed with SIGKILL.

insert (the insertion check reports a charge never committed) -> PIN -> prepare -> card spend ->
commit -> print, each card a virtual card file (hardware.card.cardfile) that persists like EEPROM.

    python -m tests.card_crash_worker DB DECK step <before_spend|after_spend|after_commit>
        one sale on the deck's first card; at that step it prints "at <step>" and waits to be killed
    python -m tests.card_crash_worker DB DECK loop
        sale after sale over the deck's cards, printing "sold <redemption id>" once printed
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from hardware.card.applet import Applet
from hardware.card.cardfile import CardFile
from hardware.card.fake import FakeReader
from hardware.printer.fake import FakePrinter
from pos.clock import SystemClock
from pos.db import open_database
from pos.device import DeviceIdentity
from pos.ledger import Ledger
from pos.policy import Policy
from pos.printing import PrintService
from pos.redemption import RedemptionRequest, RedemptionService
from pos.refusals import Refusal
from pos.sale_order import card_charge_proof, settle_last_charge
from pos.sample_city import demo_key
from pos.signing import EcdsaSigner

DEVICE = DeviceIdentity("EW-CRASH-0001", "SMD-CRASH", "Crash", "Jl. Crash")
PIN = "1234"


def service_for(db_path: Path) -> RedemptionService:
    """The crash device's redemption service on `db_path` (a fresh one after every kill)."""
    db = open_database(db_path)
    policy = replace(Policy(), offline_max_value=10**12)
    return RedemptionService(db, Ledger(), DEVICE, EcdsaSigner(demo_key("device"), DEVICE.device_id),
                             SystemClock(), policy)


def insert(card_path: Path, service: RedemptionService):
    """A card inserted at the crash device: authenticated, its last charge settled, PIN verified."""
    from tests.card_fixtures import issuer_keys

    reader = FakeReader(issuer_keys())
    reader.insert(Applet(CardFile.load(card_path)))
    card = reader.open_session()
    auth = card.authenticate()
    settle_last_charge(service, card, auth)
    return card, auth


def _stop(step: str, at: str) -> None:
    if step == at:
        print(f"at {step}", flush=True)
        time.sleep(600)  # the parent kills us here


def sell(service: RedemptionService, printing: PrintService, card_path: Path, stop_at: str = "") -> str:
    """One sale in the counter's order; returns its redemption id once printed."""
    card, auth = insert(card_path, service)
    card.verify_pin(PIN)
    spent = auth.spend.spent
    req = RedemptionRequest(auth.certificate.household_id, "kasir1", {"TAHU": 1}, card_id=auth.certificate.card_id,
                            card_spent=spent, card_counter=auth.spend.counter, card_period=auth.spend.period)
    plan = service.prepare(req)
    _stop("before_spend", stop_at)
    proof = card_charge_proof(card, plan)
    _stop("after_spend", stop_at)
    result = service.commit(plan, proof, auth.certificate_bytes)
    _stop("after_commit", stop_at)
    printing.print_job(result.print_job_id)
    card.close()
    return result.redemption_id


def main(db_path: str, deck: str, mode: str, step: str = "") -> None:
    service = service_for(Path(db_path))
    printing = PrintService.beside(service, FakePrinter())
    cards = sorted(Path(deck).glob("*.card.json"))
    print("ready", flush=True)
    if mode == "step":
        sell(service, printing, cards[0], step)
        print("done", flush=True)
        return
    i = 0
    while True:
        try:
            rid = sell(service, printing, cards[i % len(cards)])
        except Refusal as refusal:
            print(f"refused {refusal.reason.value}", flush=True)
        else:
            print(f"sold {rid}", flush=True)
        i += 1


if __name__ == "__main__":
    main(*sys.argv[1:])
