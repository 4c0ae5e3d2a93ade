"""Device risk policy, as plain values the domain core reads (the config schema fills it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Policy:
    """The device's risk limits as plain values, so the
    core judges them without reading the config."""

    ledger_warn_age_hours: int = 48
    """Show the ledger age in a warning colour after this long without an update."""
    ledger_max_age_hours: int = 24 * 7
    """Refuse to serve when the ledger has not been updated for this long."""
    ledger_expired_action: Literal["refuse", "warn"] = "refuse"
    """What to do once the ledger's own expiry (set by the city) has passed."""
    offline_max_days: int = 7
    """Refuse once the city has not been heard from for this many days."""
    offline_max_value: int = 50_000_000
    """Refuse once this many rupiah of redemptions wait for the city's acknowledgement."""
    void_window_minutes: int = 30
    pin_tries: int = 3
    override_cap_per_period: int = 20
    """Supervisor overrides (damaged or forgotten card) allowed per period on this device."""
    language: Literal["id", "en"] = "id"
