"""Malformed, truncated, oversized and wrong-status card responses, through pcscd + vpcd.

The virtual card runs in this process (so hypothesis can rewrite its answers); pcscd, vpcd and
pyscard are the real ones. The terminal must refuse with a Refusal, never crash, and never
send the spend update after a bad answer.
"""

from __future__ import annotations

import shutil
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.card.applet import Applet
from hardware.card.cardfile import CardFile
from hardware.card.vpcd import VirtualCard
from pos.refusals import Refusal
from tests.integration.pcsc_stack import wait_for

pytestmark = pytest.mark.pcsc

SPEND_STEP = 6  # select, certificate, authenticate, verify, confirm PIN, update spend


def _mutations():
    truncate = st.integers(0, 300).map(lambda n: ("truncate", n))
    append = st.binary(min_size=1, max_size=300).map(lambda b: ("append", b))
    flip = st.tuples(st.integers(0, 400), st.integers(1, 255)).map(lambda t: ("flip", t))
    status = st.integers(0, 0xFFFF).map(lambda sw: ("status", sw))
    garbage = st.binary(min_size=0, max_size=400).map(lambda b: ("replace", b))
    return st.one_of(truncate, append, flip, status, garbage)


def _apply(mutation, response: bytes) -> bytes:
    kind, arg = mutation
    if kind == "truncate":
        return response[: arg % (len(response) + 1)]
    if kind == "append":
        return response[:-2] + arg + response[-2:]
    if kind == "flip":
        pos, mask = arg
        i = pos % len(response)
        return response[:i] + bytes([response[i] ^ mask]) + response[i + 1 :]
    if kind == "status":
        return response[:-2] + arg.to_bytes(2, "big")
    return arg


@pytest.fixture
def live_card(stack, deck, tmp_path):
    path = tmp_path / "fuzz.card.json"
    shutil.copy(deck["holder"], path)
    applet = Applet(CardFile.load(path))
    vc = VirtualCard(applet)
    t = threading.Thread(target=vc.serve_forever, daemon=True)
    t.start()
    wait_for(vc.connected.is_set, 10, "in-process virtual card connected")
    stack.wait_card_state(present=True)
    yield vc, applet
    vc.stop()
    t.join(timeout=5)
    stack.wait_card_state(present=False)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(step=st.integers(1, SPEND_STEP), mutation=_mutations())
def test_bad_responses_never_crash_and_never_write(reader, live_card, city, step, mutation):
    vc, applet = live_card
    seen = {"n": 0, "changed": False}

    def bad(command: bytes, response: bytes) -> bytes:
        seen["n"] += 1
        if seen["n"] != step:
            return response
        # what vpcd can carry: 1..258 bytes (an empty frame stalls vpcd; bigger ones do not fit pcscd's
        # short-APDU buffer). The full range, 0..700 bytes, is fuzzed over the fake in tests/unit/card.
        out = _apply(mutation, response)[:258] or b"\x6f"
        seen["changed"] = out != response
        return out

    counter_before = applet.card.memory.counter
    spent_target = applet.card.memory.spent + 1000
    vc.response_filter = bad
    session = reader.open_session()
    try:
        session.authenticate()
        session.verify_pin("123456")
        record = session.record_spend(city.period, spent_target)
    except Refusal:
        record = None
    finally:
        vc.response_filter = None
        session.close()
    if seen["changed"]:
        assert record is None, f"bad answer at step {step} {mutation} was accepted"
        if step < SPEND_STEP:
            assert applet.card.memory.counter == counter_before, "spend update sent after a bad answer"
    else:
        assert record is not None and record.spent == spent_target
    assert applet.card.memory.pin_tries_left > 0 or step == 4
    applet.card.memory.pin_tries_left = applet.card.memory.pin_tries_max
