"""PC/SC reader adapter over pyscard's low-level scard API (implements pos.ports.CardReaderPort).

We own the monitoring loop (pyscard's CardMonitor/ReaderMonitor die for good when pcscd
restarts, pyscard issues #82/#128): SCardGetStatusChange with a short timeout on our own
thread, the context re-established with backoff after any error. Events (inserted, removed,
reader_lost, reader_back) are delivered on that thread. Card I/O runs on a separate "card-io"
worker (`submit`), never on the UI thread; each session has its own PC/SC context.

Watchdog: a card or reader that stops answering would leave SCardTransmit blocked for good
(pcsc-lite has no transmit timeout, and SCardCancel does not cancel a transmit). Every transmit
therefore runs on its own daemon thread with a deadline (`transmit_timeout`). Past it the session
is dead: the subscribers get a "card_not_answering" event, the caller gets
TransportError -> Refusal(CARD_UNREADABLE, "card not answering ... pull and re-insert the card"),
and the session's handle and context are reset and released on a background thread (pcsc-lite
serialises calls per context, so that clean-up waits behind the stuck transmit; it cannot block
the counter). The next session opens a fresh context; pulling the card ends the stuck call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card.client import CardClient, CardGone, Transmit, TransportError
from pos.ports import CardEvent
from pos.refusals import Reason, Refusal

log = logging.getLogger(__name__)

NOT_ANSWERING = "card not answering: pull and re-insert the card"


class CardNotAnswering(TransportError):
    """A transmit passed its deadline: the session is abandoned (maps to CARD_UNREADABLE)."""


def with_deadline(transmit: Transmit, timeout: float, on_stall: Callable[[], None]) -> Transmit:
    """Wrap a blocking transmit so no call waits longer than `timeout` seconds.

    The call runs on a fresh daemon thread (a stuck C call cannot be interrupted, only abandoned).
    After the first stall every further call fails at once: the card's state is unknown.
    """
    stalled = threading.Event()

    def guarded(command: bytes) -> bytes:
        if stalled.is_set():
            raise CardNotAnswering(NOT_ANSWERING)
        box: dict[str, object] = {}
        done = threading.Event()

        def run() -> None:
            try:
                box["ok"] = transmit(command)
            except BaseException as exc:  # handed to the caller's thread below
                box["err"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name="pcsc-transmit", daemon=True).start()
        if not done.wait(timeout):
            stalled.set()
            log.warning("card did not answer within %.1f s; session abandoned", timeout)
            on_stall()
            raise CardNotAnswering(f"no answer within {timeout:g} s; {NOT_ANSWERING}")
        if "err" in box:
            raise box["err"]  # type: ignore[misc]
        return box["ok"]  # type: ignore[return-value]

    guarded.stalled = stalled  # type: ignore[attr-defined]
    return guarded


def _sc():
    from smartcard import scard

    return scard


class PcscReader:
    """The counter's card reader on pcscd, built to outlive pcscd restarts and hung cards (the module
    docstring says how)."""

    def __init__(self, issuer_keys: dict[str, ec.EllipticCurvePublicKey], name: str = "",
                 poll_ms: int = 200, max_backoff: float = 2.0, transmit_timeout: float = 5.0,
                 allow_virtual: bool = False) -> None:
        """`allow_virtual` only for demo, lab and tests: otherwise a virtual reader (vpcd, by name or
        driver; see hardware.card.virtual_readers) is never taken, even when `name` matches it."""
        self.issuer_keys = issuer_keys
        self.name_filter = name
        self.allow_virtual = allow_virtual
        self._refused: set[str] = set()
        self.poll_ms = poll_ms
        self.max_backoff = max_backoff
        self.transmit_timeout = transmit_timeout  # seconds; a real card's slowest APDU (ECDSA) is ~1 s
        self._subs: list[Callable[[CardEvent], None]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="card-io")
        self.reader: str | None = None
        self.card_present = False
        self._lost_reported = False

    # --- port ------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[CardEvent], None]) -> None:
        """Add a receiver of card and reader events; it runs on the monitor thread, so it must hand work off."""
        self._subs.append(callback)

    def start(self) -> None:
        """Start the monitor thread; a no-op while it runs, so a caller need not track whether it did."""
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._monitor, name="pcsc-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the monitor and drop queued card I/O at shutdown, without waiting on a transmit stuck in pcscd."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2 + self.poll_ms / 1000)
        self._io.shutdown(wait=False, cancel_futures=True)

    def submit(self, fn: Callable[[], object]) -> Future:
        """Run card I/O on the card-io worker thread."""
        return self._io.submit(fn)

    def open_session(self) -> CardClient:
        """Connect to the card now present on a fresh PC/SC context, every transmit under the deadline
        watchdog, so a hung card cannot hold the counter."""
        sc = _sc()
        reader = self.reader
        if reader is None:
            raise Refusal(Reason.CARD_UNREADABLE, "no PC/SC reader")
        rc, ctx = sc.SCardEstablishContext(sc.SCARD_SCOPE_USER)
        if rc != sc.SCARD_S_SUCCESS:
            raise Refusal(Reason.CARD_UNREADABLE, f"PC/SC: {sc.SCardGetErrorMessage(rc)}")
        rc, card, proto = sc.SCardConnect(ctx, reader, sc.SCARD_SHARE_SHARED,
                                          sc.SCARD_PROTOCOL_T0 | sc.SCARD_PROTOCOL_T1)
        if rc != sc.SCARD_S_SUCCESS:
            sc.SCardReleaseContext(ctx)
            if rc in (sc.SCARD_E_NO_SMARTCARD, sc.SCARD_W_REMOVED_CARD):
                raise Refusal(Reason.CARD_REMOVED, "no card in the reader")
            raise Refusal(Reason.CARD_UNREADABLE, f"connect: {sc.SCardGetErrorMessage(rc)}")
        gone = {sc.SCARD_W_REMOVED_CARD, sc.SCARD_E_NO_SMARTCARD, sc.SCARD_W_RESET_CARD,
                sc.SCARD_E_READER_UNAVAILABLE, sc.SCARD_E_NO_SERVICE, sc.SCARD_E_SERVICE_STOPPED,
                sc.SCARD_W_UNPOWERED_CARD, sc.SCARD_E_INVALID_HANDLE}

        def transmit(command: bytes) -> bytes:
            rc, resp = sc.SCardTransmit(card, proto, list(command))
            if rc in gone:
                raise CardGone(sc.SCardGetErrorMessage(rc))
            if rc != sc.SCARD_S_SUCCESS:
                raise TransportError(sc.SCardGetErrorMessage(rc))
            return bytes(resp)

        def release(disposition: int) -> None:
            sc.SCardDisconnect(card, disposition)
            sc.SCardReleaseContext(ctx)

        def on_stall() -> None:
            # reset the card (its RAM state, e.g. PIN verified, is void) and drop the context; this
            # waits behind the stuck transmit inside pcsc-lite, so it runs on its own thread
            threading.Thread(target=release, args=(sc.SCARD_RESET_CARD,), name="pcsc-reset", daemon=True).start()
            self._emit("card_not_answering")

        guarded = with_deadline(transmit, self.transmit_timeout, on_stall)

        def close() -> None:
            if not guarded.stalled.is_set():  # type: ignore[attr-defined]
                release(sc.SCARD_LEAVE_CARD)

        return CardClient(guarded, self.issuer_keys, on_close=close)

    # --- monitoring ------------------------------------------------------------------
    def _emit(self, kind: str) -> None:
        event = CardEvent(kind, self.reader or "")  # type: ignore[arg-type]
        for cb in list(self._subs):
            try:
                cb(event)
            except Exception:  # a subscriber's bug must not kill the monitor
                log.exception("card event subscriber failed")

    def _lost(self) -> None:
        if self.card_present:
            self.card_present = False
            self._emit("removed")
        if not self._lost_reported:
            self._lost_reported = True
            self._emit("reader_lost")

    def _pick(self, readers: list[str]) -> str | None:
        from hardware.card.virtual_readers import is_virtual

        for r in readers:
            if self.name_filter not in r:
                continue
            if not self.allow_virtual and is_virtual(r):
                if r not in self._refused:
                    self._refused.add(r)
                    log.warning("reader %r is a virtual (vpcd) reader: refused outside a demo or lab configuration", r)
                continue
            return r
        return None

    def _monitor(self) -> None:
        sc = _sc()
        backoff = 0.05
        ctx = None
        first = True
        while not self._stop.is_set():
            if ctx is None:
                rc, new_ctx = sc.SCardEstablishContext(sc.SCARD_SCOPE_USER)
                if rc != sc.SCARD_S_SUCCESS:
                    self._lost()
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                ctx, backoff = new_ctx, 0.05
            rc, readers = sc.SCardListReaders(ctx, [])
            reader = self._pick(readers) if rc == sc.SCARD_S_SUCCESS else None
            if reader is None:
                if rc not in (sc.SCARD_S_SUCCESS, sc.SCARD_E_NO_READERS_AVAILABLE):
                    sc.SCardReleaseContext(ctx)
                    ctx = None
                self._lost()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if reader != self.reader or self._lost_reported or first:
                self.reader = reader
                if self._lost_reported:
                    self._lost_reported = False
                    self._emit("reader_back")
                first = False
            state = sc.SCARD_STATE_UNAWARE
            while not self._stop.is_set():
                rc, states = sc.SCardGetStatusChange(ctx, self.poll_ms, [(reader, state)])
                if rc == sc.SCARD_E_TIMEOUT:
                    continue
                if rc != sc.SCARD_S_SUCCESS:
                    break
                _, event_state, _atr = states[0]
                if event_state & (sc.SCARD_STATE_UNKNOWN | sc.SCARD_STATE_IGNORE | sc.SCARD_STATE_UNAVAILABLE):
                    rc = sc.SCARD_E_READER_UNAVAILABLE
                    break
                present = bool(event_state & sc.SCARD_STATE_PRESENT) and not (event_state & sc.SCARD_STATE_MUTE)
                if present != self.card_present:
                    self.card_present = present
                    self._emit("inserted" if present else "removed")
                state = event_state & ~sc.SCARD_STATE_CHANGED
            if self._stop.is_set():
                break
            log.info("PC/SC monitor: %s; re-establishing", sc.SCardGetErrorMessage(rc))
            sc.SCardReleaseContext(ctx)
            ctx = None
            self._lost()
        if ctx is not None:
            sc.SCardReleaseContext(ctx)
