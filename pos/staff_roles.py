"""Who among the staff may do what at the counter, and in which shifts: one list for the screens,
the session and the CLI.

Every sale names the cashier signed in, so only those who sell sign in at the counter; a void or
a card-less sale needs a supervisor's PIN; a lockout is lifted by a supervisor or the technician.
The sign-in screen lists AT_COUNTER, the supervisor's pad APPROVERS, and the session and
pos.cashiers check the same sets, so a hidden button is never the only thing in the way.
"""

from __future__ import annotations

ROLES = ("cashier", "supervisor", "technician")
AT_COUNTER = frozenset({"cashier", "supervisor"})
"""Who may sign in at the counter and sell (the technician has the technician screen instead)."""
APPROVERS = frozenset({"supervisor"})
"""Who approves a void or a card-less sale with their PIN."""
UNLOCKERS = frozenset({"supervisor", "technician"})
"""Who lifts a staff lockout (at the sign-in screen, or `ewarung cashier unlock`)."""
SHIFTS = ("pagi", "siang", "malam")
"""The shifts a signed-in cashier works (journaled with the sign-in, shown on the day-end slip)."""
DEFAULT_SHIFT = SHIFTS[0]
"""The shift the sign-in screen and `ewarung sale` pick before anyone chooses one."""
