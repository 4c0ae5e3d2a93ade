"""What the city published, and when: catalog prices per ledger version and hotlist spans.

A device prices a sale from the catalog of its ledger version, and may sell before the newest
release reaches it, so the city judges each sale by the catalog of the version the message names,
not by today's. Likewise a card is judged by whether it was on the hotlist at the sale's time.
Written by `ledger_publish` in the release's transaction; read by `sync.central.quarantine`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from peewee import fn

from sync.central.message_store import iso_seconds
from sync.central.store import (
    CatalogPrice,
    CityCatalogItem,
    HotlistCard,
    HotlistSpan,
    LedgerRelease,
    central_db,
)


def record_catalog(version: int, items: Iterable[tuple[str, int]]) -> None:
    """The catalog (item, price) a ledger release publishes, valid from `version` on."""
    rows = [{"version": version, "item": code, "price": price} for code, price in items]
    CatalogPrice.delete().where(CatalogPrice.version == version).execute()
    for i in range(0, len(rows), 500):
        CatalogPrice.insert_many(rows[i:i + 500]).execute()


def record_listed(card_id: str, reason: str, at: str) -> None:
    """A card put on the hotlist at `at` (already listed: its span goes on)."""
    if not HotlistSpan.select().where((HotlistSpan.card_id == card_id) & (HotlistSpan.unlisted_at == "")).exists():
        HotlistSpan.insert(card_id=card_id, reason=reason, listed_at=at, unlisted_at="").execute()


def record_unlisted(card_ids: Iterable[str], at: str) -> None:
    """Cards taken off the hotlist at `at`: their open spans end."""
    ids = list(card_ids)
    if ids:
        HotlistSpan.update(unlisted_at=at).where(HotlistSpan.card_id.in_(ids) & (HotlistSpan.unlisted_at == "")).execute()


def backfill() -> None:
    """Start the histories of a central database from before they existed: its last catalog is
    taken as every published version's (the older prices were not kept), its hotlist as listed
    since the time recorded for each card."""
    if not CatalogPrice.select().exists() and CityCatalogItem.select().exists():
        first = LedgerRelease.select(fn.MIN(LedgerRelease.version)).where(
            LedgerRelease.kind.in_(("snapshot", "delta"))).scalar() or 1
        record_catalog(first, CityCatalogItem.select(CityCatalogItem.code, CityCatalogItem.price).tuples())
    if not HotlistSpan.select().exists() and HotlistCard.select().exists():
        for h in HotlistCard.select():
            record_listed(h.card_id, h.reason, h.listed_at)


class PriceBook:
    """The catalogs a batch of sales needs, loaded once per batch (the versions with their own
    catalog, the newest published version) and once per catalog version for the prices, which a
    release never changes afterwards."""

    def __init__(self) -> None:
        self._prices: dict[int, dict[str, int]] = {}
        self._versions: list[int] = []
        self._published = 0

    def refresh(self) -> None:
        """Read which versions exist now (another process may have published since). Plain SQL: the
        consumer asks for every batch, and peewee's building of the queries cost more than the reads."""
        db = central_db.obj
        self._versions = sorted(v for (v,) in db.execute_sql(
            f"SELECT DISTINCT version FROM {CatalogPrice._meta.table_name}").fetchall())
        self._published = int(db.execute_sql(
            f"SELECT MAX(version) FROM {LedgerRelease._meta.table_name} WHERE kind IN ('snapshot', 'delta')"
        ).fetchone()[0] or 0)

    @property
    def published(self) -> int:
        """The newest ledger version (snapshot or delta) the city had published at `refresh`."""
        return self._published

    @property
    def active(self) -> bool:
        """False while the city has published no catalog at all: nothing to price sales by."""
        return bool(self._versions)

    def catalog(self, version: object) -> tuple[int, dict[str, int]] | None:
        """(catalog version, {item: price}) in force at ledger `version`; None when the city never
        published that version."""
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= self._published:
            return None
        at = bisect_right(self._versions, version)
        if at == 0:
            return None
        cv = self._versions[at - 1]
        if cv not in self._prices:
            self._prices[cv] = dict(CatalogPrice.select(CatalogPrice.item, CatalogPrice.price).where(
                CatalogPrice.version == cv).tuples())
        return cv, self._prices[cv]


def listed_at_time(spans: list[tuple[str, str, str]], when: float | None) -> str | None:
    """The reason a card was hotlisted at `when` (POSIX seconds; None: the sale's time is not a
    time), from its (reason, listed_at, unlisted_at) spans; None if it was not."""
    if when is None:
        return None
    for reason, listed, unlisted in spans:
        if iso_seconds(listed) <= when and (not unlisted or when < iso_seconds(unlisted)):
            return reason or "listed"
    return None
