"""The limits the city sets for every device, kept in the central database.

A device's own override cap and void window live in its config, which whoever holds the device can
change; these are the city's, judged on what reaches it (`ewarung central policy`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from sync.central.store import CitySetting, central_db


@dataclass(frozen=True)
class CityPolicy:
    """Overrides (sales without a card) allowed per device and per household in a period, how
    long after a sale its device may void it, and how far a device's clock may step back."""

    override_cap_device: int = 20
    """Supervisor overrides one device may make in a period (the device's default cap)."""
    override_cap_household: int = 2
    """Overrides one household may receive in a period, across all devices."""
    void_window_minutes: int = 30
    """A void later than this after its sale is quarantined (the device's default window)."""
    clock_step_back_seconds: int = 300
    """How far a message's created_at may fall behind the one before it in its device's sequence (a
    clock corrected by NTP) before it is quarantined as dated back (sync.central.device_clock)."""


NAMES = tuple(f.name for f in fields(CityPolicy))


def city_policy() -> CityPolicy:
    """The city's policy: stored values over the defaults. Plain SQL: the consumer reads it for
    every batch, and peewee's building of the query cost more than the read."""
    rows = central_db.obj.execute_sql(f"SELECT name, value FROM {CitySetting._meta.table_name}").fetchall()
    return replace(CityPolicy(), **{n: v for n, v in rows if n in NAMES})


def set_city_policy(**values: int | None) -> CityPolicy:
    """Store the values given (None: unchanged); each must be a whole number >= 0."""
    for name, value in values.items():
        if name not in NAMES:
            raise ValueError(f"unknown policy setting {name!r}; known: {', '.join(NAMES)}")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
        CitySetting.insert(name=name, value=value).on_conflict(
            conflict_target=[CitySetting.name], update={CitySetting.value: value}).execute()
    return city_policy()
