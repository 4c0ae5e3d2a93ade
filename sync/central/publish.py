"""Publishing a ledger update to the broker, QoS 1, on ewarung/v1/ledger/{city}/{kind}.

Deltas and hotlists are retained (a device connecting later gets the newest at once); a
snapshot is many chunk tokens on one topic, so it is not retained: devices without a ledger
ask for it on their request topic and `central serve` republishes it."""

from __future__ import annotations


def publish_retained(broker: str, city: str, result, tls: dict | None = None, timeout: float = 30.0) -> None:
    """Publish a signed update and wait for every PUBACK, so the CLI says published only when the
    broker has it; `tls` (paho tls_set() keywords) for the city's broker, which takes TLS
    with a client certificate only (sync/broker/mosquitto.conf)."""
    import paho.mqtt.client as mqtt

    host, _, port = broker.rpartition(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ewarung-ledger-publisher-{city}",
                         protocol=mqtt.MQTTv5)
    if tls is not None:
        client.tls_set(**tls)
    client.connect(host, int(port), keepalive=30)
    client.loop_start()
    try:
        for topic, payload in result.messages(city):
            info = client.publish(topic, payload, qos=1, retain=result.kind != "snapshot")
            info.wait_for_publish(timeout)
            if not info.is_published():
                raise RuntimeError(f"the broker at {broker} did not take {topic} within {timeout} s")
    finally:
        client.disconnect()
        client.loop_stop()
