"""Central consumer throughput against its irreducible cost: redemptions (schema
ewarung.redemption/2, each with the SPEND proof a real card applet signed) verified, stored (SQLite,
WAL, synchronous=FULL) and acknowledged per second by ONE consumer, through a real mosquitto on
loopback.

The budget (issue #16): at least 0.6x the rate at which ALL of this machine's cores verify the same
messages' two signatures (the device's and the card's) and nothing else (bench/verify_ceiling.py),
measured in the same run. Other same-run baselines: a raw paho client receiving the same pre-queued
messages with no work at all (the transport ceiling), the same consumer verifying in its own
thread (verify_workers=0), and raw sqlite3 executemany of the same rows (the storage ceiling).
Card spending and message signing happen before any clock starts (bench/card_sales.py). The rate
counts the messages the consumer acknowledged (committed, PUBACKed, its signed acks published) from
its start; the devices' ack subscriber, standing in for devices on other machines, stays offline
during the run (the broker queues its acks) and must then receive every message id; the stored rows
are counted in the database.
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
from dataclasses import replace
from pathlib import Path

from bench.card_sales import CardSales, card_sales
from bench.common import main, percentile, row
from bench.verify_ceiling import all_cores_rate

RATIO_BUDGET = 0.6  # of the all-core verify-only rate (issue #16)


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


def _session(port: int, client_id: str, on_message=None, *, clean_start: bool = True, expiry: int = 600):
    """A paho MQTT 5 client on the bench's broker with a session kept `expiry` seconds after it
    disconnects (0: ended with it), its network loop running."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port, clean_start=clean_start, properties=props)
    c.loop_start()
    return c


def _offline_subscription(port: int, client_id: str, topic: str) -> None:
    """Subscribe a persistent session to `topic` and leave it offline: the broker queues what comes."""
    c = _session(port, client_id)
    c.subscribe(topic, qos=1)
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()


def _raw_paho_rate(port: int, msgs) -> float:
    """A bare paho QoS 1 subscriber draining the same pre-queued messages: no work per message."""
    got = threading.Event()
    count = [0]

    def on_message(c, u, m):
        count[0] += 1
        if count[0] == len(msgs):
            got.set()

    _offline_subscription(port, "bench-raw", "ewarung/v1/devices/+/redemption")
    _publish_all(port, msgs)
    t0 = time.perf_counter()
    c = _session(port, "bench-raw", on_message, clean_start=False)
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


def _publish_city(sales: CardSales) -> None:
    """The city's list of the cards' households and its catalog as ledger version 1, which the
    messages name: an honest sale has nothing the city could quarantine it for."""
    import csv
    import tempfile as tf

    from pos.clock import SystemClock
    from pos.sample_city import demo_key
    from pos.signing import EcdsaSigner
    from sync.central.ledger_publish import publish_ledger

    with tf.TemporaryDirectory() as d:
        path = Path(d) / "households.csv"
        with path.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["household_id", "name", "area", "plan", "status", "valid_from", "valid_until",
                          "representatives"])
            out.writerows([h, "Siti Rahmawati", "Sempaja Selatan", "BPNT", "active", "2025-01-01", "2029-12-31", ""]
                          for h in sales.households)
        publish_ledger(path, signer=EcdsaSigner(demo_key("ledger"), "ledger"), city="samarinda",
                       now=SystemClock().now())


def _consumer(signer, sales: CardSales):
    from sync.central.consumer import CentralConsumer

    return CentralConsumer(signer, issuer_keys=sales.issuer_keys)


def _cpu_s(pid: int, tid: int | None = None) -> float:
    """CPU seconds (user + system) a process, or one of its threads, has used so far."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _consumer_rate(tmp: Path, port: int, broker_pid: int, sales: CardSales, verify_workers: int | None) -> dict:
    """Pre-queue the messages for the consumer's persistent session, start its verify workers, then
    time it from its start to the last ack. `verify_workers` None: the runner's default. Also the
    CPU seconds per message of the consumer thread, its verify workers and the broker meanwhile."""

    from pos.clock import SystemClock
    from pos.sample_city import demo_key
    from pos.signing import EcdsaSigner
    from sync.central.consumer import MqttRunner
    from sync.central.registry import add_device
    from sync.central.store import Message, RedemptionRecord, open_central
    from sync.central.verify_pool import calm_collector

    calm_collector()  # as pos.roots.central does for `ewarung central serve`
    msgs = sales.messages
    db = open_central(tmp / f"central-{verify_workers}.db")
    for did, pem in sales.device_keys:
        add_device(did, pem, now=SystemClock().now())
    _publish_city(sales)
    signer = EcdsaSigner(demo_key("central"), "central")
    # the consumer's session exists (subscribed) before the traffic, as in production
    client_id = f"bench-central-{verify_workers}"
    first = MqttRunner(_consumer(signer, sales), "127.0.0.1", port, client_id=client_id, group=None,
                       verify_workers=0)
    first.start()
    first.connected.wait(10)
    time.sleep(0.3)
    first.stop()
    # the devices' ack subscriber stands in for devices on other machines: its session is kept but
    # offline during the run (the broker queues the acks), so it spends none of the cores the
    # consumer is measured on; it drains them after the clock stops and every id must be there
    _offline_subscription(port, f"bench-acks-{verify_workers}", "ewarung/v1/devices/+/ack")
    _publish_all(port, msgs)
    batch_ms: list[float] = []
    runner = MqttRunner(_consumer(signer, sales), "127.0.0.1", port, client_id=client_id, group=None,
                        verify_workers=verify_workers)
    orig = runner.consumer.process

    def timed(batch, verified=None):
        t = time.perf_counter()
        out = orig(batch, verified)
        batch_ms.append((time.perf_counter() - t) * 1000)
        return out

    runner.consumer.process = timed
    acked_by_consumer = [0]
    all_acked = threading.Event()

    acked_at: list[tuple[float, int]] = []  # (time, messages acknowledged so far) after each batch

    def on_batch(outcome) -> None:  # after the batch's commit, PUBACKs and signed acks
        acked_by_consumer[0] += outcome.stored + outcome.duplicates
        acked_at.append((time.perf_counter(), acked_by_consumer[0]))
        if acked_by_consumer[0] >= len(msgs):
            all_acked.set()

    runner.on_batch = on_batch
    runner.start_workers()  # a running city's workers are up: their start is not the consumer's rate
    workers = runner.verify_workers
    pool = runner._pool.pids if runner._pool else []  # noqa: SLF001 - CPU accounting
    cpu0 = [_cpu_s(p) for p in pool], _cpu_s(broker_pid), _cpu_s(os.getpid())
    t0 = time.perf_counter()
    runner.start()
    all_acked.wait(600)
    elapsed = time.perf_counter() - t0
    n = len(msgs)
    thread_cpu = _cpu_s(os.getpid(), runner.worker.native_id)
    cpu = {"thread": thread_cpu / n,
           "others": (_cpu_s(os.getpid()) - cpu0[2] - thread_cpu) / n,  # the consumer process's other threads
           "workers": sum(_cpu_s(p) - c for p, c in zip(pool, cpu0[0], strict=True)) / n,
           "broker": (_cpu_s(broker_pid) - cpu0[1]) / n}
    runner.stop()
    acked = _drain_acks(port, f"bench-acks-{verify_workers}", n)
    stored = Message.select().count()
    counted = RedemptionRecord.select().count()
    db.close()
    # between the first and the last batch's acks: the rate without the pipeline's fill and drain
    (t_first, n_first), (t_last, n_last) = acked_at[0], acked_at[-1]
    steady = (n_last - n_first) / (t_last - t_first) if t_last > t_first else 0.0
    return {"rate": acked_by_consumer[0] / elapsed, "steady": steady, "batch_ms": batch_ms, "stored": stored, "counted": counted,
            "workers": workers, "acked": acked, "cpu": cpu}


def _drain_acks(port: int, client_id: str, n: int, timeout: float = 120) -> int:
    """The distinct message ids in the signed acks queued for the subscriber (all n, or the run failed)."""
    ids: set[str] = set()
    done = threading.Event()

    def on_ack(c, u, m):
        ids.update(_ack_ids(m.payload))
        if len(ids) >= n:
            done.set()

    c = _session(port, client_id, on_ack, clean_start=False, expiry=0)
    done.wait(timeout)
    c.disconnect()
    c.loop_stop()
    return len(ids)


def _ack_ids(token: bytes) -> list[str]:
    import base64
    import json

    payload = token.split(b".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))["ids"]


def run(quick: bool = False) -> list[dict]:
    """The central consumer's rate against the all-core signature verify rate of the same messages,
    and its transport and storage ceilings, measured in the same run."""
    # a sustained rate: 30 batches of the runner's default 2000, so filling and draining the pipeline
    # (about one batch each, with a core idle) weigh a few per cent, not the fifth of 10 batches
    n = 3_000 if quick else 60_000
    devices = 20 if quick else 100
    sales = card_sales(n, devices, cards=300 if quick else 500)
    msgs = sales.messages
    n = len(msgs)
    with tempfile.TemporaryDirectory(prefix="ewarung-bench-central-") as tmp_name:
        tmp = Path(tmp_name)
        proc, port = _broker(tmp)
        try:
            raw_paho = _raw_paho_rate(port, msgs)
            # the verify-only rate just before and just after the consumer's run, their mean the
            # baseline: on a shared machine the cores' speed drifts within a minute
            before, cores, cpu_before = all_cores_rate(msgs, sales.device_keys, sales.issuer_keys)
            ours = _consumer_rate(tmp, port, proc.pid, sales, None)
            after, _, cpu_after = all_cores_rate(msgs, sales.device_keys, sales.issuer_keys)
            # verifying in the consumer thread is several times slower: a third of the messages tell it
            in_thread = _consumer_rate(tmp, port, proc.pid, replace(sales, messages=msgs[:len(msgs) // 3]), 0)
        finally:
            proc.terminate()
            proc.wait(10)
        raw_sqlite = _raw_sqlite_rate(tmp, msgs)
    rate, verify_only = ours["rate"], (before + after) / 2
    ratio = rate / verify_only
    complete = ours["stored"] == n and ours["acked"] >= n and in_thread["stored"] == len(msgs) // 3
    batch_ms = ours["batch_ms"]
    cpu = ours["cpu"]
    cpu_total, verify_cpu = sum(cpu.values()), (cpu_before + cpu_after) / 2
    return [
        row("central: redemptions/2 verified (device + card signatures) + stored (SQLite, sync=FULL) + acked, "
            "one consumer, via mosquitto",
            value=round(rate), unit="msg/s", budget=f">= {RATIO_BUDGET}x verify-only, all cores", ok=ratio >= RATIO_BUDGET
            and complete, baseline=round(verify_only), baseline_name=f"verify-only, both signatures, {cores} processes "
            "(all cores), same messages",
            notes=f"{n:,} messages from {devices} devices, {sales.cards} cards; {ours['stored']:,} stored, "
                  f"{ours['counted']:,} counted in the totals; ratio {ratio:.2f}; {ours['workers']} verify worker "
                  f"process(es) (the runner's default); raw paho receive {raw_paho:,.0f} msg/s; verifying in the "
                  f"consumer thread (verify_workers=0): {in_thread['rate']:,.0f} msg/s, {in_thread['stored']:,} stored"),
        row("central: consumer rate / verify-only rate (device + card signatures, all cores)",
            value=round(ratio, 3), unit="x", budget=f">= {RATIO_BUDGET}", ok=ratio >= RATIO_BUDGET and complete,
            baseline=round(verify_only), baseline_name="verify-only msg/s, same run",
            notes=f"consumer {rate:,.0f} msg/s over verify-only {verify_only:,.0f} msg/s (mean of {before:,.0f} "
                  f"just before and {after:,.0f} just after the consumer's run); between its first and last "
                  f"batch's acks (without the pipeline's fill and drain, for information: the budget is judged "
                  f"on the whole run) {ours['steady']:,.0f} msg/s, {ours['steady'] / verify_only:.3f}x"),
        row("central: CPU per message: consumer process + verify workers + broker, against verify-only",
            value=round(cpu_total * 1e6, 1), unit="us/msg", budget="info", ok=None,
            baseline=round(verify_cpu * 1e6, 1), baseline_name="verify-only CPU per message (both signatures)",
            notes=f"consumer thread {cpu['thread'] * 1e6:.0f} us, the consumer process's other threads "
                  f"{cpu['others'] * 1e6:.0f} us, verify workers {cpu['workers'] * 1e6:.0f} us, "
                  f"mosquitto {cpu['broker'] * 1e6:.0f} us; verify-only / consumer CPU {verify_cpu / cpu_total:.2f} "
                  "(the ratio the consumer would reach with the cores to itself, less sensitive to a shared "
                  f"machine's drift than the rates); the consumer kept {cpu_total * rate / cores:.1%} of the "
                  f"{cores} cores busy (the rest: the pipeline's fill and drain, waits)"),
        row("central: one stored batch (dedupe + gap check + commit; signatures checked by the workers before)",
            p50=round(percentile(batch_ms, 50), 2), p99=round(percentile(batch_ms, 99), 2), unit="ms per batch",
            budget="info", ok=None, baseline=round(raw_sqlite), baseline_name="raw sqlite3 executemany rows/s (sync=FULL)",
            notes=f"{len(batch_ms)} batches"),
        row("central: raw paho QoS 1 receive of the same messages, no work",
            value=round(raw_paho), unit="msg/s", budget="info", ok=None,
            baseline=round(verify_only), baseline_name="verify-only msg/s, same run",
            notes="the transport ceiling on this machine"),
    ]


if __name__ == "__main__":
    main("central", run)
