"""Serve without a card: a damaged or forgotten card, approved by a supervisor, capped per period."""

from __future__ import annotations

from pos import cashiers
from pos.redemption import OVERRIDE_REASONS
from pos.refusals import Reason, Refusal
from pos.session.core import SessionCore
from pos.session.rules import Action, State

# A wrong supervisor is a typing matter: the override screen stays up to try again.
STAFF_REFUSALS = frozenset({Reason.CASHIER_UNKNOWN, Reason.CASHIER_PIN_WRONG, Reason.NOT_A_SUPERVISOR,
                            Reason.STAFF_PIN_WAIT, Reason.STAFF_LOCKED})


class Override(SessionCore):
    """A household must not go hungry for a broken card; the cap and the journal keep it rare."""

    def open_override(self) -> bool:
        """Show the override screen (household number, reason, supervisor)."""
        if not self._may(Action.OPEN_OVERRIDE):
            return False
        self._go(State.OVERRIDE)
        self._changed()
        return True

    def start_override(self, household_id: str, reason: str, supervisor_id: str, supervisor_pin: str) -> bool:
        """With the supervisor's PIN, open a card-less visit at the household screen."""
        if not self._may(Action.START_OVERRIDE):
            return False
        if reason not in OVERRIDE_REASONS:
            return self._decline("pick_override_reason")
        self.busy = True
        self._changed()
        service, ledger, cashier, household = self.service, self.ledger, self.cashier_id, household_id.strip()

        def work():
            spv = cashiers.approve(service, supervisor_id, supervisor_pin)
            ent = service.start_override(household, reason, spv.id, cashier)
            return ent, dict(ledger.catalog())

        def done(res, exc):
            self.busy = False
            if self.state != State.OVERRIDE:
                return
            if exc is not None:
                if isinstance(exc, Refusal) and exc.reason in STAFF_REFUSALS:
                    self._tell_supervisor_failure(exc)
                else:
                    self._fail(exc)
                self._changed()
                return
            ent, catalog = res
            self._reset_visit()
            self.mode = "override"
            self.override_reason = reason
            self.entitlement, self.catalog = ent, catalog
            self._go(State.HOUSEHOLD)
            self._changed()

        self.runner.submit(work, done)
        return True
