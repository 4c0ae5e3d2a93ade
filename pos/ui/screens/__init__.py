"""The counter screens: one view per session state, `STATE_VIEW` picks the one on display.

Start with `visit.py` (a household's visit: idle, card, PIN, basket, confirm, done); `staff.py`
holds the staff's own screens (sign-in, history and void, end of day, flag, override,
technician); `base.py` the `View` every screen is and the helpers they share. Like
pos/session, which these views render: no business rule lives in a view.
"""

from __future__ import annotations

from pos.session import State
from pos.ui.screens.base import View
from pos.ui.screens.staff import (
    EndOfDayView,
    FlagView,
    HistoryView,
    OverrideView,
    SignInView,
    TechnicianView,
)
from pos.ui.screens.visit import (
    BasketView,
    CommittingView,
    ConfirmView,
    DoneView,
    ErrorView,
    HouseholdView,
    IdleView,
    PinView,
    VerifyingView,
)

VIEWS = [SignInView, IdleView, VerifyingView, HouseholdView, PinView, BasketView, ConfirmView, CommittingView,
         DoneView, ErrorView, HistoryView, EndOfDayView, FlagView, OverrideView, TechnicianView]
STATE_VIEW = {State(v.name if v.name != "signin" else "signed_out"): v for v in VIEWS}

__all__ = [
    "STATE_VIEW", "VIEWS", "BasketView", "CommittingView", "ConfirmView", "DoneView", "EndOfDayView",
    "ErrorView", "FlagView", "HistoryView", "HouseholdView", "IdleView", "OverrideView", "PinView",
    "SignInView", "TechnicianView", "VerifyingView", "View",
]
