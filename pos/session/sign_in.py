"""Sign in and out: who is at the counter, journaled with the shift."""

from __future__ import annotations

from pos import cashiers
from pos.refusals import Reason, Refusal
from pos.session.core import SessionCore
from pos.session.rules import Action, State
from pos.staff_lockout import StaffLockout
from pos.staff_roles import AT_COUNTER, DEFAULT_SHIFT, SHIFTS, UNLOCKERS

__all__ = ["DEFAULT_SHIFT", "SHIFTS", "SignIn"]


class SignIn(SessionCore):
    """Every sale names its cashier, so nothing is served until one signs in with a PIN.

    The sign-in screen is also where a supervisor lifts a lockout: once a locked name was picked and
    refused, the next supervisor to type their own PIN there unlocks it instead of signing in.
    """

    locked_staff: tuple[str, str] = ("", "")
    """The id and name of the staff member last refused as locked here, whom a supervisor may unlock."""

    def sign_in(self, cashier_id: str, pin: str, shift: str = DEFAULT_SHIFT) -> bool:
        """Check the cashier's PIN, journal the shift's start, then wait for a card."""
        if not self._may(Action.SIGN_IN):
            return False
        if shift not in SHIFTS:
            return self._decline("pick_shift")
        self.busy = True
        self._changed()
        service, (locked_id, locked_name) = self.service, self.locked_staff

        def work():
            lockout = StaffLockout.beside(service)
            cashier = cashiers.authenticate(cashier_id, pin, lockout=lockout)
            if cashier.role in UNLOCKERS and locked_id not in ("", cashier.id):
                lockout.unlock(locked_id, by=cashier.id)
                return None
            if cashier.role not in AT_COUNTER:  # the screen lists only these; a script may name anyone
                raise Refusal(Reason.NOT_AT_COUNTER, cashier.id)
            service.start_shift(cashier.id, shift)
            return cashier

        def done(cashier, exc):
            self.busy = False
            if exc is not None:
                if isinstance(exc, Refusal) and exc.reason == Reason.STAFF_LOCKED:
                    self.locked_staff = (exc.detail, str(exc.words["name"]))
                self._tell_failure(exc)
                self._changed()
                return
            self.locked_staff = ("", "")
            if cashier is None:
                self.tell("staff_unlocked", name=locked_name)
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
