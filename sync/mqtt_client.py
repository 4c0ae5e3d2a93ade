"""The project's one paho-mqtt 2.x wrapper: MQTT 5, persistent session, TLS, manual PUBACK, backoff.

Both ends of the sync contract drive it: the device's sync daemon and the city's consumer
(sync/central/runner.py). Single-threaded by design: the owner calls `poll()` in its loop; paho's
callbacks, one per packet type, only record into `Events`, which the owner drains on the same
thread, so no lock is ever held across a callback (see DESIGN.md, paho pitfalls). Reconnects use
exponential backoff with full jitter.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sync.mqtt_lean import LeanClient, make_client


@dataclass
class MqttSettings:
    """How to reach the broker and hold the session; each end builds it from its own config."""

    client_id: str
    host: str
    port: int
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    inflight: int = 64
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str = ""
    password: str = ""
    will_topic: str = ""
    will_payload: bytes = b""
    backoff_min_s: float = 0.5
    backoff_max_s: float = 60.0
    receive_maximum: int = 0  # MQTT 5 Receive Maximum asked of the broker; 0 leaves the broker's default
    read_max: int = 0  # messages a read takes at most (lean client; a poll reads up to twice), so the owner acts on the first; 0: all there


@dataclass
class Events:
    """What the callbacks saw since the owner last looked; the owner empties the lists it handles."""

    pubacks: list[tuple[int, bool, str]] = field(default_factory=list)  # (mid, ok, reason)
    messages: list[tuple[str, bytes, int, int]] = field(default_factory=list)  # (topic, payload, mid, qos)
    connected: bool = False
    just_connected: bool = False
    session_present: bool = False
    last_error: str = ""


class MqttLink:
    """One broker connection, polled by its owner's thread; see the module docstring for why."""

    def __init__(self, s: MqttSettings, subscriptions: list[tuple[str, int]],
                 rand: Callable[[], float] = random.random) -> None:
        self.s = s
        self.subscriptions = subscriptions
        self.events = Events()
        self._rand = rand
        self._attempt = 0
        self._next_try = 0.0
        self.before_connect: Callable[[], None] | None = None  # e.g. a last will dated per connection
        # manual_ack: an incoming message is PUBACKed only after it is applied and committed, so a
        # crash in between makes the broker deliver it again (the session is persistent).
        # the consumer's rates need paho's per-packet Python trimmed (sync/mqtt_lean.py)
        c = make_client(self._on_fast_message, client_id=s.client_id, protocol=mqtt.MQTTv5, manual_ack=True)
        c.max_inflight_messages_set(s.inflight)
        c.max_queued_messages_set(0)
        if s.read_max and isinstance(c, LeanClient):
            c.max_drain = s.read_max
        if s.username:
            c.username_pw_set(s.username, s.password or None)
        if s.tls:
            c.tls_set(ca_certs=s.ca_file, certfile=s.cert_file, keyfile=s.key_file,
                      cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        self.client = c
        if s.will_topic:
            self.set_will(s.will_topic, s.will_payload)

    # --- callbacks: record only ------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.events.last_error = f"broker refused the connection: {reason_code}"
            return
        self.events.connected = True
        self.events.just_connected = True
        self.events.session_present = bool(flags.session_present)
        self._attempt = 0
        if self.subscriptions:
            client.subscribe(self.subscriptions)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.events.connected = False
        self.events.last_error = f"disconnected: {reason_code}"

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self.events.pubacks.append((mid, not reason_code.is_failure, str(reason_code)))

    def _on_message(self, client, userdata, message) -> None:
        self.events.messages.append((message.topic, bytes(message.payload), message.mid, message.qos))

    def _on_fast_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.events.messages.append((topic, payload, mid, qos))

    # --- driving ---------------------------------------------------------------------------

    def backoff_s(self) -> float:
        """A fleet reconnecting after a broker restart spreads out instead of arriving at once.
        Full jitter: uniform in [min, min(max, min * 2**attempt)]."""
        cap = min(self.s.backoff_max_s, self.s.backoff_min_s * (2 ** min(self._attempt, 16)))
        return self.s.backoff_min_s + (cap - self.s.backoff_min_s) * self._rand()

    def poll(self, timeout: float = 0.05) -> None:
        """Connect if due, then run the network loop once."""
        if not self.events.connected:
            now = time.monotonic()
            if now < self._next_try:
                time.sleep(min(timeout, self._next_try - now))
                return
            if self.before_connect:
                self.before_connect()
            try:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.s.session_expiry_s
                if self.s.receive_maximum:
                    props.ReceiveMaximum = self.s.receive_maximum
                self.client.connect(self.s.host, self.s.port, keepalive=self.s.keepalive_s,
                                    clean_start=False, properties=props)
            except (TimeoutError, OSError, ssl.SSLError) as exc:
                self.events.last_error = f"cannot reach broker {self.s.host}:{self.s.port}: {exc}"
                self._attempt += 1
                self._next_try = time.monotonic() + self.backoff_s()
                return
            # wait for CONNACK through the loop below
            deadline = time.monotonic() + 10
            while not self.events.connected and time.monotonic() < deadline:
                rc = self.client.loop(0.05)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
            if not self.events.connected:
                self._attempt += 1
                self._next_try = time.monotonic() + self.backoff_s()
            return
        client = self.client
        if isinstance(client, LeanClient) and client.buffered():  # read, not yet parsed: select cannot see it
            timeout = 0.0 if client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS else timeout
        rc = client.loop(timeout)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.events.connected = False
            self.events.last_error = f"network loop: {mqtt.error_string(rc)}"
            self._attempt += 1
            self._next_try = time.monotonic() + self.backoff_s()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int | None:
        """Publish; return the mid, or None if not connected (nothing is kept in paho then)."""
        if not self.events.connected:
            return None
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
                self.events.connected = False
            return None
        return info.mid

    def set_will(self, topic: str, payload: bytes) -> None:
        """The retained message the broker publishes if this connection dies without a DISCONNECT;
        set before a connection (from `before_connect`) to take effect for that connection."""
        self.client.will_set(topic, payload, qos=1, retain=True)

    def ack(self, mid: int, qos: int) -> None:
        """PUBACK an incoming message once it has been handled (manual_ack)."""
        if qos and self.events.connected:
            self.client.ack(mid, qos)

    def ack_all(self, messages: list[tuple[int, int]]) -> None:
        """PUBACK a committed batch of (mid, qos): QoS 1 in one write where the client can."""
        if not self.events.connected:
            return
        if isinstance(self.client, LeanClient):
            self.client.ack_many([mid for mid, qos in messages if qos == 1])
            messages = [(mid, qos) for mid, qos in messages if qos == 2]
        for mid, qos in messages:
            self.ack(mid, qos)

    def reconnect(self) -> None:
        """End this connection cleanly and open a new one at the next `poll()`: the broker then
        delivers again every message not yet PUBACKed (a clean DISCONNECT, so no last will)."""
        self._disconnect()
        self.events.connected = False
        self._next_try = 0.0

    def close(self, final_topic: str = "", final_payload: bytes = b"") -> None:
        """Say goodbye: publish `final_payload` retained (the owner's offline state) and wait
        briefly for it, then disconnect cleanly so the broker does not send the last will too."""
        if self.events.connected and final_topic:
            info = self.client.publish(final_topic, final_payload, qos=1, retain=True)
            deadline = time.monotonic() + 2
            while not info.is_published() and time.monotonic() < deadline:
                self.client.loop(0.05)
        self._disconnect()

    def _disconnect(self) -> None:
        try:
            self.client.disconnect()
            deadline = time.monotonic() + 1
            while self.events.connected and time.monotonic() < deadline:
                if self.client.loop(0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
        except Exception:  # noqa: BLE001 - already gone
            pass
