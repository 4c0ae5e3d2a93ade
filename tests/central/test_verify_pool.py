"""The verify worker processes (sync/central/verify_pool.py): a batch split across them comes back
with every verdict on its own message. A verdict shifted by one would store a forgery as genuine
and refuse the genuine sale beside it, so the forgeries sit in different chunks, at known places."""

from __future__ import annotations

import pytest

from hardware.card.fake import FakeCard, demo_issuer_keys
from sync.central.evidence_checks import issuer_pems
from sync.central.verify import Checked, verify_batch
from sync.central.verify_pool import MIN_CHUNK, VerifyPool, results, unpack, verify_packed
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
    return [(ok, v.envelope["id"], v.problems) if ok else (ok, v) for ok, v in verdicts]


def test_the_marshalled_verdicts_are_verify_batchs_own():
    jobs, pems, forged, tampered = _jobs(12)
    assert _shape(unpack(verify_packed(jobs, pems, ISSUERS))) == _shape(verify_batch(jobs, pems, ISSUERS))


@pytest.mark.timeout(120)
def test_a_batch_split_across_workers_keeps_each_verdict_on_its_message():
    n = 3 * MIN_CHUNK
    jobs, pems, forged, tampered = _jobs(n)
    pool = VerifyPool(2)
    try:
        pool.warm_up(ISSUERS)
        futures = pool.submit(jobs, pems, ISSUERS)
        got = results(futures)
    finally:
        pool.shutdown()
    assert len(futures) == 2  # both workers had a part of it
    assert _shape(got) == _shape(verify_batch(jobs, pems, ISSUERS))
    assert [i for i, (ok, _) in enumerate(got) if not ok] == [forged]
    assert "does not verify" in got[forged][1]
    flagged = [i for i, (ok, v) in enumerate(got) if ok and v.problems]
    assert flagged == [tampered] and "did not sign" in " ".join(got[tampered][1].problems)
    assert all(isinstance(v, Checked) for ok, v in got if ok)
