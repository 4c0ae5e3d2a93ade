"""Time source as a port, so rules about periods and ages are testable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Port: the core asks this for the time, so tests and
    demos can pin it and period rules stay testable."""

    def now(self) -> datetime:
        """An aware datetime in UTC."""
        ...


class SystemClock:
    """The real clock, for the appliance and the daemons."""

    def now(self) -> datetime:
        """Now in UTC; periods and days are derived from it in
        WITA, never from the machine's local time."""
        return datetime.now(UTC)


class FixedClock:
    """A clock for tests and scripted demos: stands still until told to move."""

    def __init__(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = moment.astimezone(UTC)

    def now(self) -> datetime:
        """The moment the clock was set to; it moves only by advance or set."""
        return self._now

    def advance(self, delta: timedelta) -> None:
        """Let time pass in a test or demo (across a period end, past a void window)."""
        self._now += delta

    def set(self, moment: datetime) -> None:
        """Jump to a given moment, kept in UTC like the system clock's."""
        self._now = moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the millisecond: the only timestamp format we store or send."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Read back a timestamp iso() wrote (or any ISO 8601 with an offset) as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
