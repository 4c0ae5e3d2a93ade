"""Ledger convergence at city scale: a new device's snapshot request -> its first sale allowed.

The city (a central SQLite database with 1,000,000 households, on ledger v3 after a snapshot and
two deltas) runs `ewarung central serve`; a brand-new device with an empty database runs
`ewarung sync` against a private mosquitto. Timed from the device's request as the broker
carries it to the first sale the device's own database allows (ledger v3 live, a redemption
committed). Beside it, measured in the same run: central's snapshot build alone, and the
device's snapshot verify+apply alone (LedgerIntake over the same build, in this process).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.bench_sync import _Mosquitto
from bench.common import main, row
from pos.clock import SystemClock, iso
from pos.db import database, open_database
from pos.device import DeviceIdentity
from pos.ledger import Ledger
from pos.messages import device_topic
from pos.policy import Policy
from pos.redemption import Collector, RedemptionRequest, RedemptionService
from pos.sample_city import build_sample_city, demo_key, household_id, write_demo_keys
from pos.signing import EcdsaSigner, public_pem

ROOT = Path(__file__).resolve().parent.parent
DEVICE = "EW-BENCH-CONV"
BUDGET_S = 60.0


def _city(work: Path, households: int) -> Path:
    """A central database holding the sample city's households as `publish-ledger` leaves them, on v3."""
    from sync.central.programme import sample_programme
    from sync.central.store import CityCatalogItem, CityPlan, Device, LedgerRelease, open_central

    source = work / "source.db"
    db = open_database(source)
    build_sample_city(db, households=households, now=datetime.now(UTC), with_cashiers=False)
    db.close()
    central_path = work / "central.db"
    central = open_central(central_path)
    prog = sample_programme()
    CityPlan.insert_many([{"code": p.code, "name": p.name, "allowance": p.allowance, "rollover": p.rollover,
                           "quotas": json.dumps(p.quotas)} for p in prog.plans]).execute()
    CityCatalogItem.insert_many([{"code": i.code, "name_id": i.name_id, "name_en": i.name_en, "unit": i.unit,
                                  "price": i.price} for i in prog.catalog]).execute()
    now = iso(datetime.now(UTC))
    for version, kind in ((1, "snapshot"), (2, "delta"), (3, "delta")):
        LedgerRelease.create(version=version, kind=kind, issued_at=now, expires_at=now, households=0,
                             sha256="-", size=0, token="-")
    Device.create(id=DEVICE, public_key_pem=public_pem(demo_key("device").public_key()).decode(), added_at=now)
    central.close()
    conn = sqlite3.connect(central_path)
    conn.execute("ATTACH DATABASE ? AS src", (str(source),))
    with conn:
        conn.execute(
            "INSERT INTO central_household (id, name, area, plan, status, valid_from, valid_until, "
            "representatives, row_hash) SELECT h.id, h.name, h.area, h.plan, h.status, h.valid_from, h.valid_until, "
            "COALESCE((SELECT group_concat(r.id || '|' || r.name || '|' || r.relation, ';') FROM src.representative r "
            "WHERE r.household = h.id), ''), '' FROM src.household h")
    conn.close()
    source.unlink()
    return central_path


def _apply_alone(central_path: Path, work: Path) -> tuple[float, float, int]:
    """(central's build seconds, the device's verify+apply seconds, chunks) for one snapshot."""
    from sync.central.ledger_publish import current_snapshot
    from sync.central.store import open_central
    from sync.ledger_intake import LedgerIntake

    central = open_central(central_path)
    t0 = time.perf_counter()
    snap = current_snapshot(signer=EcdsaSigner(demo_key("ledger"), "ledger"), city="samarinda",
                            now=SystemClock().now())
    build_s = time.perf_counter() - t0
    central.close()
    device = open_database(work / "alone.db")
    intake = LedgerIntake(device, {"ledger": demo_key("ledger").public_key()}, "samarinda", SystemClock())
    t0 = time.perf_counter()
    for token in snap.tokens:
        intake.handle(token)
    apply_s = time.perf_counter() - t0
    assert intake.live_version() == 3
    device.close()
    return build_s, apply_s, len(snap.tokens)


def _device_dir(work: Path, port: int) -> Path:
    data = work / "device"
    write_demo_keys(data / "keys")
    config = data / "ewarung.toml"
    config.write_text(f'[device]\nid = "{DEVICE}"\nshop_id = "SHOP-BENCH"\ndata_dir = "{data}"\n'
                      f'[printer]\nkind = "file"\npath = "{data / "receipts.bin"}"\n'
                      f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nheartbeat_s = 5\n')
    return config


def _request_seen(port: int):
    """(event, [monotonic time], paho client): when the broker carries the device's snapshot
    request (the clock starts there)."""
    import paho.mqtt.client as mqtt

    seen, at = threading.Event(), []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-watch", protocol=mqtt.MQTTv5)

    def on_message(_c, _u, _m) -> None:
        if not at:
            at.append(time.monotonic())
            seen.set()

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(device_topic(DEVICE, "request"), qos=1)
    client.loop_start()
    time.sleep(0.3)
    return seen, at, client


def _end_to_end(central_path: Path, work: Path, broker: _Mosquitto) -> tuple[float, float, str]:
    """(request -> first sale allowed s, request -> ledger live s, central's log line of the build)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log_path = work / "central.log"
    with open(log_path, "ab") as log:
        central = subprocess.Popen(
            [sys.executable, "-m", "pos.cli.main", "central", "--db", str(central_path), "serve", "--broker",
             f"127.0.0.1:{broker.port}", "--http", "off", "--group", "", "--client-id", "central-bench"],
            env=env, stdout=log, stderr=log, cwd=ROOT)
    sync = None
    seen, at, watcher = _request_seen(broker.port)
    try:
        time.sleep(3)  # central subscribed (a request before that is asked again at the next heartbeat)
        config = _device_dir(work, broker.port)
        with open(work / "sync.log", "ab") as log:
            sync = subprocess.Popen([sys.executable, "-m", "pos.cli.main", "--config", str(config), "sync"],
                                    env=env, stdout=log, stderr=log, cwd=ROOT)
        if not seen.wait(60):
            raise RuntimeError("the device sent no snapshot request")
        db_path = work / "device" / "ewarung.db"
        deadline = time.monotonic() + 600
        while _version(db_path) != 3:
            if time.monotonic() > deadline:
                raise RuntimeError("the device did not reach ledger v3 in 600 s")
            time.sleep(0.05)
        live = time.monotonic() - at[0]
        db = open_database(db_path)
        database.initialize(db)
        service = RedemptionService(db, Ledger(), DeviceIdentity(DEVICE, "SHOP-BENCH", "Bench", "Jl. Bench"),
                                    EcdsaSigner(demo_key("device"), DEVICE), SystemClock(), Policy())
        service.redeem(RedemptionRequest(household_id(10), "kasir1", {"TEMPE": 1}, collector=Collector()))
        sold = time.monotonic() - at[0]
        db.close()
    finally:
        watcher.loop_stop()
        for proc in (sync, central):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    built = re.findall(r"snapshot v3 \(.*?built in [0-9.]+ s\)", log_path.read_text(errors="replace"))
    return sold, live, built[-1] if built else ""


def _version(path: Path) -> int:
    try:
        conn = sqlite3.connect(path, timeout=1)
        try:
            found = conn.execute("SELECT version FROM ledger_state WHERE id = 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    return found[0] if found else 0


def run(quick: bool = False) -> list[dict]:
    """The convergence time at 1,000,000 households (20,000 with quick), with its parts."""
    households = 20_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="ewarung-bench-conv-") as tmp:
        work = Path(tmp)
        central_path = _city(work, households)
        build_s, apply_s, tokens = _apply_alone(central_path, work)
        broker = _Mosquitto(work)
        try:
            sold, live, built = _end_to_end(central_path, work, broker)
        finally:
            broker.stop()
    notes = f"ledger live after {live:.1f} s; central: {built or 'build not logged'}; {tokens} tokens"
    return [
        row(f"ledger convergence: snapshot request -> first sale allowed, {households:,} households", value=sold,
            unit="s", budget="<= 60 s", ok=sold <= BUDGET_S, baseline=apply_s,
            baseline_name="device snapshot verify+apply alone", notes=notes),
        row(f"snapshot built on request by central, {households:,} households", value=build_s, unit="s",
            budget="part of the 60 s above", ok=None),
    ]


if __name__ == "__main__":
    main("convergence", run)
