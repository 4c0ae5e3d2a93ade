"""Tampering at central: a message carrying another device's identity, oversized payloads."""

from __future__ import annotations

import json
import time

import pytest

from pos.messages import MESSAGE_TYP
from pos.signing import MAX_TOKEN_BYTES, EcdsaSigner, canonical_json, jws_sign, jws_verify
from sync.central.consumer import Incoming
from sync.status import signed
from tests.unit.test_tamper import big_payload


@pytest.fixture
def two_devices(make_device):
    a, b = make_device("EW-A-0001"), make_device("EW-B-0002")
    a.redeem(a.city.notable["holder"], {"BERAS5": 1})
    b.redeem(b.city.notable["holder"], {"BERAS5": 1})
    return a, b


def test_message_carrying_another_devices_identity_refused(consumer, two_devices, clock):
    from sync.central.store import RedemptionRecord, Rejected

    a, b = two_devices
    b_msg = b.incoming()[0]
    b_env = json.loads(jws_verify(b_msg.payload, {"EW-B-0002": b.key.public_key()}).payload)
    claims_a = {**b_env, "device": "EW-A-0001"}
    cases = {
        "B's genuine message on A's topic": (Incoming(b_msg.topic.replace("EW-B-0002", "EW-A-0001"), b_msg.payload),
                                             "not by device EW-A-0001"),
        "B signs as A (kid A), on A's topic": (Incoming(b_msg.topic.replace("EW-B-0002", "EW-A-0001"), jws_sign(
            canonical_json(claims_a), EcdsaSigner(b.key, "EW-A-0001"), MESSAGE_TYP)), "does not verify"),
        "B's envelope names A, on B's topic": (Incoming(b_msg.topic, jws_sign(canonical_json(claims_a), b.signer,
                                                                               MESSAGE_TYP)), "does not match topic"),
        "B's signed status on A's topic": (Incoming("ewarung/v1/devices/EW-A-0001/status", signed(
            "status", "EW-B-0002", {"state": "online"}, b.signer, clock.now())), ""),
    }
    for name, (msg, reason) in cases.items():
        out = consumer.process([msg])
        assert (out.stored, out.rejected, out.acks) == (0, 1, []), name
        assert reason in Rejected.select().order_by(Rejected.id.desc()).get().reason, name
    assert RedemptionRecord.select().count() == 0


@pytest.mark.parametrize("size", [MAX_TOKEN_BYTES + 1, 4 * 1024 * 1024])
def test_oversized_payloads_refused_quickly_at_central(consumer, make_device, size):
    make_device("EW-A-0001")
    payload = big_payload(size)
    t0 = time.monotonic()
    for leaf in ("redemption", "void", "event", "status", "heartbeat", "request"):
        out = consumer.process([Incoming(f"ewarung/v1/devices/EW-A-0001/{leaf}", payload)])
        assert out.rejected == 1 and out.stored == 0, leaf
    assert time.monotonic() - t0 < 10, "refusing big payloads must not take long"
