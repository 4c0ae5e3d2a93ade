"""The counter session: what the cashier's screen is doing, as a pure state machine.

States (see `State`): signed_out -> idle -> verifying -> household -> pin -> basket ->
confirm -> committing -> done, plus error (a refusal reason or a device fault) and the
supervisor and staff flows (history with reprint and void, end of day, flag a data problem,
override for a damaged or forgotten card, technician).

Threading contract. Every public method and every `card_event` call runs on ONE thread (the
UI thread in the app; the test thread in tests). Card, printer and database work is handed to
`runner.submit(work, done)`: `work()` runs on a worker thread, then `done(result, error)` is
delivered back on the session's thread (the Kivy layer marshals with Clock.schedule_once).
Results of work started for a card that has since been pulled are dropped (a generation
counter), except a commit: a committed sale is never lost or hidden.

Touches that are illegal in the current state change nothing and set `notice` to a message
id (English text, translated by the UI's gettext catalog) saying why.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pos import cashiers, journal
from pos.card_decision import decide as decide_card
from pos.clock import Clock, iso
from pos.db import PrintJob, Redemption, StorageFault, Void, durable_transaction
from pos.end_of_day import EndOfDayReport, build_end_of_day
from pos.entitlement import Entitlement, assess
from pos.ledger import CatalogEntry, Ledger
from pos.period import WITA, Period
from pos.policy import Policy
from pos.ports import (
    AuthenticatedCard,
    CardEvent,
    CardReaderPort,
    CardSessionPort,
    PrinterFault,
)
from pos.printing import PrintService
from pos.redemption import DATA_PROBLEMS, Collector, RedemptionRequest, RedemptionService
from pos.refusals import Reason, Refusal
from pos.risk import assess_device


class State(StrEnum):
    SIGNED_OUT = "signed_out"
    IDLE = "idle"
    VERIFYING = "verifying"
    HOUSEHOLD = "household"
    PIN = "pin"
    BASKET = "basket"
    CONFIRM = "confirm"
    COMMITTING = "committing"
    DONE = "done"
    ERROR = "error"
    HISTORY = "history"
    END_OF_DAY = "end_of_day"
    FLAG = "flag"
    OVERRIDE = "override"
    TECHNICIAN = "technician"


# States in which a card is being served: pulling the card drops everything and goes idle.
CARD_STATES = {State.VERIFYING, State.HOUSEHOLD, State.PIN, State.BASKET, State.CONFIRM}
SHIFTS = ("pagi", "siang", "malam")
# Refusals the city hears about at once (a signed event in the outbox), beyond the cashier's screen.
REPORTED_TO_CITY = {Reason.CARD_FORGED, Reason.CARD_CLONED, Reason.CARD_REVOKED, Reason.PIN_BLOCKED}
OVERRIDE_REASONS = ("card_damaged", "card_forgotten", "reader_broken")

# Device faults (not rule refusals): (Bahasa Indonesia, English), what happened and what to do.
FAULTS: dict[str, tuple[str, str]] = {
    "reader_lost": (
        "Pembaca kartu tidak terhubung. Periksa kabel USB pembaca kartu; layar kembali sendiri setelah tersambung.",
        "The card reader is disconnected. Check the reader's USB cable; the screen comes back by itself once it is connected.",
    ),
    "card_not_answering": (
        "Kartu berhenti menjawab. Transaksi dibatalkan, tidak ada yang terjual. Cabut kartu, lalu masukkan kembali. "
        "Jika terjadi lagi, layani dengan Tanpa kartu (izin penyelia), alasan Kartu rusak.",
        "The card stopped answering. The sale is cancelled, nothing was sold. Pull the card out and insert it again. "
        "If it happens again, serve with No card (supervisor override), reason Card damaged.",
    ),
    "offline": (
        "Printer mati atau tidak tersambung. Nyalakan printer dan periksa kabelnya, lalu tekan Cetak Ulang.",
        "The printer is off or not connected. Switch it on, check its cable, then press Reprint.",
    ),
    "paper_out": (
        "Kertas printer habis. Pasang gulungan kertas baru, lalu tekan Cetak Ulang.",
        "The printer is out of paper. Load a new roll, then press Reprint.",
    ),
    "cover_open": (
        "Tutup printer terbuka. Tutup rapat, lalu tekan Cetak Ulang.",
        "The printer cover is open. Close it, then press Reprint.",
    ),
    "error": (
        "Printer bermasalah. Matikan dan nyalakan lagi printer, lalu tekan Cetak Ulang.",
        "The printer reported an error. Switch it off and on again, then press Reprint.",
    ),
    "storage": (
        "Penyimpanan perangkat bermasalah (kartu SD penuh, rusak atau hanya-baca). Tidak ada transaksi yang tercatat. "
        "Jangan lanjut melayani; hubungi teknisi.",
        "The device's storage failed (SD card full, failing or read-only). Nothing was sold. "
        "Stop serving and call the technician.",
    ),
    "internal": (
        "Terjadi kesalahan pada perangkat. Tidak ada transaksi yang tercatat. Coba lagi; jika berulang, hubungi teknisi.",
        "The device hit an internal error. Nothing was sold. Try again; if it happens again, call the technician.",
    ),
}


def fault_message(kind: str, language: str = "id") -> str:
    id_text, en_text = FAULTS.get(kind, FAULTS["error"])
    return en_text if language == "en" else id_text


class Runner(Protocol):
    def submit(self, work: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> None: ...


class InlineRunner:
    """Runs work at once on the calling thread (unit tests and scripted runs)."""

    def submit(self, work, done) -> None:
        try:
            result = work()
        except Exception as exc:  # delivered to the session, which decides what to show
            done(None, exc)
            return
        done(result, None)


class DeferredRunner:
    """Queues work until `run_all()`: lets tests interleave card events with pending work."""

    def __init__(self) -> None:
        self.pending: list[tuple[Callable, Callable]] = []

    def submit(self, work, done) -> None:
        self.pending.append((work, done))

    def run_next(self) -> bool:
        if not self.pending:
            return False
        work, done = self.pending.pop(0)
        InlineRunner().submit(work, done)
        return True

    def run_all(self) -> None:
        while self.run_next():
            pass


class ThreadRunner:
    """One worker thread for card, printer and database work; results go through `post`
    (the app passes a function that schedules the callback on the UI thread)."""

    def __init__(self, post: Callable[[Callable[[], None]], None]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="counter-worker")
        self._post = post

    def submit(self, work, done) -> None:
        def job() -> None:
            try:
                result = work()
            except Exception as exc:
                self._post(lambda err=exc: done(None, err))
                return
            self._post(lambda: done(result, None))

        self._pool.submit(job)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)


@dataclass
class ErrorInfo:
    reason: Reason | None = None
    fault: str = ""  # a key of FAULTS when it is a device fault
    detail: str = ""
    back_to: State = State.IDLE

    def message(self, language: str = "id") -> str:
        if self.reason is not None:
            return Refusal(self.reason).message(language)
        return fault_message(self.fault, language)


@dataclass
class Sale:
    redemption_id: str
    receipt_no: int
    total: int
    remaining_after: int
    collector_name: str
    print_job_id: str
    printed: bool = False
    print_fault: str = ""
    card_updated: bool = True


@dataclass
class HistoryRow:
    redemption_id: str
    receipt_no: int
    created_at: str
    household: str
    collector_name: str
    total: int
    voided: bool
    mode: str


def _decide(ledger: Ledger, policy: Policy, card: AuthenticatedCard, now: datetime) -> Entitlement:
    """May this authenticated card be served now, and with what? Raises Refusal.

    The device's own risk caps first (ledger age, offline caps), then the card decision
    (certificate dates, hotlist, household entitlement with the card's spend record).
    """
    assess_device(ledger.info(), policy, now)
    return decide_card(card, ledger, Period.of(now), now.astimezone(WITA).date())


class CounterSession:
    """The counter's state; screens render it and call its methods."""

    def __init__(
        self,
        *,
        service: RedemptionService,
        reader: CardReaderPort,
        printing: PrintService,
        runner: Runner | None = None,
        clock: Clock | None = None,
        language: str | None = None,
        decide: Callable[[Ledger, Policy, AuthenticatedCard, datetime], Entitlement] = _decide,
    ) -> None:
        self.service = service
        self.ledger = service.ledger
        self.policy = service.policy
        self.clock = clock or service.clock
        self.reader = reader
        self.printing = printing
        self.printer = printing.printer
        self.runner: Runner = runner or InlineRunner()
        self.language = language or self.policy.language
        self._decide = decide
        self._listeners: list[Callable[[CounterSession], None]] = []
        self.state = State.SIGNED_OUT
        self.cashier_id = ""
        self.cashier_name = ""
        self.shift = ""
        self.notice = ""
        self.notice_args: dict[str, Any] = {}
        self.card_present = False
        self.reader_ok = True
        self.printer_fault = ""
        self._generation = 0
        self._reset_visit()
        self.error: ErrorInfo | None = None
        self.sale: Sale | None = None
        self.history: list[HistoryRow] = []
        self.day_report: EndOfDayReport | None = None
        self.last_receipt = None
        self.busy = False
        self._pulled_while_committing = False
        self._card_mute_while_committing = False

    # -- plumbing --------------------------------------------------------------------------

    def listen(self, callback: Callable[[CounterSession], None]) -> None:
        self._listeners.append(callback)

    def _changed(self) -> None:
        for cb in list(self._listeners):
            cb(self)

    def _say(self, msgid: str, **args: Any) -> None:
        self.notice = msgid
        self.notice_args = args

    def _refuse_touch(self, action: str) -> bool:
        self._say("{action} is not possible now.", action=action)
        self._changed()
        return False

    def _go(self, state: State) -> None:
        self.state = state
        self.notice = ""
        self.notice_args = {}

    def _reset_visit(self) -> None:
        self.card: CardSessionPort | None = None
        self.auth: AuthenticatedCard | None = None
        self.entitlement: Entitlement | None = None
        self.catalog: dict[str, CatalogEntry] = {}
        self.basket: dict[str, int] = {}
        self.collector: Collector = Collector()
        self.pin_tries_left: int | None = None
        self.mode = "card"
        self.override_reason = ""
        self.override_supervisor = ""

    def _close_card(self) -> None:
        card = self.card
        self.card = None
        if card is not None:
            self.runner.submit(lambda: card.close(), lambda _r, _e: None)

    def _fail(self, exc: BaseException, back_to: State = State.IDLE) -> None:
        if isinstance(exc, Refusal):
            self.error = ErrorInfo(reason=exc.reason, detail=exc.detail, back_to=back_to)
        elif isinstance(exc, PrinterFault):
            self.error = ErrorInfo(fault=exc.kind, detail=exc.detail, back_to=back_to)
        elif isinstance(exc, StorageFault):  # the advice for the technician rides in the detail
            self.error = ErrorInfo(fault="storage", detail=str(exc), back_to=back_to)
        else:
            self.error = ErrorInfo(fault="internal", detail=f"{type(exc).__name__}: {exc}", back_to=back_to)
        self._go(State.ERROR)

    def _report(self, exc: BaseException) -> None:
        """Queue a signed event for the city about a refusal it must know of (forged, cloned,
        revoked card, PIN blocked)."""
        if isinstance(exc, Refusal) and exc.reason in REPORTED_TO_CITY:
            detail = {"reason": exc.reason.value, "detail": exc.detail[:200], "cashier": self.cashier_id}
            self.runner.submit(lambda: self.service.record_event("card_refused", detail), lambda _r, _e: None)

    # -- derived values for screens --------------------------------------------------------

    @property
    def basket_total(self) -> int:
        return sum(self.catalog[c].price * q for c, q in self.basket.items() if c in self.catalog)

    @property
    def remaining(self) -> int:
        return self.entitlement.remaining if self.entitlement else 0

    def quota_left(self, code: str) -> int | None:
        if self.entitlement is None or code not in self.entitlement.quotas:
            return None
        return self.entitlement.quotas[code].remaining - self.basket.get(code, 0)

    def can_add(self, code: str) -> bool:
        entry = self.catalog.get(code)
        if entry is None:
            return False
        left = self.quota_left(code)
        if left is not None and left <= 0:
            return False
        return self.basket_total + entry.price <= self.remaining

    # -- sign in / out ---------------------------------------------------------------------

    def sign_in(self, cashier_id: str, pin: str, shift: str = "pagi") -> bool:
        if self.state != State.SIGNED_OUT or self.busy:
            return self._refuse_touch("Signing in")
        if shift not in SHIFTS:
            self._say("Pick a shift.")
            self._changed()
            return False
        self.busy = True
        self._changed()

        def work():
            cashier = cashiers.authenticate(cashier_id, pin)
            at = iso(self.clock.now())
            with durable_transaction(self.service.db):
                journal.append(at, "shift_start", cashier.id, {"shift": shift, "device": self.service.device.device_id})
            return cashier

        def done(cashier, exc):
            self.busy = False
            if exc is not None:
                if isinstance(exc, Refusal):
                    self._say(Refusal(exc.reason).message(self.language))
                else:
                    self._say("The device hit an internal error: {detail}", detail=str(exc))
                self._changed()
                return
            self.cashier_id, self.cashier_name, self.shift = cashier.id, cashier.name, shift
            self._go(State.IDLE)
            self._changed()

        self.runner.submit(work, done)
        return True

    def sign_out(self) -> bool:
        if self.state not in (State.IDLE, State.END_OF_DAY):
            return self._refuse_touch("Signing out")
        self.cashier_id = self.cashier_name = self.shift = ""
        self._go(State.SIGNED_OUT)
        self._changed()
        return True

    # -- card events (from the reader, marshalled onto the session thread) -----------------

    def card_event(self, event: CardEvent) -> None:
        if event.kind == "reader_lost":
            self.reader_ok = False
            self.card_present = False
            if self.state in CARD_STATES or self.state == State.IDLE:
                self._generation += 1
                self._close_card()
                self._reset_visit()
                self.error = ErrorInfo(fault="reader_lost", back_to=State.IDLE)
                self._go(State.ERROR)
            self._changed()
            return
        if event.kind == "reader_back":
            self.reader_ok = True
            if self.state == State.ERROR and self.error and self.error.fault == "reader_lost":
                self.error = None
                self._go(State.IDLE)
            self._changed()
            return
        if event.kind == "card_not_answering":
            self._card_not_answering()
            self._changed()
            return
        if event.kind == "removed":
            self.card_present = False
            self._card_removed()
            self._changed()
            return
        if event.kind == "inserted":
            self.card_present = True
            self.reader_ok = True
            if self.state == State.IDLE:
                self._start_verify()
            elif self.state == State.SIGNED_OUT:
                self._say("Sign in first, then insert the card.")
            elif self.state != State.DONE:
                self._say("Finish or cancel what is on screen first, then insert the card again.")
            self._changed()

    def _card_removed(self) -> None:
        if self.state in CARD_STATES:
            self._generation += 1
            self._close_card()
            self._reset_visit()
            self._go(State.IDLE)
            self._say("The card was pulled out: the basket is emptied, nothing was sold.")
        elif self.state == State.COMMITTING:
            # the sale may already be durable: never drop it; finish and show it
            self._pulled_while_committing = True
        elif self.state == State.DONE:
            self._close_card()
            self._reset_visit()
            self.sale = None
            self._go(State.IDLE)
        elif self.state == State.ERROR and self.error and self.error.fault != "reader_lost" and self.mode == "card":
            self._close_card()
            self._reset_visit()
            self.error = None
            self._go(State.IDLE)

    def _card_not_answering(self) -> None:
        """The reader's watchdog gave up on the card (a chip that stopped answering mid-call).

        The visit is abandoned as if the card were pulled (its state on the card is unknown), and the
        cashier is told to re-insert it, or to serve with the override if it keeps happening. The
        failing call's own CARD_UNREADABLE result comes after this event and is dropped by the
        generation. A sale already committing stands: it is durable; only the card's record lags.
        """
        if self.mode != "card":  # an override visit has no card session to lose
            return
        if self.state in CARD_STATES:
            self._generation += 1
            self._close_card()
            self._reset_visit()
            self.error = ErrorInfo(fault="card_not_answering", back_to=State.IDLE)
            self._go(State.ERROR)
        elif self.state == State.COMMITTING:
            self._card_mute_while_committing = True
        elif self.state == State.ERROR and self.error and self.error.reason == Reason.CARD_UNREADABLE:
            self.error = ErrorInfo(fault="card_not_answering", back_to=State.IDLE)  # the result came first

    def _start_verify(self) -> None:
        self._reset_visit()
        self._go(State.VERIFYING)
        gen = self._generation = self._generation + 1
        reader = self.reader

        def work():
            card = reader.open_session()
            try:
                auth = card.authenticate()
                ent = self._decide(self.ledger, self.policy, auth, self.clock.now())
                catalog = dict(self.ledger.catalog())
            except BaseException:
                card.close()
                raise
            return card, auth, ent, catalog

        def done(result, exc):
            if gen != self._generation:
                if result is not None:
                    result[0].close()
                return
            if exc is not None:
                self._fail(exc)
                self._report(exc)
            else:
                self.card, self.auth, self.entitlement, self.catalog = result
                self.pin_tries_left = self.auth.pin_tries_left
                self._go(State.HOUSEHOLD)
            self._changed()

        self.runner.submit(work, done)

    # -- household, collector, PIN ---------------------------------------------------------

    def choose_collector(self, kind: str = "holder", representative_id: str = "") -> bool:
        if self.state != State.HOUSEHOLD:
            return self._refuse_touch("Choosing who collects")
        assert self.entitlement is not None
        if kind == "representative":
            reps = {r.id for r in self.entitlement.household.representatives}
            if representative_id not in reps:
                self._say(Refusal(Reason.REPRESENTATIVE_UNKNOWN).message(self.language))
                self._changed()
                return False
        elif kind != "holder":
            return self._refuse_touch("Choosing who collects")
        self.collector = Collector(kind, representative_id if kind == "representative" else "")  # type: ignore[arg-type]
        self._go(State.BASKET if self.mode == "override" else State.PIN)
        self._changed()
        return True

    def submit_pin(self, pin: str) -> bool:
        if self.state != State.PIN or self.busy:
            return self._refuse_touch("Checking the PIN")
        if not pin.isdigit() or not 4 <= len(pin) <= 8:
            self._say("The PIN has 4 to 8 digits.")
            self._changed()
            return False
        gen = self._generation
        card = self.card
        self.busy = True
        self._changed()

        def done(_r, exc):
            self.busy = False  # also when the card left meanwhile: the next visit's PIN must not be refused
            if gen != self._generation:
                self._changed()
                return
            if exc is None:
                self._go(State.BASKET)
            elif isinstance(exc, Refusal) and exc.reason == Reason.PIN_WRONG:
                left = getattr(exc, "tries_left", None)
                if left is None and self.pin_tries_left is not None:
                    left = max(0, self.pin_tries_left - 1)
                self.pin_tries_left = left
                self._say(Refusal(Reason.PIN_WRONG).message(self.language))
            else:
                self._generation += 1
                self._fail(exc)
                self._report(exc)
            self._changed()

        self.runner.submit(lambda: card.verify_pin(pin), done)
        return True

    # -- basket ----------------------------------------------------------------------------

    def add(self, code: str) -> bool:
        if self.state != State.BASKET:
            return self._refuse_touch("Adding an item")
        entry = self.catalog.get(code)
        if entry is None:
            self._say(Refusal(Reason.ITEM_NOT_ELIGIBLE).message(self.language))
        elif (left := self.quota_left(code)) is not None and left <= 0:
            self._say(Refusal(Reason.QUOTA_EXCEEDED).message(self.language))
        elif self.basket_total + entry.price > self.remaining:
            self._say(Refusal(Reason.OVER_ALLOWANCE).message(self.language))
        else:
            self.basket[code] = self.basket.get(code, 0) + 1
            self.notice, self.notice_args = "", {}
            self._changed()
            return True
        self._changed()
        return False

    def remove(self, code: str) -> bool:
        if self.state != State.BASKET:
            return self._refuse_touch("Removing an item")
        if self.basket.get(code, 0) <= 0:
            return False
        self.basket[code] -= 1
        if not self.basket[code]:
            del self.basket[code]
        self.notice, self.notice_args = "", {}
        self._changed()
        return True

    def to_confirm(self) -> bool:
        if self.state != State.BASKET:
            return self._refuse_touch("Going to confirm")
        if not self.basket:
            self._say(Refusal(Reason.EMPTY_BASKET).message(self.language))
            self._changed()
            return False
        self._go(State.CONFIRM)
        self._changed()
        return True

    def back(self) -> bool:
        """One step back inside a visit (confirm -> basket)."""
        if self.state == State.CONFIRM:
            self._go(State.BASKET)
            self._changed()
            return True
        return self._refuse_touch("Going back")

    def cancel(self) -> bool:
        """Cancel the visit or leave a side screen; nothing is sold."""
        if self.state in CARD_STATES or self.state in (State.HISTORY, State.END_OF_DAY, State.FLAG, State.OVERRIDE, State.TECHNICIAN):
            self._generation += 1
            self._close_card()
            self._reset_visit()
            self._go(State.IDLE)
            self._changed()
            return True
        return self._refuse_touch("Cancelling")

    # -- commit ----------------------------------------------------------------------------

    def confirm(self) -> bool:
        if self.state != State.CONFIRM or self.busy:
            return self._refuse_touch("Confirming")
        assert self.entitlement is not None
        self._go(State.COMMITTING)
        self._pulled_while_committing = False
        self._card_mute_while_committing = False
        card, auth, basket = self.card, self.auth, dict(self.basket)
        req = RedemptionRequest(
            household_id=self.entitlement.household.id,
            cashier_id=self.cashier_id,
            basket=basket,
            card_id=auth.certificate.card_id if auth else "",
            card_spent=self.entitlement.card_spent,
            card_counter=auth.spend.counter if auth else None,
            collector=self.collector,
            mode="override" if self.mode == "override" else "card",
            override_reason=self.override_reason,
        )
        language = self.language
        ent = self.entitlement

        def work():
            result = self.service.redeem(req)
            sale = Sale(result.redemption_id, result.seq, result.total, result.remaining_after,
                        result.collector_name, result.print_job_id)
            if card is not None:
                try:
                    new_total = ent.spent + result.total
                    card.record_spend(result.period, new_total)
                except Exception:
                    sale.card_updated = False
            self._print(sale, language)
            return sale

        def done(sale, exc):
            self.busy = False
            if exc is not None:
                self._fail(exc, back_to=State.IDLE)
                if self._pulled_while_committing:
                    self.card_present = False
            else:
                self.sale = sale
                self._go(State.DONE)
                if sale.print_fault:
                    self.printer_fault = sale.print_fault
                if self._card_mute_while_committing:
                    sale.card_updated = False
                    self._say("The sale is recorded, but the card stopped answering before its record was updated.")
                elif not sale.card_updated or self._pulled_while_committing:
                    sale.card_updated = sale.card_updated and not self._pulled_while_committing
                    self._say("The sale is recorded, but the card was pulled before its record was updated.")
            self._changed()

        self.busy = True
        self._changed()
        self.runner.submit(work, done)
        return True

    def _print(self, sale: Sale, language: str, copy: bool = False) -> None:
        """On the worker thread: print through the print-job lifecycle (at most once per job);
        a fault leaves the sale committed and the job marked for reprint."""
        self.printing.language = language
        if copy:
            outcome = self.printing.reprint(sale.redemption_id)
        else:
            outcome = self.printing.print_job(sale.print_job_id)
        job = PrintJob.get_or_none(PrintJob.id == outcome.job_id)
        if job is not None:
            self.last_receipt = self.printing.receipt_for(job)
        if outcome.state == "failed":
            sale.printed, sale.print_fault = False, outcome.kind
        else:
            sale.printed, sale.print_fault = True, ""

    def reprint(self, redemption_id: str | None = None) -> bool:
        """Reprint the last sale (done screen) or any sale from history, marked as a copy."""
        if self.state not in (State.DONE, State.HISTORY) or self.busy:
            return self._refuse_touch("Reprinting")
        if self.state == State.DONE:
            sale = self.sale
        else:
            row = next((r for r in self.history if r.redemption_id == redemption_id), None)
            if row is None:
                return self._refuse_touch("Reprinting")
            sale = Sale(row.redemption_id, row.receipt_no, row.total, 0, row.collector_name, "")
        assert sale is not None
        language = self.language
        self.busy = True
        self._changed()

        self.runner.submit(lambda: self._print(sale, language, copy=True),
                           lambda _r, exc: self._printed(exc, sale.print_fault, "Receipt printed."))
        return True

    def _printed(self, exc: BaseException | None, fault: str, printed: str) -> None:
        """After a print on the worker: an internal error, the printer's fault and what to do, or `printed`."""
        self.busy = False
        if exc is not None:
            self._say("The device hit an internal error: {detail}", detail=str(exc))
        elif fault:
            self.printer_fault = fault
            self._say(fault_message(fault, self.language))
        else:
            self.printer_fault = ""
            self._say(printed)
        self._changed()

    def finish(self) -> bool:
        """Done screen: back to idle (the card should already be out)."""
        if self.state != State.DONE:
            return self._refuse_touch("Finishing")
        self._close_card()
        self._reset_visit()
        self.sale = None
        self._go(State.IDLE)
        if self.card_present:
            self._say("Take the card out of the reader.")
        self._changed()
        return True

    def acknowledge(self) -> bool:
        """Error screen: the cashier has read it; go where the error says."""
        if self.state != State.ERROR:
            return self._refuse_touch("Closing the message")
        if self.error and self.error.fault == "reader_lost" and not self.reader_ok:
            self._say("Connect the card reader first.")
            self._changed()
            return False
        back = self.error.back_to if self.error else State.IDLE
        self._close_card()
        self._reset_visit()
        self.error = None
        self._go(back)
        if self.card_present and back == State.IDLE:
            self._say("Take the card out of the reader.")
        self._changed()
        return True

    # -- history, void, end of day ----------------------------------------------------------

    def open_history(self) -> bool:
        if self.state != State.IDLE:
            return self._refuse_touch("Opening the history")
        self._go(State.HISTORY)
        self._load_history()
        return True

    def _load_history(self) -> None:
        cashier = self.cashier_id

        def work():
            voided = {v for (v,) in Void.select(Void.redemption).tuples()}
            rows = Redemption.select().order_by(Redemption.seq.desc()).limit(30)
            return [HistoryRow(r.id, r.seq, r.created_at, r.household, r.collector_name, r.total, r.id in voided, r.mode)
                    for r in rows]

        def done(rows, exc):
            if exc is not None:
                self._fail(exc)
            elif self.state == State.HISTORY:
                self.history = rows
            self._changed()

        del cashier
        self.runner.submit(work, done)

    def void(self, redemption_id: str, reason: str, supervisor_id: str, supervisor_pin: str) -> bool:
        if self.state != State.HISTORY or self.busy:
            return self._refuse_touch("Voiding")
        if not reason.strip():
            self._say("Give a reason for the void.")
            self._changed()
            return False
        self.busy = True
        language = self.language
        cashier = self.cashier_id
        self._changed()

        def work():
            spv = cashiers.authenticate(supervisor_id, supervisor_pin, supervisor=True)
            result = self.service.void(redemption_id, reason, cashier, spv.id)
            self.printing.language = language
            outcome = self.printing.print_job(result.print_job_id)
            self.last_receipt = self.printing.receipt_for(PrintJob.get_by_id(result.print_job_id))
            return result, outcome.kind if outcome.state == "failed" else ""

        def done(res, exc):
            self.busy = False
            if exc is not None:
                if isinstance(exc, Refusal):
                    self._say(Refusal(exc.reason).message(self.language))
                else:
                    self._say("The device hit an internal error: {detail}", detail=str(exc))
                self._changed()
                return
            result, fault = res
            self.printer_fault = fault
            self._say("Sale no. {no} is voided." if not fault else fault_message(fault, self.language), no=result.seq)
            if self.state == State.HISTORY:
                self._load_history()
            self._changed()

        self.runner.submit(work, done)
        return True

    def open_end_of_day(self) -> bool:
        if self.state != State.IDLE:
            return self._refuse_touch("Opening the end of day")
        self._go(State.END_OF_DAY)
        self.day_report = None
        now = self.clock.now()
        device = self.service.device

        def work():
            day = now.astimezone(WITA).date()
            return build_end_of_day(day, device_id=device.device_id, shop_name=device.shop_name, now=now)

        def done(rep, exc):
            if exc is not None:
                self._fail(exc)
            elif self.state == State.END_OF_DAY:
                self.day_report = rep
            self._changed()

        self.runner.submit(work, done)
        self._changed()
        return True

    def print_end_of_day(self) -> bool:
        """Print the shown end-of-day report (a PrintJob row like every receipt, so it is journaled)."""
        if self.state != State.END_OF_DAY or self.busy or self.day_report is None:
            return self._refuse_touch("Printing the end of day")
        report, language = self.day_report, self.language
        self.busy = True
        self._changed()

        def work() -> str:
            outcome = self.printing.print_end_of_day(report, language)
            return "" if outcome.ok else outcome.kind or "error"

        self.runner.submit(work, lambda fault, exc: self._printed(exc, fault, "End-of-day report printed."))
        return True

    # -- flag a data problem -----------------------------------------------------------------

    def open_flag(self, household_id: str = "") -> bool:
        """From idle (any household id), the household screen or an error about a household."""
        if self.state not in (State.IDLE, State.HOUSEHOLD, State.ERROR):
            return self._refuse_touch("Reporting a data problem")
        if not household_id and self.entitlement is not None:
            household_id = self.entitlement.household.id
        if self.state != State.IDLE:
            self._generation += 1
            self._close_card()
        self._reset_visit()
        self.error = None
        self.flag_household = household_id
        self._go(State.FLAG)
        self._changed()
        return True

    def flag_problem(self, household_id: str, problem: str, note: str = "") -> bool:
        if self.state != State.FLAG or self.busy:
            return self._refuse_touch("Reporting a data problem")
        if problem not in DATA_PROBLEMS:
            self._say("Pick what is wrong.")
            self._changed()
            return False
        if not household_id.strip():
            self._say("Type the household number (on the card or the family's letter).")
            self._changed()
            return False
        self.busy = True
        self._changed()

        def done(seq, exc):
            self.busy = False
            if exc is not None:
                self._say("The device hit an internal error: {detail}", detail=str(exc))
            else:
                self._go(State.IDLE)
                self._say("Reported to the city (message no. {seq}). Thank you.", seq=seq)
            self._changed()

        self.runner.submit(lambda: self.service.flag_problem(household_id.strip(), problem, note, self.cashier_id), done)
        return True

    # -- supervisor override (damaged or forgotten card) -----------------------------------

    def open_override(self) -> bool:
        if self.state != State.IDLE:
            return self._refuse_touch("Serving without a card")
        self._go(State.OVERRIDE)
        self._changed()
        return True

    def start_override(self, household_id: str, reason: str, supervisor_id: str, supervisor_pin: str) -> bool:
        if self.state != State.OVERRIDE or self.busy:
            return self._refuse_touch("Serving without a card")
        if reason not in OVERRIDE_REASONS:
            self._say("Pick why there is no card.")
            self._changed()
            return False
        self.busy = True
        self._changed()
        now = self.clock.now()

        def work():
            spv = cashiers.authenticate(supervisor_id, supervisor_pin, supervisor=True)
            assess_device(self.ledger.info(), self.policy, now)
            period = Period.of(now)
            used = Redemption.select().where((Redemption.mode == "override") & (Redemption.period == str(period))).count()
            if used >= self.policy.override_cap_per_period:
                raise Refusal(Reason.OVERRIDE_CAP_REACHED, f"{used} overrides in {period}")
            ent = assess(self.ledger, household_id.strip(), period, now.astimezone(WITA).date())
            with durable_transaction(self.service.db):
                journal.append(iso(now), "override_start", household_id.strip(),
                               {"reason": reason, "supervisor": spv.id, "cashier": self.cashier_id})
            return spv, ent, dict(self.ledger.catalog())

        def done(res, exc):
            self.busy = False
            if self.state != State.OVERRIDE:
                return
            if exc is not None:
                if isinstance(exc, Refusal) and exc.reason in (Reason.CASHIER_UNKNOWN, Reason.CASHIER_PIN_WRONG, Reason.NOT_A_SUPERVISOR):
                    self._say(Refusal(exc.reason).message(self.language))
                else:
                    self._fail(exc)
                self._changed()
                return
            spv, ent, catalog = res
            self._reset_visit()
            self.mode = "override"
            self.override_reason = reason
            self.override_supervisor = spv.id
            self.entitlement, self.catalog = ent, catalog
            self._go(State.HOUSEHOLD)
            self._changed()

        self.runner.submit(work, done)
        return True

    # -- technician --------------------------------------------------------------------------

    def open_technician(self) -> bool:
        if self.state not in (State.IDLE, State.SIGNED_OUT):
            return self._refuse_touch("Opening the technician screen")
        self._tech_back = self.state
        self._go(State.TECHNICIAN)
        self.tech_results: dict[str, tuple[str, ...]] = {}
        """Results of the technician's tests, as message ids (the UI translates them)."""
        self._changed()
        return True

    def close_technician(self) -> bool:
        if self.state != State.TECHNICIAN:
            return self._refuse_touch("Closing the technician screen")
        self._go(self._tech_back)
        self._changed()
        return True

    def test_printer(self) -> bool:
        if self.state != State.TECHNICIAN or self.busy:
            return self._refuse_touch("Testing the printer")
        self.busy = True
        self._changed()

        def done(status, exc):
            self.busy = False
            if exc is not None:
                self.tech_results["printer"] = ("error", str(exc))
            else:
                online = {True: "online", False: "offline", None: "unknown"}[status.online]
                self.tech_results["printer"] = (online, f"paper {status.paper}")
                self.printer_fault = "" if status.online is not False and status.paper != "out" else (
                    "paper_out" if status.paper == "out" else "offline")
            self._changed()

        self.runner.submit(self.printer.status, done)
        return True

    def test_reader(self) -> bool:
        if self.state != State.TECHNICIAN:
            return self._refuse_touch("Testing the reader")
        self.tech_results["reader"] = ("connected" if self.reader_ok else "disconnected",
                                       "card present" if self.card_present else "no card")
        self._changed()
        return True

    def set_language(self, language: str) -> bool:
        if language not in ("id", "en"):
            return False
        self.language = language
        self._changed()
        return True

