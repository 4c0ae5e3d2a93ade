"""Turn the city's beneficiary list into a signed ledger update with a monotonic version.

The wire format is the sync contract's (sync/ledger_format.py, docs/mqtt-contract.md):
a snapshot is chunk tokens plus a manifest on ``ewarung/v1/ledger/{city}/snapshot``; a delta
(upserts/deletes against ``base_version``) on ``.../delta``; a hotlist (own monotonic serial) on
``.../hotlist``. Every update is recorded in the central database with its exact tokens.

A device that asks is answered with `current_snapshot`: built at that moment from the city's
tables (the current version, the whole hotlist with its serial, the spending the city has
confirmed this period and the one before), never a stored older one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from peewee import fn

from pos.clock import iso
from pos.messages import ledger_topic
from pos.period import Period
from pos.signing import Signer
from sync.central.beneficiaries import BeneficiaryRow, CsvRejected, parse_beneficiaries
from sync.central.catalog_history import record_catalog, record_listed, record_unlisted
from sync.central.household_history import record_households
from sync.central.programme import Programme, sample_programme
from sync.central.store import (
    CityCatalogItem,
    CityHousehold,
    CityPlan,
    HotlistCard,
    LedgerRelease,
    RedemptionRecord,
    VoidRecord,
    central_db,
)
from sync.ledger_format import (
    DEFAULT_CHUNK_ROWS,
    LEDGER_TYP,
    LedgerDigest,
    SnapshotBuilder,
    build_delta,
    build_hotlist,
)

__all__ = ["LEDGER_TYP", "Published", "city_digest", "current_snapshot", "current_version", "hotlist_cards",
           "latest_snapshot", "publish_ledger", "read_hotlist_csv"]


@dataclass(frozen=True)
class Published:
    """A signed ledger update as published: its tokens plus what the CLI reports about it."""

    version: int  # ledger version (snapshot/delta) or hotlist serial
    kind: str
    households: int
    skipped: int
    tokens: tuple[bytes, ...]  # in publishing order (snapshot: chunks, then the manifest)
    sha256: str

    @property
    def token(self) -> bytes:
        """The last token: the manifest of a snapshot, or the single token of a delta or hotlist."""
        return self.tokens[-1]

    @property
    def size(self) -> int:
        """Bytes on the wire, for the CLI's report and the size budgets."""
        return sum(len(t) for t in self.tokens)

    def messages(self, city: str) -> list[tuple[str, bytes]]:
        """(topic, payload) pairs to publish, in order."""
        topic = ledger_topic(city, self.kind)
        return [(topic, t) for t in self.tokens]


def _row_hash(r: BeneficiaryRow) -> str:
    text = "\x1f".join([r.household_id, r.name, r.area, r.plan, r.status, r.valid_from, r.valid_until, r.reps_text()])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _household(r: BeneficiaryRow) -> list:
    return [r.household_id, r.name, r.area, r.plan, r.status, r.valid_from, r.valid_until]


def _reps(rows: list[BeneficiaryRow]) -> list[list]:
    return [[rid, r.household_id, name, rel] for r in rows for rid, name, rel in r.representatives]


def _plans(prog: Programme) -> list[list]:
    return [[p.code, p.name, p.allowance, p.rollover] for p in prog.plans]


def _quotas(prog: Programme) -> list[list]:
    return [[p.code, item, q] for p in prog.plans for item, q in p.quotas.items()]


def _catalog(prog: Programme) -> list[list]:
    return [[i.code, i.name_id, i.name_en, i.unit, i.price, True] for i in prog.catalog]


def _gone_catalog(prog: Programme) -> list[list]:
    """Catalog rows, marked inactive, for the items the last release had and this one has not: the
    devices stop offering them, and past sales of them keep their item (a delete would not)."""
    now = {i.code for i in prog.catalog}
    return [[c.code, c.name_id, c.name_en, c.unit, c.price, False]
            for c in CityCatalogItem.select().order_by(CityCatalogItem.code) if c.code not in now]


def _gone_plans(prog: Programme) -> dict[str, list]:
    """Delta deletes for plans, and plan quotas, that the last release had and this one has not."""
    now = {p.code: p.quotas for p in prog.plans}
    plans, quotas = [], []
    for code, text in CityPlan.select(CityPlan.code, CityPlan.quotas).tuples():
        if code not in now:
            plans.append([code])
        quotas += [[code, item] for item in json.loads(text or "{}") if item not in now.get(code, {})]
    return {"plans": plans, "plan_quotas": quotas}


def _last(kinds: tuple[str, ...]) -> int:
    return int(LedgerRelease.select(fn.MAX(LedgerRelease.version)).where(LedgerRelease.kind.in_(kinds)).scalar() or 0)


def publish_ledger(
    csv_path: Path | None,
    *,
    signer: Signer,
    city: str,
    now: datetime,
    kind: str = "snapshot",
    skip_bad_rows: bool = False,
    hotlist: list[tuple[str, str]] = (),
    unlist: list[str] = (),
    valid_days: int = 30,
    chunk_rows: int = 20_000,
    programme: Programme | None = None,
) -> Published:
    """Validate, diff against the last release, sign and record. Raises CsvRejected with line numbers.

    `programme`: the plans and catalog (sync.central.programme.load_programme); default the
    sample city's."""
    if kind not in ("snapshot", "delta", "hotlist"):
        raise ValueError("kind must be snapshot, delta or hotlist")
    prog = programme or sample_programme()
    plans = prog.codes
    rows: list[BeneficiaryRow] = []
    skipped = 0
    if kind != "hotlist":
        if csv_path is None:
            raise ValueError(f"a {kind} needs the beneficiary list CSV")
        rows, errors = parse_beneficiaries(Path(csv_path), plans)
        if errors and not (skip_bad_rows and rows):
            raise CsvRejected(errors)
        skipped = len(errors)
    issued, expires = iso(now), iso(now + timedelta(days=valid_days))
    with central_db.atomic():
        if kind == "hotlist":
            if not hotlist and not unlist:
                raise ValueError("a hotlist update needs cards to add (--hotlist FILE) or to remove")
            _check_unlist(hotlist, unlist)
            serial = _last(("hotlist",)) + 1
            for card_id, reason in hotlist:
                HotlistCard.delete().where(HotlistCard.card_id == card_id).execute()
                HotlistCard.insert(card_id=card_id, reason=reason, listed_at=issued, version=serial).execute()
                record_listed(card_id, reason, issued)
            if unlist:
                HotlistCard.delete().where(HotlistCard.card_id.in_(list(unlist))).execute()
                record_unlisted(unlist, issued)
            tokens = (build_hotlist(city, serial, issued, expires, signer,
                                    add=[(c, r, issued) for c, r in hotlist], remove=list(unlist)),)
            return _record(serial, kind, 0, skipped, tokens, issued, expires)
        version = _last(("snapshot", "delta")) + 1
        hashes = {r.household_id: _row_hash(r) for r in rows}
        hot = [[h.card_id, h.reason, h.listed_at, version] for h in hotlist_cards()]
        if kind == "snapshot":
            builder = SnapshotBuilder(city, version, issued, expires, signer, chunk_rows=chunk_rows,
                                      hotlist_serial=_last(("hotlist",)))
            tables = {"plans": _plans(prog), "plan_quotas": _quotas(prog), "catalog": _catalog(prog),
                      "households": (_household(r) for r in rows), "representatives": _reps(rows), "hotlist": hot,
                      "confirmed": _confirmed(now)}
            chunks = list(builder.chunks(tables))
            tokens = (*chunks, builder.manifest())
            count = len(rows)
        else:
            if not LedgerRelease.select().where(LedgerRelease.kind == "snapshot").exists():
                raise ValueError("no snapshot published yet: publish a snapshot before any delta")
            if not CityCatalogItem.select().exists():  # a release always has items: this database predates them
                raise ValueError("this central database has no record of the catalog it last published (it "
                                 "predates 2026-12-02), so a delta could not stop the devices offering dropped "
                                 "items: publish a snapshot once (--kind snapshot), then deltas again")
            previous = dict(CityHousehold.select(CityHousehold.id, CityHousehold.row_hash).tuples())
            old_reps = {h: reps for h, reps in CityHousehold.select(CityHousehold.id, CityHousehold.representatives).tuples()}
            changed = [r for r in rows if previous.get(r.household_id) != hashes[r.household_id]]
            removed = sorted(set(previous) - set(hashes))
            gone_reps = []
            for r in changed:
                now_ids = {rid for rid, _, _ in r.representatives}
                for entry in filter(None, (old_reps.get(r.household_id) or "").split(";")):
                    rid = entry.split("|")[0]
                    if rid not in now_ids:
                        gone_reps.append([rid])
            for hid in removed:
                gone_reps += [[e.split("|")[0]] for e in filter(None, (old_reps.get(hid) or "").split(";"))]
            tokens = (build_delta(
                city, version, version - 1, issued, expires, signer,
                upserts={"households": [_household(r) for r in changed], "representatives": _reps(changed),
                         "plans": _plans(prog), "plan_quotas": _quotas(prog),
                         "catalog": _catalog(prog) + _gone_catalog(prog)},
                deletes={"households": [[h] for h in removed], "representatives": gone_reps, **_gone_plans(prog)},
            ),)
            count = len(changed) + len(removed)
        CityHousehold.delete().execute()
        for i in range(0, len(rows), 500):
            CityHousehold.insert_many([
                {"id": r.household_id, "name": r.name, "area": r.area, "plan": r.plan, "status": r.status,
                 "valid_from": r.valid_from, "valid_until": r.valid_until,
                 "representatives": r.reps_text(), "row_hash": hashes[r.household_id]}
                for r in rows[i:i + 500]
            ]).execute()
        CityPlan.delete().execute()
        CityPlan.insert_many([
            {"code": p.code, "name": p.name, "allowance": p.allowance, "rollover": p.rollover,
             "quotas": json.dumps(p.quotas)} for p in prog.plans
        ]).execute()
        CityCatalogItem.delete().execute()
        CityCatalogItem.insert_many([
            {"code": i.code, "name_id": i.name_id, "name_en": i.name_en, "unit": i.unit, "price": i.price}
            for i in prog.catalog
        ]).execute()
        record_catalog(version, ((i.code, i.price) for i in prog.catalog))
        record_households(((r.household_id, r.status, r.valid_from, r.valid_until) for r in rows), issued)
        return _record(version, kind, count, skipped, tokens, issued, expires)


def _check_unlist(hotlist, unlist) -> None:
    """Only cards on the hotlist can come off it; say exactly what is wrong, publish nothing."""
    both = sorted({c for c, _ in hotlist} & set(unlist))
    if both:
        raise ValueError(f"nothing published: {', '.join(both)} both added to and removed from the hotlist")
    unlist = list(dict.fromkeys(unlist))
    if not unlist:
        return
    listed = {c for (c,) in HotlistCard.select(HotlistCard.card_id).where(HotlistCard.card_id.in_(unlist)).tuples()}
    missing = [c for c in unlist if c not in listed]
    if not missing:
        return
    households = {h for (h,) in CityHousehold.select(CityHousehold.id).where(CityHousehold.id.in_(missing)).tuples()}
    problems = [
        f"{c} is a household, not a card: a household is revoked or restored by the status column of the "
        "beneficiary list (set it to active and publish a delta)" if c in households else f"{c} is not on the hotlist"
        for c in missing
    ]
    raise ValueError("nothing published:\n  " + "\n  ".join(problems)
                     + "\n`ewarung central hotlist list` shows the cards on the hotlist")


def _record(version, kind, count, skipped, tokens, issued, expires) -> Published:
    digest = hashlib.sha256(b"".join(tokens)).hexdigest()
    LedgerRelease.create(version=version, kind=kind, issued_at=issued, expires_at=expires, households=count,
                         sha256=digest, size=sum(len(t) for t in tokens),
                         token="\n".join(t.decode("ascii") for t in tokens))
    return Published(version, kind, count, skipped, tuple(tokens), digest)


def current_version() -> tuple[int, int]:
    """(ledger version, hotlist serial) the city has published last: where every device should be."""
    return _last(("snapshot", "delta")), _last(("hotlist",))


def _city_households() -> Iterator[list]:
    query = CityHousehold.select(CityHousehold.id, CityHousehold.name, CityHousehold.area, CityHousehold.plan,
                                 CityHousehold.status, CityHousehold.valid_from, CityHousehold.valid_until)
    return (list(r) for r in query.tuples().iterator())


def _city_representatives() -> Iterator[list]:
    query = CityHousehold.select(CityHousehold.id, CityHousehold.representatives).where(
        CityHousehold.representatives != "")
    for hid, text in query.tuples().iterator():
        for entry in filter(None, text.split(";")):
            rid, name, relation = (entry.split("|") + ["", ""])[:3]
            yield [rid, hid, name, relation]


def _city_programme() -> dict[str, list]:
    plans, quotas = [], []
    for code, name, allowance, rollover, text in CityPlan.select(
            CityPlan.code, CityPlan.name, CityPlan.allowance, CityPlan.rollover, CityPlan.quotas).tuples():
        plans.append([code, name, allowance, bool(rollover)])
        quotas += [[code, item, q] for item, q in json.loads(text or "{}").items()]
    catalog = [[c.code, c.name_id, c.name_en, c.unit, c.price, True]
               for c in CityCatalogItem.select().order_by(CityCatalogItem.code)]
    return {"plans": plans, "plan_quotas": quotas, "catalog": catalog}


def _confirmed(now: datetime) -> Iterator[list]:
    """Every redemption the city stored this period and the one before (rollover plans carry its
    unspent allowance over), less the voided ones: what other shops sold, for every device."""
    period = Period.of(now)
    voided = VoidRecord.select(VoidRecord.redemption_id)
    query = (RedemptionRecord.select(RedemptionRecord.id, RedemptionRecord.household, RedemptionRecord.period,
                                     RedemptionRecord.total, RedemptionRecord.items, RedemptionRecord.device)
             .where(RedemptionRecord.period.in_([str(period), str(period.previous())])
                    & RedemptionRecord.id.not_in(voided)))
    return (list(r) for r in query.tuples().iterator())


def current_snapshot(*, signer: Signer, city: str, now: datetime, valid_days: int = 30,
                     chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Published | None:
    """The city's current ledger as a snapshot built now (None before the first release): the
    answer to a device's request, whatever it missed. Not recorded: the next request builds anew."""
    with central_db.atomic():  # one consistent read of the city's tables
        version, serial = current_version()
        if not version:
            return None
        issued, expires = iso(now), iso(now + timedelta(days=valid_days))
        builder = SnapshotBuilder(city, version, issued, expires, signer, chunk_rows=chunk_rows, hotlist_serial=serial)
        hot = ([h.card_id, h.reason, h.listed_at, version] for h in HotlistCard.select().order_by(HotlistCard.card_id))
        tables = {**_city_programme(), "households": _city_households(), "representatives": _city_representatives(),
                  "hotlist": hot, "confirmed": _confirmed(now)}
        tokens = (*builder.chunks(tables), builder.manifest())
    digest = hashlib.sha256(b"".join(tokens)).hexdigest()
    return Published(version, "snapshot", builder.rows.get("households", 0), 0, tokens, digest)


def city_digest() -> str:
    """The digest of the city's current ledger, as a converged device reports it in its heartbeat."""
    digest = LedgerDigest()
    with central_db.atomic():
        programme = _city_programme()
        digest.add("households", _city_households())
        digest.add("representatives", _city_representatives())
        digest.add("plans", programme["plans"])
        digest.add("plan_quotas", programme["plan_quotas"])
        digest.add("catalog", (row[:-1] for row in programme["catalog"]))
        digest.add("hotlist", HotlistCard.select(HotlistCard.card_id, HotlistCard.reason).tuples())
    return digest.hexdigest()


def latest_snapshot() -> Published | None:
    """The newest snapshot, exactly as published (to answer a device's snapshot request)."""
    row = (LedgerRelease.select().where(LedgerRelease.kind == "snapshot")
           .order_by(LedgerRelease.version.desc()).first())
    if row is None:
        return None
    tokens = tuple(t.encode("ascii") for t in row.token.split("\n"))
    return Published(row.version, "snapshot", row.households, 0, tokens, row.sha256)


def read_hotlist_csv(path: Path) -> list[tuple[str, str]]:
    """card_id,reason per line (header required)."""
    import csv

    out, errors = [], []
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "card_id" not in reader.fieldnames or "reason" not in reader.fieldnames:
            raise ValueError(f"{path}: header must be card_id,reason")
        for row in reader:
            if not (row.get("card_id") or "").strip() or not (row.get("reason") or "").strip():
                errors.append(f"line {reader.line_num}: card_id and reason are required")
            else:
                out.append((row["card_id"].strip(), row["reason"].strip()))
    if errors:
        raise ValueError("bad hotlist rows:\n  " + "\n  ".join(errors))
    return out


def hotlist_cards() -> list[HotlistCard]:
    """The cards on the city's hotlist now, by card id."""
    return list(HotlistCard.select().order_by(HotlistCard.card_id))
