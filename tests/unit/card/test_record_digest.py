"""The city's direct encoding of the card's signed record equals the generic TLV encoding the
applet and the terminal use, byte for byte (hardware/card/transaction.record_digest): a single byte
of difference would make every honest card sale fail verification, or let a different sale verify."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.card import apdu, transaction
from pos.card_proof import CardTransaction
from tests.unit.card.card_vectors import SALE


def generic(tx: CardTransaction, counter: int) -> bytes:
    return transaction.digest(transaction.encode_record(transaction.encode_template(tx), counter))


def test_the_vector_sale_digests_the_same():
    assert transaction.record_digest(SALE, 1) == generic(SALE, 1)


def test_longest_ids_need_the_two_byte_length_form_and_still_match():
    tx = CardTransaction("D" * apdu.DEVICE_ID_MAX, "r" * apdu.REDEMPTION_ID_MAX, "2099-12", 0xFFFFFFFF, 0xFFFFFFFF,
                         bytes(range(32)))
    template = transaction.encode_template(tx)
    assert template[1] == 0x81  # a template over 127 bytes: the length form the direct encoder must also use
    assert transaction.record_digest(tx, 0xFFFFFFFF) == generic(tx, 0xFFFFFFFF)


_ID = st.text(alphabet="ABCXYZabcz0189._:-", max_size=40)


@settings(max_examples=300, deadline=None)
@given(device=_ID, redemption=_ID, year=st.integers(1990, 2110), month=st.integers(0, 13),
       amount=st.integers(-1, 2**32), total=st.integers(-1, 2**32), counter=st.integers(-1, 2**32),
       lines=st.binary(min_size=31, max_size=33))
def test_any_transaction_encodes_the_same_or_is_refused_the_same(device, redemption, year, month, amount, total,
                                                                 counter, lines):
    tx = CardTransaction(device, redemption, f"{year:04d}-{month:02d}", amount, total, lines)
    try:
        want = generic(tx, counter)
    except ValueError as exc:
        with pytest.raises(ValueError) as got:
            transaction.record_digest(tx, counter)
        assert str(got.value) == str(exc)
        return
    assert transaction.record_digest(tx, counter) == want


@pytest.mark.parametrize("field,value", [("device_id", "EW-Ü"), ("redemption_id", "id with space"),
                                         ("period", "2026-11\n"), ("period", "2026-13")])
def test_what_the_card_would_refuse_is_refused(field, value):
    tx = CardTransaction(**{**SALE.__dict__, field: value})
    with pytest.raises(ValueError):
        transaction.record_digest(tx, 1)


def generic_signed(op: int, challenge: bytes, tx_digest: bytes) -> bytes:
    from hardware.card import tlv

    body = tlv.encode_all([(apdu.T_OPERATION, bytes([op])), (apdu.T_CHALLENGE, challenge),
                           (apdu.T_TX_DIGEST, tx_digest)])
    return apdu.TX_SIGN_DOMAIN + tlv.encode(apdu.T_TX_PROOF, body)


@settings(max_examples=200, deadline=None)
@given(op=st.integers(0, 255), challenge=st.binary(max_size=300), tx_digest=st.binary(max_size=140))
def test_the_signed_proof_message_is_the_generic_tlv(op, challenge, tx_digest):
    assert transaction.signed_message(op, challenge, tx_digest) == generic_signed(op, challenge, tx_digest)


def uncached_lines_digest(lines) -> bytes:
    """pos.card_proof.lines_digest as it was before it kept rows: the reference."""
    import hashlib

    from pos.card_proof import LINES_DOMAIN

    text = LINES_DOMAIN
    for code, quantity, unit_price in sorted(lines):
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,32}", code) or quantity < 1 or unit_price < 0:
            raise ValueError(f"bad line {code!r} x {quantity} at {unit_price}")
        text += f"{code}\t{quantity}\t{unit_price}\n".encode("ascii")
    return hashlib.sha256(text).digest()


_NUMBER = st.one_of(st.integers(-1, 3), st.booleans(), st.sampled_from([1.0, 2.0, 0.5]))


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.tuples(st.sampled_from(["TAHU", "GULA1", "X y", "é"]), _NUMBER, _NUMBER), max_size=4),
       again=st.booleans())
def test_the_lines_digest_keeps_rows_without_changing_a_digest(lines, again):
    """lines_digest keeps each checked row by its line; True and 1.0 equal 1 as keys, yet encode
    otherwise, so a kept row must never stand for them (nor a list for a tuple)."""
    from pos.card_proof import lines_digest

    for _ in range(2 if again else 1):  # the second time from the kept rows
        try:
            want = uncached_lines_digest(lines)
        except ValueError as exc:
            with pytest.raises(ValueError) as got:
                lines_digest(lines)
            assert str(got.value) == str(exc)
            continue
        assert lines_digest(lines) == want
        assert lines_digest([list(line) for line in lines]) == want
