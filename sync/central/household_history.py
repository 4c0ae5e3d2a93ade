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
from datetime import date, datetime, time, timedelta

from pos.period import WITA
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


Span = tuple[str, str, str, str, float, tuple[float, float] | None]
"""(status, valid_from, valid_until, since, since as POSIX seconds, the valid days as [start, end)
POSIX seconds or None), a row of central_household_span as the checks read it."""


class HouseholdBook:
    """The list's history for one batch's households, read with one query (`known`: the spans
    of households already read, still current: see `HouseholdHistory`)."""

    def __init__(self, households: list[str], known: dict[str, list[Span]] | None = None) -> None:
        self.spans: dict[str, list[Span]] = {} if known is None else known
        wanted = [hh for hh in dict.fromkeys(households) if hh not in self.spans]
        for hh in wanted:
            self.spans[hh] = []
        for hh, status, vf, vu, since in select_in(
                "SELECT household, status, valid_from, valid_until, since FROM central_household_span "
                "WHERE household IN ({in}) ORDER BY id", wanted):
            self.spans[hh].append((status, vf, vu, since, iso_seconds(since), _valid_seconds(vf, vu)))

    def judged(self, household: str, created_at: str, at: float | None = None) -> tuple[str, str] | None:
        """("household", reason) when the list did not allow this sale, for the quarantine."""
        reason = self.problem(household, created_at, at)
        return ("household", reason) if reason else None

    def problem(self, household: str, created_at: str, at: float | None = None) -> str | None:
        """Why the list, as it stood at `created_at`, did not allow a sale to this household (`at`:
        created_at as POSIX seconds when the verify worker read it, else it is read here)."""
        spans = self.spans.get(household)
        if not spans:
            return None  # a household the city never listed is the report's finding, not this check's
        when = at if at is not None else time_seconds(created_at)
        if when is None:
            return None  # an undatable sale is a content problem already
        standing = None
        for span in spans:
            if span[4] <= when:
                standing = span
        if standing is None:
            return None
        status, vf, vu, since, _, valid = standing
        if status != "active":
            return f"household {household} was {status} on the city's list (since {since}) at the sale's time {created_at}"
        if at is not None and valid is not None and 0 <= at < 2**32:
            # the sale's WITA date compared as seconds rather than read from the text again (exact to
            # the microsecond from 1970 to 2106)
            in_dates = valid[0] <= at < valid[1]
        else:
            day = sale_date(created_at)
            in_dates = day is None or vf <= day.isoformat() <= vu
        if in_dates:
            return None
        return (f"household {household} is valid {vf}..{vu} on the city's list, not on the sale's date "
                f"{sale_date(created_at)}")


def _valid_seconds(valid_from: str, valid_until: str) -> tuple[float, float] | None:
    """valid_from..valid_until (inclusive WITA days) as [start, end) POSIX seconds; None unless
    both are dates written as YYYY-MM-DD (the check compares those as text, like the sale's date)."""
    try:
        first, last = date.fromisoformat(valid_from), date.fromisoformat(valid_until)
    except (TypeError, ValueError):
        return None
    if first.isoformat() != valid_from or last.isoformat() != valid_until:
        return None
    start = datetime.combine(first, time(), WITA).timestamp()
    try:
        end = datetime.combine(last + timedelta(days=1), time(), WITA).timestamp()
    except OverflowError:  # valid until 9999-12-31
        end = float("inf")
    return start, end


class HouseholdHistory:
    """The spans of the households the consumer has judged, kept while the city publishes no new
    release: a list changes only with a release (`record_households`, in its transaction), so
    each batch reads only the households it has not seen since the last one."""

    def __init__(self) -> None:
        self._spans: dict[str, list[Span]] = {}
        self._release = -1

    def book(self, households: list[str], release: int) -> HouseholdBook:
        """A batch's book; `release`: the newest release the city has published, read before."""
        if release != self._release:
            self._spans, self._release = {}, release
        return HouseholdBook(households, self._spans)
