"""The in-process card reader: the card fake of the unit tests, and of the demo without pcscd + vpcd.

Its cards are the Applet itself (the virtual card's code), talked to through the terminal's own
CardClient, so the PIN try counter, the spend record's rules and every signature are the
applet's: they exist once, and a fast test exercises the same card the vpcd deck inserts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card.applet import Applet
from hardware.card.cardfile import CardFile, CardMemory
from hardware.card.certificate import key_id
from hardware.card.client import CardClient, CardGone, TransportError
from hardware.card.issuing import IssueRequest, personalise
from pos.ports import CardEvent, SpendRecord
from pos.refusals import Reason, Refusal

BEHAVIOURS = ("genuine", "forged", "cloned", "unreadable")


class ChipMemory(CardFile):
    """A card file kept in RAM only: an in-process card has nothing to outlive the process, and a
    unit test should not wait for fsync at every PIN try."""

    def __init__(self, memory: CardMemory) -> None:  # no path: nothing of it is on disk
        self.path = None  # type: ignore[assignment]
        self.memory = memory

    def save(self) -> None:
        """Nothing to write: the memory is the card."""


def demo_issuer() -> ec.EllipticCurvePrivateKey:
    """The DEMO issuer that signs every fake card, so a reader trusting the demo's keys reads them."""
    from pos.sample_city import demo_key

    return demo_key("issuer")


def demo_issuer_keys() -> dict[str, ec.EllipticCurvePublicKey]:
    """The trust a FakeReader starts with: the DEMO issuer's public key by key id."""
    pub = demo_issuer().public_key()
    return {key_id(pub): pub}


@dataclass(eq=False)
class FakeCard:
    """One card of the field tester's deck: who it is for and how it behaves; its chip is an Applet
    personalised by the DEMO issuer at first use. `forged` carries a certificate signed by another
    key, `cloned` a genuine certificate in a chip holding another key, `unreadable` never answers."""

    card_id: str
    household_id: str
    label: str = ""
    pin: str = "1234"
    pin_tries_max: int = 3
    valid_from: date = date(2025, 1, 1)
    valid_until: date = date(2029, 12, 31)
    behaviour: str = "genuine"

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"{self.card_id}: a card cannot act {self.behaviour!r} (one of {', '.join(BEHAVIOURS)})")

    @cached_property
    def applet(self) -> Applet:
        """The chip, made when first inserted or read (a deck of ten costs key generation ten times)."""
        other = ec.generate_private_key(ec.SECP256R1())
        memory = personalise(self.request(), demo_issuer(),
                             sign_with=other if self.behaviour == "forged" else None,
                             cert_key=other.public_key() if self.behaviour == "cloned" else None)
        return Applet(ChipMemory(memory))

    def request(self) -> IssueRequest:
        """What the issuer is asked to write on this card."""
        return IssueRequest(self.card_id, self.household_id, self.valid_from, self.valid_until, self.pin,
                            self.pin_tries_max, self.label)

    @property
    def memory(self) -> CardMemory:
        """The chip's persistent memory (tests read and reset it)."""
        return self.applet.card.memory

    @property
    def pin_tries_left(self) -> int:
        """The applet's own try counter."""
        return self.memory.pin_tries_left

    @pin_tries_left.setter
    def pin_tries_left(self, value: int) -> None:
        """Set the try counter (a test unblocking its card)."""
        self.memory.pin_tries_left = value

    @property
    def spend(self) -> SpendRecord:
        """The card's spend record as the applet keeps it."""
        m = self.memory
        return SpendRecord(m.spend_period, m.spent, m.counter)


class _Contact:
    """One session's contact with one card: it fails as the PC/SC adapter fails once the card is
    gone, the session closed, or the chip hung (the event first, as PcscReader's watchdog)."""

    def __init__(self, reader: FakeReader, applet: Applet, unreadable: bool) -> None:
        self.reader, self.applet, self.unreadable = reader, applet, unreadable
        self.closed = False
        self.stalled = False

    def transmit(self, command: bytes) -> bytes:
        reader = self.reader
        if self.closed:
            raise CardGone("session closed")
        if reader.applet is not self.applet:
            raise CardGone("card left the reader")
        if reader.not_answering:
            if not self.stalled:
                self.stalled = True
                reader._emit("card_not_answering")
            raise TransportError("card not answering: pull and re-insert the card")
        if self.unreadable:
            raise TransportError("no answer to SELECT")
        return reader._transmit(command)

    def close(self) -> None:
        self.closed = True


class FakeReader:
    """pos.ports.CardReaderPort in process. `insert` takes a FakeCard or a bare Applet (a card
    file's), `pull` takes it out; `unplug`/`plug` is the reader cable; `stop_answering` hangs the
    card in it; `transmit_hook(command, response)` lets a test play the device wedged between."""

    def __init__(self, issuer_keys: dict[str, ec.EllipticCurvePublicKey] | None = None,
                 name: str = "Fake Reader 00") -> None:
        self.issuer_keys = demo_issuer_keys() if issuer_keys is None else issuer_keys
        self.name = name
        self.applet: Applet | None = None
        self.card: FakeCard | None = None
        self.connected = True
        self.running = False
        self.not_answering = False
        """The card in the reader has stopped answering (`stop_answering`); cleared when it leaves."""
        self.sessions_opened = 0
        self.transmit_hook: Callable[[bytes, bytes], bytes] | None = None
        self._subs: list[Callable[[CardEvent], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[CardEvent], None]) -> None:
        """Card events go to `callback` on the caller's thread, as the port promises."""
        self._subs.append(callback)

    def start(self) -> None:
        """Nothing to watch: events fire from insert and pull."""
        self.running = True

    def stop(self) -> None:
        """The counterpart of start."""
        self.running = False

    def _emit(self, kind: str) -> None:
        for cb in list(self._subs):
            cb(CardEvent(kind, self.name))  # type: ignore[arg-type]

    def insert(self, card: FakeCard | Applet) -> None:
        """A card arrives (a card still in the reader leaves first); the chip powers up, as on contact."""
        applet = card.applet if isinstance(card, FakeCard) else card
        with self._lock:
            if self.applet is not None:
                self.applet = self.card = None
                self._emit("removed")
            self.applet, self.card, self.not_answering = applet, card if isinstance(card, FakeCard) else None, False
            applet.power_on()
        self._emit("inserted")

    def pull(self) -> None:
        """The card leaves the reader (nothing happens when none is in)."""
        with self._lock:
            had = self.applet is not None
            self.applet = self.card = None
            self.not_answering = False
        if had:
            self._emit("removed")

    def stop_answering(self) -> bool:
        """The card's chip hangs: its next call fails as PcscReader's transmit watchdog makes it fail
        (a "card_not_answering" event, then CARD_UNREADABLE), until the card is pulled out.
        False, and nothing changes, when no card is in the reader."""
        with self._lock:
            if self.applet is None:
                return False
            self.not_answering = True
            return True

    def unplug(self) -> None:
        """The reader cable comes out: the card goes with it."""
        self.applet = self.card = None
        self.connected = False
        self._emit("reader_lost")

    def plug(self) -> None:
        """The reader cable goes back in."""
        self.connected = True
        self._emit("reader_back")

    def _transmit(self, command: bytes) -> bytes:
        with self._lock:
            applet = self.applet
        if applet is None:
            raise CardGone("no card in the fake reader")
        response = applet.process(command)
        if self.transmit_hook:
            response = self.transmit_hook(command, response)
        return response

    def open_session(self) -> CardClient:
        """A session with the card in the reader, through the terminal's CardClient."""
        if not self.connected:
            raise Refusal(Reason.CARD_UNREADABLE, "reader disconnected")
        applet, card = self.applet, self.card
        if applet is None:
            raise Refusal(Reason.CARD_REMOVED, "no card in the reader")
        self.sessions_opened += 1
        contact = _Contact(self, applet, card is not None and card.behaviour == "unreadable")
        return CardClient(contact.transmit, self.issuer_keys, on_close=contact.close)
