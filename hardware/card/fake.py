"""In-process fake reader over the same Applet object: fast unit tests, no pcscd."""

from __future__ import annotations

import threading
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card.applet import Applet
from hardware.card.client import CardClient, CardGone
from pos.ports import CardEvent
from pos.refusals import Reason, Refusal


class FakeReader:
    """Implements pos.ports.CardReaderPort; tests call insert()/remove()/unplug()/replug()."""

    name = "Fake Reader 00"

    def __init__(self, issuer_keys: dict[str, ec.EllipticCurvePublicKey]) -> None:
        self.issuer_keys = issuer_keys
        self.applet: Applet | None = None
        self._subs: list[Callable[[CardEvent], None]] = []
        self._lock = threading.Lock()
        self.running = False
        self.transmit_hook: Callable[[bytes, bytes], bytes] | None = None  # (command, response) -> response

    def subscribe(self, callback: Callable[[CardEvent], None]) -> None:
        self._subs.append(callback)

    def start(self) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False

    def _emit(self, kind: str) -> None:
        for cb in list(self._subs):
            cb(CardEvent(kind, self.name))  # type: ignore[arg-type]

    def insert(self, applet: Applet) -> None:
        with self._lock:
            self.applet = applet
            applet.power_on()
        self._emit("inserted")

    def remove(self) -> None:
        with self._lock:
            self.applet = None
        self._emit("removed")

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
        if self.applet is None:
            raise Refusal(Reason.CARD_REMOVED, "no card in the reader")
        return CardClient(self._transmit, self.issuer_keys)
