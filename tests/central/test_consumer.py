"""The central consumer on real device messages: verify, de-duplicate, gaps, store, ack."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pos.refusals import Refusal
from pos.sample_city import demo_key
from pos.signing import jws_verify
from sync.central.consumer import ACK_TYP, RESEND_TYP, Incoming
from sync.central.report import reconcile, to_csv
from sync.central.store import EventRecord, Message, RedemptionRecord, Rejected, SequenceGap

CENTRAL_KEYS = {"central": demo_key("central").public_key()}


def test_stores_once_and_acks_every_delivery(make_device, consumer, city):
    dev = make_device("EW-A-0001")
    res = dev.redeem(dev.city.notable["holder"], {"BERAS5": 1})
    msgs = dev.incoming()
    out = consumer.process(msgs)
    assert (out.stored, out.duplicates, out.rejected) == (1, 0, 0)
    row = RedemptionRecord.get_by_id(res.redemption_id)
    assert (row.device, row.seq, row.total, row.household) == ("EW-A-0001", res.seq, 72_500, dev.city.notable["holder"])
    topic, token = out.acks[0]
    assert topic == "ewarung/v1/devices/EW-A-0001/ack"
    ack = jws_verify(token, CENTRAL_KEYS, ACK_TYP).json()
    assert ack["ids"] == [dev.outbox()[0].msg_id] and ack["ranges"] == [[res.seq, res.seq]]
    again = consumer.process(msgs + msgs)  # redelivery, twice
    assert (again.stored, again.duplicates) == (0, 2)
    assert len(again.acks) == 1 and jws_verify(again.acks[0][1], CENTRAL_KEYS).json()["ids"] == ack["ids"] * 2
    assert RedemptionRecord.select().count() == 1 and Message.select().count() == 1


def test_refuses_tampered_unknown_and_misrouted(make_device, consumer, city):
    dev = make_device("EW-A-0001")
    stranger = make_device("EW-X-0009", register=False)
    dev.redeem(dev.city.notable["holder"], {"BERAS5": 1})
    stranger.redeem(stranger.city.notable["holder"], {"GULA1": 1})
    good = dev.incoming()[0]
    head, payload, sig = good.payload.split(b".")
    import base64
    import json

    body = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    body["body"]["total"] = 1
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=")
    batch = [
        Incoming(good.topic, head + b"." + forged + b"." + sig),
        stranger.incoming()[0],
        Incoming("ewarung/v1/devices/EW-B-0002/redemption", good.payload),
        Incoming("ewarung/v1/devices/EW-A-0001/redemption", b"not a token"),
    ]
    out = consumer.process(batch)
    assert (out.stored, out.rejected, out.acks) == (0, 4, [])
    reasons = [r.reason for r in Rejected.select().order_by(Rejected.id)]
    assert "does not verify" in reasons[0]
    assert "not in the registry" in reasons[1]
    assert "not in the registry" in reasons[2]  # EW-B-0002 unknown; payload says EW-A-0001 anyway
    assert "JWS" in reasons[3]
    assert RedemptionRecord.select().count() == 0


def test_gap_detected_resend_requested_then_filled(make_device, consumer, clock, city):
    dev = make_device("EW-A-0001")
    for hh in ("holder", "partly_spent", "quotas"):
        dev.redeem(dev.city.notable[hh], {"GULA1": 1})
    m1, m2, m3 = dev.incoming()
    out = consumer.process([m1, m3])
    assert out.stored == 2
    assert [(g.device, g.seq) for g in SequenceGap.select()] == [("EW-A-0001", 2)]
    topic, token = out.resends[0]
    assert topic.endswith("/EW-A-0001/resend")
    resend = jws_verify(token, CENTRAL_KEYS, RESEND_TYP).json()
    assert resend["schema"] == "ewarung.resend/1" and resend["ranges"] == [[2, 2]]
    # still missing later: asked again
    clock.advance(timedelta(minutes=2))
    again = consumer.overdue_gaps(timedelta(seconds=30))
    assert [jws_verify(t, CENTRAL_KEYS).json()["ranges"] for _, t in again] == [[[2, 2]]]
    assert "missing_seq" in {f.kind for f in reconcile(now=clock.now())}
    out = consumer.process([m2])
    assert out.stored == 1 and out.resends == [] and SequenceGap.select().count() == 0


def test_double_spend_across_two_offline_devices_is_reported(make_device, consumer, clock, city):
    import tempfile
    from pathlib import Path

    from pos.sample_city import write_beneficiary_csv
    from pos.signing import EcdsaSigner
    from sync.central.ledger_publish import publish_ledger

    csv_path = Path(tempfile.mkdtemp()) / "list.csv"
    write_beneficiary_csv(csv_path, households=30, seed=2026, now=clock.now())
    publish_ledger(csv_path, signer=EcdsaSigner(demo_key("ledger"), "ledger"), city="samarinda", now=clock.now())
    a, b = make_device("EW-A-0001"), make_device("EW-B-0002")
    holder = a.city.notable["holder"]  # BPNT: Rp 200,000 a month
    a.redeem(holder, {"BERAS5": 2})  # 145,000 at shop A on the card, offline
    with pytest.raises(Refusal, match="over_allowance"):  # the card carries A's sale to shop B
        b.redeem(holder, {"BERAS5": 2})
    # the card "forgotten": shop B sells without it, offline: each device alone sees no overspend
    b.redeem(holder, {"BERAS5": 2}, mode="override", override_reason="card_forgotten")
    dev = a.redeem(a.city.notable["partly_spent"], {"GULA1": 1})
    a.use()
    a.service.void(dev.redemption_id, "wrong_quantity", "kasir1", "spv1")
    a.service.flag_problem(a.city.notable["revoked"], "moved", "pindah ke Balikpapan", "kasir1")
    consumer.process(a.incoming() + b.incoming())
    findings = reconcile(now=clock.now())
    over = [f for f in findings if f.kind == "overspend"]
    assert len(over) == 1
    assert over[0].subject == holder and over[0].devices == "EW-A-0001,EW-B-0002" and over[0].amount == 90_000
    assert over[0].severity == "critical" and "offline double spend" in over[0].detail
    kinds = {f.kind for f in findings}
    assert {"void", "data_problem"} <= kinds
    assert EventRecord.select().where(EventRecord.problem == "moved").count() == 1
    text = to_csv(findings)
    assert text.splitlines()[0] == "severity,kind,subject,period,devices,amount,detail"
    assert f"critical,overspend,{holder}," in text


def test_status_and_heartbeat_update_the_fleet(consumer, make_device, clock, city):
    from sync.central.store import DeviceState

    make_device("EW-A-0001")
    out = consumer.process([
        Incoming("ewarung/v1/devices/EW-A-0001/status", b'{"state": "online"}'),
        Incoming("ewarung/v1/devices/EW-A-0001/heartbeat",
                 b'{"queue_depth": 250, "ledger_version": 3, "reader": "ok", "printer": "paper_out", "software_version": "0.1.0"}'),
    ])
    assert out.status_updates == 2
    s = DeviceState.get_by_id("EW-A-0001")
    assert (s.online, s.queue_depth, s.ledger_version, s.printer) == (True, 250, 3, "paper_out")
    consumer.process([Incoming("ewarung/v1/devices/EW-A-0001/status", b'{"state": "offline"}')])
    assert DeviceState.get_by_id("EW-A-0001").online is False
    assert "big_queue" in {f.kind for f in reconcile(now=clock.now())}


def test_postgresql_store_dedupes(pg_server, make_device, central_signer, clock, city):
    from sync.central.consumer import CentralConsumer
    from sync.central.registry import add_device
    from sync.central.store import open_central

    dev = make_device("EW-A-0001", register=False)
    db = open_central(pg_server.createdb("unit_store"))
    try:
        add_device("EW-A-0001", dev.public_pem(), now=clock.now())
        consumer = CentralConsumer(central_signer, clock)
        dev.redeem(dev.city.notable["holder"], {"BERAS5": 2})
        dev.redeem(dev.city.notable["holder"], {"GULA1": 1})
        msgs = dev.incoming()
        assert consumer.process(msgs).stored == 2
        assert consumer.process(msgs[:1]).duplicates == 1
        assert RedemptionRecord.select().count() == 2
        assert db.__class__.__name__ == "PostgresqlDatabase"
    finally:
        db.close()


def test_a_reset_sequence_is_refused_where_the_number_was_used(consumer, clock):
    """A device restored from a backup numbers new messages again from an old point: a new id on a
    number already stored is refused (never stored over the first), at or below the device's
    highest number, with or without a gap below it; its next new numbers are stored."""
    from tests.central.city_messages import Till, send

    till = Till("EW-A-0001", clock.now())
    first = [till.sale("SSN-1", {"GULA1": 1}, counter=n) for n in (1, 2, 3)]
    send(consumer, first[0], first[2])  # seq 2 missing: contiguous 1, highest 3
    till.seq = 2  # restored: the next message is numbered 3 again
    reused = till.sale("SSN-1", {"GULA1": 1}, counter=4)
    till.seq = 0  # and again from the start
    reused_first = till.sale("SSN-1", {"GULA1": 1}, counter=5)
    out = send(consumer, reused, reused_first)
    assert (out.stored, out.rejected) == (0, 2)
    reasons = [r.reason for r in Rejected.select().order_by(Rejected.id)]
    assert "seq 3 already used by message " + first[2][1]["id"] in reasons[0] and "seq 1 already" in reasons[1]
    till.seq = 3
    later = till.sale("SSN-1", {"GULA1": 1}, counter=6)
    out = send(consumer, first[1], later)  # the gap filled, and the device's next number
    assert (out.stored, out.rejected) == (2, 0)
    assert sorted(m.seq for m in Message.select()) == [1, 2, 3, 4]
