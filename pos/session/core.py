"""What every counter flow shares: the state the screens render and the few ways it changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pos.card_decision import decide as decide_card
from pos.clock import Clock
from pos.db import StorageFault
from pos.end_of_day import EndOfDayReport
from pos.entitlement import Entitlement
from pos.household_ids import household_id, household_number, household_prefix
from pos.ledger import CatalogEntry, Ledger
from pos.period import WITA, Period
from pos.policy import Policy
from pos.ports import AuthenticatedCard, CardReaderPort, CardSessionPort, PrinterFault
from pos.printing import PrintOutcome, PrintService
from pos.redemption import Collector, HistoryRow, RedemptionService, collector_name
from pos.refusals import Reason, Refusal
from pos.risk import assess_device
from pos.session.rules import Action, State, allowed
from pos.session.runners import InlineRunner, Runner
from pos.wording import FAULTS, fault_message, is_success, say

# Refusals the city hears about at once (a signed event in the outbox), beyond the cashier's screen.
REPORTED_TO_CITY = frozenset({Reason.CARD_FORGED, Reason.CARD_CLONED, Reason.CARD_REVOKED, Reason.PIN_BLOCKED,
                              Reason.CARD_PERIOD_FUTURE})  # a future record: written by a faulty or hostile terminal
# Refusals about the household's data, which the cashier may report to the city from the error
# screen ("Report data"); a wrong card is reported by the device itself (REPORTED_TO_CITY).
REPORTABLE_BY_CASHIER = frozenset({Reason.HOUSEHOLD_UNKNOWN, Reason.HOUSEHOLD_REVOKED, Reason.HOUSEHOLD_EXPIRED})


@dataclass
class ErrorInfo:
    """Why the error screen is up (a refusal reason or a fault kind, never words) and where it leads."""

    reason: Reason | None = None
    fault: str = ""  # a fault kind of pos.wording.FAULTS when it is a device fault
    detail: str = ""
    back_to: State = State.IDLE
    household: str = ""  # the household the card named, when the refusal is about the household

    def message(self, language: str = "id") -> str:
        """What the cashier reads, worded when it is shown."""
        if self.reason is not None:
            return Refusal(self.reason).message(language)
        return fault_message(self.fault, language)

    @property
    def offers_report(self) -> bool:
        """Whether the cashier may report the household's data from this error (REPORTABLE_BY_CASHIER):
        the error screen's "Report data" button, and open_flag's check."""
        return self.reason in REPORTABLE_BY_CASHIER


@dataclass
class Sale:
    """The sale on the done screen: committed after the card signed it, whatever the printer did."""

    redemption_id: str
    receipt_no: int
    total: int
    remaining_after: int
    collector_name: str
    print_job_id: str
    printed: bool = False
    print_fault: str = ""
    card_updated: bool = True  # always, since the card signs before the commit; scripts still read it


def print_fault(outcome: PrintOutcome) -> str:
    """The fault kind a print left for the cashier to fix, or "" when there is nothing to fix."""
    return outcome.kind or "error" if outcome.state == "failed" else ""


def serve_card(ledger: Ledger, policy: Policy, card: AuthenticatedCard, now: datetime) -> Entitlement:
    """May this authenticated card be served now, and with what? Raises Refusal.

    The device's own risk caps first (ledger age, offline caps), then the card decision
    (certificate dates, hotlist, household entitlement with the card's spend record).
    """
    assess_device(ledger.info(), policy, now)
    return decide_card(card, ledger, Period.of(now), now.astimezone(WITA).date())


class SessionCore:
    """The counter's state and its plumbing; the flows (pos.session.visit and the staff flows) build on it."""

    def __init__(
        self,
        *,
        service: RedemptionService,
        reader: CardReaderPort,
        printing: PrintService,
        runner: Runner | None = None,
        clock: Clock | None = None,
        language: str | None = None,
        decide: Callable[[Ledger, Policy, AuthenticatedCard, datetime], Entitlement] = serve_card,
    ) -> None:
        self.service = service
        self.ledger = service.ledger
        self.policy = service.policy
        self.clock = clock or service.clock
        self.reader = reader
        self.printing = printing
        self.runner: Runner = runner or InlineRunner()
        self.language = language or self.policy.language
        self._decide = decide
        self._listeners: list[Callable[[Any], None]] = []
        self.state = State.SIGNED_OUT
        self.cashier_id = ""
        self.cashier_name = ""
        self.shift = ""
        self.notice = ""  # a pos.wording code; the screen words it with notice_args (notice_text)
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
        self.flag_household = ""
        self.tech_results: dict[str, tuple[str, ...]] = {}
        """Results of the technician's tests, as short labels the screens' catalog words."""
        self._tech_back = State.IDLE
        self.busy = False

    # -- plumbing --------------------------------------------------------------------------

    def listen(self, callback: Callable[[Any], None]) -> None:
        """Call `callback(session)` after every change: the screens redraw from it."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        for cb in list(self._listeners):
            cb(self)

    def tell(self, code: str, **args: Any) -> None:
        """Put a notice under the screen: a catalog code and its arguments, worded when shown."""
        self.notice = code
        self.notice_args = args

    def notice_text(self, language: str | None = None) -> str:
        """The notice in words (the session's language unless another is asked for)."""
        return say(self.notice, language or self.language, **self.notice_args) if self.notice else ""

    @property
    def notice_is_success(self) -> bool:
        """Whether the notice reports something done: screens colour it apart from problems."""
        return is_success(self.notice)

    def _tell_failure(self, exc: BaseException) -> None:
        """A staff action failed: a rule's refusal in its words, anything else as an internal error."""
        if isinstance(exc, Refusal):
            self.tell(exc.reason.value, **exc.words)
        else:
            self.tell("internal_error", detail=str(exc))

    def _tell_supervisor_failure(self, exc: BaseException) -> None:
        """A supervisor's approval failed: a wrong PIN there is the supervisor's, not the cashier's."""
        if isinstance(exc, Refusal) and exc.reason == Reason.CASHIER_PIN_WRONG:
            self.tell("supervisor_pin_wrong")
        else:
            self._tell_failure(exc)

    def _tell_fault(self, kind: str) -> None:
        self.tell(kind if kind in FAULTS else "error")

    def _may(self, action: Action) -> bool:
        """Consult the state x action table; a touch it does not allow changes nothing but the notice."""
        if allowed(action, self.state, self.busy):
            return True
        return self._refuse(action)

    def _refuse(self, action: Action) -> bool:
        return self._decline("not_possible_now", action=action.wording)

    def _decline(self, code: str, **args: Any) -> bool:
        """Say why a touch did nothing (a catalog code) and let the screen show it."""
        self.tell(code, **args)
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

    def _printed(self, exc: BaseException | None, fault: str, printed: str) -> None:
        """After a print on the worker: an internal error, the printer's fault and what to do, or `printed`."""
        self.busy = False
        if exc is not None:
            self._tell_failure(exc)
        elif fault:
            self.printer_fault = fault
            self._tell_fault(fault)
        else:
            self.printer_fault = ""
            self.tell(printed)
        self._changed()

    # -- derived values for screens --------------------------------------------------------

    @property
    def basket_total(self) -> int:
        """What the basket costs, in rupiah."""
        return sum(self.catalog[c].price * q for c, q in self.basket.items() if c in self.catalog)

    def household_id(self, digits: str) -> str:
        """The whole id of this city's household a cashier typed the number of ("" for nothing
        typed); ValueError for digits no household of the city has."""
        return household_id(digits, self.service.device.area_code)

    def household_number(self, hid: str) -> str:
        """The digits of a household id of this city, for the keypad ("" for any other id)."""
        return household_number(hid, self.service.device.area_code)

    @property
    def household_prefix(self) -> str:
        """What the keypad shows before the digits: the city's part of every household id."""
        return household_prefix(self.service.device.area_code)

    @property
    def collector_name(self) -> str:
        """Who the confirm screen says takes the goods: the holder's or the chosen representative's name."""
        if self.entitlement is None:
            return ""
        return collector_name(self.entitlement.household, self.collector) or ""

    @property
    def remaining(self) -> int:
        """The household's allowance left before this basket."""
        return self.entitlement.remaining if self.entitlement else 0

    def quota_left(self, code: str) -> int | None:
        """How many more of an item the quota allows after this basket; None when it has no quota."""
        if self.entitlement is None or code not in self.entitlement.quotas:
            return None
        return self.entitlement.quotas[code].remaining - self.basket.get(code, 0)

    def can_add(self, code: str) -> bool:
        """Whether one more of the item fits (catalog, quota, allowance): the + button's state."""
        entry = self.catalog.get(code)
        if entry is None:
            return False
        left = self.quota_left(code)
        if left is not None and left <= 0:
            return False
        return self.basket_total + entry.price <= self.remaining

    def printer_polled(self, fault: str | None) -> None:
        """The printer's idle state (pos.printing.fault_of), read while no job runs: the status bar
        follows it; None (a printer that cannot tell) changes nothing."""
        if fault is None or self.busy or fault == self.printer_fault:
            return
        self.printer_fault = fault
        self._changed()

    def set_language(self, language: str) -> bool:
        """Switch the screens' and receipts' language; notices already up are reworded, not lost."""
        if language not in ("id", "en"):
            return False
        self.language = language
        self._changed()
        return True
