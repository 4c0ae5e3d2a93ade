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


# -- the card sale's order under kill -9: the card signs, then the commit (pos.sale_order) --------

STEPS = ("before_spend", "after_spend", "after_commit")


def _card_city(tmp_path, cards):
    """A sample city and a deck of card files for households 10.. (valid today)."""
    from datetime import UTC, datetime, timedelta

    from hardware.card.issuing import IssueRequest, issue
    from pos.db import open_database
    from pos.sample_city import build_sample_city, demo_key, household_id

    path = tmp_path / "ewarung.db"
    db = open_database(path)
    build_sample_city(db, households=60, now=datetime.now(UTC) - timedelta(minutes=1))
    db.close()
    deck = tmp_path / "deck"
    deck.mkdir()
    today = datetime.now(UTC).date()
    for i in range(cards):
        hid = household_id(10 + i)
        issue(deck / f"{i:02d}.card.json", IssueRequest(f"CARD-{hid}", hid, today - timedelta(days=400),
                                                        today + timedelta(days=400), "1234", 3), demo_key("issuer"))
    return path, deck


def _card_worker(path, deck, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.card_crash_worker", str(path), str(deck), *args],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _settle_all(path, deck):
    """Every card inserted once at a fresh service on the same database (the next morning's
    counter): how many charges were reported now, by card file."""
    from tests.card_crash_worker import insert, service_for

    service = service_for(path)
    reported = {}
    try:
        for card_path in sorted(deck.glob("*.card.json")):
            before = _charge_events()
            card, _auth = insert(card_path, service)
            reported[card_path.name] = _charge_events() - before
            card.close()
    finally:
        service.db.close()
    return reported


def _bodies(con, kind):
    import json

    from pos.signing import b64url_decode

    return [json.loads(b64url_decode(bytes(p).decode().split(".")[1]))
            for (p,) in con.execute("SELECT payload FROM outbox_message WHERE kind=? ORDER BY seq", (kind,))]


def _charge_events():
    from pos.db import JournalEntry
    from pos.redemption import CHARGE_EVENT

    return JournalEntry.select().where(JournalEntry.kind == CHARGE_EVENT).count()


def _check_whole_or_reported(path, deck):
    """Each card's record = its sales committed here + its charges reported to the city; every sale
    whole with its v2 message, whose card evidence verifies; every charge reported once."""
    from hardware.card import evidence
    from hardware.card.cardfile import CardFile
    from hardware.card.certificate import parse
    from hardware.card.fake import demo_issuer_keys
    from pos.card_proof import charge_evidence, redemption_evidence
    from tests.card_crash_worker import DEVICE

    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    seqs = [s for (s,) in con.execute("SELECT seq FROM outbox_message ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1)), "sequence numbers must be gap-free"
    certs = evidence.CertificateCache(demo_issuer_keys())
    sold: dict[str, int] = {}
    for msg in _bodies(con, "redemption"):
        body = msg["body"]
        assert msg["schema"] == "ewarung.redemption/2"
        evidence.verify(redemption_evidence(DEVICE.device_id, body), certs)
        rid = body["redemption_id"]
        n, total = con.execute("SELECT count(*), sum(amount) FROM redemption_line WHERE redemption_id=?",
                               (rid,)).fetchone()
        assert n == 1 and total == body["total"] == con.execute("SELECT total FROM redemption WHERE id=?",
                                                                 (rid,)).fetchone()[0]
        assert con.execute("SELECT count(*) FROM print_job WHERE redemption_id=?", (rid,)).fetchone()[0] == 1
        sold[body["card_id"]] = sold.get(body["card_id"], 0) + body["total"]
    assert con.execute("SELECT count(*) FROM redemption").fetchone()[0] == len(_bodies(con, "redemption"))
    charged: dict[str, int] = {}
    charge_ids = []
    for msg in _bodies(con, "event"):
        body = msg["body"]
        if body.get("event") != "card_charged_not_sold":
            continue
        ev = charge_evidence(body)
        evidence.verify(ev, certs)
        assert ev.transaction.device_id == msg["device"] == DEVICE.device_id
        charge_ids.append(body["redemption_id"])
        charged[body["card_id"]] = charged.get(body["card_id"], 0) + body["amount"]
    assert len(charge_ids) == len(set(charge_ids)), "a charge is reported once"
    committed = {rid for (rid,) in con.execute("SELECT id FROM redemption")}
    assert not committed & set(charge_ids), "a committed sale is never reported as not sold"
    con.close()
    for card_path in sorted(deck.glob("*.card.json")):
        card = CardFile.load(card_path)
        card_id = parse(bytes.fromhex(card.memory.certificate_hex)).info.card_id
        assert card.memory.spent == sold.get(card_id, 0) + charged.get(card_id, 0), card_id
    return sold, charged


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_kill_minus_nine_at_each_step_of_a_card_sale(tmp_path, step):
    """Killed before the spend: nothing anywhere. After the spend, before the commit: the card is
    charged and no sale exists; the card's next insertion reports it, exactly once. After the
    commit, before the print: the sale is whole and nothing is reported."""
    path, deck = _card_city(tmp_path, 1)
    proc = _card_worker(path, deck, "step", step)
    assert proc.stdout.readline().strip() == f"at {step}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    reported = _settle_all(path, deck)
    assert list(reported.values()) == [1 if step == "after_spend" else 0]
    assert list(_settle_all(path, deck).values()) == [0], "a second insertion reports nothing more"
    sold, charged = _check_whole_or_reported(path, deck)
    assert (bool(sold), bool(charged)) == {"before_spend": (False, False), "after_spend": (False, True),
                                           "after_commit": (True, False)}[step]


@pytest.mark.slow
def test_kill_minus_nine_at_random_moments_of_card_sales(tmp_path):
    """Sale after sale over six cards, killed at random moments: every card's record is what was
    committed here plus what was reported as charged but not sold, never more, never less."""
    path, deck = _card_city(tmp_path, 6)
    rng = random.Random(int(os.environ.get("EWARUNG_CRASH_SEED", "11")))
    sold_lines = 0
    for _ in range(ROUNDS):
        proc = _card_worker(path, deck, "loop")
        time.sleep(rng.uniform(0.02, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        sold_lines += sum(line.startswith("sold") for line in out.splitlines())
    assert sold_lines, "the worker never sold anything: the test would prove nothing"
    _settle_all(path, deck)
    sold, charged = _check_whole_or_reported(path, deck)
    assert sum(sold.values()) >= sold_lines * 7_000
    assert not any(_settle_all(path, deck).values()), "a second insertion reports nothing more"
    print(f"card sales: {sum(sold.values()) // 7_000} committed, {sum(charged.values()) // 7_000} charged not sold")
