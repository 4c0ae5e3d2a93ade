"""Household ids as the city writes them: SSN-<area code>-<7 digits> (SSN-6472-0000042).

Cards, the ledger and the city's messages carry the whole id; a cashier types only its number
(the data report and the card-less sale), so the counter puts the rest around it here, in one
place. The area code is the city's (Samarinda's); one deployment serves one city.
"""

from __future__ import annotations

AREA_CODE = "6472"  # Samarinda's regional code
HOUSEHOLD_PREFIX = f"SSN-{AREA_CODE}-"
HOUSEHOLD_DIGITS = 7


def household_id(number: int | str) -> str:
    """The household id for its number (the digits a cashier typed, or a sample city's index);
    "" when nothing was typed. A number that is not 1 to 7 digits is no household of this city."""
    digits = str(number)
    if not digits:
        return ""
    if not digits.isdigit() or len(digits) > HOUSEHOLD_DIGITS:
        raise ValueError(f"a household number is 1 to {HOUSEHOLD_DIGITS} digits, not {digits!r}")
    return HOUSEHOLD_PREFIX + digits.zfill(HOUSEHOLD_DIGITS)


def household_number(hid: str) -> str:
    """The digits of an id of this city, as the keypad shows them; "" for an id of another form
    (the cashier types it afresh)."""
    digits = hid.removeprefix(HOUSEHOLD_PREFIX)
    if digits == hid or not digits.isdigit() or len(digits) != HOUSEHOLD_DIGITS:
        return ""
    return digits
