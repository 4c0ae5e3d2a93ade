"""Ids a device mints: message ids, redemption and void ids, print-job ids.

Each is a UUID version 7 (RFC 9562) in its usual text form: 48 bits of Unix milliseconds, then
random bits. Unique like a random UUID, but ids minted later sort later, so every table keyed by
them (the city's messages and redemptions, the device's outbox and print jobs) grows at one end of
its index instead of rewriting a random index page per row. Nobody may rely on the order for
anything but speed: a device's clock can be wrong, and the city accepts any UUID text.
"""

from __future__ import annotations

from uuid6 import uuid7


def new_id() -> str:
    """A fresh, time-ordered id, so the indexes that store it stay compact and append-only.
    Within one process ids never go backwards, even across a clock step back."""
    return str(uuid7())
