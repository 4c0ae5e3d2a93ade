"""What the cashier may do on each screen: one table of state and action.

A touch the table does not allow changes nothing; the session says it is not possible now. Rules that
depend on more than the screen (a PIN's format, a reason picked) live with the flow that checks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    """Which screen the counter is on; the screens are chosen by it."""

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
CARD_STATES = frozenset({State.VERIFYING, State.HOUSEHOLD, State.PIN, State.BASKET, State.CONFIRM})
SIDE_SCREENS = frozenset({State.HISTORY, State.END_OF_DAY, State.FLAG, State.OVERRIDE, State.TECHNICIAN})


class Action(StrEnum):
    """A touch the session answers; its value names its wording (pos.wording, `action.<value>`)."""

    SIGN_IN = "sign_in"
    SIGN_OUT = "sign_out"
    CHOOSE_COLLECTOR = "choose_collector"
    SUBMIT_PIN = "submit_pin"
    ADD = "add"
    REMOVE = "remove"
    TO_CONFIRM = "to_confirm"
    BACK = "back"
    CANCEL = "cancel"
    CONFIRM = "confirm"
    REPRINT = "reprint"
    FINISH = "finish"
    ACKNOWLEDGE = "acknowledge"
    OPEN_HISTORY = "open_history"
    VOID = "void"
    OPEN_END_OF_DAY = "open_end_of_day"
    PRINT_END_OF_DAY = "print_end_of_day"
    OPEN_FLAG = "open_flag"
    FLAG_PROBLEM = "flag_problem"
    OPEN_OVERRIDE = "open_override"
    START_OVERRIDE = "start_override"
    OPEN_TECHNICIAN = "open_technician"
    CLOSE_TECHNICIAN = "close_technician"
    TEST_PRINTER = "test_printer"
    TEST_READER = "test_reader"

    @property
    def wording(self) -> str:
        """The catalog code naming this action in "... is not possible now"."""
        return f"action.{self.value}"


@dataclass(frozen=True)
class Rule:
    """Where an action is possible, and whether it must wait for work in flight (one at a time)."""

    states: frozenset[State]
    not_while_busy: bool = False


def _on(*states: State, not_while_busy: bool = False) -> Rule:
    return Rule(frozenset(states), not_while_busy)


RULES: dict[Action, Rule] = {
    Action.SIGN_IN: _on(State.SIGNED_OUT, not_while_busy=True),
    Action.SIGN_OUT: _on(State.IDLE, State.END_OF_DAY),
    Action.CHOOSE_COLLECTOR: _on(State.HOUSEHOLD),
    Action.SUBMIT_PIN: _on(State.PIN, not_while_busy=True),
    Action.ADD: _on(State.BASKET),
    Action.REMOVE: _on(State.BASKET),
    Action.TO_CONFIRM: _on(State.BASKET),
    Action.BACK: _on(State.CONFIRM),
    Action.CANCEL: Rule(CARD_STATES | SIDE_SCREENS),
    Action.CONFIRM: _on(State.CONFIRM, not_while_busy=True),
    Action.REPRINT: _on(State.DONE, State.HISTORY, not_while_busy=True),
    Action.FINISH: _on(State.DONE),
    Action.ACKNOWLEDGE: _on(State.ERROR),
    Action.OPEN_HISTORY: _on(State.IDLE),
    Action.VOID: _on(State.HISTORY, not_while_busy=True),
    Action.OPEN_END_OF_DAY: _on(State.IDLE),
    Action.PRINT_END_OF_DAY: _on(State.END_OF_DAY, not_while_busy=True),
    Action.OPEN_FLAG: _on(State.IDLE, State.HOUSEHOLD, State.ERROR),
    Action.FLAG_PROBLEM: _on(State.FLAG, not_while_busy=True),
    Action.OPEN_OVERRIDE: _on(State.IDLE),
    Action.START_OVERRIDE: _on(State.OVERRIDE, not_while_busy=True),
    Action.OPEN_TECHNICIAN: _on(State.IDLE, State.SIGNED_OUT),
    Action.CLOSE_TECHNICIAN: _on(State.TECHNICIAN),
    Action.TEST_PRINTER: _on(State.TECHNICIAN, not_while_busy=True),
    Action.TEST_READER: _on(State.TECHNICIAN),
}


def allowed(action: Action, state: State, busy: bool) -> bool:
    """May `action` be done on the `state` screen now?"""
    rule = RULES[action]
    return state in rule.states and not (busy and rule.not_while_busy)
