"""The sales history: the latest sales, to reprint one or void one with a supervisor's PIN."""

from __future__ import annotations

from pos import cashiers
from pos.money import format_rupiah
from pos.redemption import VOID_REASONS
from pos.session.core import SessionCore, print_fault
from pos.session.rules import Action, State


class History(SessionCore):
    """A mistaken sale is voided by a new compensating record, approved by a supervisor."""

    last_voided = ""
    """The sale the last void took back: the void form closes once it is done, not before."""

    def open_history(self) -> bool:
        """Show the latest sales (loaded on the worker)."""
        if not self._may(Action.OPEN_HISTORY):
            return False
        self._go(State.HISTORY)
        self._load_history()
        return True

    def _load_history(self) -> None:
        def done(rows, exc):
            if exc is not None:
                self._fail(exc)
            elif self.state == State.HISTORY:
                self.history = rows
            self._changed()

        self.runner.submit(self.service.history, done)

    def void(self, redemption_id: str, reason: str, supervisor_id: str, supervisor_pin: str) -> bool:
        """Void a sale (supervisor's PIN, a reason of VOID_REASONS) and print the void slip."""
        if not self._may(Action.VOID):
            return False
        if reason not in VOID_REASONS:
            return self._decline("void_needs_reason")
        self.busy = True
        service, printing, language, cashier = self.service, self.printing, self.language, self.cashier_id
        self._changed()

        def work():
            spv = cashiers.approve(service, supervisor_id, supervisor_pin)
            result = service.void(redemption_id, reason, cashier, spv.id)
            return result, printing.print_job(result.print_job_id, language)

        def done(res, exc):
            self.busy = False
            if exc is not None:
                self._tell_supervisor_failure(exc)  # the form stays as it was: only the PIN again
                self._changed()
                return
            result, outcome = res
            self.last_voided = result.redemption_id
            fault = print_fault(outcome)
            self.printer_fault = fault
            if fault:
                self._tell_fault(fault)
            else:
                self.tell("sale_voided", no=result.receipt_no, amount=format_rupiah(result.amount))
            if self.state == State.HISTORY:
                self._load_history()
            self._changed()

        self.runner.submit(work, done)
        return True
