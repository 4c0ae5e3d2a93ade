"""What the counter's status bar shows, read from the database (on a worker thread).

Ledger load progress is the setting ``ledger.progress``, value JSON ``{"received": n, "total": m}``
(rows or chunks; the bar shows received/total); the key is removed, or ``received == total``, once
the snapshot applied. The sync daemon does not write this key yet (it publishes its snapshot
progress in ``sync.status``, `pos/health.py`), so today only the UI tests fill it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from pos import settings
from pos.db import OutboxMessage
from pos.ledger import Ledger
from pos.policy import Policy

LEDGER_PROGRESS = "ledger.progress"
ONLINE_WITHIN = timedelta(minutes=5)


@dataclass(frozen=True)
class StatusSnapshot:
    """What the status bar shows, read in one go on a worker
    thread so the UI thread never queries the database."""

    online: bool
    queued: int
    ledger_version: int | None
    ledger_age_hours: float | None
    ledger_warning: bool
    progress: tuple[int, int] | None  # (received, total) while a snapshot loads


def ledger_progress() -> tuple[int, int] | None:
    """(received, total) while a ledger snapshot loads, else None: a
    missing, malformed or finished value hides the progress bar."""
    text = settings.get(LEDGER_PROGRESS)
    if not text:
        return None
    try:
        data = json.loads(text)
        received, total = int(data["received"]), int(data["total"])
    except (ValueError, KeyError, TypeError):
        return None
    if total <= 0 or received >= total:
        return None
    return max(0, received), total


def read_status(ledger: Ledger, policy: Policy, now: datetime) -> StatusSnapshot:
    """Everything the status bar shows: online, queued messages,
    ledger version, age and warning, snapshot progress."""
    from pos.clock import parse_iso

    queued = OutboxMessage.select().where(OutboxMessage.state != "acked").count()
    info = ledger.info()
    contact = settings.get(settings.LAST_CITY_CONTACT)
    online = bool(contact) and now - parse_iso(contact) <= ONLINE_WITHIN
    if info is None:
        return StatusSnapshot(online, queued, None, None, True, ledger_progress())
    age = now - info.issued_at
    hours = age.total_seconds() / 3600
    warning = hours > policy.ledger_warn_age_hours or now > info.expires_at
    return StatusSnapshot(online, queued, info.version, hours, warning, ledger_progress())
