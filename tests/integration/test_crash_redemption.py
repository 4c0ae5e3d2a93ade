"""kill -9 at random points of the redemption path: every sale whole or absent, none lost.

CI runs EWARUNG_CRASH_ROUNDS rounds (default 25); `make soak` runs hundreds.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

ROUNDS = int(os.environ.get("EWARUNG_CRASH_ROUNDS", "25"))


def _start(path, households):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.crash_worker", str(path), str(households)],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.slow
def test_kill_minus_nine_never_tears_a_redemption(tmp_path):
    from datetime import UTC, datetime, timedelta

    from pos.db import open_database
    from pos.sample_city import build_sample_city

    path = tmp_path / "ewarung.db"
    db = open_database(path)
    build_sample_city(db, households=400, now=datetime.now(UTC) - timedelta(minutes=1))
    db.close()
    rng = random.Random(int(os.environ.get("EWARUNG_CRASH_SEED", "11")))
    confirmed: dict[int, str] = {}
    for _ in range(ROUNDS):
        proc = _start(path, 400)
        time.sleep(rng.uniform(0.01, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        for line in out.splitlines():
            parts = line.split()
            confirmed[int(parts[0])] = parts[-1]
    assert confirmed, "the worker never committed anything: the test would prove nothing"

    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    reds = {rid: seq for rid, seq in con.execute("SELECT id, seq FROM redemption")}
    voids = {seq: rid for seq, rid in con.execute("SELECT seq, redemption_id FROM void")}
    seqs = sorted([*reds.values(), *voids])
    assert seqs == list(range(1, len(seqs) + 1)), "sequence numbers must be gap-free"
    out_seqs = [s for (s,) in con.execute("SELECT seq FROM outbox_message ORDER BY seq")]
    assert out_seqs == seqs, "every sale and void has exactly its outbox message"
    for seq, rid in confirmed.items():
        assert reds.get(rid) == seq or voids.get(seq) == rid, f"confirmed #{seq} {rid} was lost"
    for rid in reds:
        n_lines, total = con.execute(
            "SELECT count(*), coalesce(sum(amount),0) FROM redemption_line WHERE redemption_id=?", (rid,)
        ).fetchone()
        assert n_lines == 1 and total == con.execute("SELECT total FROM redemption WHERE id=?", (rid,)).fetchone()[0]
        assert con.execute("SELECT count(*) FROM print_job WHERE redemption_id=? AND kind='receipt'", (rid,)).fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM journal_entry WHERE ref=? AND kind='redemption'", (rid,)).fetchone()[0] == 1
    con.close()
    from pos import journal

    db = open_database(path)
    assert journal.verify().ok
    db.close()
