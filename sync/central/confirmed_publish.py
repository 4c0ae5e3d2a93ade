"""The city's confirmed spending, published to every device as ledger deltas.

Every few seconds `central serve` turns the redemptions it has stored since the last such delta
(this period and the one before, which rollover plans carry over) into a delta of the ledger's
`confirmed` table, and the redemptions voided since into deletes: an online device counts what a
household spent at other shops within seconds, an offline one when it reconnects (the retained
delta, then the snapshot it asks for, which carries all of it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pos.clock import iso
from pos.period import Period
from pos.signing import Signer
from sync.central.ledger_publish import Published, _last, _record
from sync.central.store import LedgerConfirmed, RedemptionRecord, VoidRecord, write_transaction
from sync.ledger_format import build_delta

MAX_ROWS = 20_000  # per delta; more waits for the next one


def _periods(now: datetime) -> list[str]:
    period = Period.of(now)
    return [str(period), str(period.previous())]


def publish_confirmed(*, signer: Signer, city: str, now: datetime, valid_days: int = 30) -> Published | None:
    """Record and return the delta of what was confirmed or voided since the last one (None: nothing
    new, or no ledger published yet)."""
    with write_transaction():
        base = _last(("snapshot", "delta"))
        if not base:
            return None
        published = LedgerConfirmed.select(LedgerConfirmed.redemption_id)
        new = list(RedemptionRecord.select(RedemptionRecord.id, RedemptionRecord.household, RedemptionRecord.period,
                                           RedemptionRecord.total, RedemptionRecord.items, RedemptionRecord.device)
                   .where(RedemptionRecord.period.in_(_periods(now)) & RedemptionRecord.id.not_in(published))
                   .limit(MAX_ROWS).tuples())
        voided = [rid for (rid,) in LedgerConfirmed.select(LedgerConfirmed.redemption_id)
                  .join(VoidRecord, on=(VoidRecord.redemption_id == LedgerConfirmed.redemption_id))
                  .where(~LedgerConfirmed.voided).limit(MAX_ROWS).tuples()]
        new_voided = {rid for (rid,) in VoidRecord.select(VoidRecord.redemption_id)
                      .where(VoidRecord.redemption_id.in_([r[0] for r in new])).tuples()} if new else set()
        upserts = [list(r) for r in new if r[0] not in new_voided]
        if not upserts and not voided:
            if new:  # only voided sales: nothing for the devices, but remember them
                _remember(new, base, new_voided)
            return None
        version = base + 1
        issued, expires = iso(now), iso(now + timedelta(days=valid_days))
        token = build_delta(city, version, base, issued, expires, signer,
                            upserts={"confirmed": upserts} if upserts else None,
                            deletes={"confirmed": [[rid] for rid in voided]} if voided else None)
        _remember(new, version, new_voided)
        if voided:
            LedgerConfirmed.update(voided=True).where(LedgerConfirmed.redemption_id.in_(voided)).execute()
        return _record(version, "delta", len(upserts) + len(voided), 0, (token,), issued, expires)


def _remember(rows: list[tuple], version: int, voided: set[str]) -> None:
    LedgerConfirmed.insert_many([{"redemption_id": r[0], "version": version, "voided": r[0] in voided}
                                 for r in rows]).on_conflict_ignore().execute()

