"""The counter session: what the cashier's screen is doing, as a pure state machine.

Start with `visit.py` (card -> household -> PIN -> basket -> confirm -> done); each staff flow is a
small class of its own (sign_in, history, day_end, flag, override, technician, receipts), and
`rules.py` is the table of which touch each screen allows. `CounterSession` puts them together.

Threading contract. Every public method and every `card_event` call runs on ONE thread (the
UI thread in the app; the test thread in tests). Card, printer and database work is handed to
`runner.submit(work, done)`: `work()` runs on a worker thread and only returns its result;
`done(result, error)` is delivered back on the session's thread and is the only place a result
changes the session. Results of work started for a card that has since been pulled are dropped
(a generation counter), except a commit: a committed sale is never lost or hidden.

Touches that are not possible in the current state change nothing and set `notice` to a code of
the wording catalog (pos.wording) saying why; screens word it with `notice_text()`.
"""

from __future__ import annotations

from pos.redemption import OVERRIDE_REASONS, VOID_REASONS, HistoryRow
from pos.session.core import REPORTABLE_BY_CASHIER, REPORTED_TO_CITY, ErrorInfo, Sale
from pos.session.day_end import EndOfDay
from pos.session.flag import FlagProblem
from pos.session.history import History
from pos.session.override import Override
from pos.session.receipts import Receipts
from pos.session.rules import CARD_STATES, RULES, Action, State
from pos.session.runners import DeferredRunner, InlineRunner, Runner, ThreadRunner
from pos.session.sign_in import DEFAULT_SHIFT, SHIFTS, SignIn
from pos.session.technician import Technician
from pos.session.visit import Visit
from pos.wording import fault_message


class CounterSession(Visit, SignIn, Receipts, History, EndOfDay, FlagProblem, Override, Technician):
    """The counter's state; screens render it and call its methods (one per touch)."""


__all__ = [
    "CARD_STATES", "DEFAULT_SHIFT", "OVERRIDE_REASONS", "REPORTABLE_BY_CASHIER", "REPORTED_TO_CITY", "RULES", "SHIFTS",
    "VOID_REASONS", "Action", "CounterSession", "DeferredRunner", "ErrorInfo", "HistoryRow", "InlineRunner", "Runner",
    "Sale", "State", "ThreadRunner", "fault_message",
]
