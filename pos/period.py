"""Allowance periods: calendar months in Asia/Makassar (WITA, UTC+8), never UTC months."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

WITA = ZoneInfo("Asia/Makassar")
_PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, order=True)
class Period:
    """One allowance month, written ``YYYY-MM``."""

    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime) -> Period:
        """The period an instant falls in, as seen on a wall clock in Samarinda."""
        if moment.tzinfo is None:
            raise ValueError("period of a naive datetime is ambiguous; pass an aware datetime")
        local = moment.astimezone(WITA)
        return cls(local.year, local.month)

    @classmethod
    def parse(cls, text: str) -> Period:
        """Read a period as messages, ledgers and the CLI
        write it (YYYY-MM); anything else is refused."""
        m = _PERIOD_RE.match(text or "")
        if not m:
            raise ValueError(f"period must look like 2026-11, got {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def previous(self) -> Period:
        """The month before, for plans whose unspent allowance carries over."""
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

