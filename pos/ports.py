"""Ports: the interfaces the domain core needs from hardware, as pyscard's observers do it.

Hardware events flow to the core as events (CardEvent) delivered on the adapter's own thread;
the core never polls a device from the UI thread. Each port has a real adapter and an
in-process fake (hardware/), chosen by config in the composition roots (pos/roots/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal, Protocol

from pos.card_proof import CardProof, CardTransaction
from pos.receipt import Receipt

if TYPE_CHECKING:
    from pos.end_of_day import EndOfDayReport

# --- SSN card -------------------------------------------------------------------------


@dataclass(frozen=True)
class CardCertificate:
    """What the issuer signed about a card (verified by the terminal before use)."""

    card_id: str
    household_id: str
    valid_from: date
    valid_until: date
    issuer_key_id: str


@dataclass(frozen=True)
class SpendRecord:
    """The card's own monotonic record of what was spent this period, across all shops."""

    period: str  # YYYY-MM
    spent: int  # rupiah
    counter: int  # card transaction counter; only grows


@dataclass(frozen=True)
class AuthenticatedCard:
    """A card that proved, with a fresh challenge, that it holds the certified key."""

    certificate: CardCertificate
    spend: SpendRecord
    pin_tries_left: int
    certificate_bytes: bytes = b""  # exactly as the card sent it (TLV 70): the city verifies it again


# card_not_answering: a transmit passed the reader's deadline; the session is abandoned
CardEventKind = Literal["inserted", "removed", "reader_lost", "reader_back", "card_not_answering"]


@dataclass(frozen=True)
class CardEvent:
    """What the reader reports (card in or out, reader lost or
    back, card silent), delivered on the reader's thread."""

    kind: CardEventKind
    reader: str = ""


class CardSessionPort(Protocol):
    """Talks to the one card present; every call may raise pos.refusals.Refusal
    (CARD_REMOVED, CARD_UNREADABLE, CARD_FORGED, CARD_CLONED, PIN_WRONG, PIN_BLOCKED...)."""

    def authenticate(self) -> AuthenticatedCard:
        """Prove the card genuine (certificate, then a fresh challenge) and read its spend record."""
        ...

    def verify_pin(self, pin: str) -> None:
        """Check the holder's PIN on the card itself; raises PIN_WRONG or PIN_BLOCKED."""
        ...

    def spend(self, tx: CardTransaction) -> CardProof:
        """Charge the card for one sale; returns the card's signature over the transaction's digest."""
        ...

    def last_transaction(self) -> CardProof | None:
        """The card's last transaction, signed again over a fresh challenge (None before its first)."""
        ...

    def close(self) -> None:
        """Release the card, whatever state the session is in."""
        ...


class CardReaderPort(Protocol):
    """Port for the card reader, in pyscard's observer style:
    events go to subscribers, the core never polls."""

    def subscribe(self, callback: Callable[[CardEvent], None]) -> None:
        """Register a callback for card and reader events (called on the reader's thread, not the UI's)."""
        ...

    def start(self) -> None:
        """Begin watching the reader; events flow to subscribers from here on."""
        ...

    def stop(self) -> None:
        """Stop watching the reader, at shutdown."""
        ...

    def open_session(self) -> CardSessionPort:
        """Connect to the card present now, for one customer's visit."""
        ...


# --- printer --------------------------------------------------------------------------

PrinterFaultKind = Literal["offline", "paper_out", "cover_open", "error"]


class PrinterFault(Exception):
    """The printer could not print; `kind` says what the cashier should fix.

    `sent` is True when bytes had already left for the printer (the receipt may be partly on
    paper): such a job is never re-sent; the cashier reprints a copy.
    """

    def __init__(self, kind: PrinterFaultKind, detail: str = "", sent: bool = False) -> None:
        self.kind = kind
        self.detail = detail
        self.sent = sent
        super().__init__(f"{kind}: {detail}" if detail else kind)


@dataclass(frozen=True)
class PrinterStatus:
    """What a printer reports around a job; None or "unknown" where the backend cannot tell."""

    online: bool | None  # None: this backend cannot tell
    paper: Literal["ok", "low", "out", "unknown"] = "unknown"
    cover_open: bool | None = None


class PrinterPort(Protocol):
    """Port for the receipt printer: a print completes or
    raises PrinterFault saying whether bytes left."""

    def print_receipt(self, receipt: Receipt, job_id: str) -> None:
        """Print one receipt; raise PrinterFault if it did not print."""
        ...

    def print_end_of_day(self, report: EndOfDayReport, job_id: str, language: str = "id") -> None:
        """Print the day's report; raise PrinterFault if it did not print."""
        ...

    def status(self) -> PrinterStatus:
        """The printer's state without printing, so a fault shows before the next sale."""
        ...
