"""`ewarung card insert --detach` keeps the fault-injection flags (they were silently dropped)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pos.refusals import Reason, Refusal
from tests.integration.card.test_card_pcsc import PIN
from tests.integration.card.test_watchdog_pcsc import slow_reader  # noqa: F401, F811
from tests.integration.pcsc_stack import ROOT

pytestmark = pytest.mark.pcsc


def _cli(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pos.cli.main", "card", *args], env=stack.env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("mode", ["--pull-at-apdu", "--pull-after-apdu"])
def test_detached_card_is_pulled_at_the_requested_apdu(stack, reader, deck, mode):
    out = _cli(stack, "insert", str(deck["holder"]), "--detach", mode, "2")
    assert out.returncode == 0, out.stderr
    try:
        reader.events.wait("inserted")
        with pytest.raises(Refusal) as e:
            s = reader.open_session()
            s.authenticate()
            s.verify_pin(PIN)
        assert e.value.reason in (Reason.CARD_REMOVED, Reason.CARD_UNREADABLE), e.value
        reader.events.wait("removed")
    finally:
        _cli(stack, "remove")


def test_detached_card_stalls_at_the_requested_apdu(stack, slow_reader, deck):  # noqa: F811
    out = _cli(stack, "insert", str(deck["holder"]), "--detach", "--stall-at-apdu", "3")
    assert out.returncode == 0, out.stderr
    try:
        slow_reader.events.wait("inserted")
        with pytest.raises(Refusal) as e:
            slow_reader.open_session().authenticate()
        assert e.value.reason is Reason.CARD_UNREADABLE and "not answering" in e.value.detail, e.value
    finally:
        _cli(stack, "remove")
