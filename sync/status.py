"""Device status (retained, last will "offline"), heartbeat and device requests.

These are not sequenced (``seq`` is null): they describe the device now, and are signed
envelopes like every other message so the city can trust them.
"""

from __future__ import annotations

from datetime import datetime

from firmware_config import updates
from pos import __version__, health
from pos.clock import iso, parse_iso
from pos.db import LedgerState
from pos.ids import new_id
from pos.messages import build_envelope, sign_envelope
from pos.signing import Signer


def signed(kind: str, device_id: str, body: dict, signer: Signer, now: datetime) -> bytes:
    """A status, heartbeat or request as a signed envelope without a seq: the city trusts it, and it takes no
    place in the sequence."""
    env = build_envelope(kind, new_id(), device_id, None, iso(now), body)  # type: ignore[arg-type]
    return sign_envelope(env, signer)


def status_body(state: str) -> dict:
    """The retained status (online/offline) the fleet page shows."""
    return {"state": state, "software": updates.software_label(__version__)}


def heartbeat_body(outbox_stats: dict, now: datetime, started: datetime, snapshot: dict, connected_since: str,
                   convergence: dict | None = None) -> dict:
    """What the city needs to see a device is healthy: queue, ledger age, reader, printer, last contact;
    `convergence` ({"hotlist_serial", "digest"}) lets it see whether this device holds its ledger."""
    ledger = LedgerState.get_or_none(LedgerState.id == 1)
    from pos import settings

    body = {
        "software": updates.software_label(__version__),
        "uptime_s": int((now - started).total_seconds()),
        "queue_depth": outbox_stats["queued"] + outbox_stats["published"],
        "queued": outbox_stats["queued"],
        "published_unacked": outbox_stats["published"],
        "oldest_unacked_age_s": outbox_stats["oldest_unacked_age_s"],
        "last_seq": settings.last_sequence(),
        "ledger": {
            "version": ledger.version if ledger else 0,
            "age_s": int((now - parse_iso(ledger.issued_at)).total_seconds()) if ledger else None,
            "expires_at": ledger.expires_at if ledger else None,
            "snapshot_progress": snapshot or None,
            **(convergence or {}),
        },
        "reader": health.health(health.HEALTH_READER),
        "printer": health.health(health.HEALTH_PRINTER),
        "last_city_contact": settings.get(settings.LAST_CITY_CONTACT) or None,
        "connected_since": connected_since or None,
    }
    verdict = updates.last_verdict()
    if verdict:
        body["update"] = verdict
    return body
