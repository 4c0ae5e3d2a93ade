"""Offline risk caps: how long and how much a device may serve without hearing from the city."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import fn

from pos import settings
from pos.clock import parse_iso
from pos.db import OutboxMessage, Redemption
from pos.ledger import LedgerInfo
from pos.policy import Policy
from pos.refusals import Reason, Refusal


@dataclass(frozen=True)
class DeviceRisk:
    """The risk a device carries while it may still serve: ledger age,
    time since the city was heard, value awaiting acknowledgement."""

    ledger_version: int | None
    ledger_age: timedelta | None
    ledger_warning: bool
    since_contact: timedelta | None
    unacknowledged_value: int


def unacknowledged_value() -> int:
    """Rupiah of redemptions whose message the city has not acknowledged yet."""
    value = (
        Redemption.select(fn.COALESCE(fn.SUM(Redemption.total), 0))
        .join(OutboxMessage, on=(OutboxMessage.seq == Redemption.seq))
        .where(OutboxMessage.state != "acked")
        .scalar()
    )
    return int(value or 0)


def assess_device(info: LedgerInfo | None, policy: Policy, now: datetime) -> DeviceRisk:
    """Raise Refusal when policy says this device must stop serving; else report the risk."""
    if info is None:
        raise Refusal(Reason.LEDGER_MISSING)
    age = now - info.issued_at
    if age > timedelta(hours=policy.ledger_max_age_hours):
        raise Refusal(Reason.LEDGER_TOO_OLD, f"ledger v{info.version} issued {info.issued_at.isoformat()}")
    if now > info.expires_at and policy.ledger_expired_action == "refuse":
        raise Refusal(Reason.LEDGER_EXPIRED, f"ledger v{info.version} expired {info.expires_at.isoformat()}")
    contact_text = settings.get(settings.LAST_CITY_CONTACT)
    contact = parse_iso(contact_text) if contact_text else info.applied_at
    since = now - contact
    if since > timedelta(days=policy.offline_max_days):
        raise Refusal(Reason.OFFLINE_CAP_REACHED, f"no contact with the city since {contact.isoformat()}")
    pending = unacknowledged_value()
    if pending >= policy.offline_max_value:
        raise Refusal(Reason.OFFLINE_CAP_REACHED, f"Rp {pending} waiting for the city's acknowledgement")
    warning = age > timedelta(hours=policy.ledger_warn_age_hours) or now > info.expires_at
    return DeviceRisk(info.version, age, warning, since, pending)
