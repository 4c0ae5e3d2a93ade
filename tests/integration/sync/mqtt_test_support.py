"""Helpers for the sync tests: a private mosquitto, a test city that acknowledges, schema checks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "docs" / "schemas"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not open port {port}")


class Broker:
    """A private mosquitto on a loopback port, with persistence so sessions survive restarts."""

    def __init__(self, workdir: Path, extra: str = "", port: int | None = None) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "mosquitto.log"

    def write_conf(self) -> None:
        base = (
            f"user root\npersistence true\npersistence_location {self.dir}/\nautosave_interval 1\n"
            f"log_dest file {self.log}\nlog_type error\nlog_type warning\nlog_type notice\n"
            "max_queued_messages 100000\nmax_inflight_messages 100\n"
        )
        if not self.extra:
            base += f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
        self.conf.write_text(base + (self.extra if self.extra != "-" else ""))

    def start(self) -> None:
        self.write_conf()
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        try:
            wait_port(self.port)
        except RuntimeError:
            self.proc.kill()
            raise RuntimeError(f"mosquitto failed: {self.proc.stderr.read().decode()} {self.log.read_text() if self.log.exists() else ''}") from None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def load_schemas() -> dict:
    return {p.stem: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}


def validate_token(token: bytes, schemas: dict) -> dict:
    """Check a real token's header and payload against docs/schemas; return the payload."""
    import jsonschema

    from pos.signing import b64url_decode

    head, payload, _ = token.decode("ascii").split(".")
    header = json.loads(b64url_decode(head))
    jsonschema.validate(header, schemas["jws-header"])
    obj = json.loads(b64url_decode(payload))
    name = obj["schema"].removeprefix("ewarung.").split("/")[0]
    jsonschema.validate(obj, schemas[name])
    return obj


class CityStub:
    """A minimal city: subscribes to device messages, verifies them, records them, acknowledges."""

    def __init__(self, port: int, device_id: str, client_id: str = "test-city", ack: bool = True,
                 duplicate_acks: bool = False) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        from pos.sample_city import demo_key
        from pos.signing import EcdsaSigner

        self.device_id = device_id
        self.central = EcdsaSigner(demo_key("central"), "central")
        self.device_pub = {device_id: demo_key("device").public_key()}
        self.ack, self.duplicate_acks = ack, duplicate_acks
        self.lock = threading.Lock()
        self.first_seen: list[int] = []  # seq in order of first arrival
        self.seen_ids: dict[str, int] = {}
        self.raw: dict[str, list[bytes]] = {}
        self.deliveries = 0
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        c.on_message = self._on_message
        c.on_connect = lambda cl, *_: cl.subscribe([(f"ewarung/v1/devices/{device_id}/#", 1)])
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect("127.0.0.1", port, clean_start=False, properties=props)
        c.loop_start()
        self.client = c

    def _on_message(self, client, userdata, msg) -> None:
        from pos.signing import jws_verify
        from sync.acks import build_ack

        leaf = msg.topic.rsplit("/", 1)[-1]
        payload = bytes(msg.payload)
        with self.lock:
            self.raw.setdefault(leaf, []).append(payload)
        if leaf not in ("redemption", "void", "event"):
            return
        obj = jws_verify(payload, self.device_pub, "ewarung-msg+jws").json()
        with self.lock:
            self.deliveries += 1
            if obj["id"] not in self.seen_ids:
                self.seen_ids[obj["id"]] = obj["seq"]
                self.first_seen.append(obj["seq"])
        if self.ack:
            token = build_ack(self.device_id, "2026-11-15T02:00:00.000Z", self.central, ids=[obj["id"]])
            for _ in range(2 if self.duplicate_acks else 1):
                client.publish(f"ewarung/v1/devices/{self.device_id}/ack", token, qos=1)

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None


def start_sync(env: dict, *extra: str) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    import sys

    log = open(env["dir"] / "sync.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "pos.cli.main", "--config", str(env["config"]), "sync", "-v", *extra],
                            env=full_env, stdout=log, stderr=log, cwd=ROOT)


def run_sync_once(env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    import sys

    full_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pos.cli.main", "--config", str(env["config"]), "sync", "--once",
                           "--max-seconds", "30"], env=full_env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def outbox_states(db_path: Path) -> dict:
    import sqlite3

    conn = sqlite3.connect(db_path, timeout=10)
    try:
        return dict(conn.execute("SELECT state, count(*) FROM outbox_message GROUP BY state").fetchall())
    finally:
        conn.close()


def wait_for(pred, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
