"""Inputs the fuzzers found that made CentralConsumer.process raise; each must now be rejected.

A raise is a poison message: the batch is not acknowledged, is redelivered, raises again, and the
city's intake stalls behind it. Found by tests/fuzz/test_fuzz_central.py; fixed in
sync/central/consumer.py (status numbers range-checked, JSON depth guarded) and sync/central/verify.py.
"""

from __future__ import annotations

import pytest

from pos.messages import MESSAGE_TYP
from pos.signing import canonical_json, jws_sign
from sync.central.consumer import Incoming
from sync.status import signed
from tests.conftest import NOW
from tests.fuzz.test_fuzz_central import DEVICE, SIGNERS, consumer, topic  # noqa: F401


def _unsigned(leaf: str, text: bytes) -> Incoming:
    return Incoming(topic(DEVICE, leaf), text, 1, 1)


CASES = {
    # unsigned (anyone who may publish on the device's status topic)
    "status ledger.version 2**63": _unsigned("status", canonical_json({"ledger": {"version": 2**63}})),
    "heartbeat queue_depth 2**63": _unsigned("heartbeat", canonical_json({"queue_depth": 2**63})),
    "status nested 5000 deep": _unsigned("status", b'{"a":' * 5000 + b"1" + b"}" * 5000),
    # signed by the registered device itself
    # _verify_token parses the verified payload itself, without the RecursionError guard of jws_verify
    "signed redemption nested 5000 deep": Incoming(topic(DEVICE, "redemption"), jws_sign(
        ("[" * 5000 + "]" * 5000).encode(), SIGNERS[DEVICE], MESSAGE_TYP), 1, 1),
    "signed heartbeat queue_depth 2**64": Incoming(topic(DEVICE, "heartbeat"),
                                                   signed("heartbeat", DEVICE, {"queue_depth": 2**64},
                                                          SIGNERS[DEVICE], NOW), 1, 1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_consumer_rejects_without_raising(consumer, name):  # noqa: F811
    out = consumer.process([CASES[name]])
    assert out.rejected == 1 and out.status_updates == 0 and out.stored == 0
