"""pos.health: the counter app writes reader/printer health, the sync daemon reads it (and back)."""

from __future__ import annotations

import pytest

from pos import health, settings


def test_health_round_trip_and_defaults(db):
    assert health.health(health.HEALTH_READER) == {"state": "unknown", "detail": "", "at": ""}
    health.put_health(health.HEALTH_PRINTER, "fault", "paper out", "2026-11-15T02:00:00.000Z")
    assert health.health(health.HEALTH_PRINTER) == {"state": "fault", "detail": "paper out", "at": "2026-11-15T02:00:00.000Z"}
    settings.put(health.HEALTH_READER, "{not json")
    assert health.health(health.HEALTH_READER)["state"] == "unknown"
    health.put_sync_status({"connected": True, "snapshot_progress": {"version": 2, "received": 3, "total": 9}})
    assert health.sync_status()["snapshot_progress"]["received"] == 3


def test_health_refuses_unknown_keys_and_states(db):
    with pytest.raises(ValueError, match="state must be one of"):
        health.put_health(health.HEALTH_READER, "broken")
    with pytest.raises(ValueError, match="unknown health key"):
        health.put_health("health.scanner", "ok")
