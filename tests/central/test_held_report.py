"""A flood of held messages from one device reads as one row in the report, with the command that
lists them all; a few stay one row each (sync.central.held, `ewarung central quarantine list`)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sync.central.held import GROUP_AFTER
from sync.central.report import reconcile, to_csv, to_table
from tests.central.city_messages import Till, send
from tests.conftest import run_ewarung

FORGED = "card signature does not verify"


def test_a_forged_sale_flood_is_one_grouped_finding_and_the_listing_shows_each(consumer, clock, tmp_path):
    flood = GROUP_AFTER * 3 + 7
    a, b = Till("EW-A-0001", clock.now()), Till("EW-B-0002", clock.now())
    forged = [a.sale(f"SSN-{i % 3}", {"BERAS5": 1 + i % 2}, counter=i + 1, at=clock.now() + timedelta(minutes=i))
              for i in range(flood)]
    few = [b.sale("SSN-2", {"GULA1": 1}, counter=i + 1) for i in range(3)]
    send(consumer, *forged, *few, problems=(FORGED,))
    findings = reconcile(now=clock.now())
    held = [f for f in findings if f.kind == "content"]
    grouped = [f for f in held if f.devices == "EW-A-0001"]
    assert len(grouped) == 1, [f.detail for f in grouped][:5]
    g = grouped[0]
    amounts = [env["body"]["total"] for _, env in forged]
    times = sorted(env["created_at"] for _, env in forged)
    assert (g.severity, g.subject, g.period, g.amount) == ("critical", "EW-A-0001", "2026-11", sum(amounts))
    assert f"{flood} messages of EW-A-0001 held back for content in 2026-11" in g.detail
    assert f"from {times[0]} to {times[-1]}" in g.detail
    assert all(env["id"] in g.detail for _, env in forged[:3]) and forged[3][1]["id"] not in g.detail
    command = "ewarung central quarantine list --device EW-A-0001 --rule content --period 2026-11"
    assert f"`{command}`" in g.detail
    # below the threshold: one row per message, as before
    assert sorted(f.detail.split("(message ")[1][:36] for f in held if f.devices == "EW-B-0002") == sorted(
        env["id"] for _, env in few)
    assert "EW-A-0001" in to_table(findings, clock.now()) and len(to_csv(findings).splitlines()) == len(findings) + 1

    db = str(tmp_path / "central.db")
    r = run_ewarung("central", "--db", db, *command.split()[2:], "--csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["msg_id"] for row in rows] == [env["id"] for _, env in forged]
    assert sum(int(row["amount"]) for row in rows) == sum(amounts) and all(FORGED in row["detail"] for row in rows)
    r = run_ewarung("central", "--db", db, "quarantine", "list")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == flood + len(few), r.stdout[-500:]
    r = run_ewarung("central", "--db", db, "quarantine", "list", "--device", "EW-NONE")
    assert r.returncode == 0 and "nothing held back for --device EW-NONE" in r.stdout
    r = run_ewarung("central", "--db", db, "quarantine", "list", "--period", "November")
    assert r.returncode == 1 and "give YYYY-MM" in r.stderr


def test_exactly_the_threshold_stays_one_row_per_message(on_db, clock):
    a = Till("EW-A-0001", clock.now())
    send(on_db, *[a.sale("SSN-1", {"GULA1": 1}, counter=i + 1) for i in range(GROUP_AFTER)], problems=(FORGED,))
    held = [f for f in reconcile(now=clock.now()) if f.kind == "content"]
    assert len(held) == GROUP_AFTER and all(f.subject == "SSN-1" for f in held)
