"""Card answers fuzzed: the terminal's card client meets any response at any step of a sale.

Only Refusal may come out (the card client's documented error), never another exception, and
the spend update is never sent after a bad answer. The TLV, certificate and card-state parsers
are also fed raw bytes: only their documented errors (TlvError, CertificateError, Refusal).
"""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware.card import apdu, certificate, tlv
from hardware.card.applet import Applet
from hardware.card.cardfile import CardFile
from hardware.card.client import CardClient, parse_state
from pos.refusals import Refusal
from tests.card_fixtures import issuer_keys
from tests.fuzz.profiles import FUZZ
from tests.integration.card.test_card_fuzz import _apply

PERIOD = "2026-11"
KEYS = issuer_keys()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    from datetime import date

    from hardware.card.issuing import make_deck
    from pos.sample_city import demo_key

    deck = make_deck(tmp_path_factory.mktemp("deck"), demo_key("issuer"), date(2026, 11, 15), PERIOD)
    return deck["holder"]


MUTATION = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 400)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=600)),
    st.tuples(st.just("flip"), st.tuples(st.integers(0, 1000), st.integers(1, 255))),
    st.tuples(st.just("status"), st.integers(0, 0xFFFF)),
    st.tuples(st.just("replace"), st.binary(max_size=700)),
)


@FUZZ
@given(step=st.integers(1, 6), mutation=MUTATION, pin=st.sampled_from(["123456", "000000"]))
def test_any_card_answer_at_any_step_is_refused_cleanly(pristine, tmp_path_factory, step, mutation, pin):
    work = tmp_path_factory.getbasetemp() / "apdu-fuzz.card.json"
    shutil.copy(pristine, work)
    applet = Applet(CardFile.load(work))
    applet.power_on()
    sent = {"n": 0, "changed": False, "after_bad": []}

    def transmit(command: bytes) -> bytes:
        sent["n"] += 1
        if sent["changed"]:
            sent["after_bad"].append(command[:2])
        response = applet.process(command)
        if sent["n"] == step:
            bad = _apply(mutation, response)
            sent["changed"] = bad != response
            return bad
        return response

    client = CardClient(transmit, KEYS)
    try:
        client.authenticate()
        client.verify_pin(pin)
        record = client.record_spend(PERIOD, 12_345)
    except Refusal:
        record = None
    if sent["changed"]:
        assert record is None, f"a changed answer at step {step} was believed"
        spend = apdu.spend(bytes(16), b"")[:2]
        assert spend not in sent["after_bad"], "spend sent after a bad answer"
    elif pin == "123456":
        assert record is not None and record.spent == 12_345


@FUZZ
@given(st.binary(max_size=600))
def test_tlv_parser_only_tlv_error(data):
    try:
        items = tlv.parse(data)
    except tlv.TlvError:
        return
    assert all(isinstance(t, int) and isinstance(v, bytes) for t, v in items)


@FUZZ
@given(st.one_of(st.binary(max_size=600),
                 st.lists(st.tuples(st.sampled_from([0x71, 0x72, 0x73, 0x74, 0x80, 0x81, 0x82, 0x83, 0x84,
                                                     0x85, 0x86, 0x87, 0x88, 0x89, 0x8A]),
                                    st.binary(max_size=80)), max_size=12).map(tlv.encode_all)))
def test_certificate_and_state_parsers_only_documented_errors(data):
    try:
        certificate.parse(data)
    except (tlv.TlvError, certificate.CertificateError):
        pass
    try:
        parse_state(data)
    except Refusal:
        pass
