"""The lean paho paths (sync/mqtt_lean.py) against a real mosquitto: every message arrives once,
with or without MQTT 5 properties; a PUBACK sent in a batch is honoured and an unacknowledged
message is delivered again; publishes beyond the in-flight window still go out."""

from __future__ import annotations

import time

import paho.mqtt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sync import mqtt_lean
from sync.mqtt_client import MqttLink, MqttSettings

TOPIC = "lean/test"


def _link(broker, client_id: str, inflight: int = 2000) -> MqttLink:
    return MqttLink(MqttSettings(client_id=client_id, host="127.0.0.1", port=broker.port, inflight=inflight,
                                 receive_maximum=inflight, backoff_min_s=0.05, backoff_max_s=0.2), [(TOPIC, 1)])


def _until(link: MqttLink, done, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        link.poll(0.05)
    assert done(), "timed out"


def _publish(broker, messages: list[tuple[bytes, Properties | None]]) -> None:
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="lean-pub", protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    for info in [pub.publish(TOPIC, p, qos=1, properties=props) for p, props in messages]:
        info.wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()


def _subscribed(broker, client_id: str) -> MqttLink:
    link = _link(broker, client_id)
    _until(link, lambda: link.events.connected)
    link.poll(0.2)  # the SUBACK
    return link


def test_messages_with_and_without_properties_arrive_once_and_batched_pubacks_hold(live_broker):
    link = _subscribed(live_broker, "lean-sub")
    assert isinstance(link.client, mqtt_lean.LeanClient)
    with_props = Properties(PacketTypes.PUBLISH)
    with_props.UserProperty = ("k", "v")  # paho's own path
    plain = [(f"m{i}".encode() * (1 + i % 700), None) for i in range(600)]  # fast path, many per read
    _publish(live_broker, [*plain[:300], (b"with-props", with_props), *plain[300:]])
    _until(link, lambda: len(link.events.messages) >= 601)
    got = link.events.messages
    assert [p for _, p, _, _ in got] == [p for p, _ in plain[:300]] + [b"with-props"] + [p for p, _ in plain[300:]]
    assert {(t, q) for t, _, _, q in got} == {(TOPIC, 1)}
    # acknowledge all but the last ten in one write, then reconnect: only those ten come again
    link.ack_all([(mid, qos) for _, _, mid, qos in got[:-10]])
    unacked = [p for _, p, _, _ in got[-10:]]
    # give mosquitto time to read them: a reconnect right away takes the session over before it
    # has, and it sends them again (paho's own one-by-one acks measured the same)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        link.poll(0.1)
    link.events.messages.clear()
    link.reconnect()
    _until(link, lambda: len(link.events.messages) >= 10)
    link.poll(0.5)
    assert [p for _, p, _, _ in link.events.messages] == unacked
    link.ack_all([(mid, qos) for _, _, mid, qos in link.events.messages])
    link.close()


def test_publishes_beyond_the_inflight_window_are_sent_as_slots_free(live_broker):
    sub = _subscribed(live_broker, "lean-window-sub")
    pub = _link(live_broker, "lean-window-pub", inflight=2)
    _until(pub, lambda: pub.events.connected)
    for i in range(50):
        pub.publish(TOPIC, f"w{i}".encode(), qos=1)
    deadline = time.monotonic() + 10
    while len(sub.events.messages) < 50 and time.monotonic() < deadline:
        pub.poll(0.01)
        sub.poll(0.01)
    assert [p for _, p, _, _ in sub.events.messages] == [f"w{i}".encode() for i in range(50)]
    sub.ack_all([(mid, qos) for _, _, mid, qos in sub.events.messages])
    sub.poll(0.1)
    pub.close()
    sub.close()


def test_an_unchecked_paho_release_gets_the_plain_client(monkeypatch):
    monkeypatch.setattr(paho.mqtt, "__version__", "9.0.0")
    client = mqtt_lean.make_client(lambda *a: None, client_id="x", protocol=mqtt.MQTTv5)
    assert type(client) is mqtt.Client


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_packets_split_across_reads_are_parsed_whole(live_broker, monkeypatch, chunk):
    monkeypatch.setattr(mqtt_lean, "READ_CHUNK", chunk)
    link = _subscribed(live_broker, f"lean-chunk-{chunk}")
    payloads = [bytes([i % 256]) * (i * 37 % 3000 + 1) for i in range(40)]
    _publish(live_broker, [(p, None) for p in payloads])
    _until(link, lambda: len(link.events.messages) >= 40)
    assert [p for _, p, _, _ in link.events.messages] == payloads
    link.ack_all([(mid, qos) for _, _, mid, qos in link.events.messages])
    link.poll(0.1)
    link.close()


def test_a_poll_takes_at_most_read_max_messages_and_the_rest_come_next(live_broker):
    """The consumer hands the first messages of a burst to its verify workers before it has read
    the rest (`read_max`): a read stops after that many, and the next polls take the others, in
    order, none lost, from the bytes already read (select cannot see them) or the socket."""
    link = MqttLink(MqttSettings(client_id="lean-read-max", host="127.0.0.1", port=live_broker.port, inflight=2000,
                                 receive_maximum=2000, read_max=50, backoff_min_s=0.05, backoff_max_s=0.2),
                    [(TOPIC, 1)])
    _until(link, lambda: link.events.connected)
    link.poll(0.2)  # the SUBACK
    payloads = [f"r{i}".encode() * 40 for i in range(400)]
    _publish(live_broker, [(p, None) for p in payloads])
    taken = []
    deadline = time.monotonic() + 10
    while sum(taken) < len(payloads) and time.monotonic() < deadline:
        link.poll(0.05)
        taken.append(len(link.events.messages) - sum(taken))
    # a poll reads twice at most (the bytes already read, then the socket), each time up to the limit
    assert max(taken) <= 2 * 50 and sum(taken) == len(payloads), taken
    assert [p for _, p, _, _ in link.events.messages] == payloads
    link.ack_all([(mid, qos) for _, _, mid, qos in link.events.messages])
    link.poll(0.1)
    link.close()
