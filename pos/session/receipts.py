"""Reprint: the last sale's receipt from the done screen, or any sale's from the history."""

from __future__ import annotations

from pos.session.core import SessionCore, print_fault
from pos.session.rules import Action, State


class Receipts(SessionCore):
    """The cashier's Reprint button: the original if it never printed, else a copy marked as one."""

    def reprint(self, redemption_id: str | None = None) -> bool:
        """Reprint the last sale (done screen) or any sale from history, marked as a copy."""
        if not self._may(Action.REPRINT):
            return False
        if self.state == State.DONE:
            assert self.sale is not None
            rid = self.sale.redemption_id
        elif any(r.redemption_id == redemption_id for r in self.history):
            rid = str(redemption_id)
        else:
            return self._refuse(Action.REPRINT)
        printing, language = self.printing, self.language
        self.busy = True
        self._changed()

        def done(outcome, exc):
            fault = "" if exc is not None else print_fault(outcome)
            if exc is None and self.sale is not None and self.sale.redemption_id == rid:
                self.sale.printed, self.sale.print_fault = not fault, fault
            self._printed(exc, fault, "receipt_printed")

        self.runner.submit(lambda: printing.reprint(rid, language), done)
        return True
