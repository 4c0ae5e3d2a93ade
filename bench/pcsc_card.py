"""The counter's card path for benchmarks: pcscd + vpcd, the terminal's PcscReader, and a virtual
card (a real Applet) inserted in vpcd's first slot, so every APDU crosses PC/SC as on the device.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

READER = "Virtual PCD 00 00"


@contextmanager
def pcsc_reader(tmp: Path, issuer_keys: dict) -> Iterator[tuple[object, queue.Queue]]:
    """pcscd (started here unless one runs) and a PcscReader on vpcd's first slot; yields the reader
    and a queue of its (event kind, perf_counter time) card events."""
    from hardware.card.pcsc_reader import PcscReader
    from tests.integration.pcsc_stack import PcscStack

    stack = PcscStack()
    stack.run_dir = tmp
    stack.start()
    stack.wait_card_state(present=False)
    reader = PcscReader(issuer_keys, name=READER, poll_ms=100, allow_virtual=True)
    events: queue.Queue = queue.Queue()
    reader.subscribe(lambda ev: events.put((ev.kind, time.perf_counter())))
    reader.start()
    try:
        yield reader, events
    finally:
        reader.stop()
        stack.shutdown()


def wait_event(events: queue.Queue, kind: str, timeout: float = 15) -> float:
    """The time of the reader's next `kind` event ("inserted", "removed"), skipping others."""
    while True:
        got, at = events.get(timeout=timeout)
        if got == kind:
            return at


@contextmanager
def inserted(applet) -> Iterator[object]:
    """The applet as a virtual card in vpcd's reader until the block ends (then pulled out)."""
    from hardware.card.vpcd import VirtualCard

    card = VirtualCard(applet)
    thread = threading.Thread(target=card.serve_forever, daemon=True)
    thread.start()
    try:
        yield card
    finally:
        card.stop()
        thread.join(timeout=5)
