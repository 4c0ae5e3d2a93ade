"""`ewarung central publish-ledger --plans FILE [--catalog FILE]`: the city's own plans and
catalog (JSON or CSV) instead of the sample city's; every problem named by file and line or
field, nothing published; what a device applies is what the file says."""

from __future__ import annotations

import csv
import json

import pytest

from pos.clock import SystemClock
from pos.ledger import Ledger
from pos.sample_city import demo_key, write_beneficiary_csv
from tests.central.devices import release_count
from tests.conftest import NOW, run_ewarung

PROGRAMME = {
    "plans": [
        {"code": "SEMBAKO", "name": "Sembako Kota", "allowance": 250000, "rollover": False,
         "quotas": {"BERAS5": 1, "SUSU1": 4}},
        {"code": "LANSIA", "name": "Bantuan Lansia", "allowance": 150000, "rollover": True, "quotas": {}},
    ],
    "catalog": [
        {"code": "BERAS5", "name_id": "Beras medium 5 kg", "name_en": "Medium rice 5 kg", "unit": "karung",
         "price": 74000},
        {"code": "SUSU1", "name_id": "Susu UHT 1 L", "name_en": "UHT milk 1 L", "unit": "kotak", "price": 19500},
        {"code": "TELUR10", "name_id": "Telur ayam 10 butir", "unit": "pak", "price": 27000},
    ],
}


def _beneficiaries(tmp_path, plans=("SEMBAKO", "LANSIA"), households=12):
    """The sample list with its plan column mapped onto the programme's plans."""
    src, out = tmp_path / "sample.csv", tmp_path / "list.csv"
    write_beneficiary_csv(src, households=households, seed=2026, now=NOW)
    with src.open(newline="") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index("plan")
    for i, row in enumerate(rows[1:]):
        row[col] = plans[i % len(plans)]
    with out.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return out


def _apply(tmp_path, *token_files):
    """A device database that applied the published tokens through the real intake."""
    from pos.db import open_database
    from sync.ledger_intake import LedgerIntake

    db = open_database(tmp_path / "device.db")
    intake = LedgerIntake(db, {"ledger": demo_key("ledger").public_key()}, "samarinda", SystemClock())
    for f in token_files:
        for token in filter(None, f.read_bytes().split(b"\n")):
            intake.handle(token)
    return db


def test_json_programme_reaches_the_device(tmp_path):
    db = str(tmp_path / "c.db")
    plans = tmp_path / "programme.json"
    plans.write_text(json.dumps(PROGRAMME))
    r = run_ewarung("central", "--db", db, "publish-ledger", str(_beneficiaries(tmp_path)), "--plans", str(plans),
                    "--out", str(tmp_path / "v1"))
    assert r.returncode == 0, r.stderr
    device = _apply(tmp_path, tmp_path / "v1")
    try:
        ledger = Ledger()
        assert ledger.plan("SEMBAKO").allowance == 250_000 and ledger.plan("SEMBAKO").quotas == {"BERAS5": 1, "SUSU1": 4}
        assert ledger.plan("LANSIA").rollover is True
        assert ledger.plan("BPNT") is None  # the sample city's plans are not there
        catalog = ledger.catalog()
        assert sorted(catalog) == ["BERAS5", "SUSU1", "TELUR10"]
        assert catalog["BERAS5"].price == 74_000 and catalog["TELUR10"].name_en == "Telur ayam 10 butir"
    finally:
        device.close()
    from sync.central.store import CityPlan, open_central

    central = open_central(db)
    try:  # what reconciliation checks allowances against
        assert {p.code: p.allowance for p in CityPlan.select()} == {"SEMBAKO": 250_000, "LANSIA": 150_000}
    finally:
        central.close()


def test_csv_plans_and_catalog_and_a_delta_that_drops_a_quota(tmp_path):
    db = str(tmp_path / "c.db")
    plans, catalog = tmp_path / "plans.csv", tmp_path / "catalog.csv"
    plans.write_text("code,name,allowance,rollover,quotas\n"
                     "SEMBAKO,Sembako Kota,250000,no,BERAS5:1;SUSU1:4\n"
                     "LANSIA,Bantuan Lansia,150000,yes,\n")
    catalog.write_text("code,name_id,name_en,unit,price\n"
                       "BERAS5,Beras medium 5 kg,Medium rice 5 kg,karung,74000\n"
                       "SUSU1,Susu UHT 1 L,UHT milk 1 L,kotak,19500\n")
    members = _beneficiaries(tmp_path)
    r = run_ewarung("central", "--db", db, "publish-ledger", str(members), "--plans", str(plans),
                    "--catalog", str(catalog), "--out", str(tmp_path / "v1"))
    assert r.returncode == 0, r.stderr
    plans.write_text("code,name,allowance,rollover,quotas\n"
                     "SEMBAKO,Sembako Kota,275000,no,BERAS5:1\n"
                     "LANSIA,Bantuan Lansia,150000,yes,\n")
    r = run_ewarung("central", "--db", db, "publish-ledger", str(members), "--kind", "delta", "--plans", str(plans),
                    "--catalog", str(catalog), "--out", str(tmp_path / "v2"))
    assert r.returncode == 0 and "ledger v2 (delta)" in r.stdout, r.stderr
    device = _apply(tmp_path, tmp_path / "v1", tmp_path / "v2")
    try:
        plan = Ledger().plan("SEMBAKO")
        assert (plan.allowance, plan.quotas) == (275_000, {"BERAS5": 1})  # the SUSU1 quota is gone
        assert sorted(Ledger().catalog()) == ["BERAS5", "SUSU1"]
    finally:
        device.close()
    # v3 drops SUSU1 from the catalog: the delta marks it inactive, so the devices stop offering it
    catalog.write_text("code,name_id,name_en,unit,price\nBERAS5,Beras medium 5 kg,Medium rice 5 kg,karung,74000\n")
    r = run_ewarung("central", "--db", db, "publish-ledger", str(members), "--kind", "delta", "--plans", str(plans),
                    "--catalog", str(catalog), "--out", str(tmp_path / "v3"))
    assert r.returncode == 0 and "ledger v3 (delta)" in r.stdout, r.stderr
    (tmp_path / "device.db").unlink()
    device = _apply(tmp_path, tmp_path / "v1", tmp_path / "v2", tmp_path / "v3")
    try:
        assert sorted(Ledger().catalog()) == ["BERAS5"]
        from pos.db import CatalogItem

        assert CatalogItem.get_by_id("SUSU1").active is False  # kept for the sales that sold it
    finally:
        device.close()


def test_a_delta_from_a_database_that_predates_catalog_records_is_refused(tmp_path):
    """A central database from before 2026-12-02 has no record of the catalog it last published: a
    delta could not mark dropped items inactive, so none is published until a snapshot is."""
    import sqlite3

    db, programme = str(tmp_path / "central.db"), tmp_path / "programme.json"
    programme.write_text(json.dumps(PROGRAMME))
    members = _beneficiaries(tmp_path)
    publish = ("central", "--db", db, "publish-ledger", str(members), "--plans", str(programme))
    assert run_ewarung(*publish, "--out", str(tmp_path / "v1")).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM central_catalog")  # as the table stands in an older database
    before = release_count(db)
    r = run_ewarung(*publish, "--kind", "delta", "--out", str(tmp_path / "v2"))
    assert r.returncode != 0 and "publish a snapshot once (--kind snapshot)" in r.stderr, r.stderr
    assert release_count(db) == before and not list((tmp_path / "v2").glob("*"))
    assert run_ewarung(*publish, "--kind", "snapshot", "--out", str(tmp_path / "v2")).returncode == 0
    r = run_ewarung(*publish, "--kind", "delta", "--out", str(tmp_path / "v3"))
    assert r.returncode == 0 and "ledger v3 (delta)" in r.stdout, r.stderr


BAD_CSV = ("code,name,allowance,rollover,quotas\n"
           "SEMBAKO,Sembako Kota,200.000,no,\n"           # line 2: not whole rupiah
           "LANSIA,,150000,maybe,BERAS5:x\n"               # line 3: empty name, bad rollover, bad qty
           "SEMBAKO,Lagi,100000,no,KOPI:1\n")              # line 4: duplicate code


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("plans.csv", BAD_CSV, [
        "plans.csv line 2: allowance '200.000' is not a whole number of rupiah",
        "plans.csv line 3: name is empty; rollover 'maybe' must be yes or no; quota BERAS5 'x' is not a whole number",
        "plans.csv line 4: code SEMBAKO already at line 2",
    ]),
    ("plans.csv", "code,name,budget\nX,Y,1\n", ["plans.csv line 1: header lacks allowance, rollover; has unknown budget"]),
    ("plans.json", '{"plans": [\n  {"code": "A", "name": "A", "allowance": 1}\n  {"code": "B"}]}',
     ["plans.json line 3 column 3: not valid JSON: Expecting ',' delimiter"]),
    ("plans.json", json.dumps({"plans": [{"code": "A", "name": "A", "allowance": 200000.0, "rollover": "no"},
                                         {"code": "B", "name": "B", "allowance": 1, "quota": {}}]}),
     ["plans.json: plans[0]: allowance 200000.0 is not a whole number of rupiah",
      "plans.json: plans[1]: unknown field(s) quota; expected code, name, allowance, rollover, quotas"]),
    ("plans.json", json.dumps({"plans": [{"code": "A", "name": "A", "allowance": 5, "quotas": {"KOPI": 1}}],
                               "catalog": [{"code": "BERAS5", "name_id": "Beras", "unit": "kg", "price": -1}]}),
     ["plans.json: catalog[0]: price -1 must be at least 1"]),
    ("plans.txt", "code,name\n", ["plans.txt: name it .json or .csv"]),
])
def test_bad_programme_files_are_refused_by_line_or_field(tmp_path, name, text, expected):
    db = str(tmp_path / "c.db")
    path = tmp_path / name
    path.write_text(text)
    r = run_ewarung("central", "--db", db, "publish-ledger", str(_beneficiaries(tmp_path)), "--plans", str(path))
    assert r.returncode == 1
    assert "nothing was published" in r.stderr
    for line in expected:
        assert line in r.stderr, r.stderr
    assert release_count(db) == 0


def test_quota_for_an_item_not_in_the_catalog_and_members_on_unknown_plans(tmp_path):
    db = str(tmp_path / "c.db")
    plans = tmp_path / "p.json"
    plans.write_text(json.dumps({"plans": [{"code": "A", "name": "A", "allowance": 5, "quotas": {"KOPI": 1}}]}))
    r = run_ewarung("central", "--db", db, "publish-ledger", str(_beneficiaries(tmp_path)), "--plans", str(plans))
    assert r.returncode == 1 and "plan A: quota for KOPI, which is not in the catalog" in r.stderr
    plans.write_text(json.dumps({"plans": [{"code": "SEMBAKO", "name": "S", "allowance": 5}]}))
    r = run_ewarung("central", "--db", db, "publish-ledger", str(_beneficiaries(tmp_path)), "--plans", str(plans))
    assert r.returncode == 1 and "line 3: plan 'LANSIA' is not one of SEMBAKO" in r.stderr
    assert release_count(db) == 0
    r = run_ewarung("central", "--db", db, "publish-ledger", "--kind", "hotlist", "--plans", str(plans))
    assert r.returncode == 1 and "drop --plans" in r.stderr
    r = run_ewarung("central", "publish-ledger", "--help")
    assert "--plans FILE" in r.stdout and "--catalog FILE" in r.stdout
