"""Bugs the fuzzers found and that are fixed: each as one fixed input."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from pos.clock import iso
from pos.sample_city import demo_key
from pos.signing import BadSignature, EcdsaSigner, canonical_json, jws_peek, jws_sign, jws_verify
from sync.acks import ACK_TYP, AckRefused, parse_ack
from sync.ledger_format import DELTA, HOTLIST, LEDGER_TYP, MANIFEST
from sync.ledger_intake import LedgerIntake, LedgerRefused
from tests.conftest import NOW

CENTRAL = EcdsaSigner(demo_key("central"), "central")
LEDGER = EcdsaSigner(demo_key("ledger"), "ledger")
DEEP = "[" * 5000 + "]" * 5000


def test_deeply_nested_header_is_bad_signature_not_recursion_error():
    # unsigned: anyone could publish it; it used to raise RecursionError out of jws_peek,
    # which at the central consumer failed the whole batch over and over
    token = base64.urlsafe_b64encode(DEEP.encode()).rstrip(b"=") + b".e30.AAAA"
    with pytest.raises(BadSignature, match="nested too deeply"):
        jws_peek(token)


def test_deeply_nested_signed_payload_is_refused():
    token = jws_sign(DEEP.encode(), CENTRAL, ACK_TYP)
    with pytest.raises(BadSignature, match="nested too deeply"):
        jws_verify(token, {"central": demo_key("central").public_key()}).json()
    with pytest.raises(AckRefused):
        parse_ack(token, {"central": demo_key("central").public_key()}, "EW-X")


@pytest.mark.parametrize("payload", [
    {"schema": MANIFEST, "version": 5, "issued_at": None, "expires_at": None},  # None.replace
    {"schema": HOTLIST, "serial": 9, "issued_at": 5, "expires_at": 7, "add": [], "remove": []},
    {"schema": DELTA, "version": 2**70, "base_version": 1, "issued_at": iso(NOW),
     "expires_at": iso(NOW + timedelta(days=1)), "deletes": {}, "upserts": {}},  # OverflowError binding the version
    {"schema": HOTLIST, "serial": 10, "issued_at": iso(NOW), "expires_at": iso(NOW + timedelta(days=1)),
     "add": [["C1", "r"]], "remove": []},  # two values where three are expected
    {"schema": DELTA, "version": 9, "base_version": 1, "issued_at": iso(NOW),
     "expires_at": iso(NOW + timedelta(days=1)), "deletes": {},
     "upserts": {"plans": {"columns": ["code", "name"], "rows": [[["a list"], "x"]]}}},  # unbindable value
])
def test_hostile_signed_ledger_fields_are_refused_as_malformed(db, city, clock, payload):
    intake = LedgerIntake(db, {"ledger": demo_key("ledger").public_key()}, "samarinda", clock)
    before = intake.live_version()
    with pytest.raises(LedgerRefused) as exc:
        intake.handle(jws_sign(canonical_json({"city": "samarinda", **payload}), LEDGER, LEDGER_TYP))
    assert exc.value.code in ("malformed", "expired")
    assert intake.live_version() == before


@pytest.mark.parametrize("text", ['[device]\ndata_dir = "~nobody-such-user/x"\n',
                                  '[keys]\nissuer_public_keys = ["~nobody-such-user/issuer.pem"]\n'])
def test_config_home_of_unknown_user_is_a_config_error(text):
    # parsed fine, then config.data_dir raised RuntimeError("Could not determine home directory.")
    from firmware_config.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="write the full path"):
        parse_config(text)
