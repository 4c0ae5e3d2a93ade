"""The central consumer fuzzed: redemptions, voids, events, status, heartbeats, requests.

One message goes through CentralConsumer.process at a time (central database on SQLite). It may
store, ignore or reject it (kept in `rejected` with the reason); it must never raise, because a
batch that raises is not acknowledged, is redelivered, and raises again: one poison message would
stall the whole city's intake. Inputs: raw bytes on every device topic, unsigned JSON status,
envelopes signed by the registered device with hostile fields, and envelopes signed by another
device (identity theft). Known consumer bugs are in test_central_known_bugs.py.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from pos.clock import FixedClock, iso
from pos.messages import MESSAGE_TYP, TOPIC_ROOT
from pos.sample_city import demo_key
from pos.signing import (
    EcdsaSigner,
    b64url,
    canonical_json,
    jws_peek,
    jws_sign,
    public_pem,
)
from sync.central.consumer import DEVICE_LEAVES, CentralConsumer, Incoming
from tests.conftest import NOW
from tests.fuzz.profiles import FUZZ
from tests.fuzz.strategies import DEEP_JSON, JSON, SCALARS, near

DEVICE, OTHER = "EW-FZ-0001", "EW-FZ-0002"
KEYS = {d: ec.generate_private_key(ec.SECP256R1()) for d in (DEVICE, OTHER)}
SIGNERS = {d: EcdsaSigner(k, d) for d, k in KEYS.items()}
PUBLIC = {d: k.public_key() for d, k in KEYS.items()}


@pytest.fixture(scope="module")
def consumer(tmp_path_factory):
    from sync.central.registry import add_device
    from sync.central.store import open_central

    db = open_central(tmp_path_factory.mktemp("central-fuzz") / "central.db")
    for d, k in KEYS.items():
        add_device(d, public_pem(k.public_key()), shop_id=f"S-{d[-4:]}", now=NOW)
    yield CentralConsumer(EcdsaSigner(demo_key("central"), "central"), FixedClock(NOW))
    db.close()


def topic(device: str, leaf: str) -> str:
    return f"{TOPIC_ROOT}/devices/{device}/{leaf}"


# status and heartbeat numbers stay within 64 bits here: past that the consumer raises (a known bug,
# see test_central_known_bugs.py); everything else may be any size
INT64 = st.integers(-(2**63), 2**63 - 1)
LINE = near({"item": st.sampled_from(["TAHU", "TEMPE", "BERAS"]), "qty": st.integers(-3, 2**70),
             "unit_price": st.integers(0, 10**6), "amount": st.integers(0, 10**7)})
BODIES = {
    "redemption": near({"redemption_id": st.uuids().map(str), "receipt_no": st.integers(1, 99),
                        "household": st.just("SSN-6472-0000001"), "period": st.just("2026-11"),
                        "total": st.integers(-5, 2**70), "lines": st.lists(LINE, max_size=3),
                        "mode": st.sampled_from(["card", "override"]), "card_counter": SCALARS}),
    "void": near({"void_id": st.uuids().map(str), "redemption_id": st.uuids().map(str), "reason": SCALARS}),
    "event": near({"event": st.sampled_from(["ack_refused", "card_forged", "data_problem"]), "detail": JSON}),
    "status": near({"state": st.sampled_from(["online", "offline"]), "software": SCALARS}),
    "heartbeat": near({"software": SCALARS, "queue_depth": INT64, "uptime_s": SCALARS,
                       "ledger": near({"version": INT64}), "reader": JSON, "printer": JSON}),
    "request": near({"request": st.sampled_from(["snapshot", "other"]), "have_version": SCALARS}),
}


@st.composite
def signed_message(draw):
    leaf = draw(st.sampled_from(DEVICE_LEAVES))
    signer_id = draw(st.sampled_from([DEVICE, DEVICE, DEVICE, OTHER]))  # OTHER: another device's key
    claimed = draw(st.sampled_from([DEVICE, DEVICE, OTHER]))  # the envelope's device field
    env = draw(near({"schema": st.just(f"ewarung.{leaf}/1"), "id": st.uuids().map(str),
                     "device": st.just(claimed), "seq": st.integers(1, 50) if leaf in ("redemption", "void", "event")
                     else st.none(), "created_at": st.just(iso(NOW)), "body": BODIES[leaf]}))
    return Incoming(topic(DEVICE, leaf), jws_sign(canonical_json(env), SIGNERS[signer_id], MESSAGE_TYP), 1, 1)


RAW = st.one_of(st.binary(max_size=500), st.text(max_size=300).map(str.encode))
raw_message = st.builds(Incoming, st.one_of(st.sampled_from(DEVICE_LEAVES).map(lambda leaf: topic(DEVICE, leaf)),
                                            st.text(max_size=60)), RAW, st.just(1), st.just(1))
unsigned_status = st.builds(
    lambda leaf, body: Incoming(topic(DEVICE, leaf), canonical_json(body), 1, 1),
    st.sampled_from(["status", "heartbeat"]), st.one_of(BODIES["status"], BODIES["heartbeat"]))
deep_header = DEEP_JSON.map(lambda t: Incoming(topic(DEVICE, "redemption"), b64url(t.encode()).encode() + b".e30.AAAA",
                                               1, 1))


def _process_one(consumer, msg: Incoming):
    out = consumer.process([msg])  # must not raise: see the module docstring
    assert out.stored + out.duplicates + out.rejected + out.status_updates + len(out.snapshot_requests) <= 1
    return out


@FUZZ
@given(st.one_of(raw_message, deep_header))
def test_raw_payloads_never_raise(consumer, msg):
    _process_one(consumer, msg)


@FUZZ
@given(signed_message())
def test_signed_hostile_envelopes_never_raise(consumer, msg):
    out = _process_one(consumer, msg)
    if out.stored:  # only what the topic's own device signed, naming itself, is stored
        assert jws_peek(msg.payload)["kid"] == DEVICE


@FUZZ
@given(unsigned_status)
def test_unsigned_status_never_raises(consumer, msg):
    _process_one(consumer, msg)
