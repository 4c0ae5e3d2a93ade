"""The `ewarung` command as a person runs it."""

from __future__ import annotations

import sqlite3

from tests.conftest import run_ewarung


def test_help_lists_every_subcommand_with_one_line():
    res = run_ewarung("--help")
    assert res.returncode == 0
    from pos.cli.main import build_parser

    subs = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in subs.choices.items():
        assert name in res.stdout
        assert parser.format_help()
    for choice in subs._choices_actions:
        assert choice.help, f"{choice.dest} has no help line"


def test_demo_data_is_deterministic(tmp_path):
    a = run_ewarung("demo-data", "--out", str(tmp_path / "a"), "--households", "300")
    run_ewarung("demo-data", "--out", str(tmp_path / "b"), "--households", "300")
    assert a.returncode == 0, a.stderr
    assert "holder" in a.stdout and "SSN-6472-0000001" in a.stdout
    rows = []
    for d in ("a", "b"):
        con = sqlite3.connect(tmp_path / d / "ewarung.db")
        rows.append(con.execute("SELECT * FROM household ORDER BY id").fetchall())
        assert con.execute("SELECT count(*) FROM household").fetchone()[0] == 300
        assert con.execute("SELECT min(price) > 0 FROM catalog_item").fetchone()[0] == 1
    assert rows[0] == rows[1]
    assert (tmp_path / "a" / "keys" / "device.key.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "a" / "keys" / "issuer.key.pem").read_bytes() == (tmp_path / "b" / "keys" / "issuer.key.pem").read_bytes()
    header = (tmp_path / "a" / "households.csv").read_text().splitlines()[0]
    assert header.startswith("household_id,name,area,plan")


def test_demo_data_refuses_bad_size(tmp_path):
    res = run_ewarung("demo-data", "--out", str(tmp_path), "--households", "3")
    assert res.returncode == 2 and "between 9 and" in res.stdout


def test_scripted_demo_runs_end_to_end(tmp_path):
    res = run_ewarung("demo", "--scripted", "--data-dir", str(tmp_path / "demo"))
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for expected in ("committed durably", "TIDAK DAPAT ditukar", "REFUSED (allowance_used_up)",
                     "REFUSED (household_revoked)", "voided receipt no 1", "hash chain OK"):
        assert expected in out
    again = run_ewarung("demo", "--scripted", "--data-dir", str(tmp_path / "demo"), "--language", "en")
    assert again.returncode == 0 and "already there" in again.stdout and "CANNOT be exchanged" in again.stdout


def test_demo_ledger_is_refreshed_when_a_day_old(tmp_path):
    from datetime import timedelta

    from firmware_config.config import demo_config
    from pos.clock import FixedClock
    from pos.db import LedgerState, Redemption, open_database
    from pos.roots.appliance import ensure_demo_data
    from tests.conftest import NOW

    cfg = demo_config(tmp_path)
    clock = FixedClock(NOW)
    assert ensure_demo_data(cfg, clock) is not None
    assert ensure_demo_data(cfg, clock) is None  # same day: untouched
    db = open_database(cfg.database_path)
    Redemption.create(id="r1", seq=1, device_id="d", household="h", period="2026-11", cashier_id="k",
                      ledger_version=1, total=1, remaining_after=1, created_at="t")
    db.close()
    clock.advance(timedelta(days=8))
    rebuilt = ensure_demo_data(cfg, clock)
    assert rebuilt is not None and rebuilt.ledger_version == 2 and rebuilt.period == "2026-11"
    db = open_database(cfg.database_path)
    assert LedgerState.get_by_id(1).version == 2 and Redemption.select().count() == 1
    db.close()


def test_counter_process_does_not_load_postgres_driver():
    """The counter never uses PostgreSQL; peewee must not drag psycopg2 into its memory."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import pos.cli.counter_cmd as c\n"
        "def fake(args):\n"
        "    import peewee\n"
        "    print(peewee.psycopg2 is None)\n"
        "    return 0\n"
        "c.run = fake\n"
        "from pos.cli.main import main\n"
        "sys.exit(main(['counter']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_output_cut_short_by_its_reader_is_not_a_crash():
    """`ewarung config show | head -1`: the reader leaves early; exit 141 quietly, no traceback."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        res = subprocess.run([sys.executable, "-m", "pos.cli.main", "--config",
                              str(ROOT / "tests" / "fixtures" / "config" / "shop.toml"), "config", "show"],
                             stdout=write_end, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
                             cwd=ROOT, timeout=60)
    finally:
        os.close(write_end)
    assert res.returncode == 141 and b"Traceback" not in res.stderr, res.stderr.decode()
