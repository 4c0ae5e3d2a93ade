"""Money is integer rupiah: no floats anywhere near money."""

from __future__ import annotations

Rupiah = int


def require_rupiah(value: object, what: str = "amount") -> int:
    """Return `value` if it is a non-negative integer number of rupiah; raise otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an integer number of rupiah, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    return value


def format_rupiah(amount: int) -> str:
    """Format like Indonesian receipts do: ``Rp 1.250.000``."""
    require_rupiah(abs(amount) if isinstance(amount, int) else amount)
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp {abs(amount):,}".replace(",", ".")
