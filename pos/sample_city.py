"""The sample city: a deterministic Samarinda for demos, tests and benchmarks.

Same seed, same city: households, plans, catalog (realistic Samarinda sembako prices), a few
households in every state the counter must handle, cashiers, and DEMO keys derived from fixed
labels (never use them in production: anyone can derive them). Scales to 1,000,000 households
by streaming rows into SQLite in batches.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from peewee import SqliteDatabase

from pos import cashiers, journal
from pos.clock import iso
from pos.db import Cashier, LedgerState
from pos.household_ids import household_id
from pos.period import WITA, Period
from pos.signing import private_pem, public_pem

# code, name (id), name (en), unit, price in rupiah (Samarinda market prices, late 2026)
CATALOG = [
    ("BERAS5", "Beras medium 5 kg", "Medium rice 5 kg", "karung", 72_500),
    ("TELUR10", "Telur ayam 10 butir", "Chicken eggs, 10", "pak", 27_000),
    ("MINYAK1", "Minyak goreng 1 L", "Cooking oil 1 L", "botol", 17_500),
    ("GULA1", "Gula pasir 1 kg", "Sugar 1 kg", "kg", 18_000),
    ("TERIGU1", "Tepung terigu 1 kg", "Wheat flour 1 kg", "kg", 13_500),
    ("KCGHIJAU", "Kacang hijau 500 g", "Mung beans 500 g", "bks", 14_000),
    ("SARDEN", "Ikan sarden kaleng 425 g", "Canned sardines 425 g", "kaleng", 24_000),
    ("AYAM1", "Daging ayam 1 kg", "Chicken meat 1 kg", "kg", 39_000),
    ("TEMPE", "Tempe 500 g", "Tempeh 500 g", "papan", 8_000),
    ("TAHU", "Tahu 10 potong", "Tofu, 10 pieces", "bks", 7_000),
    ("KENTANG1", "Kentang 1 kg", "Potatoes 1 kg", "kg", 17_000),
    ("IKANASIN", "Ikan asin 250 g", "Salted fish 250 g", "bks", 15_000),
]

# code, name, allowance per period, rollover, quotas {item: max qty per period}
PLANS = [
    ("BPNT", "Bantuan Pangan Non Tunai", 200_000, False, {}),
    ("BPNT-PLUS", "BPNT Plus (keluarga besar)", 300_000, False, {"BERAS5": 2, "TELUR10": 3}),
    ("LANSIA", "Bantuan Lansia", 150_000, True, {"BERAS5": 1}),
]

AREAS = [
    "Sungai Pinang Dalam", "Lok Bahu", "Sempaja Selatan", "Karang Asam Ulu", "Air Hitam",
    "Sidodadi", "Temindung Permai", "Gunung Kelua", "Rapak Dalam", "Loa Bakung",
    "Harapan Baru", "Teluk Lerong Ilir", "Bukit Pinang", "Mugirejo", "Sambutan",
]
GIVEN = [
    "Siti", "Nur", "Ahmad", "Muhammad", "Sri", "Rahmat", "Dewi", "Abdul", "Hasanah", "Budi",
    "Wahyuni", "Yusuf", "Fatimah", "Agus", "Rina", "Hendra", "Aminah", "Joko", "Ratna", "Iwan",
]
FAMILY = [
    "Rahmawati", "Hidayat", "Saputra", "Lestari", "Kurniawan", "Wulandari", "Setiawan", "Syahrani",
    "Aditya", "Maulana", "Hasibuan", "Nurhaliza", "Pratama", "Anwar", "Ramadhan", "Suryani",
]
RELATIONS = ["anak", "istri", "suami", "menantu", "cucu", "saudara"]

DEMO_KEY_LABELS = {
    "issuer": "ewarung-demo-card-issuer",
    "ledger": "ewarung-demo-ledger-signer",
    "central": "ewarung-demo-central",
    "device": "ewarung-demo-device-EW-DEMO-0001",
}

CASHIERS = [
    ("kasir1", "Rina Kasir", "1234", "cashier"),
    ("kasir2", "Joko Kasir", "2345", "cashier"),
    ("spv1", "Ibu Aminah (Penyelia)", "9999", "supervisor"),
    ("tek1", "Teknisi Lapangan", "4321", "technician"),
]


def demo_key(role: str) -> ec.EllipticCurvePrivateKey:
    """A DEMO P-256 key derived from a public label: deterministic, and therefore not secret."""
    label = DEMO_KEY_LABELS[role].encode()
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    scalar = int.from_bytes(hashlib.sha256(label).digest(), "big") % (n - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


@dataclass(frozen=True)
class SampleCity:
    """What build_sample_city made, so demos and tests can find the households of interest by role."""

    households: int
    period: str
    ledger_version: int
    notable: dict[str, str]
    """Household ids of interest: holder, representative, revoked, expired, used_up,
    not_yet_valid, quotas, partly_spent, lansia."""


# (index, role) of the notable households; every other household is ordinary.
NOTABLE = {
    1: "holder",
    2: "representative",
    3: "revoked",
    4: "expired",
    5: "used_up",
    6: "not_yet_valid",
    7: "quotas",
    8: "partly_spent",
    9: "lansia",
}


def _household_rows(count: int, seed: int, today: date) -> Iterator[tuple]:
    rng = random.Random(seed)
    start = date(today.year, 1, 1)
    end = date(today.year + 1, 12, 31)
    for i in range(1, count + 1):
        name = f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"
        area = rng.choice(AREAS)
        plan = "BPNT" if rng.random() < 0.8 else ("BPNT-PLUS" if rng.random() < 0.6 else "LANSIA")
        status, valid_from, valid_until = "active", start, end
        role = NOTABLE.get(i)
        if role in ("holder", "representative", "used_up", "partly_spent"):
            plan = "BPNT"
        elif role == "quotas":
            plan = "BPNT-PLUS"
        elif role == "lansia":
            plan = "LANSIA"
        elif role == "revoked":
            status = "revoked"
        elif role == "expired":
            valid_until = today.replace(day=1) - timedelta(days=1)
        elif role == "not_yet_valid":
            valid_from = (today.replace(day=28) + timedelta(days=10)).replace(day=1)
        yield (household_id(i), name, area, plan, status, valid_from.isoformat(), valid_until.isoformat())


def _representative_rows(count: int, seed: int) -> Iterator[tuple]:
    rng = random.Random(seed + 1)
    for i in range(1, count + 1):
        if NOTABLE.get(i) == "representative" or (i > len(NOTABLE) and rng.random() < 0.15):
            hid = household_id(i)
            yield (f"{hid}-R1", hid, f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}", rng.choice(RELATIONS))


def write_demo_keys(keys_dir: Path) -> dict[str, Path]:
    """Write the DEMO key pairs (private keys 0600) and return their paths by role."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role in DEMO_KEY_LABELS:
        key = demo_key(role)
        priv = keys_dir / f"{role}.key.pem"
        pub = keys_dir / f"{role}.pub.pem"
        fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem(key))
        os.chmod(priv, 0o600)
        pub.write_bytes(public_pem(key.public_key()))
        paths[role] = priv
    return paths


def build_sample_city(
    db: SqliteDatabase,
    *,
    households: int = 200,
    seed: int = 2026,
    now: datetime,
    ledger_version: int = 1,
    with_cashiers: bool = True,
    progress: Callable[[int], None] | None = None,
    batch: int = 20_000,
) -> SampleCity:
    """Load the sample ledger into an open, migrated database (replacing any ledger in it)."""
    if households < len(NOTABLE):
        raise ValueError(f"the sample city needs at least {len(NOTABLE)} households")
    today = now.astimezone(WITA).date()
    period = Period.of(now)
    conn = db.connection()
    with db.atomic():
        for table in ("household", "representative", "plan", "plan_quota", "catalog_item",
                      "hotlist_entry", "confirmed_redemption", "ledger_state"):
            conn.execute(f"DELETE FROM {table}")
        conn.executemany(
            "INSERT INTO catalog_item (code, name_id, name_en, unit, price, active) VALUES (?,?,?,?,?,1)", CATALOG
        )
        conn.executemany(
            "INSERT INTO plan (code, name, allowance, rollover) VALUES (?,?,?,?)",
            [(c, n, a, int(r)) for c, n, a, r, _ in PLANS],
        )
        conn.executemany(
            "INSERT INTO plan_quota (plan, item, max_qty) VALUES (?,?,?)",
            [(c, item, q) for c, _, _, _, quotas in PLANS for item, q in quotas.items()],
        )
        rows = _household_rows(households, seed, today)
        done = 0
        while True:
            chunk = [r for _, r in zip(range(batch), rows, strict=False)]
            if not chunk:
                break
            conn.executemany(
                "INSERT INTO household (id, name, area, plan, status, valid_from, valid_until) VALUES (?,?,?,?,?,?,?)",
                chunk,
            )
            done += len(chunk)
            if progress:
                progress(done)
        conn.executemany(
            "INSERT INTO representative (id, household, name, relation) VALUES (?,?,?,?)",
            _representative_rows(households, seed),
        )
        used_up, partly = household_id(5), household_id(8)
        conn.executemany(
            "INSERT INTO confirmed_redemption (redemption_id, household, period, amount, items, device_id) "
            "VALUES (?,?,?,?,?,?)",
            [
                (f"sample-{used_up}-1", used_up, str(period), 200_000,
                 json.dumps({"BERAS5": 2, "TELUR10": 2, "GULA1": 0, "MINYAK1": 0}), "EW-SMD-0099"),
                (f"sample-{partly}-1", partly, str(period), 145_000,
                 json.dumps({"BERAS5": 2}), "EW-SMD-0099"),
            ],
        )
        conn.execute(
            "INSERT INTO hotlist_entry (card_id, reason, listed_at, ledger_version) VALUES (?,?,?,?)",
            ("CARD-REVOKED-DEMO", "reported stolen", iso(now), ledger_version),
        )
        LedgerState.insert(
            id=1,
            version=ledger_version,
            issued_at=iso(now),
            expires_at=iso(now + timedelta(days=30)),
            applied_at=iso(now),
            kind="sample",
            signer="demo-ledger",
        ).execute()
        if with_cashiers:
            for cid, name, pin, role in CASHIERS:
                if not Cashier.select().where(Cashier.id == cid).exists():
                    cashiers.add_cashier(cid, name, pin, role)
        journal.append(iso(now), "ledger_loaded", str(ledger_version), {"households": households, "kind": "sample"})
    notable = {role: household_id(i) for i, role in NOTABLE.items()}
    return SampleCity(households, str(period), ledger_version, notable)


CSV_COLUMNS = ["household_id", "name", "area", "plan", "status", "valid_from", "valid_until", "representatives"]


def write_beneficiary_csv(path: Path, *, households: int, seed: int, now: datetime) -> None:
    """The city's beneficiary list in the documented CSV format (see docs/ledger-format.md)."""
    today = now.astimezone(WITA).date()
    reps: dict[str, list[str]] = {}
    for rid, hid, name, relation in _representative_rows(households, seed):
        reps.setdefault(hid, []).append(f"{rid}|{name}|{relation}")
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for row in _household_rows(households, seed, today):
            writer.writerow([*row, ";".join(reps.get(row[0], []))])
