"""Ids a device mints: message ids, redemption and void ids, print-job ids.

Each is a UUID version 7 (RFC 9562) in its usual text form: 48 bits of Unix milliseconds, then
random bits. Unique like a random UUID, but ids minted later sort later, so every table keyed by
them (the city's messages and redemptions, the device's outbox and print jobs) grows at one end of
its index instead of rewriting a random index page per row. Nobody may rely on the order for
anything but speed: a device's clock can be wrong, and the city accepts any UUID text.

Minted here with the standard library: the uuid6 package does the same, but at import it reads
every installed package's metadata (importlib.metadata), which costs the counter app over a
megabyte of its memory budget.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0  # the millisecond of the last id minted
_counter = 0  # ids minted in that millisecond, from a random start (RFC 9562, 6.2, method 1)
_COUNTER_MAX = 0xFFF  # the 12 bits after the version field


def new_id() -> str:
    """A fresh, time-ordered id, so the indexes that store it stay compact and append-only.
    Within one process ids never go backwards: in the same millisecond as the last id, or after
    the clock stepped back, a 12-bit counter after the time goes up (and the millisecond after
    the last one's is taken once the counter is used up)."""
    global _last_ms, _counter
    with _lock:
        now = time.time_ns() // 1_000_000
        if now > _last_ms:
            _last_ms, _counter = now, int.from_bytes(os.urandom(2), "big") & (_COUNTER_MAX >> 1)
        elif _counter < _COUNTER_MAX:
            _counter += 1
        else:
            _last_ms, _counter = _last_ms + 1, 0
        ms, counter = _last_ms, _counter
    # time (48 bits), version 7 (4), counter (12), variant 0b10 (2), random (62)
    value = ms << 80 | 7 << 76 | counter << 64 | 0b10 << 62 | int.from_bytes(os.urandom(8), "big") >> 2
    return str(uuid.UUID(int=value))
