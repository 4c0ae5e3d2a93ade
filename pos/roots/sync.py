"""The sync daemon's composition root (`ewarung sync`): device key, the city's keys and the MQTT link from the config."""

from __future__ import annotations

from firmware_config.config import Config
from pos.clock import Clock, SystemClock
from pos.db import open_database
from pos.messages import device_topic
from pos.roots.keys import device_signer, public_keys
from sync.daemon import SyncDaemon, SyncOptions
from sync.mqtt_client import MqttLink, MqttSettings
from sync.status import signed, status_body


def build_daemon(config: Config, clock: Clock | None = None) -> SyncDaemon:
    """The daemon from the device configuration: its keys, its own database connection and its MQTT link."""
    m = config.mqtt
    device = config.identity()
    signer = device_signer(config)
    central = public_keys(config, [config.keys.central_public_key], "central")
    ledger = public_keys(config, [config.keys.ledger_public_key], "ledger")
    db = open_database(config.database_path)
    clock = clock or SystemClock()
    will = signed("status", device.device_id, status_body("offline"), signer, clock.now())
    link = MqttLink(
        MqttSettings(
            client_id=device.device_id, host=m.host, port=m.port, keepalive_s=m.keepalive_s,
            session_expiry_s=m.session_expiry_s, inflight=m.inflight, tls=m.use_tls,
            ca_file=str(m.ca_file) if m.ca_file else None,
            cert_file=str(config.key_path(m.cert_file)) if m.cert_file else None,
            key_file=str(config.key_path(m.key_file)) if m.key_file else None,
            username=m.username, password=m.password,
            will_topic=device_topic(device.device_id, "status"), will_payload=will,
        ),
        SyncDaemon.subscriptions(device),
    )
    opts = SyncOptions(inflight=m.inflight, heartbeat_s=m.heartbeat_s, ack_timeout_s=m.ack_timeout_s,
                       retention_days=m.retention_days)
    return SyncDaemon(db, device, signer, link, central, ledger, opts, clock)
