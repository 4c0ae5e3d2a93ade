"""The field tester's card deck: its cards, and the same cards inserted through pcscd + vpcd.

`demo_deck` names the sample city's cards (in-process FakeCards, hardware.card.fake); PcscDeck
writes them as card files and inserts each as a virtual card process (`ewarung card insert`), so
the counter's production PcscReader reads them through the real PC/SC stack. Notes for the
panel are message ids of the screens' catalog, worded by `deck_note`/`fallback_note`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from pathlib import Path

from hardware.card.cardfile import CardFile
from hardware.card.fake import FakeCard
from hardware.card.pcscd import DeckUnavailable, Pcscd, die_with_parent, stop_group, wait_until
from hardware.card.vpcd import pidfile

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]


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


FALLBACK_NOTE = "Card deck: in-process, NOT through pcscd + vpcd: {why}. Fix: {fix}."
PCSCD_NOT_OURS_NOTE = ("The reader cable is pcscd itself, and this pcscd was not started by the demo: stop it "
                       "yourself (`sudo systemctl stop pcscd.socket pcscd`) to unplug the reader.")
NO_CARD_NOTE = "No card is in the reader: insert a card first, then press Card stops answering."
NOT_CONNECTED_NOTE = ("The card has not reached the reader yet (is the reader cable plugged in?): wait until the "
                      "card is read, then press Card stops answering again.")
"""Panel notes when there is no card to hang; message ids of the screens' catalog (the panel translates notes)."""
DECK_PROBLEM_NOTE = "Card deck: {why}. Fix: {fix}."
DECK_ERROR_NOTE = "Card deck: {error}. See the log."


def _english(msgid: str, **args: object) -> str:
    return msgid.format(**args)


def fallback_note(exc: BaseException, translate: Callable[..., str] = _english) -> str:
    """Why the demo fell back to the in-process deck, and how to fix it, worded by `translate`
    (the screens' gettext `_` on the panel; English, the default, for the log)."""
    if isinstance(exc, DeckUnavailable):
        why, fix = exc.worded(translate)
    else:  # an OSError's own text has no translation
        why, fix = str(exc), translate("see the log")
    return translate(FALLBACK_NOTE, why=why, fix=fix)


def deck_note(note: str | BaseException, translate: Callable[..., str] = _english) -> str:
    """A PcscDeck note worded by `translate` (the panel's `_`; English by default, for the log): a
    message id, or the problem an insert, pull or plug ran into."""
    if isinstance(note, str):
        return translate(note)
    if isinstance(note, DeckUnavailable):
        why, fix = note.worded(translate)
        return translate(DECK_PROBLEM_NOTE, why=why, fix=fix)
    return translate(DECK_ERROR_NOTE, error=f"{type(note).__name__}: {note}")  # an OSError's own text has no translation


def write_card_files(cards: list[FakeCard], directory: Path) -> dict[str, Path]:
    """One card file (hardware/card/cardfile.py) per deck card, holding that card's chip memory: the
    virtual card process then answers as the in-process card does (the same keys, certificate, PIN
    and validity, forged and cloned alike). Fresh at every start, as the in-process deck."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for i, card in enumerate(cards):
        if card.behaviour == "unreadable":
            raise ValueError(f"{card.card_id}: a virtual card cannot act {card.behaviour!r}")
        paths[card.card_id] = directory / f"deck-{i}.card.json"
        CardFile(paths[card.card_id], replace(card.memory)).save()
    return paths


class PcscDeck:
    """The field tester's deck inserted through the real PC/SC stack: `insert` starts the virtual
    card process (`ewarung card insert FILE`, vpcd slot `slot`) for that card, `pull` stops it, and
    the counter's PcscReader sees it arrive and leave through pcscd. Process work runs on the
    "demo-deck" worker thread, never on the caller's (UI) thread. Problems go to `on_note`."""

    def __init__(self, cards: list[FakeCard], directory: Path, pcscd: Pcscd, slot: int = 0) -> None:
        self.cards, self.directory, self.pcscd, self.slot = cards, directory, pcscd, slot
        self.run_dir = directory / "run"
        self.paths: dict[str, Path] = {}
        self.connected = True
        self.card: FakeCard | None = None
        self.proc: subprocess.Popen | None = None
        self._notes: list[Callable[[str], None]] = []
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-deck")
        self._closed = False
        self.can_unplug = False

    def start(self) -> None:
        """Write the card files and make pcscd + vpcd usable (raises DeckUnavailable). Blocking."""
        self.paths = write_card_files(self.cards, self.directory / "cards")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.pcscd.ensure()
        self.can_unplug = self.pcscd.owned
        atexit.register(self.close)

    def on_note(self, callback: Callable[[str | BaseException], None]) -> None:
        """`callback(note)` on the deck's worker: a message id or an exception (word it with `deck_note`)."""
        self._notes.append(callback)

    def _note(self, note: str | BaseException) -> None:
        log.warning("demo card deck: %s", deck_note(note))
        for cb in list(self._notes):
            cb(note)

    def _submit(self, fn: Callable[[], None]) -> Future | None:
        if self._closed:
            return None

        def job() -> None:
            try:
                fn()
            except Exception as exc:  # shown on the panel; the deck stays usable
                log.exception("demo card deck")
                self._note(exc)

        return self._io.submit(job)

    # --- what the panel calls (returns at once) ----------------------------------------------
    def insert(self, card: FakeCard) -> Future | None:
        """Start `card`'s virtual card process (a card in the slot is pulled first)."""
        return self._submit(lambda: self._insert(card))

    def pull(self) -> Future | None:
        """Stop the inserted card's process: pcscd sees the card leave."""
        return self._submit(self._pull)

    def unplug(self) -> Future | None:
        """The reader cable: stops the pcscd the demo started (every PC/SC client sees the reader go)."""
        if not self.can_unplug:
            self._note(PCSCD_NOT_OURS_NOTE)
            return None
        self.connected = False
        return self._submit(self.pcscd.stop)

    def plug(self) -> Future | None:
        """The reader cable back in: pcscd started again."""
        def start() -> None:
            self.pcscd.ensure()
            self.connected = True

        return self._submit(start)

    def stop_answering(self) -> Future | None:
        """The inserted card's chip hangs: SIGUSR1 to its process (`ewarung card insert`), which then
        answers no APDU until it is pulled; the counter's PcscReader watchdog gives up on the card's
        next command. A note says so when no card is in the reader."""
        return self._submit(self._stop_answering)

    # --- on the worker -----------------------------------------------------------------------
    @property
    def reader_name(self) -> str:
        """The PC/SC name of the vpcd slot the deck uses, which the counter's reader opens."""
        return f"Virtual PCD 00 {self.slot:02d}"

    def _wait_absent(self, timeout: float = 3.0) -> None:
        """Until pcscd itself reports no card (vpcd polls about every 0.4 s): a card swapped faster
        would look to pcscd like one card that never left."""
        from smartcard import scard as sc

        rc, ctx = sc.SCardEstablishContext(sc.SCARD_SCOPE_USER)
        if rc != sc.SCARD_S_SUCCESS:
            return
        try:
            def absent() -> bool:
                rc, states = sc.SCardGetStatusChange(ctx, 0, [(self.reader_name, sc.SCARD_STATE_UNAWARE)])
                return rc != sc.SCARD_S_SUCCESS or not states[0][1] & sc.SCARD_STATE_PRESENT

            wait_until(absent, timeout)
        finally:
            sc.SCardReleaseContext(ctx)

    def _insert(self, card: FakeCard) -> None:
        if self.proc is not None:
            self._pull()
            self._wait_absent()
        self._pid_path.unlink(missing_ok=True)
        env = dict(os.environ, EWARUNG_RUN_DIR=str(self.run_dir),
                   PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
        with open(self.directory / "virtual-card.log", "ab") as logf:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pos.cli.main", "card", "insert", str(self.paths[card.card_id]),
                 "--reader", str(self.slot)],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                start_new_session=True, preexec_fn=die_with_parent)
        self.proc, self.card = proc, card

        if not self.connected:  # into an unplugged reader: the card connects once pcscd is back
            return

        if not wait_until(lambda: self._in_reader(proc) or proc.poll() is not None, 15):
            self._pull()
            raise DeckUnavailable("the virtual card did not reach vpcd within 15 s",
                                  "is another card in reader slot {slot}? see {log}",
                                  slot=self.slot, log=self.directory / "virtual-card.log")
        if proc.poll() is not None:
            self.proc = self.card = None
            raise DeckUnavailable("the virtual card process stopped (exit {code})", "see {log}",
                                  code=proc.returncode, log=self.directory / "virtual-card.log")

    @property
    def _pid_path(self) -> Path:
        return pidfile(self.run_dir, self.slot)

    def _in_reader(self, proc: subprocess.Popen) -> bool:
        """Has the card process reached vpcd? It writes its pidfile then, after installing its signal handlers."""
        with contextlib.suppress(OSError):
            return self._pid_path.read_text().strip() == str(proc.pid)
        return False

    def _stop_answering(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            self._note(NO_CARD_NOTE)
        elif not self._in_reader(proc):  # SIGUSR1 before its handler is installed would end the process
            self._note(NOT_CONNECTED_NOTE)
        else:
            os.kill(proc.pid, signal.SIGUSR1)
            log.info("demo card deck: the card in %s stops answering (SIGUSR1 to %d)", self.reader_name, proc.pid)

    def _pull(self) -> None:
        proc, self.proc, self.card = self.proc, None, None
        if proc is not None:
            stop_group(proc)

    def close(self) -> None:
        """Pull the card and stop a pcscd we started (app stop, atexit). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._io.shutdown(wait=True, cancel_futures=True)
        self._pull()
        self.pcscd.stop()
