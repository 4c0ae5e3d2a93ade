"""Sync benchmarks: outbox drain throughput vs raw paho, 1M-household snapshot apply vs raw sqlite3.

Rows (each with its baseline measured in the same run):
* drain N queued redemptions through the sync daemon to a private local mosquitto until every
  message is PUBACKed and marked published, vs raw paho QoS 1 publishing the same payloads to the
  same broker (same in-flight window). Budget: >= 0.5x the raw rate.
* verify + stage + swap a signed chunked snapshot of H households (+ representatives, plans,
  catalog), measured in a child process for its own peak RSS, vs a raw sqlite3 executemany of the
  same household and representative rows into the same schema, also in a child process.
  Budget: <= 2.5x the raw time; peak RSS <= 200 MB.

`python -m bench.bench_sync [--quick]` prints the rows and writes bench/results/sync.json.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


# --- broker ------------------------------------------------------------------------------------

class _Mosquitto:
    def __init__(self, work: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        conf = work / "mosquitto.conf"
        conf.write_text(f"user root\nlistener {self.port} 127.0.0.1\nallow_anonymous true\n"
                        "max_queued_messages 1000000\nmax_inflight_messages 100\n")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


def _raw_paho_rate(port: int, topic: str, payloads: list[bytes], inflight: int) -> float:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    done = threading.Event()
    count = [0]

    def on_publish(client, userdata, mid, rc, props):
        count[0] += 1
        if count[0] == len(payloads):
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(inflight)
    c.max_queued_messages_set(0)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    for p in payloads:
        c.publish(topic, p, qos=1)
    done.wait(300)
    elapsed = time.perf_counter() - t0
    c.loop_stop()
    c.disconnect()
    return len(payloads) / elapsed


def bench_drain(n: int, work: Path) -> dict:
    """The outbox drain rate through the real sync daemon and
    broker, beside raw paho publishing the same payloads."""
    # bench.common is imported here, not at the top, so the measured child processes do not load it
    from bench.common import row
    from pos.clock import SystemClock, iso
    from pos.db import durable_transaction, open_database
    from pos.device import DeviceIdentity
    from pos.outbox import enqueue
    from pos.sample_city import demo_key
    from pos.signing import EcdsaSigner
    from sync.daemon import SyncDaemon, SyncOptions
    from sync.mqtt_client import MqttLink, MqttSettings

    inflight = 64
    broker = _Mosquitto(work)
    try:
        db = open_database(work / "drain.db")
        device = DeviceIdentity("EW-BENCH-0001", "SMD-BENCH", "Bench", "-")
        signer = EcdsaSigner(demo_key("device"), device.device_id)
        now = iso(SystemClock().now())
        body = {"redemption_id": "x" * 36, "household": "SSN-6472-0000001", "period": "2026-11", "total": 145_000,
                "lines": [{"item": "BERAS5", "qty": 2, "unit_price": 72_500, "amount": 145_000}], "cashier": "kasir1"}
        with durable_transaction(db):
            for _ in range(n):
                enqueue("redemption", body, device=device, signer=signer, created_at=now)
        payloads = [bytes(p) for (p,) in db.execute_sql("SELECT payload FROM outbox_message ORDER BY seq LIMIT ?", (n,))]
        raw_rate = _raw_paho_rate(broker.port, "ewarung/v1/devices/EW-BENCH-RAW/redemption", payloads, inflight)
        del payloads
        link = MqttLink(MqttSettings(client_id=device.device_id, host="127.0.0.1", port=broker.port, inflight=inflight),
                        SyncDaemon.subscriptions(device))
        daemon = SyncDaemon(db, device, signer, link, {}, {}, SyncOptions(inflight=inflight, heartbeat_s=3600,
                                                                            status_every_s=3600))
        while not link.events.connected:
            daemon.step()
        daemon.step()
        t0 = time.perf_counter()
        while True:
            daemon.step(0.005)
            if not daemon.inflight and daemon.idle():
                break
        elapsed = time.perf_counter() - t0
        published = db.execute_sql("SELECT count(*) FROM outbox_message WHERE state='published'").fetchone()[0]
        link.close()
        db.close()
    finally:
        broker.stop()
    rate = published / elapsed
    return row(f"outbox drain, {n:,} queued redemptions -> PUBACKed and marked published", value=rate, unit="msg/s",
               budget=">= 0.5x raw paho QoS 1 rate", ok=published == n and rate >= 0.5 * raw_rate, baseline=raw_rate,
               baseline_name="raw paho QoS 1 publish, same payloads, same broker, same in-flight window",
               notes=f"{published}/{n} published in {elapsed:.2f}s; ratio {rate / raw_rate:.2f}x")


# --- snapshot ------------------------------------------------------------------------------------

def _child(mode: str, db_path: Path, src: Path) -> dict:
    """Run one measured step in a fresh interpreter; return its JSON report (with peak RSS)."""
    out = subprocess.run([sys.executable, "-m", "bench.bench_sync", "--child", mode, str(db_path), str(src)],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         timeout=580)
    if out.returncode != 0:
        raise RuntimeError(f"child {mode} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_main(mode: str, db_path: str, src: str) -> None:
    """One measured step (our apply, or the raw baseline) in a
    fresh interpreter, so its peak RSS is its own."""
    import sqlite3

    t0 = time.perf_counter()
    if mode == "apply":
        from pos.clock import SystemClock
        from pos.db import open_database
        from pos.sample_city import demo_key
        from sync.ledger_intake import LedgerIntake

        db = open_database(db_path)
        intake = LedgerIntake(db, {"ledger": demo_key("ledger").public_key()}, "samarinda", SystemClock())
        t0 = time.perf_counter()
        applied = False
        with open(src, "rb") as fh:
            for line in fh:
                applied = intake.handle(line.rstrip(b"\n")).applied or applied
        elapsed = time.perf_counter() - t0
        n = db.execute_sql("SELECT count(*) FROM household").fetchone()[0]
        db.close()
        if not applied:
            raise SystemExit("snapshot was not applied")
    else:  # raw executemany of the same household and representative rows
        from pos.db import open_database
        from pos.signing import b64url_decode
        from sync.ledger_format import decode_rows

        open_database(db_path).close()
        conn = sqlite3.connect(db_path)
        conn.execute("PRAGMA journal_mode=wal")
        t0 = time.perf_counter()
        elapsed_parse = 0.0
        with conn, open(src, "rb") as fh:
            for line in fh:
                payload = json.loads(b64url_decode(line.split(b".")[1].decode()))
                if payload["schema"] != "ewarung.ledger-chunk/1" or payload["table"] not in ("households", "representatives"):
                    continue
                tp = time.perf_counter()
                rows = decode_rows(payload["data"])
                elapsed_parse += time.perf_counter() - tp
                table = "household" if payload["table"] == "households" else "representative"
                cols = payload["columns"]
                conn.executemany(f"INSERT INTO {table} ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", rows)
        elapsed = time.perf_counter() - t0 - elapsed_parse
        n = conn.execute("SELECT count(*) FROM household").fetchone()[0]
        conn.close()
    print(json.dumps({"seconds": elapsed, "households": n, "peak_rss_mb": _peak_rss_mb()}))


def _peak_rss_mb() -> float:
    """This process's own peak RSS: VmHWM (ru_maxrss would include the parent's, inherited across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_snapshot(households: int, work: Path) -> list[dict]:
    """Build a signed snapshot, then time and measure its apply over a
    live ledger beside a raw sqlite3 load of the same rows."""
    from bench.common import row
    from pos.clock import iso
    from pos.db import open_database
    from pos.period import WITA
    from pos.sample_city import (
        CATALOG,
        PLANS,
        _household_rows,
        _representative_rows,
        build_sample_city,
        demo_key,
    )
    from pos.signing import EcdsaSigner
    from sync.ledger_format import SnapshotBuilder

    now = datetime.now(UTC)
    today = now.astimezone(WITA).date()
    builder = SnapshotBuilder("samarinda", 2, iso(now), iso(now + timedelta(days=7)), EcdsaSigner(demo_key("ledger"), "ledger"))
    tables = {
        "households": _household_rows(households, 2026, today),
        "representatives": (r for r in _representative_rows(households, 2026)),
        "plans": [(c, n, a, int(r)) for c, n, a, r, _ in PLANS],
        "plan_quotas": [(c, i, q) for c, _, _, _, qs in PLANS for i, q in qs.items()],
        "catalog": [(*c, 1) for c in CATALOG],
    }
    src = work / "snapshot.jws"
    t0 = time.perf_counter()
    with src.open("wb") as fh:
        for token in builder.chunks(tables):
            fh.write(token + b"\n")
        manifest = builder.manifest()
        fh.write(manifest + b"\n")
    build_s = time.perf_counter() - t0
    size_mb = src.stat().st_size / 1e6
    live = work / "apply.db"
    db = open_database(live)
    build_sample_city(db, households=60, now=now)  # a live ledger (version 1) to replace
    db.close()
    ours = _child("apply", live, src)
    raw = _child("raw", work / "raw.db", src)
    if ours["households"] != households or raw["households"] != households:
        raise RuntimeError(f"row counts differ: {ours} {raw}")
    ratio = ours["seconds"] / raw["seconds"]
    return [
        row(f"snapshot verify+stage+swap, {households:,} households", value=ours["seconds"], unit="s",
            budget="<= 2.5x raw sqlite3 executemany", ok=ratio <= 2.5, baseline=raw["seconds"],
            baseline_name="raw sqlite3 executemany of the same household+representative rows (decoding excluded)",
            notes=f"ratio {ratio:.2f}x; {builder.rows['representatives']:,} representatives; "
                  f"{len(builder.hashes)} signed chunks, {size_mb:.0f} MB on the wire; city-side build {build_s:.1f}s"),
        row(f"snapshot apply peak RSS, {households:,} households", value=ours["peak_rss_mb"], unit="MB",
            budget="<= 200 MB", ok=ours["peak_rss_mb"] <= 200, baseline=raw["peak_rss_mb"],
            baseline_name="raw sqlite3 child peak RSS", notes="VmHWM of the child process doing the apply (its own peak, not the parent's)"),
    ]


def run(quick: bool = False) -> list[dict]:
    """Both sync rows, in a scratch directory removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix="ewarung-bench-sync-"))
    try:
        rows = [bench_drain(2_000 if quick else 20_000, work)]
        rows += bench_snapshot(50_000 if quick else 1_000_000, work)
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    """`python -m bench.bench_sync`: print the rows and write
    bench/results/sync.json; `--child` runs one measured step."""
    if len(sys.argv) >= 2 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    rows = run(quick="--quick" in sys.argv)
    for r in rows:
        base = f" (baseline {r['baseline']:.2f}: {r['baseline_name']})" if r["baseline"] is not None else ""
        print(f"{'OK  ' if r['ok'] else 'FAIL'} {r['name']}: {r['value']:.2f} {r['unit']}{base}; budget {r['budget']}; {r['notes']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sync.json").write_text(json.dumps({"area": "sync", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
