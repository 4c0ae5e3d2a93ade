"""The batched path of the central consumer: signatures checked by `verify.verify_batch` (what the
worker process runs), then one transaction per batch, acks only after the commit."""

from __future__ import annotations

import base64
import json
import threading
import time
from concurrent.futures import Future

import pytest

from pos.sample_city import demo_key
from pos.signing import jws_verify
from sync.central.consumer import ACK_TYP, CentralConsumer, Incoming, MqttRunner
from sync.central.store import Message, RedemptionRecord, Rejected
from sync.central.verify import verify_batch

CENTRAL_KEYS = {"central": demo_key("central").public_key()}


def _forge(msg: Incoming) -> Incoming:
    """Same signature, payload changed (total lowered): must not verify."""
    head, payload, sig = msg.payload.split(b".")
    env = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    env["body"]["total"] = 1
    forged = base64.urlsafe_b64encode(json.dumps(env).encode()).rstrip(b"=")
    return Incoming(msg.topic, head + b"." + forged + b"." + sig, msg.mid, msg.qos)


def _worker_verdicts(consumer: CentralConsumer, batch: list[Incoming]) -> list:
    jobs, where, pems = consumer.verify_jobs(batch)
    verdicts: list = [None] * len(batch)
    for i, v in zip(where, verify_batch(jobs, pems), strict=True):
        verdicts[i] = v
    return verdicts


def _publish(port: int, client_id: str, msgs: list[Incoming]) -> None:
    """Publish `msgs` in this order, each once the broker has it."""
    import paho.mqtt.client as mqtt

    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    for m in msgs:
        pub.publish(m.topic, m.payload, qos=1).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()


def _three_sales(make_device, name="EW-A-0001"):
    dev = make_device(name)
    for hh in ("holder", "partly_spent", "quotas"):
        dev.redeem(dev.city.notable[hh], {"GULA1": 1})
    return dev, dev.incoming()


def test_a_forgery_inside_a_batch_does_not_poison_the_others(make_device, consumer, city):
    dev, (m1, m2, m3) = _three_sales(make_device)
    stranger = make_device("EW-X-0009", register=False)
    stranger.redeem(stranger.city.notable["holder"], {"GULA1": 1})
    batch = [m1, _forge(m2), stranger.incoming()[0], m3,
             Incoming("ewarung/v1/devices/EW-A-0001/status", b'{"state": "online"}')]
    jobs, where, _ = consumer.verify_jobs(batch)
    assert where == [0, 1, 3]  # the unregistered device and the status stay with process()
    out = consumer.process(batch, _worker_verdicts(consumer, batch))
    assert (out.stored, out.rejected, out.status_updates) == (2, 2, 1)
    reasons = [r.reason for r in Rejected.select().order_by(Rejected.id)]
    assert "does not verify" in reasons[0] and "not in the registry" in reasons[1]
    ack = jws_verify(out.acks[0][1], CENTRAL_KEYS, ACK_TYP).json()
    ids = [m.msg_id for m in dev.outbox()]
    assert ack["ids"] == [ids[0], ids[2]] and ack["ranges"] == [[1, 1], [3, 3]]
    assert out.resends and jws_verify(out.resends[0][1], CENTRAL_KEYS).json()["ranges"] == [[2, 2]]
    # the genuine message 2 arrives later (resent): stored, the gap closes
    again = consumer.process([m2], _worker_verdicts(consumer, [m2]))
    assert (again.stored, again.resends) == (1, [])
    assert RedemptionRecord.select().count() == 3


def test_worker_and_inline_verification_give_the_same_verdicts(make_device, consumer, city):
    _, msgs = _three_sales(make_device)
    batch = [msgs[0], _forge(msgs[1]), Incoming(msgs[2].topic, b"not.a.token")]
    worker = _worker_verdicts(consumer, batch)
    inline = []
    for m in batch:
        try:
            inline.append((True, consumer._verify("EW-A-0001", "redemption", m.payload)))
        except ValueError as exc:
            inline.append((False, str(exc)))
    assert worker == inline


def test_crash_between_commit_and_ack_redelivery_is_deduplicated(make_device, central_signer, clock, central, city):
    _, msgs = _three_sales(make_device)
    first = CentralConsumer(central_signer, clock)
    out = first.process(msgs, _worker_verdicts(first, msgs))
    assert out.stored == 3  # committed ... and the process dies before any PUBACK or ack goes out
    restarted = CentralConsumer(central_signer, clock)
    again = restarted.process(msgs, _worker_verdicts(restarted, msgs))  # the broker redelivers
    assert (again.stored, again.duplicates, again.rejected) == (0, 3, 0)
    assert jws_verify(again.acks[0][1], CENTRAL_KEYS).json()["ids"] == jws_verify(out.acks[0][1], CENTRAL_KEYS).json()["ids"]
    assert Message.select().count() == 3 and RedemptionRecord.select().count() == 3


def test_a_dead_worker_falls_back_to_verifying_in_the_consumer_thread(make_device, consumer, city):
    _, msgs = _three_sales(make_device)
    runner = MqttRunner(consumer, "127.0.0.1", 1, client_id="t-fallback", verify_workers=1)
    dead: Future = Future()
    dead.set_exception(RuntimeError("worker process killed"))
    assert runner._verdicts(msgs, ([dead], [0, 1, 2])) is None  # process() verifies them itself
    assert runner.verify_workers == 0 and runner._submit(msgs) is None
    assert consumer.process(msgs, None).stored == 3


@pytest.mark.mqtt
def test_runner_pipeline_stores_and_acks_everything_once(mosquitto, make_device, central_signer, clock, central, city):
    import paho.mqtt.client as mqtt

    devs = [make_device(f"EW-P-000{i}") for i in (1, 2)]
    msgs = []
    for dev in devs:
        for hh in ("holder", "partly_spent", "quotas", "lansia"):
            dev.redeem(dev.city.notable[hh], {"GULA1": 1})
        msgs += dev.incoming()
    forged = _forge(msgs[1])
    acked: list[str] = []
    got = threading.Event()

    def on_ack(c, u, m):
        acked.extend(jws_verify(m.payload, CENTRAL_KEYS, ACK_TYP).json()["ids"])
        if len(set(acked)) >= len(msgs):
            got.set()

    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-pipe-acks", protocol=mqtt.MQTTv5)
    watcher.on_message = on_ack
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.subscribe("ewarung/v1/devices/+/ack", qos=1)
    watcher.loop_start()
    runner = MqttRunner(CentralConsumer(central_signer, clock), "127.0.0.1", mosquitto.port,
                        client_id="t-pipe", group=None, batch_max=3, verify_workers=1)
    runner.start()
    try:
        assert runner.connected.wait(10) and runner._pool is not None
        time.sleep(0.3)  # watcher subscribed
        _publish(mosquitto.port, "t-pipe-pub", [msgs[0], forged, *msgs[1:], msgs[0]])  # a forgery and a duplicate
        assert got.wait(30), f"acked {len(set(acked))} of {len(msgs)}"
        deadline = time.monotonic() + 10
        while runner.totals.duplicates < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (runner.totals.stored, runner.totals.rejected, runner.totals.duplicates) == (len(msgs), 1, 1)
        assert runner.verify_workers == 1  # the worker did the checking, no fallback
        assert "does not verify" in Rejected.get().reason
        assert RedemptionRecord.select().count() == len(msgs)
    finally:
        runner.stop()
        watcher.disconnect()
        watcher.loop_stop()
    assert runner._pool is None  # the worker process is shut down with the runner


@pytest.mark.mqtt
def test_runner_merges_verified_units_in_order_and_acks_only_after_the_commit(
        mosquitto, make_device, central_signer, clock, central, city):
    """Verification goes in units of half a batch, while the store joins them into full batches:
    the messages stored in arrival order, each PUBACK after the commit of its own message. The
    first store is slowed so that the rest arrive and are verified meanwhile."""
    msgs = []
    for name in ("EW-M-0001", "EW-M-0002"):
        dev = make_device(name)
        for hh in ("holder", "partly_spent", "quotas", "lansia"):
            dev.redeem(dev.city.notable[hh], {"GULA1": 1})
        msgs += dev.incoming()
    consumer = CentralConsumer(central_signer, clock)
    runner = MqttRunner(consumer, "127.0.0.1", mosquitto.port, client_id="t-merge", group=None, batch_max=4,
                        verify_workers=1)
    submitted: list[int] = []
    sizes: list[int] = []  # of the store batches
    stored: list[bytes] = []
    committed: set[int] = set()
    early: list[int] = []  # PUBACKed before their commit
    submit, process, ack_all = runner._submit, consumer.process, runner.link.ack_all

    def counted_submit(batch):
        submitted.append(len(batch))
        return submit(batch)

    def slow_process(batch, verified=None):
        if not stored:
            time.sleep(0.5)  # the rest arrive and are verified meanwhile
        out = process(batch, verified)
        sizes.append(len(batch))
        stored.extend(m.payload for m in batch)
        committed.update(m.mid for m in batch)
        return out

    def checked_ack_all(acks):
        early.extend(mid for mid, _ in acks if mid not in committed)
        ack_all(acks)

    runner._submit, consumer.process, runner.link.ack_all = counted_submit, slow_process, checked_ack_all
    runner.start()
    try:
        assert runner.connected.wait(10) and runner._pool is not None
        _publish(mosquitto.port, "t-merge-pub", msgs)
        deadline = time.monotonic() + 30
        while runner.totals.stored < len(msgs) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
    assert stored == [m.payload for m in msgs]  # once each, in the order they arrived
    assert runner.totals.stored == len(msgs) and early == []
    assert max(submitted) <= 2 and max(sizes) == 4, (submitted, sizes)  # units of 2 joined into batches of 4
