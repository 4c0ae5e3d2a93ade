"""Named values in the database: the device sequence and the last contact with the city."""

from __future__ import annotations

from pos.db import Setting

DEVICE_SEQUENCE = "device_seq"
LAST_CITY_CONTACT = "last_city_contact_at"


def get(key: str, default: str | None = None) -> str | None:
    """A named value, or `default` when it was never set."""
    row = Setting.get_or_none(Setting.key == key)
    return row.value if row else default


def put(key: str, value: str) -> None:
    """Set a named value, replacing any earlier one."""
    Setting.insert(key=key, value=value).on_conflict_replace().execute()


def next_sequence() -> int:
    """The next per-device sequence number; call inside the write transaction that uses it."""
    current = int(get(DEVICE_SEQUENCE, "0") or 0)
    put(DEVICE_SEQUENCE, str(current + 1))
    return current + 1


def last_sequence() -> int:
    """The last sequence number used, for backups and diagnostics that must not take a new one."""
    return int(get(DEVICE_SEQUENCE, "0") or 0)
