"""Ledger at city scale: build the 1,000,000-household sample, look households up, commit sales.

Rows:
* sample city build (demo-data) time, budget well under a minute;
* ledger lookup p50/p99 (household + representatives) vs raw sqlite3 SELECT by key, budget p99 <= 1 ms;
* durable redemption commit p50/p99 (redemption, lines, signed outbox message, journal, print job in one
  synchronous=FULL transaction) vs a raw sqlite3 transaction inserting the same rows with synchronous=FULL.
"""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from bench.common import main, row, summary
from pos.clock import SystemClock
from pos.db import open_database
from pos.device import DeviceIdentity
from pos.ledger import Ledger
from pos.policy import Policy
from pos.redemption import RedemptionRequest, RedemptionService
from pos.roots.appliance import COUNTER_CACHE_MIB
from pos.sample_city import build_sample_city, demo_key, household_id
from pos.signing import EcdsaSigner


def run(quick: bool = False) -> list[dict]:
    """Sample city build, lookups and durable sales at city scale (smaller with quick)."""
    households = 20_000 if quick else 1_000_000
    lookups = 2_000 if quick else 20_000
    commits = 100 if quick else 1_000
    rows = []
    with tempfile.TemporaryDirectory(prefix="ewarung-bench-") as tmp:
        path = Path(tmp) / "ewarung.db"
        db = open_database(path)
        clock = SystemClock()
        t0 = time.perf_counter()
        build_sample_city(db, households=households, now=clock.now())
        build_s = time.perf_counter() - t0
        db.close()
        db = open_database(path, cache_mib=COUNTER_CACHE_MIB)  # looked up as the counter does
        rows.append(row(f"sample city build, {households:,} households", value=build_s, unit="s",
                        budget="< 60 s for 1,000,000", ok=build_s < 60 * households / 1_000_000 or quick))

        rng = random.Random(7)
        ids = [household_id(rng.randint(1, households)) for _ in range(lookups)]
        raw = sqlite3.connect(path)
        for hid in ids[:500]:  # warm both paths alike
            raw.execute("SELECT * FROM household WHERE id = ?", (hid,)).fetchone()
        base = []
        for hid in ids:
            t = time.perf_counter_ns()
            raw.execute("SELECT * FROM household WHERE id = ?", (hid,)).fetchone()
            base.append((time.perf_counter_ns() - t) / 1e6)
        raw.close()
        ledger = Ledger()
        ours = []
        for hid in ids:
            t = time.perf_counter_ns()
            rec = ledger.household(hid)
            ours.append((time.perf_counter_ns() - t) / 1e6)
            assert rec is not None
        s, b = summary(ours), summary(base)
        rows.append(row(f"ledger lookup (household + representatives), {households:,} households",
                        p50=s["p50"], p99=s["p99"], unit="ms", budget="p99 <= 1 ms", ok=s["p99"] <= 1.0,
                        baseline=b["p99"], baseline_name="raw sqlite3 SELECT by key p99",
                        notes=f"baseline p50 {b['p50']:.4f} ms; n={s['n']}"))

        device = DeviceIdentity("EW-BENCH-0001", "SMD-BENCH", "Bench", "Jl. Bench")
        service = RedemptionService(db, ledger, device, EcdsaSigner(demo_key("device"), device.device_id), clock,
                                    replace(Policy(), offline_max_value=10**12))
        ours = []
        for i in range(commits):
            hid = household_id(10 + i)
            t = time.perf_counter_ns()
            service.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1, "TEMPE": 2}, card_id=f"C{i}"))
            ours.append((time.perf_counter_ns() - t) / 1e6)
        db.close()
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=FULL")
        base = []
        payload = b"x" * 1100  # about the size of a signed redemption message
        for i in range(commits):
            rid = str(uuid.uuid4())
            seq = 10_000_000 + i
            t = time.perf_counter_ns()
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(
                "INSERT INTO redemption (id, seq, device_id, household, card_id, period, mode, override_reason,"
                " collected_by, collector_id, collector_name, cashier_id, ledger_version, total, remaining_after,"
                " card_counter, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (rid, seq, "D", "H", "C", "2026-11", "card", "", "holder", "", "N", "k", 1, 23000, 1, None, "t"),
            )
            raw.executemany(
                "INSERT INTO redemption_line (redemption_id, item_code, item_name, unit, qty, unit_price, amount)"
                " VALUES (?,?,?,?,?,?,?)",
                [(rid, "TAHU", "Tahu", "bks", 1, 7000, 7000), (rid, "TEMPE", "Tempe", "papan", 2, 8000, 16000)],
            )
            raw.execute(
                "INSERT INTO outbox_message (seq, msg_id, kind, topic, payload, state, attempts, created_at, last_error)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (seq, rid, "redemption", "t", payload, "queued", 0, "t", ""),
            )
            raw.execute(
                "INSERT INTO print_job (id, redemption_id, kind, state, attempts, last_error, created_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (rid, rid, "receipt", "pending", 0, "", "t"),
            )
            raw.execute(
                "INSERT INTO journal_entry (at, kind, ref, data, prev_hash, hash) VALUES (?,?,?,?,?,?)",
                ("t", "bench", rid, json.dumps({"seq": seq}), "0" * 64, "0" * 64),
            )
            raw.execute("COMMIT")
            base.append((time.perf_counter_ns() - t) / 1e6)
        raw.close()
        s, b = summary(ours), summary(base)
        rows.append(row("durable redemption commit (entitlement check, signed outbox message, journal)",
                        p50=s["p50"], p99=s["p99"], unit="ms", budget="p99 <= 50 ms (confirm budget)",
                        ok=s["p99"] <= 50, baseline=b["p99"],
                        baseline_name="raw sqlite3 same rows, synchronous=FULL, p99",
                        notes=f"baseline p50 {b['p50']:.3f} ms; n={s['n']}"))
    return rows


if __name__ == "__main__":
    main("ledger", run)
