"""The city's presence tokens (sync/presence.py): what a device may act on, and what it ignores."""

from __future__ import annotations

import pytest

from pos.sample_city import demo_key
from pos.signing import EcdsaSigner
from sync.presence import StateRefused, build_state, parse_state

KEYS = {"central": demo_key("central").public_key()}
SINCE = "2026-11-15T02:00:00.000Z"


def test_a_state_signed_by_central_for_this_city_is_accepted():
    token = build_state("samarinda", "online", SINCE, "central-1", EcdsaSigner(demo_key("central"), "central"))
    state = parse_state(token, KEYS, "samarinda")
    assert (state.online, state.since, state.consumer) == (True, SINCE, "central-1")


@pytest.mark.parametrize("signer, city, why", [
    (EcdsaSigner(demo_key("ledger"), "central"), "samarinda", "does not verify"),  # right kid, wrong key
    (EcdsaSigner(demo_key("device"), "EW-X"), "samarinda", "unknown key"),
    (EcdsaSigner(demo_key("central"), "central"), "balikpapan", "for city 'balikpapan'"),
])
def test_forged_or_foreign_states_are_refused(signer, city, why):
    token = build_state(city, "online", SINCE, "central-1", signer)
    with pytest.raises(StateRefused, match=why):
        parse_state(token, KEYS, "samarinda")


def test_an_ack_is_not_a_state():
    from sync.acks import build_ack

    token = build_ack("EW-A-0001", SINCE, EcdsaSigner(demo_key("central"), "central"), ids=["x"])
    with pytest.raises(StateRefused, match="ewarung-state"):
        parse_state(token, KEYS, "samarinda")


def test_the_runner_dates_each_connection_and_its_last_will(consumer):
    import time

    from sync.central.runner import MqttRunner

    runner = MqttRunner(consumer, "127.0.0.1", 1, client_id="central-t", verify_workers=0)
    wills: list[tuple[str, bytes]] = []
    runner.link.set_will = lambda topic, payload: wills.append((topic, payload))
    runner.link.before_connect()
    online = parse_state(runner.presence("online"), KEYS, "samarinda")
    will = parse_state(wills[-1][1], KEYS, "samarinda")
    assert wills[-1][0] == "ewarung/v1/central/samarinda/state"
    assert (will.state, will.since, will.consumer) == ("offline", online.since, "central-t")
    time.sleep(0.01)
    runner.link.before_connect()  # the next connection: a new since, so devices resend once more
    assert parse_state(runner.presence("online"), KEYS, "samarinda").since != online.since
