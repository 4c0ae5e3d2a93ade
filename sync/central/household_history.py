"""The beneficiary list as it stood at a sale's time: a household's status and validity dates.

The counter refuses a household its ledger says is revoked or out of its dates, but the device key
can sign a sale for it anyway (and an offline counter on an old ledger would sell), each with the
household's genuine card, never hotlisted. So the city judges each sale by its own list as it stood
when the sale was made: a row per change of a household's status or dates, from the release that
published it (`record_households`, in the release's transaction). A sale whose date (Asia/Makassar)
is outside the household's valid_from..valid_until, or made while the household was not active
(revoked, suspended, dropped from the list), is quarantined (critical). A sale before the household
first appeared on the list is not judged here: the report names a household unknown to the city.
"""

from __future__ import annotations

from collections.abc import Iterable

from sync.central.evidence_checks import sale_date
from sync.central.message_store import iso_seconds, select_in, time_seconds
from sync.central.store import CityHousehold, HouseholdSpan, LedgerRelease

REMOVED = "removed"


def _latest() -> dict[str, tuple[str, str, str]]:
    """{household: (status, valid_from, valid_until)} of each household's newest row."""
    latest: dict[str, tuple[str, str, str]] = {}
    for hh, status, vf, vu in HouseholdSpan.select(HouseholdSpan.household, HouseholdSpan.status,
                                                   HouseholdSpan.valid_from, HouseholdSpan.valid_until
                                                   ).order_by(HouseholdSpan.id).tuples():
        latest[hh] = (status, vf, vu)
    return latest


def record_households(rows: Iterable[tuple[str, str, str, str]], at: str) -> None:
    """The list a release publishes at `at`, as (household, status, valid_from, valid_until): a row
    for each household new or changed since, and a `removed` row for each one no longer on it."""
    latest, seen, fresh = _latest(), set(), []
    for hh, status, vf, vu in rows:
        seen.add(hh)
        if latest.get(hh) != (status, vf, vu):
            fresh.append({"household": hh, "status": status, "valid_from": vf, "valid_until": vu, "since": at})
    fresh += [{"household": hh, "status": REMOVED, "valid_from": vf, "valid_until": vu, "since": at}
              for hh, (status, vf, vu) in latest.items() if hh not in seen and status != REMOVED]
    for i in range(0, len(fresh), 500):
        HouseholdSpan.insert_many(fresh[i:i + 500]).execute()


def backfill_households() -> None:
    """A central database from before this history: its list as last published, taken as standing
    since its last release (the earliest time the city can vouch for; sales before it are not
    judged, rather than judged by a list that may not have held then)."""
    if HouseholdSpan.select().exists() or not CityHousehold.select().exists():
        return
    last = LedgerRelease.select(LedgerRelease.issued_at).where(LedgerRelease.kind.in_(("snapshot", "delta"))
                                                               ).order_by(LedgerRelease.id.desc()).scalar()
    if last:
        record_households(CityHousehold.select(CityHousehold.id, CityHousehold.status, CityHousehold.valid_from,
                                               CityHousehold.valid_until).tuples(), last)


class HouseholdBook:
    """The list's history for one batch's households, read with one query."""

    def __init__(self, households: list[str]) -> None:
        # (status, valid_from, valid_until, since, since as POSIX seconds), in the order they were published
        self.spans: dict[str, list[tuple[str, str, str, str, float]]] = {}
        for hh, status, vf, vu, since in select_in(
                "SELECT household, status, valid_from, valid_until, since FROM central_household_span "
                "WHERE household IN ({in}) ORDER BY id", households):
            self.spans.setdefault(hh, []).append((status, vf, vu, since, iso_seconds(since)))

    def judged(self, household: str, created_at: str, when: float | None = None) -> tuple[str, str] | None:
        """("household", reason) when the list did not allow this sale, for the quarantine."""
        reason = self.problem(household, created_at, when)
        return ("household", reason) if reason else None

    def problem(self, household: str, created_at: str, when: float | None = None) -> str | None:
        """Why the list, as it stood at `created_at`, did not allow a sale to this household
        (`when`: created_at as POSIX seconds when the caller has it, else read here)."""
        spans = self.spans.get(household)
        if not spans:
            return None  # a household unknown to the city is the report's finding, not this check's
        if when is None:
            when = time_seconds(created_at)
            if when is None:
                return None  # an undatable sale is a content problem already
        standing = None
        for span in spans:
            if span[4] <= when:
                standing = span
        if standing is None:
            return None
        status, vf, vu, since, _ = standing
        if status != "active":
            return f"household {household} was {status} on the city's list (since {since}) at the sale's time {created_at}"
        day = sale_date(created_at)
        if day is not None and not vf <= day.isoformat() <= vu:
            return (f"household {household} is valid {vf}..{vu} on the city's list, not on the sale's date "
                    f"{day.isoformat()}")
        return None
