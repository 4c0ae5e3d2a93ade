"""Disk full and read-only storage: a clear StorageFault, nothing half-written, recovery once fixed.

Uses a size-capped tmpfs mounted by the test (needs root, as on CI and developer machines).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from dataclasses import replace

import pytest

from pos.db import StorageFault, open_database
from pos.device import DeviceIdentity
from pos.ledger import Ledger
from pos.policy import Policy
from pos.redemption import RedemptionRequest, RedemptionService
from pos.refusals import Refusal
from pos.sample_city import build_sample_city, demo_key
from pos.signing import EcdsaSigner


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "data"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4M", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {res.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _service(path, clock):
    db = open_database(path)
    device = DeviceIdentity("EW-DISK-0001", "S", "Shop", "Addr")
    svc = RedemptionService(db, Ledger(), device, EcdsaSigner(demo_key("device"), device.device_id), clock,
                            replace(Policy(), offline_max_value=10**12))
    return db, svc


def _counts(path):
    con = sqlite3.connect(path)
    try:
        return tuple(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("redemption", "redemption_line", "outbox_message", "journal_entry", "print_job"))
    finally:
        con.close()


def _fill(mnt):
    filler = mnt / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


def test_disk_full_refuses_cleanly_and_recovers(small_disk, clock):
    path = small_disk / "ewarung.db"
    db, svc = _service(path, clock)
    city = build_sample_city(db, households=200, now=clock.now())
    hid = city.notable["holder"]
    svc.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
    filler = _fill(small_disk)
    before = _counts(path)
    faults = 0
    for i in range(40):  # WAL pages may still have room for a few: keep going until it is full
        try:
            svc.redeem(RedemptionRequest(city.notable["holder"], "kasir1", {"TAHU": 1}, card_id=f"X{i}"))
        except StorageFault as exc:
            assert exc.kind == "disk_full" and "free space" in str(exc) and "Nothing was saved" in str(exc)
            faults += 1
            break
        except Refusal:
            break
    assert faults == 1, "the disk never filled up: the test proved nothing"
    after_fault = _counts(path)
    assert len(set(after_fault)) >= 1 and after_fault[0] == after_fault[2] == after_fault[3] - 1
    os.unlink(filler)
    r = svc.redeem(RedemptionRequest(hid, "kasir1", {"TEMPE": 1}))
    assert r.seq == after_fault[2] + 1
    db.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    assert _counts(path)[0] == after_fault[0] + 1 and before[0] <= after_fault[0]


def test_read_only_storage_refuses_cleanly_and_recovers(small_disk, clock):
    path = small_disk / "ewarung.db"
    db, svc = _service(path, clock)
    city = build_sample_city(db, households=50, now=clock.now())
    hid = city.notable["holder"]
    svc.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
    db.close()
    before = _counts(path)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        with pytest.raises(StorageFault) as exc:
            db, svc = _service(path, clock)  # a restart onto a partition that went read-only
            svc.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
        assert exc.value.kind in ("read_only", "cannot_open", "io_error")
        assert "writable" in str(exc.value) or "read-only" in str(exc.value)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert _counts(path) == before
    db, svc = _service(path, clock)
    r = svc.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
    assert r.seq == before[2] + 1
    db.close()
