"""Turn the city's beneficiary list into a signed ledger update with a monotonic version.

Interim format (pending the sync branch's docs/ledger-format + sync/ledger_format.py, which
replaces this at merge): a JWS compact token, typ ``ewarung-ledger+jws``, signed with the
city's ledger key, whose payload is canonical JSON::

    {"schema": "ewarung.ledger/1", "kind": "snapshot"|"delta"|"hotlist", "city": ...,
     "version": N, "base_version": M (delta only), "issued_at": ..., "expires_at": ...,
     "plans": [[code, name, allowance, rollover, {item: qty}]], "catalog": [[code, name_id, name_en, unit, price]],
     "households": [[id, name, area, plan, status, valid_from, valid_until, [[rid, name, relation]]]],
     "removed": [ids] (delta), "hotlist": [[card_id, reason]]}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pos.clock import iso
from pos.sample_city import CATALOG, PLANS
from pos.signing import Signer, canonical_json, jws_sign
from sync.central.beneficiaries import BeneficiaryRow, CsvRejected, parse_beneficiaries
from sync.central.store import CityHousehold, CityPlan, HotlistCard, LedgerRelease, central_db

LEDGER_TYP = "ewarung-ledger+jws"
LEDGER_SCHEMA = "ewarung.ledger/1"


@dataclass(frozen=True)
class Published:
    version: int
    kind: str
    households: int
    skipped: int
    token: bytes
    sha256: str

    def messages(self, city: str) -> list[tuple[str, bytes]]:
        """(topic, payload) pairs to publish, retained, in order."""
        from pos.messages import ledger_topic

        return [(ledger_topic(city, self.kind), self.token)]


def _row_hash(r: BeneficiaryRow) -> str:
    text = "\x1f".join([r.household_id, r.name, r.area, r.plan, r.status, r.valid_from, r.valid_until, r.reps_text()])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _hh(r: BeneficiaryRow) -> list:
    return [r.household_id, r.name, r.area, r.plan, r.status, r.valid_from, r.valid_until,
            [list(x) for x in r.representatives]]


def next_version() -> int:
    current = LedgerRelease.select(LedgerRelease.version).order_by(LedgerRelease.version.desc()).limit(1).scalar()
    return int(current or 0) + 1


def publish_ledger(
    csv_path: Path | None,
    *,
    signer: Signer,
    city: str,
    now: datetime,
    kind: str = "snapshot",
    skip_bad_rows: bool = False,
    hotlist: list[tuple[str, str]] = (),
    valid_days: int = 30,
) -> Published:
    """Validate, diff against the last release, sign and record. Raises CsvRejected with line numbers."""
    if kind not in ("snapshot", "delta", "hotlist"):
        raise ValueError("kind must be snapshot, delta or hotlist")
    plans = {code for code, *_ in PLANS}
    rows: list[BeneficiaryRow] = []
    skipped = 0
    if kind != "hotlist":
        if csv_path is None:
            raise ValueError(f"a {kind} needs the beneficiary list CSV")
        rows, errors = parse_beneficiaries(Path(csv_path), plans)
        if errors and not (skip_bad_rows and rows):
            raise CsvRejected(errors)
        skipped = len(errors)
    with central_db.atomic():
        version = next_version()
        payload: dict = {
            "schema": LEDGER_SCHEMA, "kind": kind, "city": city, "version": version,
            "issued_at": iso(now), "expires_at": iso(now + timedelta(days=valid_days)),
        }
        if kind == "delta" and not LedgerRelease.select().where(LedgerRelease.kind == "snapshot").exists():
            raise ValueError("no snapshot published yet: publish a snapshot before any delta")
        if kind in ("snapshot", "delta"):
            payload["plans"] = [[c, n, a, r, q] for c, n, a, r, q in PLANS]
            payload["catalog"] = [list(c) for c in CATALOG]
            hashes = {r.household_id: _row_hash(r) for r in rows}
            if kind == "snapshot":
                payload["households"] = [_hh(r) for r in rows]
            else:
                previous = dict(CityHousehold.select(CityHousehold.id, CityHousehold.row_hash).tuples())
                payload["base_version"] = version - 1
                payload["households"] = [_hh(r) for r in rows if previous.get(r.household_id) != hashes[r.household_id]]
                payload["removed"] = sorted(set(previous) - set(hashes))
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
                {"code": c, "name": n, "allowance": a, "rollover": r, "quotas": json.dumps(q)} for c, n, a, r, q in PLANS
            ]).execute()
        if hotlist or kind == "hotlist":
            for card_id, reason in hotlist:
                HotlistCard.delete().where(HotlistCard.card_id == card_id).execute()
                HotlistCard.insert(card_id=card_id, reason=reason, listed_at=iso(now), version=version).execute()
            payload["hotlist"] = [[h.card_id, h.reason] for h in HotlistCard.select().order_by(HotlistCard.card_id)]
        token = jws_sign(canonical_json(payload), signer, LEDGER_TYP)
        digest = hashlib.sha256(token).hexdigest()
        LedgerRelease.create(
            version=version, kind=kind, issued_at=payload["issued_at"], expires_at=payload["expires_at"],
            households=len(payload.get("households", [])), sha256=digest, size=len(token), token=token.decode("ascii"),
        )
    return Published(version, kind, len(payload.get("households", [])), skipped, token, digest)


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
