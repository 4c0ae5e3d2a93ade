"""The bytes of a v2 transaction: template, record, digest and the message the card signs.

One encoding shared by the applet, the terminal and (later) the city, so the three cannot
disagree about what the card's signature covers (docs/card-protocol.md, "Transactions").
"""

from __future__ import annotations

import hashlib
import re

from hardware.card import apdu, tlv
from pos.card_proof import CardTransaction

_ID = re.compile(rb"[A-Za-z0-9._:-]*")
_PERIOD = re.compile(rb"20\d\d-(0[1-9]|1[0-2])")
_PERIOD_READ = re.compile(rb"\d{4}-(0[1-9]|1[0-2])")
U32 = 0xFFFFFFFF
TEMPLATE_TAGS = (apdu.T_DEVICE_ID, apdu.T_REDEMPTION_ID, apdu.T_PERIOD, apdu.T_AMOUNT, apdu.T_SPENT,
                 apdu.T_LINES_DIGEST)


def valid_period(raw: bytes) -> bool:
    """Exactly `YYYY-MM`, year 2000-2099, month 01-12, nothing before or after."""
    return _PERIOD.fullmatch(raw) is not None


def readable_period(raw: bytes) -> bool:
    """A period the terminal can read from a card: exact `YYYY-MM` with any year, so a card written
    far in the future (by a faulty or hostile terminal) is refused as such, not as unreadable."""
    return _PERIOD_READ.fullmatch(raw) is not None


def _u32(value: int, what: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U32:
        raise ValueError(f"{what} must be 0..{U32}")
    return value.to_bytes(4, "big")


def _texts(device_id: str, redemption_id: str, period: str, lines_digest: bytes) -> tuple[bytes, bytes, bytes]:
    """The transaction's device id, redemption id and period as the card stores them; ValueError
    for what the card would refuse (with the lines digest's length)."""
    device, redemption, period_bytes = device_id.encode("ascii"), redemption_id.encode("ascii"), period.encode("ascii")
    if len(device) > apdu.DEVICE_ID_MAX or not _ID.fullmatch(device):
        raise ValueError(f"bad device id {device_id!r}")
    if len(redemption) > apdu.REDEMPTION_ID_MAX or not _ID.fullmatch(redemption):
        raise ValueError(f"bad redemption id {redemption_id!r}")
    if not valid_period(period_bytes):
        raise ValueError(f"bad period {period!r}")
    if len(lines_digest) != 32:
        raise ValueError("the lines digest is 32 bytes")
    return device, redemption, period_bytes


def encode_template(tx: CardTransaction) -> bytes:
    """The 75 template the terminal sends in SPEND; raises ValueError for what the card would refuse."""
    device, redemption, period = _texts(tx.device_id, tx.redemption_id, tx.period, tx.lines_digest)
    values = (device, redemption, period, _u32(tx.amount, "amount"), _u32(tx.period_total, "period total"),
              tx.lines_digest)
    return tlv.encode(apdu.T_TX_TEMPLATE, tlv.encode_all(list(zip(TEMPLATE_TAGS, values, strict=True))))


def parse_template(template_value: bytes) -> CardTransaction:
    """The contents of a 75 template, strictly (exact tags in order, exact lengths); TlvError otherwise."""
    device, redemption, period, amount, total, lines = tlv.parse_exact(template_value, TEMPLATE_TAGS)
    if (len(device) > apdu.DEVICE_ID_MAX or not _ID.fullmatch(device) or len(redemption) > apdu.REDEMPTION_ID_MAX
            or not _ID.fullmatch(redemption) or not valid_period(period) or len(amount) != 4 or len(total) != 4
            or len(lines) != 32):
        raise tlv.TlvError("bad transaction template")
    return CardTransaction(device.decode(), redemption.decode(), period.decode(), int.from_bytes(amount, "big"),
                           int.from_bytes(total, "big"), lines)


def encode_record(template: bytes, counter: int) -> bytes:
    """The 76 record the card keeps: the template as received and the counter it assigned."""
    return tlv.encode(apdu.T_TX_RECORD, template + tlv.encode(apdu.T_COUNTER, _u32(counter, "counter")))


def digest(record: bytes) -> bytes:
    """The transaction digest: SHA-256 over the domain and the complete 76 record."""
    return hashlib.sha256(apdu.TX_DIGEST_DOMAIN + record).digest()


def _head(tag: int, n: int) -> bytes:
    """A TLV's tag and length, in tlv.encode's forms (values here are under 256 bytes)."""
    return bytes((tag, n)) if n < 0x80 else bytes((tag, 0x81, n))


_REDEMPTION = bytes((apdu.T_REDEMPTION_ID,))
_PERIOD_HEAD = bytes((apdu.T_PERIOD, 7))
_FIXED_FIELDS = 2 + 2 + 9 + 6 + 6 + 34  # the template's TLV heads, period, amount, period total and lines digest
_AMOUNT_HEAD, _SPENT_HEAD = bytes((apdu.T_AMOUNT, 4)), bytes((apdu.T_SPENT, 4))
_LINES_HEAD, _COUNTER_HEAD = bytes((apdu.T_LINES_DIGEST, 32)), bytes((apdu.T_COUNTER, 4))


def record_digest(tx: CardTransaction, counter: int) -> bytes:
    """`digest(encode_record(encode_template(tx), counter))` built directly (`record_digest_of`)."""
    return record_digest_of(tx.device_id, tx.redemption_id, tx.period, tx.amount, tx.period_total, tx.lines_digest,
                            counter)


def record_digest_of(device_id: str, redemption_id: str, period: str, amount: int, period_total: int,
                     lines_digest: bytes, counter: int) -> bytes:
    """`record_digest` of a transaction given by its fields: the city rebuilds it for every card
    sale, and the generic TLV encoder's calls (and a CardTransaction) cost more than the hashing.
    The same checks as the generic encoding, in its order (ValueError for what the card would
    refuse); tests/unit/card/test_record_digest.py compares the bytes with the generic encoding."""
    device, redemption, period_bytes = device_id.encode("ascii"), redemption_id.encode("ascii"), period.encode("ascii")
    if not (len(device) <= apdu.DEVICE_ID_MAX and len(redemption) <= apdu.REDEMPTION_ID_MAX
            and _ID.fullmatch(device) and _ID.fullmatch(redemption) and _PERIOD.fullmatch(period_bytes)
            and len(lines_digest) == 32 and type(amount) is int and type(period_total) is int  # noqa: E721 - exact
            and type(counter) is int and 0 <= amount <= U32 and 0 <= period_total <= U32  # noqa: E721 - exact
            and 0 <= counter <= U32):
        _texts(device_id, redemption_id, period, lines_digest)  # the generic encoding's refusal, in its order
        _u32(amount, "amount"), _u32(period_total, "period total"), _u32(counter, "counter")
    n = len(device) + len(redemption) + _FIXED_FIELDS  # the template's length
    if n < 0x78:  # both lengths in the one-byte form: always, for the ids devices use
        head = bytes((apdu.T_TX_RECORD, n + 8, apdu.T_TX_TEMPLATE, n, apdu.T_DEVICE_ID, len(device)))
    else:
        template_head = _head(apdu.T_TX_TEMPLATE, n)
        head = _head(apdu.T_TX_RECORD, len(template_head) + n + 6) + template_head + bytes((apdu.T_DEVICE_ID,
                                                                                            len(device)))
    return hashlib.sha256(b"".join((apdu.TX_DIGEST_DOMAIN, head, device, _REDEMPTION, bytes((len(redemption),)),
                                    redemption, _PERIOD_HEAD, period_bytes, _AMOUNT_HEAD, amount.to_bytes(4, "big"),
                                    _SPENT_HEAD, period_total.to_bytes(4, "big"), _LINES_HEAD, lines_digest,
                                    _COUNTER_HEAD, counter.to_bytes(4, "big")))).digest()


def signed_message(op: int, challenge: bytes, tx_digest: bytes) -> bytes:
    """What the card's ECDSA signature covers for SPEND (op 02) and GET LAST TRANSACTION (op 03)."""
    n = 7 + len(challenge) + len(tx_digest)  # the proof's length: its op, challenge and digest TLVs
    if len(challenge) < 0x80 and len(tx_digest) < 0x80 and n < 0x100:  # always, in this protocol: one join (hot path)
        return b"".join((apdu.TX_SIGN_DOMAIN, _head(apdu.T_TX_PROOF, n), bytes((apdu.T_OPERATION, 1, op,
                                                                              apdu.T_CHALLENGE, len(challenge))),
                         challenge, bytes((apdu.T_TX_DIGEST, len(tx_digest))), tx_digest))
    body = tlv.encode_all([(apdu.T_OPERATION, bytes([op])), (apdu.T_CHALLENGE, challenge),
                           (apdu.T_TX_DIGEST, tx_digest)])
    return apdu.TX_SIGN_DOMAIN + tlv.encode(apdu.T_TX_PROOF, body)
