"""The transmit watchdog, fast: the fake card's applet told to hang, and PcscReader over a fake scard."""

from __future__ import annotations

import threading
import time
import types

import pytest

from hardware.card import pcsc_reader
from hardware.card.applet import Applet
from hardware.card.cardfile import CardFile
from hardware.card.client import CardClient
from hardware.card.fake import FakeReader
from hardware.card.pcsc_reader import CardNotAnswering, PcscReader, with_deadline
from pos.refusals import Reason, Refusal
from tests.card_fixtures import issuer_keys


def _hang_at(step: int, release: threading.Event):
    seen = {"n": 0}

    def hook(command: bytes, response: bytes) -> bytes:
        seen["n"] += 1
        if seen["n"] == step:
            release.wait(10)
        return response
    return hook


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 6])
def test_hung_card_refused_within_deadline(deck, city, step):
    reader = FakeReader(issuer_keys())
    reader.insert(Applet(CardFile.load(deck["holder"])))
    release = threading.Event()
    reader.transmit_hook = _hang_at(step, release)
    stalls = []
    client = CardClient(with_deadline(reader._transmit, 0.2, lambda: stalls.append(1)), issuer_keys())
    t0 = time.monotonic()
    try:
        with pytest.raises(Refusal) as e:
            client.authenticate()
            client.verify_pin("123456")
            client.record_spend(city.period, 5_000)
        assert time.monotonic() - t0 < 1.5
        assert e.value.reason is Reason.CARD_UNREADABLE and "not answering" in e.value.detail
        assert stalls == [1]
        with pytest.raises(CardNotAnswering):  # the session stays dead: no second wait
            client._transmit(b"\x00\xa4\x04\x00")
    finally:
        release.set()


def test_errors_and_answers_pass_through_the_watchdog():
    guarded = with_deadline(lambda c: c + b"\x90\x00", 1.0, lambda: None)
    assert guarded(b"\x01") == b"\x01\x90\x00"

    def boom(c):
        raise ValueError("driver")
    with pytest.raises(ValueError, match="driver"):
        with_deadline(boom, 1.0, lambda: None)(b"")


class _FakeScard(types.SimpleNamespace):
    """Just enough of smartcard.scard for open_session; SCardTransmit hangs until released."""

    def __init__(self):
        super().__init__(SCARD_S_SUCCESS=0, SCARD_SCOPE_USER=0, SCARD_SHARE_SHARED=2, SCARD_PROTOCOL_T0=1,
                         SCARD_PROTOCOL_T1=2, SCARD_LEAVE_CARD=0, SCARD_RESET_CARD=1,
                         SCARD_E_NO_SMARTCARD=10, SCARD_W_REMOVED_CARD=11, SCARD_W_RESET_CARD=12,
                         SCARD_E_READER_UNAVAILABLE=13, SCARD_E_NO_SERVICE=14, SCARD_E_SERVICE_STOPPED=15,
                         SCARD_W_UNPOWERED_CARD=16, SCARD_E_INVALID_HANDLE=17)
        self.release = threading.Event()
        self.lock = threading.Lock()  # pcsc-lite serialises calls on one context
        self.calls = []

    def SCardEstablishContext(self, scope):
        return 0, "ctx"

    def SCardConnect(self, ctx, reader, share, proto):
        return 0, "card", 2

    def SCardTransmit(self, card, proto, command):
        with self.lock:
            self.release.wait(10)
            return 0x80100016, []  # SCARD_W_REMOVED_CARD-like failure once the card is pulled

    def SCardDisconnect(self, card, disposition):
        with self.lock:
            self.calls.append(("disconnect", disposition))
        return 0

    def SCardReleaseContext(self, ctx):
        self.calls.append(("release", ctx))
        return 0

    def SCardGetErrorMessage(self, rc):
        return f"rc {rc:#x}"


def test_pcsc_reader_abandons_stuck_transmit_resets_card_and_tells_the_core(monkeypatch):
    sc = _FakeScard()
    monkeypatch.setattr(pcsc_reader, "_sc", lambda: sc)
    reader = PcscReader(issuer_keys(), transmit_timeout=0.2)
    reader.reader = "Fake 00"
    events = []
    reader.subscribe(events.append)
    session = reader.open_session()
    t0 = time.monotonic()
    with pytest.raises(Refusal) as e:
        session.authenticate()
    assert e.value.reason is Reason.CARD_UNREADABLE and "pull and re-insert" in e.value.detail
    session.close()  # must not block behind the stuck transmit
    assert time.monotonic() - t0 < 1.0
    assert [ev.kind for ev in events] == ["card_not_answering"]
    assert sc.calls == []  # the reset waits for pcsc-lite's context lock...
    sc.release.set()  # ...until the card is pulled and the transmit returns
    deadline = time.monotonic() + 2
    while len(sc.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sc.calls == [("disconnect", sc.SCARD_RESET_CARD), ("release", "ctx")]
