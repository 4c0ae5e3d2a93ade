"""paho's Client with its per-packet Python trimmed, for the city's consumer at thousands of messages a second.

Profiling the consumer (docs/scaling.md) showed paho spending more of each message than the
storage: a socket read per byte of each packet header, an MQTT 5 properties object built and
cleared for every PUBLISH, one socket write per PUBACK, and a scan of every in-flight publish on
each PUBACK the broker returns. `LeanClient` keeps paho's protocol handling and only shortens
those paths, each with a fall back to paho's own code for anything unusual:
- reads fill a buffer (one recv for many packets), a packet whole in the buffer is taken in one
  slice (paho reads the fixed header byte by byte), and one read event drains every complete
  packet, not one packet per `select`;
- a QoS 1 PUBLISH without properties or topic alias goes straight from the read buffer to
  `on_fast_message(topic, payload, mid, qos)`, a run of them in one loop; anything else (properties, QoS 0 or 2, a malformed
  packet) takes paho's path;
- the broker's PUBACK of our own publish, when it says success without properties, completes the
  publish without decoding new reason and properties objects for it;
- `ack_many` sends a batch's PUBACKs in one write (the same 4-byte MQTT 5 PUBACKs paho sends);
- the in-flight scan runs only when a publish is actually waiting for a free slot;
- a packet queued with no loop thread is written at once, without paho's wake-up byte for one.
These reach into paho internals, so they are used only with the paho release they were written
and tested against (`LEAN_PAHO`); with any other release `make_client` returns paho's plain Client.
"""

from __future__ import annotations

from collections.abc import Callable

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

LEAN_PAHO = ("2.2.",)  # paho releases whose internals LeanClient was checked against
READ_CHUNK = 65_536  # bytes per socket read
MAX_DRAIN = 20_000  # packets per read event (default), so a flood of QoS 0 traffic cannot starve writes and pings
PUBLISH, PUBACK = 0x30, 0x40
_TYPE_MASK, _QOS_MASK, _QOS1 = 0xF0, 0x06, 0x02
_PUBLISH_QOS_MASK, _PUBLISH_QOS1 = _TYPE_MASK | _QOS_MASK, PUBLISH | _QOS1  # a QoS 1 PUBLISH, DUP or RETAIN or not
_PUBACK_OK = ReasonCode(PacketTypes.PUBACK, "Success")  # shared by every fast PUBACK: nobody changes them
_NO_PROPERTIES = Properties(PacketTypes.PUBACK)

FastSink = Callable[[str, bytes, int, int], None]


class LeanClient(mqtt.Client):
    """paho's Client (MQTT 5) with the hot paths of the module docstring shortened."""

    def __init__(self, *args, on_fast_message: FastSink, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.on_fast_message = on_fast_message
        self.max_drain = MAX_DRAIN  # packets a read event takes at most; the rest waits, read, for the next
        self._rbuf, self._rpos, self._rsock = b"", 0, None

    # --- reading -------------------------------------------------------------------------
    def buffered(self) -> bool:
        """Whether bytes already read from the current socket wait to be parsed (select cannot see them)."""
        return self._rsock is self._sock and self._rpos < len(self._rbuf)

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:  # a new connection: nothing of the old one is kept
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(READ_CHUNK)  # raises BlockingIOError when there is nothing
            with self._msgtime_mutex:  # paho notes each packet's bytes; the fast paths note each read
                self._last_bytes_received = mqtt.time_func()
            if len(data) <= bufsize:
                return data
            self._rbuf, self._rpos = data, 0
        start = self._rpos
        self._rpos = min(start + bufsize, len(self._rbuf))
        return self._rbuf[start:self._rpos]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Every complete packet available now (paho reads as many as it has publishes in flight)."""
        packets = 0
        while packets < self.max_drain:
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            packets += self._drain_publishes(self.max_drain - packets)
            if packets >= self.max_drain:
                break  # the budget is spent: the rest stays buffered for the next read event
            packets += 1
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _drain_publishes(self, budget: int) -> int:
        """The run of whole QoS 1 PUBLISHes without properties at the front of the buffer (at most
        `budget`), read in place straight to `on_fast_message`, in one loop: a consumer's traffic is
        nearly all such packets. Stops at anything else (properties, QoS 0 or 2, a malformed or
        partial packet), for `_packet_read` and paho's path; returns how many it took."""
        if self._rsock is not self._sock or self._in_packet["command"] != 0 or self._protocol != mqtt.MQTTv5:
            return 0
        buf, pos, taken, sink = self._rbuf, self._rpos, 0, self.on_fast_message
        end = len(buf)
        while taken < budget and pos < end and buf[pos] & _PUBLISH_QOS_MASK == _PUBLISH_QOS1:
            length, shift, i = 0, 0, pos + 1
            while i < end and shift <= 21:  # the remaining length, as in `_packet_read`
                byte = buf[i]
                length, shift, i = length | (byte & 127) << shift, shift + 7, i + 1
                if not byte & 128:
                    break
            else:
                return taken
            after = i + length
            if after > end or length < 6:
                return taken
            n = (buf[i] << 8) | buf[i + 1]
            at = i + 2 + n  # the message id, then the properties' length
            if not n or at + 3 > after or buf[at + 2] != 0 or not (buf[at] or buf[at + 1]):
                return taken
            try:
                topic = buf[i + 2:at].decode("utf-8")
            except UnicodeDecodeError:
                return taken  # paho's own path reports the malformed packet
            self._rpos = pos = after
            sink(topic, buf[at + 3:after], (buf[at] << 8) | buf[at + 1], 1)
            taken += 1
        return taken

    def _packet_read(self) -> MQTTErrorCode:
        buf, start = self._rbuf, self._rpos
        if start < len(buf) and self._rsock is self._sock and self._in_packet["command"] == 0:  # buffered()
            end, length, shift, i = len(buf), 0, 0, start + 1
            while i < end and shift <= 21:  # the remaining length: at most 4 bytes of 7 bits
                byte = buf[i]
                length, shift, i = length | (byte & 127) << shift, shift + 7, i + 1
                if not byte & 128:
                    if i + length <= end:
                        command = buf[start]  # a PUBLISH here is one `_drain_publishes` left: paho's path
                        rc = self._fast_puback(buf, i, i + length) if command == PUBACK else None
                        if rc is not None:
                            return rc
                        return self._whole_packet(command, buf[start + 1:i], buf[i:i + length], i + length)
                    break
        return super()._packet_read()  # a packet not yet whole in the buffer: paho's own reading

    def _fast_puback(self, buf: bytes, start: int, end: int) -> MQTTErrorCode | None:
        """The broker's PUBACK of one of our publishes when it says success without properties (the
        usual one): paho's `_do_on_publish` with one shared reason and properties object rather than
        new ones each time (None: any other PUBACK, for paho's path)."""
        size = end - start  # the message id, then (MQTT 5) a reason code and the properties' length
        if self._protocol != mqtt.MQTTv5 or not (size == 2 or (size in (3, 4) and not any(buf[start + 2:end]))):
            return None
        mid = (buf[start] << 8) | buf[start + 1]
        self._rpos = end
        with self._out_message_mutex:
            if mid in self._out_messages:
                return self._do_on_publish(mid, _PUBACK_OK, _NO_PROPERTIES)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _whole_packet(self, command: int, header: bytes, packet: bytes, after: int) -> MQTTErrorCode:
        """Handle one packet taken whole from the buffer, leaving paho's reading state as its own
        `_packet_read` leaves it."""
        self._rpos = after
        self._in_packet = {"command": command, "have_remaining": 1, "remaining_count": list(header),
                           "remaining_mult": 128 ** len(header), "remaining_length": len(packet), "packet": packet,
                           "to_process": 0, "pos": 0}
        try:
            rc = self._packet_handle()
        except MalformedPacket:
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = {"command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
                           "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0}
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        # a packet paho read itself (split across reads): the same fast path as `_drain_publishes`
        packet = self._in_packet["packet"]
        if (self._in_packet["command"] & _QOS_MASK) == _QOS1 and self._protocol == mqtt.MQTTv5:
            try:
                n = (packet[0] << 8) | packet[1]
                mid = (packet[n + 2] << 8) | packet[n + 3]
                if n and mid and packet[n + 4] == 0:  # a topic, a message id, no properties
                    topic = packet[2:n + 2].decode("utf-8")
                    self.on_fast_message(topic, bytes(packet[n + 5:]), mid, 1)
                    return MQTTErrorCode.MQTT_ERR_SUCCESS
            except (IndexError, UnicodeDecodeError):
                pass  # paho's own path reports the malformed packet
        return super()._handle_publish()

    # --- writing -------------------------------------------------------------------------
    def _packet_queue(self, command: int, packet: bytes | bytearray, mid: int, qos: int,
                      info: mqtt.MQTTMessageInfo | None = None) -> MQTTErrorCode:
        if self._thread is not None or self._on_socket_register_write is not None:
            return super()._packet_queue(command, packet, mid, qos, info)
        # polled by its owner's thread (sync.mqtt_client): paho would also write a byte to its socket
        # pair to wake a loop thread out of select, a system call per packet with nobody to wake (a
        # packet not written here is written by the next poll: it selects for writing while any wait)
        self._out_packet.append({"command": command, "mid": mid, "qos": qos, "pos": 0, "to_process": len(packet),
                                 "packet": packet, "info": info})
        if self._in_callback_mutex.acquire(False):
            self._in_callback_mutex.release()
            return self.loop_write()
        return MQTTErrorCode.MQTT_ERR_SUCCESS
    def ack_many(self, mids: list[int]) -> None:
        """PUBACK these QoS 1 messages in one write: each the 4-byte PUBACK (success, no
        properties) paho's `ack` sends."""
        if mids:
            packet = b"".join(bytes((PUBACK, 2, mid >> 8, mid & 0xFF)) for mid in mids)
            self._packet_queue(PUBACK, packet, 0, 0)

    def _update_inflight(self) -> MQTTErrorCode:
        # paho scans every in-flight publish on each PUBACK; only a publish queued for a free
        # slot (more stored than in flight) needs it
        if len(self._out_messages) <= self._inflight_messages:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._update_inflight()


def lean_supported() -> bool:
    """Whether the installed paho is a release LeanClient was checked against."""
    return paho.mqtt.__version__.startswith(LEAN_PAHO)


def make_client(on_fast_message: FastSink, **kwargs) -> mqtt.Client:
    """A LeanClient on a checked paho release (paho's own Client otherwise); `kwargs` are paho's."""
    if lean_supported():
        return LeanClient(mqtt.CallbackAPIVersion.VERSION2, on_fast_message=on_fast_message, **kwargs)
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, **kwargs)
