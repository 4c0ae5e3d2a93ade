"""The multi-process kill soak's rig: one shop (device database, config, virtual card on vpcd),
its three real processes (headless counter `tests.soak_counter`, `ewarung sync`,
`ewarung central serve` on SQLite) against a private mosquitto, and the checks run after
every restart and at the end. Used by tests/integration/test_soak_processes.py.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVICE_ID = "EW-SOAK-0001"
READER = "Virtual PCD 00 00"
HOUSEHOLD_INDEX = 12
SOAK_ALLOWANCE = 2_000_000_000  # the card's spend record holds 4 bytes; TAHU costs Rp 7,000


def wait_for(pred, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Proc:
    """One of the three processes: started, killed with SIGKILL, started again; output to a log."""

    def __init__(self, name: str, argv: list[str], log: Path, *, control: bool = False) -> None:
        self.name, self.argv, self.log, self.control = name, argv, log, control
        self.cache = log.parent / "escpos-cache"  # python-escpos writes its capabilities pickle here
        self.cache.mkdir(exist_ok=True)
        self.popen: subprocess.Popen | None = None
        self.lines: queue.Queue[str] = queue.Queue()
        self.starts = 0

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ESCPOS_CAPABILITIES_PICKLE_DIR": str(self.cache)}
        logf = open(self.log, "ab")  # noqa: SIM115 - the child holds it; closed below
        try:
            self.popen = subprocess.Popen(
                self.argv, cwd=ROOT, env=env, stderr=logf,
                stdout=subprocess.PIPE if self.control else logf,
                stdin=subprocess.PIPE if self.control else subprocess.DEVNULL,
                text=self.control, bufsize=1 if self.control else -1)
        finally:
            logf.close()
        self.starts += 1
        if self.control:
            self.lines = queue.Queue()
            threading.Thread(target=self._pump, args=(self.popen, self.lines), daemon=True).start()

    @staticmethod
    def _pump(popen: subprocess.Popen, lines: queue.Queue) -> None:
        for line in popen.stdout:
            lines.put(line.strip())
        lines.put("<eof>")

    def expect(self, word: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line == word:
                return
            if line == "<eof>" or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise AssertionError(f"{self.name}: no {word!r} within {timeout} s; log tail:\n{tail}")

    def send(self, text: str) -> None:
        assert self.popen is not None and self.popen.stdin is not None
        self.popen.stdin.write(text + "\n")
        self.popen.stdin.flush()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        assert self.popen is not None
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)
        self._close_pipes()

    def stop(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            if self.control and self.popen.stdin:
                try:
                    self.popen.stdin.close()
                except OSError:
                    pass
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self.popen is not None:
            for pipe in (self.popen.stdin, self.popen.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass


@dataclass
class CardSeen:
    period: str = ""
    spent: int = 0
    counter: int = 0
    unsettled: int = 0  # the card's last charge by this device, neither committed nor reported yet


@dataclass
class Confirmed:
    sales: dict[str, tuple[int, int, int, bool]] = field(default_factory=dict)  # rid -> receipt no, total, card_total, updated
    voids: dict[str, int] = field(default_factory=dict)  # voided redemption id -> its receipt no


class Shop:
    """The device side: data dir, keys, config, database with the sample city, a card for one household."""

    def __init__(self, root: Path, broker_port: int) -> None:
        from pos.sample_city import household_id

        self.dir = root / "device"
        self.dir.mkdir(parents=True)
        self.db_path = self.dir / "ewarung.db"
        self.config = self.dir / "ewarung.toml"
        self.confirmed_path = self.dir / "confirmed.txt"
        self.card_path = self.dir / "soak.card.json"
        self.household = household_id(HOUSEHOLD_INDEX)
        self.central_db = root / "central" / "central.db"
        self.broker_port = broker_port

    def build(self) -> None:
        from hardware.card.issuing import IssueRequest, issue
        from pos.db import open_database
        from pos.period import WITA
        from pos.sample_city import build_sample_city, demo_key, write_demo_keys
        from pos.signing import public_pem
        from sync.central.registry import add_device
        from sync.central.store import open_central

        write_demo_keys(self.dir / "keys")
        (self.dir / "keys" / "device.key.pem").chmod(0o600)
        self.config.write_text(
            f'[device]\nid = "{DEVICE_ID}"\nshop_id = "SMD-SOAK-01"\ndata_dir = "{self.dir}"\n'
            f'[reader]\nkind = "pcsc"\nname = "{READER}"\nvirtual = true\n'
            f'[printer]\nkind = "file"\npath = "{self.dir / "printer.bin"}"\nstatus_query = false\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {self.broker_port}\nheartbeat_s = 5\ninflight = 64\n'
            'ack_timeout_s = 5\n'
            '[policy]\noffline_max_value = 1000000000000\n'
        )
        now = datetime.now(UTC)
        db = open_database(self.db_path)
        build_sample_city(db, households=60, now=now - timedelta(minutes=1))
        # one household with an allowance no soak can use up (the card's record only grows)
        db.execute_sql("INSERT INTO plan (code, name, allowance, rollover) VALUES ('SOAK', 'soak', ?, 0)",
                       (SOAK_ALLOWANCE,))
        db.execute_sql("UPDATE household SET plan = 'SOAK', status = 'active' WHERE id = ?", (self.household,))
        db.close()
        today = now.astimezone(WITA).date()
        issue(self.card_path, IssueRequest(f"CARD-SOAK-{self.household}", self.household,
                                           today - timedelta(days=30), today + timedelta(days=365), pin_tries=3),
              demo_key("issuer"))
        central = open_central(self.central_db)
        add_device(DEVICE_ID, public_pem(demo_key("device").public_key()), shop_id="SMD-SOAK-01", now=now)
        central.close()

    def processes(self) -> dict[str, Proc]:
        py = [sys.executable]
        cli = [*py, "-m", "pos.cli.main"]
        return {
            "counter": Proc("counter", [*py, "-m", "tests.soak_counter", str(self.config), str(self.confirmed_path)],
                            self.dir / "counter.log", control=True),
            "sync": Proc("sync", [*cli, "--config", str(self.config), "sync", "-v"], self.dir / "sync.log"),
            "central": Proc("central", [*cli, "central", "--db", str(self.central_db), "serve",
                                        "--broker", f"127.0.0.1:{self.broker_port}", "--group", "",
                                        "--client-id", "central-soak", "--http", "off", "--gap-retry", "2"],
                            self.central_db.parent / "central.log"),
        }

    # --- what the worker reported ---------------------------------------------------------
    def confirmed(self) -> Confirmed:
        out = Confirmed()
        if not self.confirmed_path.exists():
            return out
        for line in self.confirmed_path.read_text().splitlines():
            parts = line.split()
            if parts[0] == "S" and len(parts) == 6:
                out.sales[parts[2]] = (int(parts[1]), int(parts[3]), int(parts[4]), parts[5] == "1")
            elif parts[0] == "V" and len(parts) == 3:
                out.voids[parts[2]] = int(parts[1])
            # a torn last line cannot happen (one write + fsync); anything else is a bug
            else:
                raise AssertionError(f"confirmed file has a malformed line {line!r}")
        return out

    # --- reading the card back through pcscd + vpcd ----------------------------------------
    def read_card(self) -> CardSeen:
        from hardware.card.pcsc_reader import PcscReader
        from tests.card_fixtures import issuer_keys

        reader = PcscReader(issuer_keys(), name=READER, allow_virtual=True)
        reader.reader = READER
        try:
            card = reader.open_session()
            try:
                spend = card.authenticate().spend
                last = card.last_transaction()
            finally:
                card.close()
        finally:
            reader.stop()
        unsettled = 0
        if last is not None and last.transaction.device_id == DEVICE_ID:
            rid = last.transaction.redemption_id
            known = _sql(self.db_path, "SELECT (SELECT count(*) FROM redemption WHERE id = ?) + (SELECT count(*) FROM "
                         "journal_entry WHERE kind = 'card_charged_not_sold' AND ref = ?)", (rid, rid))[0][0]
            unsettled = 0 if known else last.transaction.amount
        return CardSeen(spend.period, spend.spent, spend.counter, unsettled)


def _sql(path: Path, query: str, args: tuple = ()) -> list:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(query, args).fetchall()
    finally:
        con.close()


def check_device(shop: Shop, confirmed: Confirmed) -> dict:
    """Integrity, journal chain, every sale and void whole or absent, every confirmed one present."""
    path = shop.db_path
    assert _sql(path, "PRAGMA integrity_check") == [("ok",)], "device database: integrity_check failed"
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        con.execute("BEGIN")  # one snapshot for all the reads below
        reds = {rid: (seq, total) for rid, seq, total in con.execute("SELECT id, seq, total FROM redemption")}
        receipt_nos = dict(con.execute("SELECT id, receipt_no FROM redemption"))
        voids = {rid: seq for seq, rid in con.execute("SELECT seq, redemption_id FROM void")}
        outbox = dict(con.execute("SELECT seq, kind FROM outbox_message"))
        lines = {rid: (n, amt) for rid, n, amt in con.execute(
            "SELECT redemption_id, count(*), sum(amount) FROM redemption_line GROUP BY redemption_id")}
        receipts = dict(con.execute(
            "SELECT redemption_id, count(*) FROM print_job WHERE kind='receipt' GROUP BY redemption_id"))
        journaled = dict(con.execute(
            "SELECT ref, count(*) FROM journal_entry WHERE kind='redemption' GROUP BY ref"))
        gross = con.execute("SELECT coalesce(sum(total), 0) FROM redemption WHERE household = ? AND period = ?",
                            (shop.household, _period())).fetchone()[0]
        charged = sum(json.loads(data)["amount"] for (data,) in con.execute(
            "SELECT data FROM journal_entry WHERE kind = 'card_charged_not_sold'"))
    finally:
        con.close()
    seqs = sorted(outbox)
    assert seqs == list(range(1, len(seqs) + 1)), f"device outbox sequence has gaps: {_gaps(seqs)}"
    for rid, (seq, total) in reds.items():
        assert outbox.get(seq) == "redemption", f"sale #{seq} {rid} has no outbox message"
        assert lines.get(rid, (0, 0)) == (1, total), f"sale #{seq} {rid} is torn: lines {lines.get(rid)} total {total}"
        assert receipts.get(rid) == 1, f"sale #{seq} {rid} has {receipts.get(rid, 0)} receipt jobs"
        assert journaled.get(rid) == 1, f"sale #{seq} {rid} has {journaled.get(rid, 0)} journal entries"
    for rid, seq in voids.items():
        assert rid in reds and outbox.get(seq) == "void", f"void #{seq} of {rid} is torn"
    redemption_seqs = {seq for seq, _ in reds.values()}
    for seq, kind in outbox.items():
        if kind == "redemption":
            assert seq in redemption_seqs, f"outbox message #{seq} reports a sale that is not there"
        elif kind == "void":
            assert seq in voids.values(), f"outbox message #{seq} reports a void that is not there"
    for rid, (no, total, _card_total, _updated) in confirmed.sales.items():
        found = (receipt_nos.get(rid), reds.get(rid, (None, None))[1])
        assert found == (no, total), f"confirmed sale (receipt no {no}) {rid} lost or changed: {found}"
    for rid, no in confirmed.voids.items():
        assert rid in voids and receipt_nos.get(rid) == no, f"confirmed void of receipt no {no} ({rid}) lost"
    _verify_journal(path)
    return {"sales": len(reds), "voids": len(voids), "messages": len(seqs), "gross": gross, "charged": charged}


def _verify_journal(path: Path) -> None:
    from pos import journal
    from pos.db import open_database

    db = open_database(path, migrate=False)
    try:
        report = journal.verify()
    finally:
        db.close()
    assert report.ok, f"journal chain broken: {report}"


def check_card(seen: CardSeen, previous: CardSeen | None, gross: int, confirmed: Confirmed, charged: int = 0) -> None:
    """The card's own record against the device: exactly the sales the device holds, plus the
    charges it reported as not sold, plus at most the one charge the card's next insertion will
    report (the card signs first, docs/card-protocol.md "Recovery"); at least every total the
    counter reported written; never going backwards."""
    period = _period()
    assert seen.period in ("", period), f"card records period {seen.period}, expected {period}"
    accounted = gross + charged + seen.unsettled
    assert seen.spent <= accounted, (f"card records Rp {seen.spent} spent but the device holds sales of Rp {gross} "
                                     f"and reported Rp {charged} charged not sold (+ Rp {seen.unsettled} to report)")
    assert seen.spent >= accounted, (f"card records Rp {seen.spent}, below the Rp {gross} of sales the device "
                                     f"holds and the Rp {charged} it reported charged not sold: a sale without "
                                     "the card's charge")
    written = max((c for (_s, _t, c, ok) in confirmed.sales.values() if ok), default=0)
    assert seen.spent >= written, f"card records Rp {seen.spent}, below Rp {written} the counter reported written"
    if previous is not None:
        assert seen.spent >= previous.spent and seen.counter >= previous.counter, \
            f"card record went backwards: {previous} -> {seen}"


def check_central(path: Path) -> dict:
    if not path.exists():
        return {"redemptions": 0}
    assert _sql(path, "PRAGMA integrity_check") == [("ok",)], "central database: integrity_check failed"
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        con.execute("BEGIN")
        msgs = {mid: (seq, kind) for mid, seq, kind in con.execute(
            "SELECT id, seq, kind FROM central_message WHERE device = ?", (DEVICE_ID,))}
        reds = con.execute("SELECT id, msg_id, seq FROM central_redemption WHERE device = ?", (DEVICE_ID,)).fetchall()
        voids = con.execute("SELECT id, msg_id FROM central_void WHERE device = ?", (DEVICE_ID,)).fetchall()
    finally:
        con.close()
    for rid, msg_id, seq in reds:
        assert msgs.get(msg_id, (None, None))[0] == seq, f"central redemption {rid} has no message #{seq}"
    assert len(reds) == sum(1 for _s, k in msgs.values() if k == "redemption"), "central: a redemption message without its record"
    assert len(voids) == sum(1 for _s, k in msgs.values() if k == "void"), "central: a void message without its record"
    return {"redemptions": len(reds), "voids": len(voids), "messages": len(msgs)}


def final_check(shop: Shop, confirmed: Confirmed) -> dict:
    """After the drain: central holds every sale and void the device holds, once, gap-free."""
    dev_reds = dict(_sql(shop.db_path, "SELECT id, seq FROM redemption"))
    dev_voids = dict(_sql(shop.db_path, "SELECT redemption_id, seq FROM void"))
    dev_msgs = dict(_sql(shop.db_path, "SELECT msg_id, seq FROM outbox_message"))
    cen_reds = _sql(shop.central_db, "SELECT id, seq FROM central_redemption WHERE device = ?", (DEVICE_ID,))
    cen_voids = _sql(shop.central_db, "SELECT redemption_id, msg_id FROM central_void WHERE device = ?", (DEVICE_ID,))
    cen_seqs = sorted(s for (s,) in _sql(shop.central_db, "SELECT seq FROM central_message WHERE device = ?", (DEVICE_ID,)))
    cen_msg_ids = {m for (m,) in _sql(shop.central_db, "SELECT id FROM central_message WHERE device = ?", (DEVICE_ID,))}
    rejected = _sql(shop.central_db, "SELECT topic, reason FROM central_rejected")
    gaps = _sql(shop.central_db, "SELECT seq FROM central_gap WHERE device = ?", (DEVICE_ID,))
    state = _sql(shop.central_db, "SELECT contiguous_seq, highest_seq FROM central_device_state WHERE device = ?", (DEVICE_ID,))
    assert len(cen_reds) == len({r for r, _ in cen_reds}), "a redemption stored twice at central"
    missing = [(dev_reds[r], r) for r in confirmed.sales if r not in dict(cen_reds)]
    assert not missing, f"confirmed sales missing at central: {sorted(missing)[:10]} ({len(missing)})"
    assert dict(cen_reds) == dev_reds, "central and device disagree on the sales"
    assert {r for r, _ in cen_voids} == set(dev_voids) and len(cen_voids) == len(dev_voids), "central and device disagree on the voids"
    assert all(r in {x for x, _ in cen_voids} for r in confirmed.voids), "a confirmed void is missing at central"
    assert cen_msg_ids == set(dev_msgs), "central and device disagree on the message ids"
    assert cen_seqs == list(range(1, len(dev_msgs) + 1)), f"central sequence gaps: {_gaps(cen_seqs)}"
    assert not gaps, f"central still records gaps: {gaps[:10]}"
    assert state and state[0][0] == state[0][1] == len(dev_msgs), f"central device state {state}, expected {len(dev_msgs)}"
    assert not rejected, f"central rejected messages: {rejected[:5]}"
    return {"sales": len(dev_reds), "voids": len(dev_voids), "messages": len(dev_msgs)}


def acked_count(shop: Shop) -> int:
    return _sql(shop.db_path, "SELECT count(*) FROM outbox_message WHERE state = 'acked'")[0][0]


def drained(shop: Shop) -> bool:
    states = dict(_sql(shop.db_path, "SELECT state, count(*) FROM outbox_message GROUP BY state"))
    total = sum(states.values())
    if states.get("acked", 0) != total:
        return False
    if not shop.central_db.exists():
        return False
    n = _sql(shop.central_db, "SELECT count(*) FROM central_message WHERE device = ?", (DEVICE_ID,))[0][0]
    return n == total


def _period() -> str:
    from pos.period import Period

    return str(Period.of(datetime.now(UTC)))


def _gaps(seqs: list[int]) -> list[int]:
    have = set(seqs)
    return [s for s in range(1, (max(seqs) if seqs else 0) + 1) if s not in have][:20]
