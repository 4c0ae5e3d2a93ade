"""Central consumer throughput: verified, stored (SQLite, WAL, synchronous=FULL) and acknowledged
redemptions per second by ONE consumer, through a real mosquitto on loopback.

Baselines measured in the same run: a raw paho client receiving the same pre-queued messages
with no work at all (the transport ceiling), the same consumer with signatures verified in its
own thread (verify_workers=0, the previous design), and raw sqlite3 executemany of the same rows
(the storage ceiling). Message signing happens before the clock starts; the rate counts the
message ids in the signed acks received, and the stored rows are counted in the database.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.common import main, percentile, row

BUDGET = 5_000  # per second (DESIGN.md performance budgets)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _broker(tmp: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n"
                    "max_queued_messages 1000000\nmax_inflight_messages 1000\nmax_queued_bytes 0\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


def _messages(n: int, devices: int):
    from cryptography.hazmat.primitives.asymmetric import ec

    from pos.messages import build_envelope, device_topic, sign_envelope
    from pos.signing import EcdsaSigner, public_pem

    keys, msgs = [], []
    per = n // devices
    for d in range(devices):
        key = ec.generate_private_key(ec.SECP256R1())
        did = f"EW-BENCH-{d:04d}"
        signer = EcdsaSigner(key, did)
        keys.append((did, public_pem(key.public_key())))
        for seq in range(1, per + 1):
            body = {
                "redemption_id": str(uuid.uuid4()), "receipt_no": seq, "shop_id": f"SMD-{d:03d}",
                "household": f"SSN-6472-{(d * per + seq) % 900_000:07d}", "card_id": f"CARD-{d:04d}-{seq:08d}",
                "card_counter": seq, "period": "2026-11", "mode": "card", "override_reason": "",
                "collected_by": {"kind": "holder", "representative_id": "", "name": "Siti Rahmawati"},
                "cashier": "kasir1", "ledger_version": 7,
                "lines": [{"item": "BERAS5", "qty": 1, "unit_price": 72_500, "amount": 72_500},
                          {"item": "GULA1", "qty": 2, "unit_price": 18_000, "amount": 36_000}],
                "total": 108_500, "remaining_after": 91_500,
            }
            env = build_envelope("redemption", str(uuid.uuid4()), did, seq, "2026-11-15T02:00:00.000Z", body)
            msgs.append((device_topic(did, "redemption"), sign_envelope(env, signer)))
    # interleave devices as a live city would, each device's messages in its sequence order
    by_device = [msgs[d * per:(d + 1) * per] for d in range(devices)]
    return keys, [by_device[d][i] for i in range(per) for d in range(devices)]


def _publish_all(port: int, msgs) -> None:
    import paho.mqtt.client as mqtt

    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}",
                      protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    infos = [pub.publish(t, p, qos=1) for t, p in msgs]
    for info in infos:
        info.wait_for_publish(60)
    pub.disconnect()
    pub.loop_stop()


def _raw_paho_rate(port: int, msgs) -> float:
    """A bare paho QoS 1 subscriber draining the same pre-queued messages: no work per message."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 600
    got = threading.Event()
    count = [0]

    def on_message(c, u, m):
        count[0] += 1
        if count[0] == len(msgs):
            got.set()

    def client():
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=mqtt.MQTTv5)
        c.on_message = on_message
        c.max_inflight_messages_set(1000)
        return c

    c = client()
    c.connect("127.0.0.1", port, clean_start=True, properties=props)
    c.subscribe("ewarung/v1/devices/+/redemption", qos=1)
    c.loop_start()
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()
    _publish_all(port, msgs)
    c = client()
    t0 = time.perf_counter()
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_start()
    got.wait(120)
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return count[0] / elapsed


def _raw_sqlite_rate(tmp: Path, msgs) -> float:
    """Raw sqlite3 executemany of the same message rows, same pragmas, 500 per commit."""
    conn = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE m (id TEXT PRIMARY KEY, device TEXT, seq INT, kind TEXT, created_at TEXT,"
                 " received_at TEXT, token TEXT, UNIQUE(device, seq))")
    rows = [(str(uuid.uuid4()), t.split("/")[3], i, "redemption", "x", "y", p.decode()) for i, (t, p) in enumerate(msgs)]
    t0 = time.perf_counter()
    for i in range(0, len(rows), 500):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO m VALUES (?,?,?,?,?,?,?)", rows[i:i + 500])
        conn.execute("COMMIT")
    rate = len(rows) / (time.perf_counter() - t0)
    conn.close()
    return rate


def _consumer_rate(tmp: Path, port: int, keys, msgs, verify_workers: int) -> tuple[float, list[float], int]:
    """Pre-queue the messages for the consumer's persistent session, then time it to the last ack
    (the clock includes starting the signature worker process)."""
    import paho.mqtt.client as mqtt

    from pos.clock import SystemClock
    from pos.sample_city import demo_key
    from pos.signing import EcdsaSigner
    from sync.central.consumer import CentralConsumer, MqttRunner
    from sync.central.registry import add_device
    from sync.central.store import RedemptionRecord, open_central

    db = open_central(tmp / f"central-{verify_workers}.db")
    for did, pem in keys:
        add_device(did, pem, now=SystemClock().now())
    signer = EcdsaSigner(demo_key("central"), "central")
    # the consumer's session exists (subscribed) before the traffic, as in production
    client_id = f"bench-central-{verify_workers}"
    first = MqttRunner(CentralConsumer(signer), "127.0.0.1", port, client_id=client_id, group=None, verify_workers=0)
    first.start()
    first.connected.wait(10)
    time.sleep(0.3)
    first.stop()
    acked = [0]
    all_acked = threading.Event()
    ack_client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-acks-{verify_workers}",
                             protocol=mqtt.MQTTv5)

    def on_ack(c, u, m):
        acked[0] += m.payload.count(b".") and _ack_count(m.payload)
        if acked[0] >= len(msgs):
            all_acked.set()

    ack_client.on_message = on_ack
    ack_client.connect("127.0.0.1", port)
    ack_client.subscribe("ewarung/v1/devices/+/ack", qos=1)
    ack_client.loop_start()
    _publish_all(port, msgs)
    batch_ms: list[float] = []
    runner = MqttRunner(CentralConsumer(signer), "127.0.0.1", port, client_id=client_id, group=None,
                        batch_max=500, verify_workers=verify_workers)
    orig = runner.consumer.process

    def timed(batch, verified=None):
        t = time.perf_counter()
        out = orig(batch, verified)
        batch_ms.append((time.perf_counter() - t) * 1000)
        return out

    runner.consumer.process = timed
    t0 = time.perf_counter()
    runner.start()
    all_acked.wait(300)
    elapsed = time.perf_counter() - t0
    runner.stop()
    ack_client.disconnect()
    ack_client.loop_stop()
    stored = RedemptionRecord.select().count()
    db.close()
    return acked[0] / elapsed, batch_ms, stored


def _ack_count(token: bytes) -> int:
    import base64
    import json

    payload = token.split(b".")[1]
    return len(json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))["ids"])


def _verify_ceiling(msgs, keys) -> float:
    """ECDSA P-256 verifications per second on one core (the crypto floor of any consumer)."""
    from pos.signing import b64url_decode, load_public_key, verify_raw

    pems = dict(keys)
    sample = msgs[:2000]
    parsed = []
    for topic, token in sample:
        h, p, sig = token.split(b".")
        parsed.append((load_public_key(pems[topic.split("/")[3]]), h + b"." + p, b64url_decode(sig.decode())))
    t0 = time.perf_counter()
    for key, data, sig in parsed:
        verify_raw(key, data, sig)
    return len(parsed) / (time.perf_counter() - t0)


def run(quick: bool = False) -> list[dict]:
    """The central consumer's rate against its transport, storage
    and verification ceilings, measured in the same run."""
    n = 3_000 if quick else 20_000
    devices = 20 if quick else 100
    keys, msgs = _messages(n, devices)
    n = len(msgs)
    with tempfile.TemporaryDirectory(prefix="ewarung-bench-central-") as tmp_name:
        tmp = Path(tmp_name)
        proc, port = _broker(tmp)
        try:
            raw_paho = _raw_paho_rate(port, msgs)
            workers = 1 if (os.cpu_count() or 1) >= 2 else 0  # MqttRunner's default
            rate, batch_ms, stored = _consumer_rate(tmp, port, keys, msgs, workers)
            rate0, _, stored0 = _consumer_rate(tmp, port, keys, msgs, 0)
        finally:
            proc.terminate()
            proc.wait(10)
        raw_sqlite = _raw_sqlite_rate(tmp, msgs)
    ceiling = _verify_ceiling(msgs, keys)
    rows = [
        row("central: redemptions verified + stored (SQLite, sync=FULL) + acked, one consumer, via mosquitto",
            value=round(rate), unit="msg/s", budget=f">= {BUDGET:,}/s", ok=rate >= BUDGET and stored == n and stored0 == n,
            baseline=round(raw_paho), baseline_name="raw paho QoS 1 receive, no work, same messages",
            notes=f"{n:,} messages from {devices} devices; {stored:,} stored; ratio to raw paho {rate / raw_paho:.2f}; "
                  f"{workers} signature worker process(es); same run with signatures verified in the consumer "
                  f"thread (verify_workers=0): {rate0:,.0f} msg/s, {stored0:,} stored"),
        row("central: one stored batch (dedupe + gap check + commit; signatures checked by the worker before)",
            p50=round(percentile(batch_ms, 50), 2), p99=round(percentile(batch_ms, 99), 2), unit="ms per batch",
            budget="info", ok=True, baseline=round(raw_sqlite), baseline_name="raw sqlite3 executemany rows/s (sync=FULL)",
            notes=f"{len(batch_ms)} batches, up to 500 messages each"),
        row("central: ECDSA P-256 signature verifications alone, one core",
            value=round(ceiling), unit="verify/s", budget="info", ok=True,
            baseline=round(raw_paho), baseline_name="raw paho QoS 1 receive",
            notes="the cryptographic floor every verified message pays; a consumer cannot beat it on one core"),
    ]
    return rows


if __name__ == "__main__":
    main("central", run)
