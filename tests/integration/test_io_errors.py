"""I/O errors below SQLite: the device database on a FUSE filesystem that returns EIO on demand.

tests/integration/eio_fs.py (fusepy over libfuse2, a subprocess) passes a backing directory
through and fails read, write or fsync with EIO while its control file says so. Each round
redeems normally, then switches EIO on from inside a redemption (at a random step of the write
transaction), expects a StorageFault that says what to do, switches EIO off and redeems again.
At the end, from a fresh process view: PRAGMA integrity_check ok, the journal chain verifies,
every redemption that returned is whole and every one that raised is absent, sequence gap-free.

Rounds: EWARUNG_EIO_ROUNDS (default 24; `make soak`-size runs use more).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pos import journal, settings
from pos.db import StorageFault, open_database
from pos.redemption import RedemptionRequest
from pos.sample_city import build_sample_city, household_id
from tests.integration.test_storage_faults import _service

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("EWARUNG_EIO_ROUNDS", "24"))
OPS = ("write", "fsync", "read")


class EioMount:
    def __init__(self, base: Path) -> None:
        self.backing, self.mnt, self.control = base / "backing", base / "mnt", base / "eio-control"
        self.backing.mkdir()
        self.mnt.mkdir()
        self.control.write_text("")
        self.proc: subprocess.Popen | None = None

    def mount(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.eio_fs", str(self.backing), str(self.mnt), str(self.control)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 10
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.poll() is not None else "timeout"
                self.proc.kill()
                pytest.skip(f"cannot mount a FUSE filesystem here: {err.strip()[-300:]}")
            time.sleep(0.02)

    def fail(self, *ops: str) -> None:
        tmp = self.control.with_suffix(".tmp")
        tmp.write_text(",".join(ops))
        os.replace(tmp, self.control)  # a new inode: the mtime always changes

    def eio_count(self) -> dict[str, int]:
        path = Path(str(self.control) + ".count")
        lines = path.read_text().split("\n") if path.exists() else []
        return {op: sum(1 for ln in lines if ln.startswith(op + " ")) for op in OPS}

    def unmount(self) -> None:
        self.fail()
        subprocess.run(["umount", "-l", str(self.mnt)], check=False, capture_output=True)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stderr.close()


@pytest.fixture
def eio(tmp_path):
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse in this machine")
    pytest.importorskip("fuse", reason="fusepy is not installed (pip install fusepy; apt-get install libfuse2)")
    m = EioMount(tmp_path)
    m.mount()
    yield m
    m.unmount()


def _check_whole(path, returned: set[str], raised: int):
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ids = {r for (r,) in con.execute("SELECT id FROM redemption")}
        assert ids == returned, f"sales reported saved {len(returned)}, found {len(ids)}; {raised} raised"
        seqs = [s for (s,) in con.execute("SELECT seq FROM redemption ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1)), "device sequence has a gap"
        for rid, seq in con.execute("SELECT id, seq FROM redemption"):
            assert con.execute("SELECT count(*) FROM redemption_line WHERE redemption_id=?", (rid,)).fetchone()[0] >= 1
            assert con.execute("SELECT count(*) FROM outbox_message WHERE seq=?", (seq,)).fetchone()[0] == 1
            assert con.execute("SELECT count(*) FROM print_job WHERE redemption_id=?", (rid,)).fetchone()[0] == 1
            assert con.execute("SELECT count(*) FROM journal_entry WHERE ref=?", (rid,)).fetchone()[0] == 1
    finally:
        con.close()


def test_eio_mid_redemption_refuses_cleanly_and_nothing_tears(eio, clock, monkeypatch):
    path = eio.mnt / "ewarung.db"
    db, svc = _service(path, clock)
    build_sample_city(db, households=ROUNDS + 10, now=clock.now())
    returned: set[str] = set()
    raised = {op: 0 for op in OPS}
    kinds: dict[str, int] = {}
    rng = random.Random(int(os.environ.get("EWARUNG_EIO_SEED", "9")))
    armed: dict[str, object] = {}
    real_next, real_append = settings.next_sequence, journal.append

    def trip(real):
        def hooked(*a, **kw):
            if armed.get("at") is real:
                eio.fail(armed["op"])
            return real(*a, **kw)
        return hooked

    monkeypatch.setattr(settings, "next_sequence", trip(real_next))
    monkeypatch.setattr(journal, "append", trip(real_append))
    for i in range(ROUNDS):
        op = OPS[i % len(OPS)]
        hid = household_id(10 + i)  # an ordinary household each round: allowances never run out
        returned.add(svc.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}, card_id=f"OK{i}")).redemption_id)
        if op == "read":  # a cold page cache, as after a restart: reads must reach the storage
            db.close()
            db, svc = _service(path, clock)
        armed.update(op=op, at=rng.choice([real_next, real_append]))
        try:
            r = svc.redeem(RedemptionRequest(hid, "kasir1", {"TEMPE": 1}, card_id=f"EIO{i}"))
        except StorageFault as exc:
            raised[op] += 1
            kinds[exc.kind] = kinds.get(exc.kind, 0) + 1
            assert exc.kind in ("io_error", "corrupt"), exc
            assert "SD card" in str(exc) and "Nothing was saved" in str(exc)
        else:
            returned.add(r.redemption_id)  # EIO armed after every read it needed: it really committed
        finally:
            armed.clear()
            eio.fail()
        # EIO off: the same service goes on, and the sequence continues
        returned.add(svc.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}, card_id=f"AFTER{i}")).redemption_id)
    db.close()
    counts = eio.eio_count()
    print(f"rounds={ROUNDS} StorageFault raised per op={raised} kinds={kinds} EIO returned by the filesystem={counts}")
    assert raised["write"] + raised["fsync"] >= 2 * (ROUNDS // 3), raised  # write and fsync faults always hit
    _check_whole(path, returned, sum(raised.values()))
    db = open_database(path)
    try:
        report = journal.verify()
        assert report.ok, report
    finally:
        db.close()
    # and off the FUSE mount, as another machine would read the SD card
    copy = eio.backing.parent / "copy"
    copy.mkdir()
    for f in eio.backing.iterdir():
        shutil.copy(f, copy / f.name)
    _check_whole(copy / "ewarung.db", returned, sum(raised.values()))


def test_restart_onto_storage_that_fails_reads(eio, clock):
    path = eio.mnt / "ewarung.db"
    db, svc = _service(path, clock)
    city = build_sample_city(db, households=30, now=clock.now())
    first = svc.redeem(RedemptionRequest(city.notable["holder"], "kasir1", {"TAHU": 1}))
    db.close()
    eio.fail("read")
    with pytest.raises(StorageFault) as exc:
        db, svc = _service(path, clock)
        svc.redeem(RedemptionRequest(city.notable["holder"], "kasir1", {"TAHU": 1}))
    assert exc.value.kind in ("io_error", "cannot_open"), exc.value
    eio.fail()
    db.close()
    _check_whole(path, {first.redemption_id}, 1)
