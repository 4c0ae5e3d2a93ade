"""Daemon logic with an in-process fake link (fast): duplicate PUBACKs and acks, failures, resend,
retention, window. The same paths run against a real mosquitto in tests/integration/sync/."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pos.clock import iso
from pos.db import OutboxMessage
from pos.redemption import RedemptionRequest
from pos.sample_city import demo_key, household_id
from pos.signing import EcdsaSigner
from sync.acks import RESEND_SCHEMA, build_ack
from sync.daemon import SyncDaemon, SyncOptions
from sync.mqtt_client import Events


class FakeLink:
    def __init__(self) -> None:
        self.events = Events(connected=True, just_connected=True)
        self.sent: list[tuple[str, bytes, int]] = []
        self.mid = 0
        self.acked: list[int] = []

    def poll(self, timeout: float = 0) -> None:
        pass

    def publish(self, topic, payload, qos=1, retain=False):
        self.mid += 1
        self.sent.append((topic, payload, self.mid))
        return self.mid

    def ack(self, mid, qos) -> None:
        self.acked.append(mid)

    def close(self, *a) -> None:
        pass


@pytest.fixture
def daemon(db, city, device, signer, clock, service):
    for i in range(10):
        service.redeem(RedemptionRequest(household_id(10 + i), "kasir1", {"TAHU": 1}))
    link = FakeLink()
    d = SyncDaemon(db, device, signer, link, {"central": demo_key("central").public_key()},
                   {"ledger": demo_key("ledger").public_key()}, SyncOptions(inflight=4, heartbeat_s=3600), clock)
    return d, link


def states():
    return [m.state for m in OutboxMessage.select().order_by(OutboxMessage.seq)]


def outbox_sent(link):
    return [(t, p, mid) for t, p, mid in link.sent if t.endswith(("/redemption", "/void", "/event"))]


def test_window_and_duplicate_pubacks(daemon):
    d, link = daemon
    d.step()
    first = outbox_sent(link)
    assert len(first) == 4, "bounded in-flight window"
    mids = [mid for _, _, mid in first]
    link.events.pubacks += [(m, True, "Success") for m in mids] + [(mids[0], True, "Success")]  # a duplicate
    d.step()
    assert states()[:4] == ["published"] * 4 and states()[4:8] == ["queued"] * 4
    assert len(outbox_sent(link)) == 8


def test_failed_puback_keeps_message_queued(daemon):
    d, link = daemon
    d.step()
    mid = outbox_sent(link)[0][2]
    link.events.pubacks.append((mid, False, "Not authorized"))
    d.step()
    row = OutboxMessage.get(OutboxMessage.seq == 1)
    assert row.state == "queued" and "Not authorized" in row.last_error


def test_acks_duplicate_ranges_forged_and_resend(daemon, clock, device):
    d, link = daemon
    central = EcdsaSigner(demo_key("central"), "central")
    for _ in range(5):
        d.step()
        link.events.pubacks += [(mid, True, "Success") for _, _, mid in outbox_sent(link)]
    assert states().count("published") == 10
    ack = build_ack(device.device_id, iso(clock.now()), central, ranges=[[1, 6]])
    topic = f"ewarung/v1/devices/{device.device_id}/ack"
    link.events.messages += [(topic, ack, 1, 1), (topic, ack, 2, 1)]  # duplicate ack
    d.step()
    assert states()[:6] == ["acked"] * 6 and states()[6:10] == ["published"] * 4
    forged = build_ack(device.device_id, iso(clock.now()), EcdsaSigner(demo_key("device"), "central"), ranges=[[7, 10]])
    other = build_ack("EW-OTHER", iso(clock.now()), central, ranges=[[7, 10]])
    link.events.messages += [(topic, forged, 3, 1), (topic, other, 4, 1)]
    d.step()
    assert states()[6:10] == ["published"] * 4
    assert link.acked == [1, 2, 3, 4], "every incoming message is PUBACKed after it was handled"
    events = OutboxMessage.select().where(OutboxMessage.kind == "event")
    assert events.count() == 2, "each refused ack is reported to the city"
    resend = build_ack(device.device_id, iso(clock.now()), central, ranges=[[7, 8]], schema=RESEND_SCHEMA)
    link.events.messages.append((f"ewarung/v1/devices/{device.device_id}/resend", resend, 5, 1))
    before = len(outbox_sent(link))
    d.step()
    assert OutboxMessage.get(OutboxMessage.seq == 7).state in ("queued", "published")
    assert len(outbox_sent(link)) > before, "requested range republished"


def test_reconnect_requeues_unacked_and_retention_purges(daemon, clock):
    d, link = daemon
    for _ in range(4):
        d.step()
        link.events.pubacks += [(mid, True, "Success") for _, _, mid in outbox_sent(link)]
    d.step()
    assert states().count("published") == 10
    link.events.just_connected = True
    link.sent.clear()
    d.step()
    assert len(outbox_sent(link)) == 4, "unacked messages republished after a reconnect"
    d.drain.mark_acked([], [(1, 10)], clock.now())
    assert d.drain.purge_acked(clock.now() + timedelta(days=89), 90) == 0
    assert d.drain.purge_acked(clock.now() + timedelta(days=91), 90) == 10


def test_backoff_has_jitter_and_grows():
    from sync.mqtt_client import MqttLink, MqttSettings

    values = iter([0.0, 1.0, 1.0, 1.0])
    link = MqttLink(MqttSettings("x", "127.0.0.1", 1, backoff_min_s=0.5, backoff_max_s=8), [], rand=lambda: next(values))
    assert link.backoff_s() == 0.5
    link._attempt = 1
    assert link.backoff_s() == 1.0
    link._attempt = 10
    assert link.backoff_s() == 8


def test_device_without_ledger_keeps_asking_for_a_snapshot(db, device, signer, clock):
    """The request sent on connecting can reach a broker with no central subscribed yet."""
    link = FakeLink()
    d = SyncDaemon(db, device, signer, link, {"central": demo_key("central").public_key()},
                   {"ledger": demo_key("ledger").public_key()}, SyncOptions(inflight=4, heartbeat_s=0), clock)

    def requests():
        return [p for t, p, _ in link.sent if t.endswith("/request")]

    d.step()
    assert len(requests()) >= 1
    before = len(requests())
    d.step()
    assert len(requests()) == before + 1, "asked again at the next heartbeat"
