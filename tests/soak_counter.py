"""A headless counter for the multi-process kill soak: the real CounterSession, wired by the
real composition root (`build_counter`: PC/SC reader through pcscd + vpcd, ESC/POS printer to
a file, RedemptionService on the device database), serving the virtual card in a loop.

    python -m tests.soak_counter CONFIG CONFIRMED_FILE

The card stays in the reader unless the soak pulls it (kills its process and inserts it again).
A visit starts from the reader's own "inserted" event; after each sale the worker re-presents the
card by replaying that event (a cashier asking the family to tap again), because vpcd's
reinsertion poll (~400 ms) would dominate the soak.

Every sale and void the session reports done is appended to CONFIRMED_FILE and fsynced only
AFTER the session reached DONE (a sale) or said "voided" (a void):
    S <receipt_no> <redemption_id> <total> <card_total> <card_updated 0|1>
    V <receipt_no of the voided sale> <redemption_id>
stdout lines: "ready" once signed in; "paused" after a "pause" line on stdin (at the idle
screen, card session closed); "resumed" after "resume".
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from pathlib import Path

from pos.ports import CardEvent
from pos.session import CounterSession, InlineRunner, State

PIN = "123456"
VOID_EVERY = 7


def _append_durably(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _say(text: str) -> None:
    print(text, flush=True)


def main(config_path: str, confirmed_path: str) -> int:
    from firmware_config.config import load_config
    from pos.roots.counter import build_counter, counter_session

    confirmed = Path(confirmed_path)
    config = load_config(Path(config_path))
    parts = build_counter(config, demo=False)
    reader = parts.reader
    session = counter_session(parts, InlineRunner())
    events: queue.Queue[CardEvent] = queue.Queue()
    reader.subscribe(events.put)  # the monitor thread only queues; the session runs on this thread
    control: queue.Queue[str] = queue.Queue()

    def read_control() -> None:
        for line in sys.stdin:
            control.put(line.strip())
        control.put("eof")

    threading.Thread(target=read_control, daemon=True).start()
    assert session.sign_in("kasir1", "1234", "pagi") and session.state == State.IDLE, session.notice
    reader.start()
    _say("ready")
    sales = 0
    last_error = ""
    while True:
        try:
            cmd = control.get_nowait()
        except queue.Empty:
            cmd = ""
        if cmd == "eof":
            return 0
        if cmd == "pause":
            while session.state != State.IDLE:  # finish the visit on screen first, as a cashier would
                if session.state == State.DONE:
                    session.finish()
                elif session.state == State.ERROR:
                    session.acknowledge()
                else:
                    session.cancel()
            _say("paused")
            while (cmd := control.get()) not in ("resume", "eof"):
                pass
            if cmd == "eof":
                return 0
            _say("resumed")
        try:
            while True:
                session.card_event(events.get_nowait())
        except queue.Empty:
            pass
        state = session.state
        if state == State.IDLE:
            if reader.card_present:
                session.card_event(CardEvent("inserted", reader.reader or ""))
            else:
                time.sleep(0.01)
        elif state == State.HOUSEHOLD:
            session.choose_collector("holder")
        elif state == State.PIN:
            session.submit_pin(PIN)
        elif state == State.BASKET:
            if not session.basket:
                session.add("TAHU")
                if sales % 3 == 0:
                    session.add("TAHU")
            else:
                session.to_confirm()
        elif state == State.CONFIRM:
            card_total = session.entitlement.spent + session.basket_total
            session.confirm()
            sale = session.sale
            if session.state == State.DONE and sale is not None:
                _append_durably(confirmed, f"S {sale.receipt_no} {sale.redemption_id} {sale.total} "
                                           f"{card_total} {int(sale.card_updated)}")
                sales += 1
                session.finish()
                if sales % VOID_EVERY == 0:
                    _void(session, sale.redemption_id, confirmed)
        elif state == State.ERROR:
            error = session.error.message("en") if session.error else "?"
            detail = session.error.detail if session.error else ""
            if error != last_error:
                print(f"error: {error} {detail}", file=sys.stderr, flush=True)
                last_error = error
            session.acknowledge()
            time.sleep(0.05)
        elif state == State.DONE:
            session.finish()
        else:
            session.cancel()


def _void(session: CounterSession, redemption_id: str, confirmed: Path) -> None:
    if not session.open_history():
        return
    if session.void(redemption_id, "cashier_mistake", "spv1", "9999") and session.notice == "sale_voided":
        _append_durably(confirmed, f"V {session.notice_args['no']} {redemption_id}")
    session.cancel()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
