"""`ewarung central report` tells the whole story: every missing number (not only those asked
for in one resend request) and the messages central refused and kept."""

from __future__ import annotations

from pos.db import durable_transaction
from pos.outbox import enqueue
from sync.central.consumer import MAX_GAP_REQUEST, Incoming
from sync.central.report import reconcile, to_table


def _events(dev, n: int) -> None:
    dev.use()
    with durable_transaction(dev.db):
        for i in range(n):
            enqueue("event", {"event": "data_problem", "household": "SMD-1", "problem": "moved", "note": str(i),
                              "cashier": "kasir1"}, device=dev.identity, signer=dev.signer,
                    created_at="2026-11-15T02:00:00.000Z")


def test_missing_count_is_every_gap_beyond_one_resend_request(make_device, consumer, clock, city):
    dev = make_device("EW-A-0001", city=False)
    _events(dev, 1000)
    msgs = dev.incoming()
    out = consumer.process([msgs[0], msgs[-1]])
    assert out.stored == 2 and sum(r[1] - r[0] + 1 for r in _ranges(out.resends)) == MAX_GAP_REQUEST
    missing = [f for f in reconcile(now=clock.now()) if f.kind == "missing_seq"]
    assert len(missing) == 1 and missing[0].detail.startswith("998 message(s) never received between seq 2 and 999")
    consumer.process(msgs[1:500])  # the first 499 asked for arrive
    missing = [f for f in reconcile(now=clock.now()) if f.kind == "missing_seq"]
    assert missing[0].detail.startswith("499 message(s) never received between seq 501 and 999")


def _ranges(resends):
    from pos.sample_city import demo_key
    from pos.signing import jws_verify

    keys = {"central": demo_key("central").public_key()}
    return [r for _, token in resends for r in jws_verify(token, keys).json()["ranges"]]


def test_quarantined_messages_are_in_the_report(make_device, consumer, clock, city):
    dev = make_device("EW-A-0001", city=False)
    _events(dev, 1)
    good = dev.incoming()[0]
    out = consumer.process([Incoming(good.topic, b"not a token"), Incoming("ewarung/v1/devices/EW-Z-0009/event", good.payload)])
    assert out.rejected == 2
    found = {f.subject: f for f in reconcile(now=clock.now()) if f.kind == "quarantined"}
    assert set(found) == {"EW-A-0001", "EW-Z-0009"} and all(f.severity == "critical" for f in found.values())
    assert "1 message(s) refused and kept in central_rejected" in found["EW-A-0001"].detail
    assert "quarantined" in to_table(list(found.values()), clock.now())
