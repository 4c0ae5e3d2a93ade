"""What an SSN card signs about one sale (card protocol v2): the transaction and the card's proof.

The terminal hands the card a CardTransaction; the card binds it to its own transaction counter
and signs its digest over the terminal's fresh challenge (docs/card-protocol.md, "SPEND"). The proof
is made to travel with the redemption so that the city, not the device, decides whether the card
really paid for it (the session and the redemption message do not carry it yet); the same proof
read back later lets a terminal recover a sale it never committed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

LINES_DOMAIN = b"EWSSN-LINES-v2\n"
NO_LINES = bytes(32)
"""The lines digest of a spend whose terminal does not know the basket (CardSessionPort.record_spend)."""
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
    for code, quantity, unit_price in sorted(lines):
        if not _CODE.fullmatch(code) or quantity < 1 or unit_price < 0:
            raise ValueError(f"bad line {code!r} x {quantity} at {unit_price}")
        text += f"{code}\t{quantity}\t{unit_price}\n".encode("ascii")
    return hashlib.sha256(text).digest()
