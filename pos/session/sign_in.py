"""Sign in and out: who is at the counter, journaled with the shift."""

from __future__ import annotations

from pos import cashiers
from pos.session.core import SessionCore
from pos.session.rules import Action, State

SHIFTS = ("pagi", "siang", "malam")


class SignIn(SessionCore):
    """Every sale names its cashier, so nothing is served until one signs in with a PIN."""

    def sign_in(self, cashier_id: str, pin: str, shift: str = "pagi") -> bool:
        """Check the cashier's PIN, journal the shift's start, then wait for a card."""
        if not self._may(Action.SIGN_IN):
            return False
        if shift not in SHIFTS:
            return self._decline("pick_shift")
        self.busy = True
        self._changed()
        service = self.service

        def work():
            cashier = cashiers.authenticate(cashier_id, pin)
            service.start_shift(cashier.id, shift)
            return cashier

        def done(cashier, exc):
            self.busy = False
            if exc is not None:
                self._tell_failure(exc)
                self._changed()
                return
            self.cashier_id, self.cashier_name, self.shift = cashier.id, cashier.name, shift
            self._go(State.IDLE)
            self._changed()

        self.runner.submit(work, done)
        return True

    def sign_out(self) -> bool:
        """Hand the counter over: the next cashier signs in with their own PIN."""
        if not self._may(Action.SIGN_OUT):
            return False
        self.cashier_id = self.cashier_name = self.shift = ""
        self._go(State.SIGNED_OUT)
        self._changed()
        return True
