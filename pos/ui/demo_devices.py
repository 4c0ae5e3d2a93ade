"""The field tester's card deck and demo printer.

In-process stand-ins for the card reader and the printer, faithful to pos.ports: used by the
tests (tests/fakes.py) and by demo mode when pcscd + vpcd cannot be used. They raise the same
refusals the real adapters raise: CARD_REMOVED when the card left mid-call, PIN_WRONG (with
`tries_left`), PIN_BLOCKED, CARD_FORGED, CARD_CLONED, CARD_UNREADABLE; PrinterFault for printers.

PcscDeck: the same deck as real card files inserted through pcscd + vsmartcard's vpcd (one
`ewarung card insert` child process per inserted card), read by the production PcscReader.
No kivy import here.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from hardware.card.vpcd import PCSCD_SOCKET, pcscd_answers, pidfile, vpcd_listening
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
        self._stalled = False

    def _present(self) -> FakeCard:
        if self._closed:
            raise Refusal(Reason.CARD_REMOVED, "session closed")
        if self._reader.card is not self._card:
            raise Refusal(Reason.CARD_REMOVED, "card left the reader")
        if self._reader.not_answering:  # as PcscReader's watchdog: one event, then this session is dead
            if not self._stalled:
                self._stalled = True
                self._reader._emit("card_not_answering")
            raise Refusal(Reason.CARD_UNREADABLE, "card not answering: pull and re-insert the card")
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
        self.not_answering = False
        """The card in the reader has stopped answering (`stop_answering`); cleared when it leaves."""

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
            self.card, self.not_answering = card, False
        self._emit("inserted")

    def pull(self) -> None:
        with self._lock:
            had = self.card is not None
            self.card, self.not_answering = None, False
        if had:
            self._emit("removed")

    def stop_answering(self) -> bool:
        """The card's chip hangs: its next call fails as PcscReader's transmit watchdog makes it fail
        (a "card_not_answering" event, then CARD_UNREADABLE), until the card is pulled out.
        False, and nothing changes, when no card is in the reader."""
        with self._lock:
            if self.card is None:
                return False
            self.not_answering = True
            return True

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
        for cb in list(self._listeners):
            cb(report)

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


# --- the same deck through the real PC/SC stack (pcscd + vsmartcard's vpcd) -------------------

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
PCSCD_COMMAND = ("pcscd", "-f")
BOOTSTRAP_FIX = "run `sudo ./scripts/bootstrap.sh` (installs pcscd and vsmartcard-vpcd), then start the demo again"
VPCD_FIX = ("install vsmartcard-vpcd: run `sudo ./scripts/bootstrap.sh` (installs pcscd and vsmartcard-vpcd), "
            "then start the demo again")


FALLBACK_NOTE = "Card deck: in-process, NOT through pcscd + vpcd: {why}. Fix: {fix}."
PCSCD_NOT_OURS_NOTE = ("The reader cable is pcscd itself, and this pcscd was not started by the demo: stop it "
                       "yourself (`sudo systemctl stop pcscd.socket pcscd`) to unplug the reader.")
NO_CARD_NOTE = "No card is in the reader: insert a card first, then press Card stops answering."
NOT_CONNECTED_NOTE = ("The card has not reached the reader yet (is the reader cable plugged in?): wait until the "
                      "card is read, then press Card stops answering again.")
"""Panel notes when there is no card to hang; message ids of the screens' catalog (the panel translates notes)."""
DECK_PROBLEM_NOTE = "Card deck: {why}. Fix: {fix}."
DECK_ERROR_NOTE = "Card deck: {error}. See the log."


class DeckUnavailable(Exception):
    """pcscd + vpcd cannot be used: `why` it cannot, and how to `fix` it (English, for the log).

    `why_id` and `fix_id` are the same texts as message ids of the screens' gettext catalog with
    `{name}` fields filled from `fields`, so the field tester's panel can say them in the counter's
    language (`fallback_note`)."""

    def __init__(self, why: str, fix: str, **fields: object) -> None:
        self.why_id, self.fix_id, self.fields = why, fix, fields
        self.why, self.fix = why.format(**fields), fix.format(**fields)
        super().__init__(f"{self.why}; {self.fix}")

    def worded(self, translate: Callable[..., str]) -> tuple[str, str]:
        """Why and fix, worded by `translate`."""
        return translate(self.why_id, **self.fields), translate(self.fix_id, **self.fields)


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


def _die_with_parent() -> None:  # preexec_fn: SIGTERM to the child when the demo dies, even by SIGKILL
    import ctypes

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the demo died before prctl took effect
        os._exit(1)


def _wait(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def _stop_group(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM the child's process group (it runs in its own session), SIGKILL if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Pcscd:
    """pcscd with the vpcd reader: a running daemon is reused; otherwise `pcscd -f` runs as our child
    (its own process group, stopped by stop() and if the demo dies)."""

    def __init__(self, port: int, log_path: Path, socket_path: Path | None = None,
                 command: tuple[str, ...] | None = None, timeout: float = 10.0) -> None:
        self.port, self.log_path, self.timeout = port, log_path, timeout
        self.socket_path = socket_path or PCSCD_SOCKET
        self.command = command or PCSCD_COMMAND
        self.proc: subprocess.Popen | None = None

    @property
    def owned(self) -> bool:
        return self.proc is not None

    def ensure(self) -> None:
        """Make pcscd + vpcd usable or raise DeckUnavailable. Blocks up to ~2 x timeout: not on the UI thread."""
        if pcscd_answers(self.socket_path):
            if not _wait(lambda: vpcd_listening(self.port), 3):
                raise DeckUnavailable("pcscd is running but vpcd is not listening on port {port}",
                                      "install vsmartcard-vpcd (`sudo ./scripts/bootstrap.sh`), then restart pcscd "
                                      "(`sudo systemctl restart pcscd`)", port=self.port)
            return
        exe = shutil.which(self.command[0])
        if exe is None:
            raise DeckUnavailable("pcscd is not installed", BOOTSTRAP_FIX)
        if vpcd_listening(self.port):
            raise DeckUnavailable("pcscd is not running and port {port} (vpcd's) is used by another program",
                                  "stop that program (`sudo ss -ltnp 'sport = :{port}'` names it)", port=self.port)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen([exe, *self.command[1:]], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         start_new_session=True, preexec_fn=_die_with_parent)
        proc = self.proc
        if not _wait(lambda: proc.poll() is not None or pcscd_answers(self.socket_path), self.timeout):
            self.stop()
            raise DeckUnavailable("pcscd did not open {socket} within {seconds} s",
                                  "see {log}; or start it yourself: `sudo systemctl start pcscd`",
                                  socket=self.socket_path, seconds=f"{self.timeout:.0f}", log=self.log_path)
        if proc.poll() is not None:
            self.proc = None
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            fix = ("pcscd needs root: run `sudo ./scripts/demo.sh`, or start it once with `sudo systemctl start pcscd`"
                   if os.geteuid() != 0 else "see {log}")
            raise DeckUnavailable("pcscd could not start (exit {code}: {output})", fix,
                                  code=proc.returncode, output=tail[0][-160:], log=self.log_path)
        if not _wait(lambda: vpcd_listening(self.port), self.timeout):
            self.stop()
            raise DeckUnavailable("pcscd started but vpcd is not listening on port {port}", VPCD_FIX, port=self.port)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            _stop_group(proc, 10)
            _wait(lambda: not pcscd_answers(self.socket_path), 5)


def write_card_files(cards: list[FakeCard], directory: Path) -> dict[str, Path]:
    """One card file (hardware/card/cardfile.py) per deck card, issued by the DEMO issuer: the same
    household, card id, PIN and validity; forged cards signed by another key, cloned cards carrying
    the genuine card's certificate in a chip with another key. Fresh at every start, as the fake deck."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from hardware.card.cardfile import CardFile
    from hardware.card.issuing import IssueRequest, issue
    from pos.sample_city import demo_key

    issuer = demo_key("issuer")
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    genuine: dict[str, CardFile] = {}
    for i, card in enumerate(cards):
        path = directory / f"deck-{i}.card.json"
        req = IssueRequest(card.card_id, card.household_id, card.valid_from, card.valid_until, card.pin,
                           card.pin_tries_max, card.label)
        forged = ec.generate_private_key(ec.SECP256R1()) if card.behaviour == "forged" else None
        written = issue(path, req, issuer, sign_with=forged)
        if card.behaviour == "genuine":
            genuine.setdefault(card.household_id, written)
        elif card.behaviour == "cloned":
            written.memory.certificate_hex = genuine[card.household_id].memory.certificate_hex
            written.save()
        elif card.behaviour != "forged":
            raise ValueError(f"{card.card_id}: a virtual card cannot act {card.behaviour!r}")
        paths[card.card_id] = path
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
        return self._submit(lambda: self._insert(card))

    def pull(self) -> Future | None:
        return self._submit(self._pull)

    def unplug(self) -> Future | None:
        """The reader cable: stops the pcscd the demo started (every PC/SC client sees the reader go)."""
        if not self.can_unplug:
            self._note(PCSCD_NOT_OURS_NOTE)
            return None
        self.connected = False
        return self._submit(self.pcscd.stop)

    def plug(self) -> Future | None:
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

            _wait(absent, timeout)
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
                start_new_session=True, preexec_fn=_die_with_parent)
        self.proc, self.card = proc, card

        if not self.connected:  # into an unplugged reader: the card connects once pcscd is back
            return

        if not _wait(lambda: self._in_reader(proc) or proc.poll() is not None, 15):
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
            _stop_group(proc)

    def close(self) -> None:
        """Pull the card and stop a pcscd we started (app stop, atexit). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._io.shutdown(wait=True, cancel_futures=True)
        self._pull()
        self.pcscd.stop()
