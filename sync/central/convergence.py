"""Which devices have not converged on the city's ledger, from what their heartbeats report.

A device reports its live ledger version, the hotlist serial up to which it has every update,
and a digest of its ledger content (sync.ledger_format.LedgerDigest: households,
representatives, plans, quotas, active catalog, hotlist; not confirmed spending, which grows
with every sale). It has converged when its hotlist serial is the city's and its digest the
city's; its version may trail by the confirmed-spending deltas of the last seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync.central.store import CityDigest, DeviceLedger, LedgerRelease

MAX_NUMBER = 2**31 - 1


@dataclass(frozen=True)
class Divergence:
    """One device off the city's ledger, and how."""

    device: str
    version: int
    reason: str


def record_report(device: str, ledger: dict, now: str) -> None:
    """Keep what a heartbeat says of the device's ledger (ignored when it says nothing usable)."""
    version, serial, digest = ledger.get("version"), ledger.get("hotlist_serial"), ledger.get("digest")
    if not (isinstance(version, int) and isinstance(serial, int) and isinstance(digest, str)):
        return
    if not (0 <= version <= MAX_NUMBER and 0 <= serial <= MAX_NUMBER) or len(digest) > 64:
        return
    values = {"version": version, "hotlist_serial": serial, "digest": digest, "reported_at": now}
    DeviceLedger.insert(device=device, **values).on_conflict(conflict_target=[DeviceLedger.device],
                                                              update=values).execute()


def city_state() -> tuple[int, int, str]:
    """(version, hotlist serial, content digest) of the city's current ledger; the digest is
    computed again only after a release that changed what it covers."""
    from sync.central.ledger_publish import city_digest, current_version

    version, serial = current_version()
    row = CityDigest.get_or_none(CityDigest.id == 1)
    content = _last_content_change()
    if row is None or row.hotlist_serial != serial or row.version < content:
        digest = city_digest()
        values = {"version": version, "hotlist_serial": serial, "digest": digest}
        CityDigest.insert(id=1, **values).on_conflict(conflict_target=[CityDigest.id], update=values).execute()
        return version, serial, digest
    return version, serial, row.digest


def _last_content_change() -> int:
    """The newest release that changed households, plans or catalog (confirmed-spending deltas
    record no households and change none of that)."""
    from sync.central.store import LedgerConfirmed

    confirmed = LedgerConfirmed.select(LedgerConfirmed.version).distinct()
    row = (LedgerRelease.select(LedgerRelease.version).where(LedgerRelease.kind.in_(["snapshot", "delta"])
                                                            & LedgerRelease.version.not_in(confirmed))
           .order_by(LedgerRelease.version.desc()).first())
    return row.version if row else 0


def divergences() -> list[Divergence]:
    """The devices whose last report is not the city's ledger, by device id."""
    reports = list(DeviceLedger.select().order_by(DeviceLedger.device))
    if not reports:
        return []
    version, serial, digest = city_state()
    out = []
    for r in reports:
        if r.hotlist_serial < serial:
            out.append(Divergence(r.device, r.version, f"hotlist {r.hotlist_serial}, city has {serial}"))
        elif r.digest != digest:
            out.append(Divergence(r.device, r.version, f"ledger v{r.version} content differs from the city's "
                                                        f"v{version} (digest {r.digest or '-'})"))
    return out
