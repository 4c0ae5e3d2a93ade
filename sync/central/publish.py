"""Publishing a ledger update to the broker: retained, QoS 1, on ewarung/v1/ledger/{city}/{kind}."""

from __future__ import annotations

from pos.messages import ledger_topic


def publish_retained(broker: str, city: str, result, timeout: float = 30.0) -> None:
    import paho.mqtt.client as mqtt

    host, _, port = broker.rpartition(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ewarung-ledger-publisher-{city}",
                         protocol=mqtt.MQTTv5)
    client.connect(host, int(port), keepalive=30)
    client.loop_start()
    try:
        for topic, payload in result.messages(city):
            info = client.publish(topic, payload, qos=1, retain=True)
            info.wait_for_publish(timeout)
            if not info.is_published():
                raise RuntimeError(f"the broker at {broker} did not take {topic} within {timeout} s")
    finally:
        client.disconnect()
        client.loop_stop()


def ledger_messages(city: str, kind: str, token: bytes) -> list[tuple[str, bytes]]:
    return [(ledger_topic(city, kind), token)]
