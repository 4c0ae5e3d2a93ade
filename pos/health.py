"""Health and progress values shared between the counter app and the sync daemon.

The database is the only channel between the two processes, so each side writes small JSON
values into `Setting` rows:

- ``health.reader`` / ``health.printer``:
  ``{"state": "ok"|"degraded"|"fault"|"unknown", "detail": "...", "at": "<ISO UTC>"}``;
  the sync daemon copies them into the heartbeat (`sync/status.py`). `put_health` is the
  counter app's side; nothing calls it yet, so the heartbeat reports "unknown".
- ``sync.status``: written by the sync daemon (connected, queue depth, ledger snapshot
  progress ``{"version", "received", "total"}``); `ewarung sync status` shows it. The counter's
  progress bar reads another key, ``ledger.progress`` (`pos/status.py`).
"""

from __future__ import annotations

import json

from pos import settings

HEALTH_READER = "health.reader"
HEALTH_PRINTER = "health.printer"
SYNC_STATUS = "sync.status"
STATES = ("ok", "degraded", "fault", "unknown")


def put_health(key: str, state: str, detail: str = "", at: str = "") -> None:
    """The counter's side of the health channel: a reader or printer state for the sync
    daemon's heartbeat; keys and states the heartbeat does not know are refused."""
    if key not in (HEALTH_READER, HEALTH_PRINTER):
        raise ValueError(f"unknown health key {key!r}")
    if state not in STATES:
        raise ValueError(f"health state must be one of {', '.join(STATES)}")
    settings.put(key, json.dumps({"state": state, "detail": detail[:200], "at": at}))


def get_json(key: str) -> dict:
    """A setting's JSON object, or {} when it is missing or unreadable:
    a half-written or foreign value must not break the reader."""
    raw = settings.get(key)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def health(key: str) -> dict:
    """A reader or printer health value as the heartbeat sends it: an
    unknown state reads as "unknown", the detail is capped."""
    value = get_json(key)
    return {
        "state": value.get("state") if value.get("state") in STATES else "unknown",
        "detail": str(value.get("detail", ""))[:200],
        "at": str(value.get("at", "")),
    }


def put_sync_status(status: dict) -> None:
    """The sync daemon's side: connection, queue and snapshot progress, for `ewarung sync status`."""
    settings.put(SYNC_STATUS, json.dumps(status, sort_keys=True))


def sync_status() -> dict:
    """What the sync daemon last published with put_sync_status ({} before its first write)."""
    return get_json(SYNC_STATUS)
