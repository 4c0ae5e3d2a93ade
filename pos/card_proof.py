"""What an SSN card signs about one sale (card protocol v2): the transaction and the card's proof.

The terminal hands the card a CardTransaction; the card binds it to its own transaction counter
and signs its digest over the terminal's fresh challenge (docs/card-protocol.md, "SPEND"). The proof
travels with the redemption (`redemption_card`) so that the city, not the device, decides whether
the card really paid for it; the same proof read back later lets a terminal report a charge it
never committed (`charge_card`). Both sides parse it here, so they cannot disagree on its form.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pos.signing import BadSignature, b64url_decode

LINES_DOMAIN = b"EWSSN-LINES-v2\n"
NO_LINES = bytes(32)
"""The lines digest of a spend whose caller does not know the basket (CardClient.record_spend, card tools
and tests; the counter always signs its lines)."""
_CODE = re.compile(r"[A-Za-z0-9._-]{1,32}")


@dataclass(frozen=True)
class CardTransaction:
    """One sale as the card is asked to sign it: which device and redemption, the period, the
    amount, the period's new total and a digest of the lines (lines_digest)."""

    device_id: str
    redemption_id: str
    period: str  # YYYY-MM
    amount: int  # rupiah
    period_total: int  # rupiah: the card's record for the period after this sale
    lines_digest: bytes = NO_LINES


@dataclass(frozen=True)
class CardProof:
    """The card's signature over a transaction: `op` 2 when signed by SPEND, 3 when read back by
    GET LAST TRANSACTION; `digest` binds the transaction to the card's `counter`."""

    transaction: CardTransaction
    counter: int
    op: int
    challenge: bytes
    digest: bytes
    signature: bytes


def lines_digest(lines: Iterable[tuple[str, int, int]]) -> bytes:
    """SHA-256 over the basket's (product code, quantity, unit price) lines in code order, so the
    card's signature covers what was sold and the city can recompute it from the payload."""
    text = LINES_DOMAIN
    for line in sorted(lines):
        code, quantity, unit_price = line
        exact = type(line) is tuple and type(code) is str and type(quantity) is int and type(unit_price) is int  # noqa: E721
        row = _ROWS.get(line) if exact else None  # exact types only: True and 1.0 equal 1 as keys
        if row is None:
            if not _CODE.fullmatch(code) or quantity < 1 or unit_price < 0:
                raise ValueError(f"bad line {code!r} x {quantity} at {unit_price}")
            row = f"{code}\t{quantity}\t{unit_price}\n".encode("ascii")
            if exact:
                if len(_ROWS) >= _ROWS_LIMIT:
                    _ROWS.clear()
                _ROWS[line] = row
        text += row
    return hashlib.sha256(text).digest()


_ROWS: dict[tuple[str, int, int], bytes] = {}
"""A line's encoded row once checked: a city sees the same products at the same prices all day."""
_ROWS_LIMIT = 50_000


# --- the card's evidence in a message (docs/mqtt-contract.md, "Card evidence") -------------

PROOF_OPS = (2, 3)  # 2: signed by SPEND; 3: the same record read back with GET LAST TRANSACTION
HEX32 = re.compile(r"[0-9a-f]{32}")  # a proof's challenge
_HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_B64URL = 2048  # characters of a certificate or signature in base64url
MAX_U32 = 0xFFFFFFFF


@dataclass(frozen=True)
class CardEvidence:
    """A card's proof as a message carries it: the certificate the card presented (its exact bytes,
    TLV 70) and the card's signature over one transaction, rebuilt from the message."""

    certificate: bytes
    transaction: CardTransaction
    counter: int
    op: int
    challenge: bytes
    signature: bytes


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: object, what: str) -> bytes:
    """A certificate's or signature's bytes from the base64url text a message carries; ValueError
    naming `what` for anything else."""
    if type(text) is not str or not 0 < len(text) <= MAX_B64URL:
        raise ValueError(f"card {what} must be base64url without padding")
    try:
        return b64url_decode(text)  # strict: the C decoder refuses any other character
    except BadSignature:
        raise ValueError(f"card {what} must be base64url without padding") from None


def _u32(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_U32:  # exactly int: a bool is not a number here
        raise ValueError(f"card proof {what} must be an integer 0..{MAX_U32}")
    return value


def redemption_card(certificate: bytes, proof: CardProof) -> dict:
    """The `card` object of a redemption body (schema ewarung.redemption/2): the certificate and the
    proof's parts the city cannot rebuild from the body itself (counter, new period total,
    challenge, signature). Device, redemption id, period, amount and lines come from the message."""
    return {
        "certificate": _b64url(certificate),
        "proof": {"op": proof.op, "counter": proof.counter, "period_total": proof.transaction.period_total,
                  "challenge": proof.challenge.hex(), "signature": _b64url(proof.signature)},
    }


def charge_card(certificate: bytes, proof: CardProof) -> dict:
    """The `card` object of a `card_charged_not_sold` event: a charge no sale was committed for has
    no lines in the message, so the whole transaction travels with the proof."""
    tx = proof.transaction
    card = redemption_card(certificate, proof)
    card["transaction"] = {"device_id": tx.device_id, "redemption_id": tx.redemption_id, "period": tx.period,
                           "amount": tx.amount, "period_total": tx.period_total,
                           "lines_digest": tx.lines_digest.hex()}
    return card


def body_lines(body: dict) -> list[tuple[str, int, int]]:
    """(item, qty, unit_price) of a redemption body's lines, typed strictly; ValueError otherwise."""
    lines = body.get("lines")
    if not isinstance(lines, list) or not lines:
        raise ValueError("redemption body needs at least one line")
    out = []
    for ln in lines:
        if not isinstance(ln, dict):
            raise ValueError("each line is an object {item, qty, unit_price, amount}")
        item, qty, price = ln.get("item"), ln.get("qty"), ln.get("unit_price")
        if not isinstance(item, str) or any(isinstance(v, bool) or not isinstance(v, int) for v in (qty, price)):
            raise ValueError("each line needs item (string), qty and unit_price (integers)")
        out.append((item, qty, price))
    return out


def _proof_parts(card: object) -> tuple[bytes, dict, int, int, bytes, bytes]:
    proof = card.get("proof") if type(card) is dict else None
    if type(proof) is not dict:
        raise ValueError("card evidence needs {certificate, proof}")
    op = proof.get("op")
    if op not in PROOF_OPS or type(op) is not int:
        raise ValueError(f"card proof op must be one of {PROOF_OPS}")
    challenge = proof.get("challenge")
    if type(challenge) is not str or not HEX32.fullmatch(challenge):
        raise ValueError("card proof challenge must be 16 bytes in lower-case hex")
    return (unb64url(card.get("certificate"), "certificate"), proof, op, _u32(proof.get("counter"), "counter"),
            bytes.fromhex(challenge), unb64url(proof.get("signature"), "signature"))


def redemption_evidence(device_id: str, body: dict, lines: list[tuple[str, int, int]] | None = None) -> CardEvidence:
    """The card evidence of a redemption body, its transaction rebuilt from the message itself (the
    device of the topic, the body's redemption id, period, total and lines), so a proof can only
    verify for exactly the sale the message reports. ValueError says what is malformed. `lines`:
    the body's lines already parsed by body_lines (else parsed here)."""
    certificate, proof, op, counter, challenge, signature = _proof_parts(body.get("card"))
    rid, period, total = body.get("redemption_id"), body.get("period"), body.get("total")
    if not isinstance(rid, str) or not isinstance(period, str):
        raise ValueError("redemption body needs redemption_id and period (strings)")
    tx = CardTransaction(device_id, rid, period, _u32(total, "amount (the body's total)"),
                         _u32(proof.get("period_total"), "period_total"),
                         lines_digest(body_lines(body) if lines is None else lines))
    return CardEvidence(certificate, tx, counter, op, challenge, signature)


def charge_evidence(body: dict) -> CardEvidence:
    """The card evidence of a `card_charged_not_sold` event, its transaction as the event states it
    (the signature then proves the card signed exactly that). ValueError says what is malformed."""
    card = body.get("card")
    certificate, _proof, op, counter, challenge, signature = _proof_parts(card)
    tx = card.get("transaction") if isinstance(card, dict) else None
    if not isinstance(tx, dict):
        raise ValueError("a card_charged_not_sold event needs card.transaction")
    texts = [tx.get(k) for k in ("device_id", "redemption_id", "period", "lines_digest")]
    if not all(isinstance(t, str) for t in texts) or not _HEX64.fullmatch(texts[3]):
        raise ValueError("card.transaction needs device_id, redemption_id, period and a 32-byte hex lines_digest")
    return CardEvidence(certificate, CardTransaction(texts[0], texts[1], texts[2], _u32(tx.get("amount"), "amount"),
                                                     _u32(tx.get("period_total"), "period_total"),
                                                     bytes.fromhex(texts[3])), counter, op, challenge, signature)
