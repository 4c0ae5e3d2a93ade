"""`ewarung central hotlist list|add|remove`: block cards and lift a block (un-revoke), as the
city's operator runs it; the signed update a device receives takes the card off its hotlist."""

from __future__ import annotations

import json

from pos.clock import SystemClock
from pos.ledger import Ledger
from pos.sample_city import demo_key, write_beneficiary_csv
from pos.signing import jws_verify
from sync.ledger_format import LEDGER_TYP
from tests.central.devices import release_count
from tests.conftest import NOW, run_ewarung

HOUSEHOLD = "SSN-6472-0000001"


def _tokens(path) -> list[bytes]:
    return [t for t in path.read_bytes().split(b"\n") if t]


def test_hotlist_add_list_remove_and_the_device_accepts_the_card_again(tmp_path):
    from pos.db import open_database
    from sync.ledger_intake import LedgerIntake

    db = str(tmp_path / "c.db")
    csv_path = tmp_path / "list.csv"
    write_beneficiary_csv(csv_path, households=12, seed=2026, now=NOW)
    assert run_ewarung("central", "--db", db, "publish-ledger", str(csv_path), "--out", str(tmp_path / "v1")).returncode == 0
    r = run_ewarung("central", "--db", db, "hotlist", "list")
    assert r.returncode == 0 and "the hotlist is empty" in r.stdout
    r = run_ewarung("central", "--db", db, "hotlist", "add", "CARD-A", "CARD-B", "--reason", "hilang",
                    "--out", str(tmp_path / "h1"))
    assert r.returncode == 0, r.stderr
    assert "blocked: CARD-A, CARD-B" in r.stdout and "hotlist serial 1:" in r.stdout
    r = run_ewarung("central", "--db", db, "hotlist", "list")
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["CARD-A", "CARD-B"]
    assert "serial 1" in r.stdout and "hilang" in r.stdout

    r = run_ewarung("central", "--db", db, "hotlist", "remove", "CARD-A", "--out", str(tmp_path / "h2"))
    assert r.returncode == 0, r.stderr
    assert "unblocked: CARD-A" in r.stdout and "hotlist serial 2:" in r.stdout
    r = run_ewarung("central", "--db", db, "hotlist", "list")
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["CARD-B"]
    (h2,) = _tokens(tmp_path / "h2")
    body = jws_verify(h2, {"ledger": demo_key("ledger").public_key()}, LEDGER_TYP).json()
    assert (body["serial"], body["add"], body["remove"]) == (2, [], ["CARD-A"])

    # a device applies v1, the block, then the lifted block: CARD-A is served again, CARD-B still refused
    device = open_database(tmp_path / "device.db")
    try:
        intake = LedgerIntake(device, {"ledger": demo_key("ledger").public_key()}, "samarinda", SystemClock())
        for token in _tokens(tmp_path / "v1") + _tokens(tmp_path / "h1"):
            intake.handle(token)
        assert Ledger().hotlist_reason("CARD-A") == "hilang"
        assert intake.handle(h2).applied
        assert Ledger().hotlist_reason("CARD-A") is None
        assert Ledger().hotlist_reason("CARD-B") == "hilang"
    finally:
        device.close()

    # a snapshot published after the removal no longer carries the card
    r = run_ewarung("central", "--db", db, "publish-ledger", str(csv_path), "--out", str(tmp_path / "v2"))
    assert r.returncode == 0, r.stderr
    assert b"CARD-A" not in b"".join(_decoded_chunks(tmp_path / "v2"))
    assert b"CARD-B" in b"".join(_decoded_chunks(tmp_path / "v2"))


def _decoded_chunks(path) -> list[bytes]:
    from sync.ledger_format import decode_rows

    out = []
    for token in _tokens(path):
        body = jws_verify(token, {"ledger": demo_key("ledger").public_key()}, LEDGER_TYP).json()
        if "data" in body:
            out.append(json.dumps(decode_rows(body["data"])).encode())
    return out


def test_hotlist_remove_refuses_what_is_not_on_it_and_publishes_nothing(tmp_path):
    db = str(tmp_path / "c.db")
    csv_path = tmp_path / "list.csv"
    write_beneficiary_csv(csv_path, households=12, seed=2026, now=NOW)
    assert run_ewarung("central", "--db", db, "publish-ledger", str(csv_path)).returncode == 0
    assert run_ewarung("central", "--db", db, "hotlist", "add", "CARD-A", "--reason", "dicuri").returncode == 0
    before = release_count(db)

    r = run_ewarung("central", "--db", db, "hotlist", "remove", "CARD-A", "CARD-NOPE")
    assert r.returncode == 1
    assert "nothing published" in r.stderr and "CARD-NOPE is not on the hotlist" in r.stderr
    assert "hotlist list" in r.stderr
    r = run_ewarung("central", "--db", db, "hotlist", "remove", HOUSEHOLD)
    assert r.returncode == 1
    assert f"{HOUSEHOLD} is a household, not a card" in r.stderr and "status column" in r.stderr
    assert release_count(db) == before  # nothing recorded, the serial did not move
    assert "CARD-A" in run_ewarung("central", "--db", db, "hotlist", "list").stdout

    r = run_ewarung("central", "--db", db, "hotlist", "remove")
    assert r.returncode == 2 and "CARD_ID" in r.stderr
    r = run_ewarung("central", "--db", db, "hotlist", "add", "CARD-C")
    assert r.returncode == 2 and "--reason" in r.stderr
    r = run_ewarung("central", "--db", db, "hotlist", "add", "CARD-C", "--reason", "  ")
    assert r.returncode == 1 and "--reason must not be empty" in r.stderr
    r = run_ewarung("central", "hotlist", "remove", "--help")
    assert r.returncode == 0 and "accept them again" in r.stdout
    r = run_ewarung("central", "hotlist", "--help")
    assert r.returncode == 0 and "status column" in r.stdout
