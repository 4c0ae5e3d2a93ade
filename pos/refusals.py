"""Why the counter says no: typed reasons with what the cashier should say and do.

Every refusal, whatever layer raises it, is one of these reasons, so that screens, receipts,
journal entries and events for the city speak the same words (worded in pos.wording).
"""

from __future__ import annotations

from enum import StrEnum

from pos.wording import say


class Reason(StrEnum):
    """A refusal's code: what is stored, journaled and sent; the words for it live in pos.wording."""

    # card and household status
    CARD_REVOKED = "card_revoked"
    CARD_NOT_YET_VALID = "card_not_yet_valid"
    CARD_EXPIRED = "card_expired"
    CARD_FORGED = "card_forged"
    CARD_CLONED = "card_cloned"
    CARD_UNREADABLE = "card_unreadable"
    CARD_REMOVED = "card_removed"
    CARD_PERIOD_FUTURE = "card_period_future"
    PIN_WRONG = "pin_wrong"
    PIN_BLOCKED = "pin_blocked"
    HOUSEHOLD_UNKNOWN = "household_unknown"
    HOUSEHOLD_REVOKED = "household_revoked"
    HOUSEHOLD_NOT_YET_VALID = "household_not_yet_valid"
    HOUSEHOLD_EXPIRED = "household_expired"
    REPRESENTATIVE_UNKNOWN = "representative_unknown"
    # entitlement
    ALLOWANCE_USED_UP = "allowance_used_up"
    OVER_ALLOWANCE = "over_allowance"
    ITEM_NOT_ELIGIBLE = "item_not_eligible"
    QUOTA_EXCEEDED = "quota_exceeded"
    EMPTY_BASKET = "empty_basket"
    # device risk policy
    LEDGER_MISSING = "ledger_missing"
    LEDGER_TOO_OLD = "ledger_too_old"
    LEDGER_EXPIRED = "ledger_expired"
    OFFLINE_CAP_REACHED = "offline_cap_reached"
    OVERRIDE_CAP_REACHED = "override_cap_reached"
    # voids and staff
    VOID_WINDOW_PASSED = "void_window_passed"
    ALREADY_VOIDED = "already_voided"
    REDEMPTION_UNKNOWN = "redemption_unknown"
    CASHIER_UNKNOWN = "cashier_unknown"
    CASHIER_PIN_WRONG = "cashier_pin_wrong"
    NOT_A_SUPERVISOR = "not_a_supervisor"
    NOT_AT_COUNTER = "not_at_counter"
    STAFF_PIN_WAIT = "staff_pin_wait"
    STAFF_LOCKED = "staff_locked"


class Refusal(Exception):
    """A rule said no. `detail` is for the journal and the technician, not the beneficiary."""

    def __init__(self, reason: Reason, detail: str = "", **words: str | int) -> None:
        self.reason = reason
        self.detail = detail
        self.words = words  # what the wording fills in (a name, seconds to wait)
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)

    def message(self, language: str = "id") -> str:
        """What the cashier reads: worded at the moment it is shown, in that moment's language."""
        return say(self.reason.value, language, **self.words)
