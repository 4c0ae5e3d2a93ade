"""End of day: what this device did today, shown and printed."""

from __future__ import annotations

from pos.end_of_day import build_end_of_day
from pos.period import WITA
from pos.session.core import SessionCore, print_fault
from pos.session.rules import Action, State


class EndOfDay(SessionCore):
    """The shop's daily count, printed like a receipt so it is journaled and reprintable."""

    def open_end_of_day(self) -> bool:
        """Count today's sales (on the worker) and show them."""
        if not self._may(Action.OPEN_END_OF_DAY):
            return False
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
        if not self._may(Action.PRINT_END_OF_DAY):
            return False
        if self.day_report is None:
            return self._refuse(Action.PRINT_END_OF_DAY)
        report, language, printing = self.day_report, self.language, self.printing
        self.busy = True
        self._changed()
        self.runner.submit(lambda: printing.print_end_of_day(report, language),
                           lambda outcome, exc: self._printed(exc, "" if exc else print_fault(outcome),
                                                              "end_of_day_printed"))
        return True
