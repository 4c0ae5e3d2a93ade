"""Household ids as a city writes them: SSN-<area code>-<7 digits> (SSN-6472-0000042 in Samarinda).

Cards, the ledger and the city's messages carry the whole id; a cashier types only its number
(the data report and the card-less sale), so the counter puts the rest around it here, in one
place. One deployment serves one city, whose area code is the device's `[device] area_code`
(DeviceIdentity.area_code, Samarinda's by default).
"""

from __future__ import annotations

import re

DEFAULT_AREA_CODE = "6472"  # Samarinda's regional code
AREA_CODE = re.compile(r"[0-9]{4}")
HOUSEHOLD_DIGITS = 7


def household_prefix(area_code: str = DEFAULT_AREA_CODE) -> str:
    """What every household id of the city starts with: the part the keypad shows before the typed digits."""
    if not AREA_CODE.fullmatch(area_code):
        raise ValueError(f"an area code is 4 digits, not {area_code!r}: set [device] area_code to the city's code")
    return f"SSN-{area_code}-"


def household_id(number: int | str, area_code: str = DEFAULT_AREA_CODE) -> str:
    """The household id for its number (the digits a cashier typed, or a sample city's index);
    "" when nothing was typed. A number that is not 1 to 7 digits is no household of this city."""
    digits = str(number)
    if not digits:
        return ""
    if not digits.isdigit() or len(digits) > HOUSEHOLD_DIGITS:
        raise ValueError(f"a household number is 1 to {HOUSEHOLD_DIGITS} digits, not {digits!r}")
    return household_prefix(area_code) + digits.zfill(HOUSEHOLD_DIGITS)


def household_number(hid: str, area_code: str = DEFAULT_AREA_CODE) -> str:
    """The digits of an id of this city, as the keypad shows them; "" for an id of another form or
    another city (the cashier types it afresh)."""
    prefix = household_prefix(area_code)
    digits = hid.removeprefix(prefix)
    if digits == hid or not digits.isdigit() or len(digits) != HOUSEHOLD_DIGITS:
        return ""
    return digits
