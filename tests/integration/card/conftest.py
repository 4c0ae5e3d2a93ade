"""Fixtures for the card tests on the real PC/SC stack (pcscd + vpcd + virtual card + pyscard)."""

from __future__ import annotations

import queue

import pytest

from tests.card_fixtures import deck, issuer_keys  # noqa: F401
from tests.integration.pcsc_stack import PcscStack


@pytest.fixture(scope="session")
def pcsc_stack():
    stack = PcscStack()
    stack.start()
    yield stack
    stack.shutdown()


@pytest.fixture
def stack(pcsc_stack, tmp_path):
    pcsc_stack.run_dir = tmp_path / "run"
    pcsc_stack.run_dir.mkdir()
    pcsc_stack.start()  # a previous test may have stopped it
    yield pcsc_stack
    pcsc_stack.remove_all()


class Events:
    def __init__(self) -> None:
        self.q: queue.Queue = queue.Queue()
        self.seen: list[str] = []

    def __call__(self, event) -> None:
        self.q.put(event)

    def wait(self, kind: str, timeout: float = 10.0):
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind!r} event within {timeout} s (saw {self.seen})")
            try:
                ev = self.q.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(ev.kind)
            if ev.kind == kind:
                return ev


@pytest.fixture
def reader(stack):
    from hardware.card.pcsc_reader import PcscReader

    r = PcscReader(issuer_keys(), name="Virtual PCD 00 00", poll_ms=100, allow_virtual=True)
    events = Events()
    r.subscribe(events)
    r.start()
    r.events = events
    yield r
    r.stop()
