"""In-process stand-ins for the card reader and the printer, faithful to pos.ports.

Used by the counter app's demo mode and by the tests (tests/fakes.py) until the lead wires the
real adapters (hardware/: pcscd + vpcd virtual card, python-escpos printer). They raise the same
refusals the real adapters raise: CARD_REMOVED when the card left mid-call, PIN_WRONG (with
`tries_left`), PIN_BLOCKED, CARD_FORGED, CARD_CLONED, CARD_UNREADABLE; PrinterFault for printers.
No kivy import here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from pos.end_of_day import EndOfDayReport
from pos.ports import (
    AuthenticatedCard,
    CardCertificate,
    CardEvent,
    PrinterFault,
    PrinterStatus,
    SpendRecord,
)
from pos.receipt import Receipt
from pos.refusals import Reason, Refusal


def _pin_wrong(tries_left: int) -> Refusal:
    exc = Refusal(Reason.PIN_WRONG, f"{tries_left} tries left")
    exc.tries_left = tries_left  # type: ignore[attr-defined]
    return exc


@dataclass
class FakeCard:
    """One SSN card: certificate, PIN with a persistent try counter, monotonic spend record."""

    card_id: str
    household_id: str
    label: str = ""
    pin: str = "1234"
    pin_tries_max: int = 3
    pin_tries_left: int = 3
    valid_from: date = date(2025, 1, 1)
    valid_until: date = date(2029, 12, 31)
    spend: SpendRecord = field(default_factory=lambda: SpendRecord("", 0, 0))
    behaviour: str = "genuine"  # genuine | forged | cloned | unreadable

    def certificate(self) -> CardCertificate:
        return CardCertificate(self.card_id, self.household_id, self.valid_from, self.valid_until, "ewarung-demo-card-issuer")


class FakeCardSession:
    def __init__(self, reader: FakeCardReader, card: FakeCard) -> None:
        self._reader = reader
        self._card = card
        self._closed = False

    def _present(self) -> FakeCard:
        if self._closed:
            raise Refusal(Reason.CARD_REMOVED, "session closed")
        if self._reader.card is not self._card:
            raise Refusal(Reason.CARD_REMOVED, "card left the reader")
        return self._card

    def authenticate(self) -> AuthenticatedCard:
        card = self._present()
        if card.behaviour == "forged":
            raise Refusal(Reason.CARD_FORGED, "issuer signature does not verify")
        if card.behaviour == "cloned":
            raise Refusal(Reason.CARD_CLONED, "internal authenticate signature does not verify")
        if card.behaviour == "unreadable":
            raise Refusal(Reason.CARD_UNREADABLE, "no answer to SELECT")
        return AuthenticatedCard(card.certificate(), card.spend, card.pin_tries_left)

    def verify_pin(self, pin: str) -> None:
        card = self._present()
        if card.pin_tries_left <= 0:
            raise Refusal(Reason.PIN_BLOCKED, card.card_id)
        card.pin_tries_left -= 1  # decremented before comparing, like the applet
        if pin != card.pin:
            if card.pin_tries_left <= 0:
                raise Refusal(Reason.PIN_BLOCKED, card.card_id)
            raise _pin_wrong(card.pin_tries_left)
        card.pin_tries_left = card.pin_tries_max

    def record_spend(self, period: str, spent_total: int) -> SpendRecord:
        card = self._present()
        old = card.spend
        if old.period == period and spent_total < old.spent:
            raise ValueError(f"spend record only grows: {spent_total} < {old.spent}")
        card.spend = SpendRecord(period, spent_total, old.counter + 1)
        return card.spend

    def close(self) -> None:
        self._closed = True


class FakeCardReader:
    """A reader with a deck of cards; `insert` and `pull` fire CardEvents to subscribers."""

    def __init__(self, name: str = "Demo Reader 00") -> None:
        self.name = name
        self.card: FakeCard | None = None
        self.connected = True
        self._subscribers: list[Callable[[CardEvent], None]] = []
        self._lock = threading.Lock()
        self.sessions_opened = 0

    def subscribe(self, callback: Callable[[CardEvent], None]) -> None:
        self._subscribers.append(callback)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def _emit(self, kind: str) -> None:
        for cb in list(self._subscribers):
            cb(CardEvent(kind, self.name))  # type: ignore[arg-type]

    def insert(self, card: FakeCard) -> None:
        with self._lock:
            if self.card is not None:
                self.card = None
                self._emit("removed")
            self.card = card
        self._emit("inserted")

    def pull(self) -> None:
        with self._lock:
            had = self.card is not None
            self.card = None
        if had:
            self._emit("removed")

    def unplug(self) -> None:
        self.card = None
        self.connected = False
        self._emit("reader_lost")

    def plug(self) -> None:
        self.connected = True
        self._emit("reader_back")

    def open_session(self) -> FakeCardSession:
        if not self.connected:
            raise Refusal(Reason.CARD_UNREADABLE, "reader disconnected")
        card = self.card
        if card is None:
            raise Refusal(Reason.CARD_REMOVED, "no card in the reader")
        self.sessions_opened += 1
        return FakeCardSession(self, card)


class FakePrinter:
    """Keeps every printed receipt; `fault` makes the next prints fail like a real printer."""

    def __init__(self) -> None:
        self.printed: list[tuple[str, Receipt]] = []
        self.reports: list[tuple[str, EndOfDayReport]] = []
        self.fault: str = ""  # "" | offline | paper_out | cover_open | error
        self._listeners: list[Callable[[Receipt], None]] = []

    def on_print(self, callback: Callable[[Receipt], None]) -> None:
        self._listeners.append(callback)

    def print_receipt(self, receipt: Receipt, job_id: str) -> None:
        if self.fault:
            raise PrinterFault(self.fault, "demo printer")  # type: ignore[arg-type]
        self.printed.append((job_id, receipt))
        for cb in list(self._listeners):
            cb(receipt)

    def print_end_of_day(self, report: EndOfDayReport, job_id: str, language: str = "id") -> None:
        if self.fault:
            raise PrinterFault(self.fault, "demo printer")  # type: ignore[arg-type]
        self.reports.append((job_id, report))

    def status(self) -> PrinterStatus:
        if self.fault == "offline":
            return PrinterStatus(False, "unknown")
        if self.fault == "paper_out":
            return PrinterStatus(True, "out")
        if self.fault == "cover_open":
            return PrinterStatus(True, "ok", True)
        return PrinterStatus(True, "ok", False)


def demo_deck(notable: dict[str, str]) -> list[FakeCard]:
    """The field tester's deck for the sample city (`SampleCity.notable` roles -> household ids)."""
    deck = [
        FakeCard(f"CARD-{notable['holder']}", notable["holder"], "Pemegang kartu / holder"),
        FakeCard(f"CARD-{notable['representative']}", notable["representative"], "Dengan wakil / with representative"),
        FakeCard(f"CARD-{notable['quotas']}", notable["quotas"], "Jatah barang / item quotas"),
        FakeCard(f"CARD-{notable['partly_spent']}", notable["partly_spent"], "Sudah belanja / partly spent"),
        FakeCard(f"CARD-{notable['used_up']}", notable["used_up"], "Bantuan habis / used up"),
        FakeCard(f"CARD-{notable['revoked']}", notable["revoked"], "Keluarga dicabut / household revoked"),
        FakeCard("CARD-REVOKED-DEMO", notable["holder"], "Kartu diblokir / card on hotlist"),
        FakeCard(f"CARD-X-{notable['holder']}", notable["holder"], "Kartu palsu / forged", behaviour="forged"),
        FakeCard(f"CARD-C-{notable['holder']}", notable["holder"], "Kartu salinan / cloned", behaviour="cloned"),
        FakeCard(f"CARD-E-{notable['holder']}", notable["holder"], "Kartu kedaluwarsa / expired card",
                 valid_until=date(2025, 12, 31)),
    ]
    return deck
