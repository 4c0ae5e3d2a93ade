"""The city's presence (sync/presence.py) with the real sync daemon, the reference consumer and mosquitto."""

from __future__ import annotations

import signal
import time

import pytest
from mqtt_test_support import outbox_states, start_sync, validate_token, wait_for
from test_sync_mqtt import redeem_many

pytestmark = pytest.mark.mqtt
DEVICE = "EW-TEST-0001"


def _central(port: int):
    from pos.sample_city import demo_key
    from pos.signing import EcdsaSigner
    from sync.central.consumer import CentralConsumer, MqttRunner

    runner = MqttRunner(CentralConsumer(EcdsaSigner(demo_key("central"), "central")), "127.0.0.1", port,
                        client_id="central-presence", group="presence", verify_workers=0)
    runner.start()
    assert runner.connected.wait(15)
    return runner


def test_device_resends_when_the_city_comes_back_after_a_broker_restart(sync_env, service, clock, tmp_path, schemas):
    """Central down, broker restarted (its shared subscription is gone until central is back): the
    shop's sales reach the broker, which has no one to give them to. When central reconnects its
    signed "online" makes the device publish them again at once, not after ack_timeout_s."""
    import paho.mqtt.client as mqtt

    from pos.sample_city import demo_key
    from pos.signing import public_pem
    from sync.central.registry import add_device
    from sync.central.store import RedemptionRecord, open_central
    from sync.presence import parse_state, state_topic

    db_path = sync_env["dir"] / "ewarung.db"
    broker = sync_env["broker"]
    central_db = open_central(tmp_path / "central.db")
    add_device(DEVICE, public_pem(demo_key("device").public_key()), now=clock.now())
    proc = start_sync(sync_env)
    runner = _central(broker.port)
    try:
        redeem_many(service, 5)
        wait_for(lambda: outbox_states(db_path).get("acked", 0) == 5, 30, what="the first sales acknowledged")
        runner.stop()  # central goes away, then the broker restarts
        broker.stop()
        broker.start()
        redeem_many(service, 7, start=5)
        wait_for(lambda: outbox_states(db_path).get("published", 0) == 7, 30,
                 what="the new sales taken by the broker (PUBACKed)")
        time.sleep(1)
        assert outbox_states(db_path).get("acked", 0) == 5, "nobody could have acknowledged them yet"
        runner = _central(broker.port)
        wait_for(lambda: outbox_states(db_path).get("acked", 0) == 12, 30,
                 what="the sales made while central was down acknowledged soon after it is back")
        assert RedemptionRecord.select().count() == 12

        retained: list[bytes] = []
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-presence", protocol=mqtt.MQTTv5)
        c.on_message = lambda cl, u, m: retained.append(bytes(m.payload))
        c.connect("127.0.0.1", broker.port)
        c.subscribe(state_topic("samarinda"), qos=1)
        c.loop_start()
        try:
            wait_for(lambda: retained, 10, what="the retained central state")
        finally:
            c.loop_stop()
            c.disconnect()
        validate_token(retained[0], schemas)
        state = parse_state(retained[0], {"central": demo_key("central").public_key()}, "samarinda")
        assert state.online and state.consumer == "central-presence"
    finally:
        runner.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        central_db.close()
