"""Flag a data problem: the cashier tells the city its ledger is wrong about a household."""

from __future__ import annotations

from pos.redemption import DATA_PROBLEMS
from pos.session.core import SessionCore
from pos.session.rules import Action, State


class FlagProblem(SessionCore):
    """Beneficiary data is often wrong in the field; the counter is where it is noticed."""

    def open_flag(self, household_id: str = "") -> bool:
        """From idle (any household id), the household screen or an error about a household's data
        (ErrorInfo.offers_report: a wrong card or a device fault is not the ledger's to fix)."""
        if not self._may(Action.OPEN_FLAG):
            return False
        if self.state == State.ERROR and not (self.error and self.error.offers_report):
            return self._refuse(Action.OPEN_FLAG)
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
        """Send the report (a signed event in the outbox); the city answers with the next ledger."""
        if not self._may(Action.FLAG_PROBLEM):
            return False
        if problem not in DATA_PROBLEMS:
            return self._decline("pick_problem")
        if not household_id.strip():
            return self._decline("type_household")
        self.busy = True
        self._changed()
        service, cashier = self.service, self.cashier_id

        def done(seq, exc):
            self.busy = False
            if exc is not None:
                self.tell("internal_error", detail=str(exc))
            else:
                self._go(State.IDLE)
                self.tell("reported_to_city", seq=seq)
            self._changed()

        self.runner.submit(lambda: service.flag_problem(household_id.strip(), problem, note, cashier), done)
        return True
