"""The verify worker processes (sync/central/verify_pool.py): a batch split across them comes back
with every verdict on its own message. A verdict shifted by one would store a forgery as genuine
and refuse the genuine sale beside it, so the forgeries sit in different chunks, at known places."""

from __future__ import annotations

import os
import signal
import time

import pytest

from hardware.card.fake import FakeCard, demo_issuer_keys
from sync.central import verify_pool
from sync.central.evidence_checks import issuer_pems
from sync.central.verify import Checked, verify_batch
from sync.central.verify_pool import (
    MIN_CHUNK,
    WORKER_DEPTH,
    WORKER_NICE,
    VerifyPool,
    results,
    unpack,
    verify_packed,
)
from tests.central.card_sales import Counter, at_counter, sale_body

ISSUERS = issuer_pems(demo_issuer_keys())


def _jobs(n: int):
    """n card sales from two devices; returns (jobs, pems, forged index, tampered index)."""
    shops = [Counter("EW-VP-0001"), Counter("EW-VP-0002")]
    card = at_counter(FakeCard("SSN-VP-0001", "SMD-000001"))
    jobs = []
    for i in range(n):
        shop = shops[i % 2]
        jobs.append((shop.device_id, "redemption", shop.sign(sale_body(card.auth, card.charge(shop.device_id)))))
    forged, tampered = n - 3, 5  # in the last chunk and in the first
    device, leaf, token = jobs[forged]
    head, payload, sig = token.split(b".")
    jobs[forged] = (device, leaf, head + b"." + payload + b"." + sig[:-4] + (b"AAAA" if sig[-4:] != b"AAAA" else b"BBBB"))
    shop = shops[tampered % 2]
    proof = card.charge(shop.device_id)
    body = sale_body(card.auth, proof, total=proof.transaction.amount + 1000)  # not what the card signed
    jobs[tampered] = (shop.device_id, "redemption", shop.sign(body))
    return jobs, {s.device_id: s.pem() for s in shops}, forged, tampered


def _shape(verdicts):
    return [(ok, v.envelope, v.problems, v.at) if ok else (ok, v) for ok, v in verdicts]


def test_the_marshalled_verdicts_are_verify_batchs_own():
    """The worker sends verdicts only; the envelope the consumer parses beside them is the one the
    worker checked, value for value, with the same created_at seconds."""
    jobs, pems, forged, tampered = _jobs(12)
    got = unpack(verify_packed(jobs, pems, ISSUERS), jobs)
    assert _shape(got) == _shape(verify_batch(jobs, pems, ISSUERS))
    assert all(isinstance(v.at, float) for ok, v in got if ok)


def test_an_answer_for_other_messages_is_refused():
    jobs, pems, *_ = _jobs(8)
    with pytest.raises(RuntimeError, match="3 verdicts for 8 messages"):
        unpack(verify_packed(jobs[:3], pems, ISSUERS), jobs)


@pytest.mark.timeout(120)
def test_a_dead_worker_is_an_error_not_a_wait():
    """The runner verifies in its own thread when a worker dies (runner._no_workers): it must hear
    of the death, not wait for an answer forever."""
    jobs, pems, *_ = _jobs(2 * MIN_CHUNK)
    pool = VerifyPool(2)
    try:
        pool.warm_up(ISSUERS)
        for pid in pool.pids:
            os.kill(pid, signal.SIGKILL)
        with pytest.raises((EOFError, OSError)):  # on sending (runner._submit) or on reading (runner._verdicts)
            results(pool.submit(jobs, pems, ISSUERS))
    finally:
        pool.shutdown()


@pytest.mark.timeout(120)
def test_workers_yield_the_cores_to_the_consumer_thread():
    """Storing is the serial step: the workers run at a lower priority (a higher nice value) than
    the consumer process, so its thread is never kept waiting for a core by them."""
    pool = VerifyPool(1)
    try:
        pool.warm_up(ISSUERS)
        [pid] = pool.pids
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICE)
    finally:
        pool.shutdown()


@pytest.mark.timeout(120)
def test_a_batch_split_across_workers_keeps_each_verdict_on_its_message():
    n = 3 * MIN_CHUNK
    jobs, pems, forged, tampered = _jobs(n)
    pool = VerifyPool(2)
    try:
        pool.warm_up(ISSUERS)
        futures = pool.submit(jobs, pems, ISSUERS)
        again = pool.submit(jobs, pems, ISSUERS)  # queued behind the first at each worker
        got = results(futures)
        assert _shape(results(again)) == _shape(got)
    finally:
        pool.shutdown()
    assert len(futures) == 2 and {c.worker for c in futures} == {0, 1}  # both workers had a part of it
    assert _shape(got) == _shape(verify_batch(jobs, pems, ISSUERS))
    assert [i for i, (ok, _) in enumerate(got) if not ok] == [forged]
    assert "does not verify" in got[forged][1]
    flagged = [i for i, (ok, v) in enumerate(got) if ok and v.problems]
    assert flagged == [tampered] and "did not sign" in " ".join(got[tampered][1].problems)
    assert all(isinstance(v, Checked) for ok, v in got if ok)


@pytest.mark.timeout(120)
def test_a_slow_worker_does_not_hold_back_the_batch(monkeypatch):
    """A batch's chunks go to whichever worker is free, so a worker given less of a core (here:
    stopped outright) keeps only the chunks already in its hands, and the other checks the rest."""
    monkeypatch.setattr(verify_pool, "MIN_CHUNK", 4)  # small chunks: a stopped worker's pipe takes them all
    monkeypatch.setattr(verify_pool, "CHUNKS_PER_WORKER", 4)  # more than a worker holds: a fixed half would not do
    jobs, pems, *_ = _jobs(32)
    pool = VerifyPool(2)
    stopped = None
    try:
        pool.warm_up(ISSUERS)
        stopped = pool.pids[0]
        os.kill(stopped, signal.SIGSTOP)
        chunks = pool.submit(jobs, pems, ISSUERS)
        assert len(chunks) == 2 * verify_pool.CHUNKS_PER_WORKER
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                c.worker == 0 or (c.worker == 1 and pool.done(c)) for c in chunks):
            time.sleep(0.02)
        assert [c.worker for c in chunks].count(1) == len(chunks) - WORKER_DEPTH
        os.kill(stopped, signal.SIGCONT)
        stopped = None
        assert _shape(results(chunks)) == _shape(verify_batch(jobs, pems, ISSUERS))
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        pool.shutdown()


@pytest.mark.timeout(120)
def test_a_failing_dispatcher_is_an_error_not_a_wait(monkeypatch):
    """Whatever stops the dispatcher thread (here a bug reading an answer), the consumer hears of
    it and verifies in its own thread (runner._no_workers) instead of waiting forever."""
    jobs, pems, *_ = _jobs(MIN_CHUNK)

    def broken(self, worker):
        raise ValueError("a bug in the dispatcher")

    monkeypatch.setattr(VerifyPool, "_take_answer", broken)
    pool = VerifyPool(1)
    try:
        with pytest.raises(ValueError, match="a bug in the dispatcher"):
            results(pool.submit(jobs, pems, ISSUERS))
    finally:
        pool.shutdown()


_COLLECTIONS = """
import gc, sys
sys.path.insert(0, {root!r})
from tests.central.test_verify_pool import ISSUERS, _jobs
from sync.central.verify_pool import calm_collector, unpack, verify_packed

jobs, pems, *_ = _jobs(400)
blob = verify_packed(jobs, pems, ISSUERS)
runs = []
gc.callbacks.append(lambda phase, info: runs.append(info["generation"]) if phase == "start" else None)
kept = [unpack(blob, jobs) for _ in range(3)]  # the objects a batch holds while it is stored
before, runs[:] = len(runs), []
calm_collector()  # as the consumer process's composition root does
runs[:] = []
kept += [unpack(blob, jobs) for _ in range(3)]
print(before, len(runs))
"""


@pytest.mark.timeout(120)
def test_the_consumer_process_does_not_run_the_collector_over_each_batch(tmp_path):
    """The consumer thread allocates a few dozen objects per message, all freed by reference count:
    once its process has calmed its collector (pos.roots.central does), holding and parsing batches runs no garbage collection (which had
    taken the thread's time every few messages). In a fresh process: the test run's own collector
    is left alone."""
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", _COLLECTIONS.format(root=root)], capture_output=True, text=True,
                         timeout=100, cwd=root)
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    assert before > 0 and after == 0, (before, after)
