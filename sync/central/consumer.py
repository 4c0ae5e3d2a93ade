"""The reference central consumer: verify, de-duplicate, store durably, then acknowledge.

`CentralConsumer.process(batch)` is transport-free (tests and the benchmark drive it directly);
`serve()` attaches it to an MQTT 5 broker with shared subscriptions and manual PUBACKs, so the
broker keeps a message until its row is committed, and the device's end-to-end ack goes out only
after the commit.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from peewee import SqliteDatabase

from pos.clock import Clock, SystemClock, iso, parse_iso
from pos.messages import MESSAGE_TYP, SEQUENCED_KINDS, TOPIC_ROOT, device_topic
from pos.signing import (
    BadSignature,
    Signer,
    canonical_json,
    jws_peek,
    jws_sign,
    jws_verify,
)
from sync.central.store import (
    Device,
    DeviceState,
    EventRecord,
    Message,
    RedemptionRecord,
    Rejected,
    SequenceGap,
    VoidRecord,
    central_db,
    write_transaction,
)
from sync.central.verify import Verifier, verify_batch

log = logging.getLogger("ewarung.central")

ACK_TYP = "ewarung-ack+jws"
RESEND_TYP = ACK_TYP  # the contract signs resend requests as ack-typed tokens
ACK_SCHEMA = "ewarung.ack/1"
RESEND_SCHEMA = "ewarung.resend/1"
MAX_STATUS_NUMBER = 2**31 - 1  # fits every database's INTEGER column (PostgreSQL's is 32-bit)
DEVICE_LEAVES = (*SEQUENCED_KINDS, "status", "heartbeat", "request")
MAX_GAP_REQUEST = 500


@dataclass
class Incoming:
    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 0


@dataclass
class Outcome:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    status_updates: int = 0
    failures: int = 0
    snapshot_requests: list[str] = field(default_factory=list)  # devices that asked for a snapshot
    acks: list[tuple[str, bytes]] = field(default_factory=list)  # (topic, signed ack) to publish
    resends: list[tuple[str, bytes]] = field(default_factory=list)


class CentralConsumer:
    def __init__(self, ack_signer: Signer, clock: Clock | None = None) -> None:
        self.signer = ack_signer
        self.clock = clock or SystemClock()
        self._keys: dict[str, object] = {}
        self._keys_loaded_at = 0.0
        self._pems: dict[str, str] = {}
        self._verifier = Verifier()

    # --- registry -------------------------------------------------------------------
    def device_key(self, device_id: str):
        key = self._keys.get(device_id)
        if key is None and time.monotonic() - self._keys_loaded_at > 0:
            row = Device.get_or_none((Device.id == device_id) & (Device.status == "active"))
            if row is None:
                return None
            key = self._verifier.key_for(row.public_key_pem)
            self._keys[device_id], self._pems[device_id] = key, row.public_key_pem
        return key

    def forget_keys(self) -> None:
        self._keys.clear()
        self._pems.clear()

    # --- processing -----------------------------------------------------------------
    def process(self, batch: list[Incoming], verified: list[tuple[bool, object] | None] | None = None) -> Outcome:
        """Verify and store a batch in ONE transaction; return the acks to send after commit.

        `verified`, if given, is aligned with `batch`: the result of `verify.verify_batch` for the
        messages `verify_jobs` handed out ((True, envelope) or (False, reason)), None for the rest,
        which are verified here."""
        out = Outcome()
        now = iso(self.clock.now())
        accepted: list[tuple[str, int, str, dict, str]] = []  # device, seq, kind, envelope, token
        statuses: list[tuple[str, str, dict]] = []
        rejected: list[tuple[str, str, bytes]] = []
        for i, msg in enumerate(batch):
            parts = msg.topic.split("/")
            if len(parts) != 5 or "/".join(parts[:3]) != f"{TOPIC_ROOT}/devices" or parts[4] not in DEVICE_LEAVES:
                rejected.append((msg.topic, "not a device topic this consumer handles", msg.payload))
                continue
            device_id, leaf = parts[3], parts[4]
            if leaf == "request":
                try:
                    body = self._status_payload(device_id, msg.payload, signed_only=True)
                except (BadSignature, ValueError) as exc:
                    rejected.append((msg.topic, str(exc), msg.payload))
                    continue
                if body.get("request") == "snapshot":
                    out.snapshot_requests.append(device_id)
                continue
            if leaf in ("status", "heartbeat"):
                try:
                    statuses.append((device_id, leaf, self._status_payload(device_id, msg.payload)))
                except (BadSignature, ValueError) as exc:
                    rejected.append((msg.topic, str(exc), msg.payload))
                continue
            done = verified[i] if verified is not None else None
            if done is not None:
                ok, value = done
                if not ok:
                    rejected.append((msg.topic, str(value), msg.payload))
                    continue
                env = value
            else:
                try:
                    env = self._verify(device_id, leaf, msg.payload)
                except (BadSignature, ValueError) as exc:
                    rejected.append((msg.topic, str(exc), msg.payload))
                    continue
            accepted.append((device_id, env["seq"], leaf, env, msg.payload.decode("ascii")))

        with write_transaction():
            new, dup_ids = self._dedupe(accepted, rejected)
            if new:
                self._store(new, now)
            for device_id, leaf, data in statuses:
                self._update_status(device_id, leaf, data, now)
            new_seqs: dict[str, list[int]] = {}
            for d, seq, *_ in new:
                new_seqs.setdefault(d, []).append(seq)
            resend_plan = self._advance_all(new_seqs, now)
            for topic, reason, payload in rejected:
                Rejected.insert(topic=topic[:255], reason=reason[:2000], received_at=now,
                                payload_head=payload[:200].decode("ascii", "replace")).execute()
        # committed: now the acks may go out
        out.stored, out.duplicates, out.rejected, out.status_updates = len(new), len(dup_ids), len(rejected), len(statuses)
        by_device: dict[str, list[tuple[str, int]]] = {}
        for device_id, seq, _kind, env, _tok in new:
            by_device.setdefault(device_id, []).append((env["id"], seq))
        for device_id, msg_id, seq in dup_ids:
            by_device.setdefault(device_id, []).append((msg_id, seq))
        for device_id, items in by_device.items():
            out.acks.append((device_topic(device_id, "ack"), self.ack_token(device_id, items, now)))
        for device_id, missing in resend_plan.items():
            if missing:
                out.resends.append((device_topic(device_id, "resend"), self.resend_token(device_id, missing, now)))
        return out

    def _verify(self, device_id: str, leaf: str, token: bytes) -> dict:
        key = self.device_key(device_id)
        if key is None:
            raise ValueError(_unregistered(device_id))
        return self._verifier.envelope(device_id, leaf, key, token)

    def verify_jobs(self, batch: list[Incoming]) -> tuple[list[tuple[str, str, bytes]], list[int], dict[str, str]]:
        """The sequenced messages of `batch` from registered devices, for `verify.verify_batch` in a
        worker process: (jobs, their indexes in batch, {device: registered key PEM}). Everything
        else (status, unknown topics and devices) is left to `process`."""
        jobs, where, pems = [], [], {}
        for i, msg in enumerate(batch):
            parts = msg.topic.split("/")
            if len(parts) != 5 or parts[4] not in SEQUENCED_KINDS or "/".join(parts[:3]) != f"{TOPIC_ROOT}/devices":
                continue
            if self.device_key(parts[3]) is None:
                continue
            jobs.append((parts[3], parts[4], msg.payload))
            where.append(i)
            pems[parts[3]] = self._pems[parts[3]]
        return jobs, where, pems

    def _status_payload(self, device_id: str, payload: bytes, signed_only: bool = False) -> dict:
        text = payload.strip()
        if not text and not signed_only:
            return {"state": "offline"}  # a cleared retained status
        if text[:1] == b"{" and not signed_only:
            try:
                data = json.loads(text)
            except RecursionError:
                raise ValueError("status JSON nested too deep") from None
        else:
            key = self.device_key(device_id)
            if key is None:
                raise ValueError(f"status from unregistered device {device_id}")
            data = jws_verify(text, {_peek_kid(text): key}, MESSAGE_TYP).json()
            if data.get("device") != device_id:
                raise ValueError(f"signed for device {data.get('device')!r}, published on {device_id}'s topic")
        if not isinstance(data, dict):
            raise ValueError("status must be a JSON object")
        data = {**data, **data.get("body", {})} if isinstance(data.get("body"), dict) else data
        ledger = data.get("ledger")
        for name, value in (("queue_depth", data.get("queue_depth")), ("ledger_version", data.get("ledger_version")),
                            ("ledger.version", ledger.get("version") if isinstance(ledger, dict) else None)):
            if isinstance(value, int) and not 0 <= value <= MAX_STATUS_NUMBER:
                raise ValueError(f"status {name} {value} is outside 0..{MAX_STATUS_NUMBER}")
        return data

    def _dedupe(self, accepted, rejected):
        ids = [env["id"] for _, _, _, env, _ in accepted]
        known: dict[str, tuple[str, int]] = {}
        for i in range(0, len(ids), 500):
            for mid, dev, seq in _select_in("SELECT id, device, seq FROM central_message WHERE id IN ({})",
                                            ids[i:i + 500]):
                known[mid] = (dev, seq)
        new, dups, seen = [], [], set()
        taken: dict[tuple[str, int], str] = {}
        pairs = sorted({(d, s) for d, s, *_ in accepted})
        for i in range(0, len(pairs), 400):  # one indexed join per 400 (device, seq) pairs, not one query per device
            for mid, dev, seq in _select_pairs(pairs[i:i + 400]):
                taken[(dev, seq)] = mid
        for item in accepted:
            dev, seq, _kind, env, tok = item
            mid = env["id"]
            if mid in known or mid in seen:
                dups.append((dev, mid, seq))
                continue
            if (dev, seq) in taken:
                rejected.append((device_topic(dev, _kind), f"seq {seq} already used by message {taken[(dev, seq)]}; "
                                 "the device's sequence was reset (restored from a backup?)", tok.encode()))
                continue
            seen.add(mid)
            taken[(dev, seq)] = mid
            new.append(item)
        return new, dups

    def _store(self, new, now: str) -> None:
        msgs, reds, voids, events = [], [], [], []
        for dev, seq, kind, env, tok in new:
            body = env["body"]
            msgs.append((env["id"], dev, seq, kind, env["created_at"], now, tok))
            if kind == "redemption":
                items: dict[str, int] = {}
                for ln in body.get("lines", []):
                    items[ln["item"]] = items.get(ln["item"], 0) + int(ln["qty"])
                cb = body.get("collected_by") or {}
                reds.append((body["redemption_id"], env["id"], dev, seq, body.get("shop_id", ""), body["household"],
                             body["period"], body.get("card_id", "") or "", body.get("cashier", ""),
                             cb.get("kind", "holder"), cb.get("name", ""), int(body.get("ledger_version") or 0),
                             body.get("mode", "card"), int(body["total"]), json.dumps(items, sort_keys=True),
                             env["created_at"]))
            elif kind == "void":
                voids.append((body["void_id"], env["id"], dev, body["redemption_id"], body.get("household", ""),
                              body.get("period", ""), int(body.get("amount") or 0), body.get("reason", ""),
                              env["created_at"]))
            else:
                events.append((env["id"], dev, str(body.get("event", "")), str(body.get("household", "")),
                               str(body.get("problem", "")), str(body.get("note", "")),
                               canonical_json(body).decode(), env["created_at"]))
        _bulk(Message, ["id", "device", "seq", "kind", "created_at", "received_at", "token"], msgs)
        _bulk(RedemptionRecord, ["id", "msg_id", "device", "seq", "shop_id", "household", "period", "card_id", "cashier",
                                 "collected_by", "collector_name", "ledger_version", "mode", "total", "items",
                                 "created_at"], reds, ignore_conflicts=True)
        _bulk(VoidRecord, ["id", "msg_id", "device", "redemption_id", "household", "period", "amount", "reason",
                           "created_at"], voids, ignore_conflicts=True)
        _bulk(EventRecord, ["id", "device", "event", "household", "problem", "note", "body", "created_at"], events)

    def _state(self, device_id: str) -> DeviceState:
        state = DeviceState.get_or_none(DeviceState.device == device_id)
        if state is None:
            state = DeviceState.create(device=device_id)
        return state

    def _update_status(self, device_id: str, leaf: str, data: dict, now: str) -> None:
        state = self._state(device_id)
        state.last_seen = now
        if leaf == "status":
            state.online = str(data.get("state", data.get("status", "online"))) == "online"
        else:
            state.online = True
        ledger = data.get("ledger")
        if isinstance(ledger, dict) and isinstance(ledger.get("version"), int):
            data = {**data, "ledger_version": ledger["version"]}
        for name, attr, conv in (("queue_depth", "queue_depth", int), ("ledger_version", "ledger_version", int),
                                 ("software", "software_version", str),
                                 ("software_version", "software_version", str), ("reader", "reader", str),
                                 ("printer", "printer", str), ("version", "software_version", str)):
            value = data.get(name)
            if isinstance(value, dict):
                state_text = str(value.get("state") or value.get("status") or "unknown")
                detail = str(value.get("detail") or "")
                value = f"{state_text}: {detail}"[:120] if detail and state_text != "ok" else state_text
            if value is not None:
                try:
                    setattr(state, attr, conv(value))
                except (TypeError, ValueError):
                    pass
        state.save()

    def _advance_all(self, new_seqs: dict[str, list[int]], now: str) -> dict[str, list[int]]:
        """Move each device's contiguous mark. Fast path (the usual case): the batch extends a
        gap-free sequence by the next numbers, so no query is needed beyond one state load."""
        if not new_seqs:
            return {}
        devices = sorted(new_seqs)
        states: dict[str, DeviceState] = {}
        for i in range(0, len(devices), 500):
            for st in DeviceState.select().where(DeviceState.device.in_(devices[i:i + 500])):
                states[st.device] = st
        missing_states = [d for d in devices if d not in states]
        if missing_states:
            _bulk(DeviceState, ["device", "online", "last_seen", "queue_depth", "ledger_version", "software_version",
                                "reader", "printer", "contiguous_seq", "highest_seq"],
                  [(d, True, now, 0, 0, "", "", "", 0, 0) for d in missing_states])
            for st in DeviceState.select().where(DeviceState.device.in_(missing_states)):
                states[st.device] = st
        plan: dict[str, list[int]] = {}
        updates = []
        for d in devices:
            st = states[d]
            seqs = sorted(new_seqs[d])
            base = st.contiguous_seq
            if st.highest_seq == base and seqs == list(range(base + 1, base + 1 + len(seqs))):
                updates.append((seqs[-1], seqs[-1], now, d))
            else:
                plan[d] = self._advance(d, now, st)
        if updates:
            db = central_db.obj
            mark = "?" if isinstance(db, SqliteDatabase) else "%s"
            sql = (f"UPDATE central_device_state SET contiguous_seq = {mark}, highest_seq = {mark}, "
                   f"last_seen = {mark}, online = {'1' if mark == '?' else 'TRUE'} WHERE device = {mark}")
            if isinstance(db, SqliteDatabase):
                db.connection().executemany(sql, updates)
            else:
                for u in updates:
                    db.execute_sql(sql, u)
        return plan

    def _advance(self, device_id: str, now: str, state: DeviceState | None = None) -> list[int]:
        """Move the device's contiguous mark; record gaps; return newly missing seqs to request."""
        state = state or self._state(device_id)
        seqs = [s for (s,) in Message.select(Message.seq).where(
            (Message.device == device_id) & (Message.seq > state.contiguous_seq)).order_by(Message.seq).tuples()]
        contiguous = state.contiguous_seq
        for s in seqs:
            if s != contiguous + 1:
                break
            contiguous = s
        highest = max([state.highest_seq, *seqs]) if seqs else state.highest_seq
        present = set(seqs)
        missing = [s for s in range(contiguous + 1, highest) if s not in present][:MAX_GAP_REQUEST]
        SequenceGap.delete().where((SequenceGap.device == device_id) & (
            (SequenceGap.seq <= contiguous) | SequenceGap.seq.in_(list(present) or [0]))).execute()
        known = {s for (s,) in SequenceGap.select(SequenceGap.seq).where(SequenceGap.device == device_id).tuples()}
        fresh = [s for s in missing if s not in known]
        if fresh:
            _bulk(SequenceGap, ["device", "seq", "detected_at", "resend_requested_at", "resend_count"],
                  [(device_id, s, now, now, 1) for s in fresh])
        state.contiguous_seq, state.highest_seq, state.last_seen = contiguous, highest, now
        if not state.online:
            state.online = True
        state.save()
        return fresh

    def overdue_gaps(self, older_than: timedelta, max_requests: int = 5) -> list[tuple[str, bytes]]:
        """Ask again for gaps nobody filled; after max_requests they stay reported as missing."""
        now = self.clock.now()
        cutoff = iso(now - older_than)
        plan: dict[str, list[int]] = {}
        with write_transaction():
            rows = list(SequenceGap.select().where((SequenceGap.resend_requested_at < cutoff) &
                                                   (SequenceGap.resend_count < max_requests)))
            for g in rows:
                plan.setdefault(g.device, []).append(g.seq)
                SequenceGap.update(resend_requested_at=iso(now), resend_count=g.resend_count + 1).where(
                    (SequenceGap.device == g.device) & (SequenceGap.seq == g.seq)).execute()
        return [(device_topic(d, "resend"), self.resend_token(d, seqs, iso(now))) for d, seqs in plan.items()]

    # --- downlink -----------------------------------------------------------------------
    def ack_token(self, device_id: str, items: list[tuple[str, int]], now: str) -> bytes:
        """The sync contract's ack (sync/acks.py): ids plus the same messages as seq ranges."""
        payload = {"schema": ACK_SCHEMA, "device": device_id, "acked_at": now,
                   "ids": [i for i, _ in items], "ranges": seq_ranges([s for _, s in items])}
        return jws_sign(canonical_json(payload), self.signer, ACK_TYP)

    def resend_token(self, device_id: str, seqs: list[int], now: str) -> bytes:
        payload = {"schema": RESEND_SCHEMA, "device": device_id, "acked_at": now, "ids": [],
                   "ranges": seq_ranges(seqs)}
        return jws_sign(canonical_json(payload), self.signer, ACK_TYP)


def seq_ranges(seqs: list[int]) -> list[list[int]]:
    """[3, 1, 2, 7] -> [[1, 3], [7, 7]]"""
    out: list[list[int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def _unregistered(device_id: str) -> str:
    return f"device {device_id} is not in the registry (or retired): `ewarung central device add`"


def _peek_kid(token: bytes) -> str:
    return jws_peek(token)["kid"]


def _select_in(sql: str, values: list, first=None) -> list[tuple]:
    """A parameterised `... IN (...)` query on either backend, without the query builder."""
    db = central_db.obj
    mark = "?" if isinstance(db, SqliteDatabase) else "%s"
    params = ([first] if first is not None else []) + list(values)
    text = sql.replace("{p}", mark).replace("({})", "(" + ", ".join(mark for _ in values) + ")")
    return list(db.execute_sql(text, params).fetchall()) if values else []


def _select_pairs(pairs: list[tuple[str, int]]) -> list[tuple]:
    """(id, device, seq) of the stored messages with these (device, seq) pairs: a VALUES list joined
    on the unique (device, seq) index (a row-value IN would scan the table on SQLite)."""
    if not pairs:
        return []
    db = central_db.obj
    mark = "?" if isinstance(db, SqliteDatabase) else "%s"
    values = ", ".join(f"({mark}, {mark})" for _ in pairs)
    sql = (f"SELECT m.id, m.device, m.seq FROM (VALUES {values}) AS v "
           "JOIN central_message m ON m.device = v.column1 AND m.seq = v.column2")
    return list(db.execute_sql(sql, [x for pair in pairs for x in pair]).fetchall())


def _bulk(model, columns: list[str], rows: list[tuple], ignore_conflicts: bool = False) -> None:
    """Insert many rows in the current transaction. On SQLite a plain executemany (peewee's
    query builder costs more than the insert itself at thousands of rows a second)."""
    if not rows:
        return
    db = central_db.obj
    if isinstance(db, SqliteDatabase):
        table = model._meta.table_name
        names = ", ".join(model._meta.fields[c].column_name for c in columns)
        marks = ", ".join("?" for _ in columns)
        verb = "INSERT OR IGNORE" if ignore_conflicts else "INSERT"
        db.connection().executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})".replace("INSERT", verb, 1), rows)
        return
    fields = [getattr(model, c) for c in columns]
    for i in range(0, len(rows), 400):
        q = model.insert_many(rows[i:i + 400], fields=fields)
        if ignore_conflicts:
            q = q.on_conflict_ignore()
        q.execute()


# --- MQTT ------------------------------------------------------------------------------------


def subscriptions(group: str | None) -> list[str]:
    topics = [f"{TOPIC_ROOT}/devices/+/{leaf}" for leaf in DEVICE_LEAVES]
    return [f"$share/{group}/{t}" for t in topics] if group else topics


class MqttRunner:
    """Runs a CentralConsumer against a broker: manual PUBACK after commit, then signed acks."""

    def __init__(self, consumer: CentralConsumer, host: str, port: int, *, client_id: str, group: str | None = "ewarung-central",
                 batch_max: int = 500, gap_retry: timedelta = timedelta(seconds=30),
                 on_batch: Callable[[Outcome], None] | None = None, tls: dict | None = None,
                 username: str | None = None, password: str | None = None, city: str | None = "samarinda",
                 snapshot_every: float = 10.0, verify_workers: int | None = None) -> None:
        """`verify_workers`: processes that check signatures while this thread receives and stores
        (default 1 on a machine with 2 or more CPUs, else 0 = verify in this thread)."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.consumer, self.batch_max, self.gap_retry, self.on_batch = consumer, batch_max, gap_retry, on_batch
        self.queue: queue.Queue[Incoming] = queue.Queue()
        self.stop_event = threading.Event()
        self.connected = threading.Event()
        self.group = group
        self.city, self.snapshot_every, self._last_snapshot = city, snapshot_every, -1e9
        self._snapshot_wanted: set[str] = set()
        self.totals = Outcome()
        self.verify_workers = ((1 if (os.cpu_count() or 1) >= 2 else 0) if verify_workers is None
                               else max(0, verify_workers))
        self._pool = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5, manual_ack=True)
        if username:
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set(**tls)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *a: self.connected.clear()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 24 * 3600
        props.ReceiveMaximum = 1000
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(host, port, keepalive=30, clean_start=False, properties=props)
        self._backoff = self._db_backoff = 1.0

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        client.subscribe([(t, 1) for t in subscriptions(self.group)])
        self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        self.queue.put(Incoming(msg.topic, msg.payload, msg.mid, msg.qos))

    def start(self) -> None:
        """One thread does both network and storage: no GIL convoy between a paho network thread
        and the CPU-bound store (measured: about 3x the throughput of two threads). Signatures are
        checked in `verify_workers` processes, started (and warmed up) here."""
        if self.verify_workers:
            try:
                self._new_pool().submit(verify_batch, [], {}).result(timeout=60)
            except Exception as exc:  # noqa: BLE001 - no worker: verify in the consumer thread
                self._no_workers(f"did not start ({exc})")
        self.worker = threading.Thread(target=self._work, name="central-consumer", daemon=True)
        self.worker.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.worker.join(timeout=15)

    def _pump(self, timeout: float) -> None:
        """Run the paho loop once; reconnect with backoff when the link is down."""
        import paho.mqtt.client as mqtt

        rc = self.client.loop(timeout=timeout)
        if rc == mqtt.MQTT_ERR_SUCCESS:
            self._backoff = 1.0
            return
        if rc == mqtt.MQTT_ERR_NO_CONN or rc == mqtt.MQTT_ERR_CONN_LOST or not self.connected.is_set():
            self.stop_event.wait(self._backoff)
            self._backoff = min(self._backoff * 2, 30.0)
            try:
                self.client.reconnect()
            except OSError as exc:
                log.warning("broker unreachable: %s (retrying in %.0f s)", exc, self._backoff)

    def _answer_snapshot_requests(self) -> None:
        """Republish the newest snapshot (broadcast) for devices that asked; requests arriving within
        `snapshot_every` seconds of the last republish wait for the next one (one answer serves all)."""
        from sync.central.ledger_publish import latest_snapshot

        if not self._snapshot_wanted or time.monotonic() - self._last_snapshot < self.snapshot_every:
            return
        devices, self._snapshot_wanted = sorted(self._snapshot_wanted), set()
        snap = latest_snapshot()
        if snap is None or not self.city:
            log.warning("devices %s asked for a snapshot; none published yet (ewarung central publish-ledger)", devices)
            return
        self._last_snapshot = time.monotonic()
        for topic, token in snap.messages(self.city):
            self.client.publish(topic, token, qos=1)
        log.info("snapshot v%d republished for %s", snap.version, ", ".join(devices))

    def _work(self) -> None:
        """Receive -> (verify in the worker process) -> store + commit -> PUBACK + signed acks.
        With a verify worker, batch k+1 is verified while batch k is stored (at most `depth`
        batches in the pipeline); batches are stored and acknowledged strictly in order."""
        last_gap_check = time.monotonic()
        self._backoff = 1.0
        try:
            self.client.reconnect()
        except OSError as exc:
            log.warning("broker unreachable: %s", exc)
        pending: deque[tuple[list[Incoming], tuple | None]] = deque()
        depth = 2 if self.verify_workers else 1
        try:
            while not self.stop_event.is_set():
                self._pump(0.2 if self.queue.empty() and not pending else 0.0)
                # keep reading while packets are waiting, up to one batch
                while 0 < self.queue.qsize() < self.batch_max:
                    before = self.queue.qsize()
                    self._pump(0.0)
                    if self.queue.qsize() == before:
                        break
                formed = False
                if len(pending) < depth:
                    batch = []
                    while len(batch) < self.batch_max:
                        try:
                            batch.append(self.queue.get_nowait())
                        except queue.Empty:
                            break
                    if batch:
                        pending.append((batch, self._submit(batch)))
                        formed = True
                # store the oldest batch once its verification is done, or when there is nothing
                # else to overlap it with (pipeline full, or no new batch this round)
                if pending and (len(pending) >= depth or not formed or _done(pending[0][1])):
                    batch, job = pending.popleft()
                    if not self._store_and_ack(batch, self._verdicts(batch, job)):
                        pending.clear()  # not acknowledged either: the broker redelivers them
                        continue
                self._answer_snapshot_requests()
                if time.monotonic() - last_gap_check > 5:
                    last_gap_check = time.monotonic()
                    for topic, token in self.consumer.overdue_gaps(self.gap_retry):
                        self.client.publish(topic, token, qos=1)
        finally:
            self._drop_pool()
        try:
            self.client.disconnect()
            for _ in range(20):
                if self.client.loop(timeout=0.05) != 0:
                    break
        except OSError:
            pass

    def _store_and_ack(self, batch: list[Incoming], verdicts) -> bool:
        try:
            outcome = self.consumer.process(batch, verdicts)
        except Exception as exc:
            # nothing committed: no PUBACK and no ack; the broker redelivers after the reconnect
            log.error("storing a batch of %d failed (%s); nothing acknowledged, retrying in %.0f s",
                      len(batch), exc, self._db_backoff)
            self.totals.failures += 1
            try:
                central_db.close()  # a fresh connection next time (database restarted)
            except Exception:  # noqa: BLE001 - already broken
                pass
            self.stop_event.wait(self._db_backoff)
            self._db_backoff = min(self._db_backoff * 2, 30.0)
            self.connected.clear()
            try:
                self.client.reconnect()
            except OSError:
                pass
            return False
        # committed: now the broker may forget the messages and the devices may too
        self._db_backoff = 1.0
        for m in batch:
            if m.qos > 0:
                self.client.ack(m.mid, m.qos)
        for topic, token in outcome.acks + outcome.resends:
            self.client.publish(topic, token, qos=1)
        self._snapshot_wanted.update(outcome.snapshot_requests)
        self.totals.stored += outcome.stored
        self.totals.duplicates += outcome.duplicates
        self.totals.rejected += outcome.rejected
        if self.on_batch:
            self.on_batch(outcome)
        return True

    # --- signature verification in a worker process ---------------------------------------
    def _submit(self, batch: list[Incoming]) -> tuple | None:
        """Hand the batch's signature checks to the worker (None: `process` verifies them here)."""
        if not self.verify_workers:
            return None
        try:
            jobs, where, pems = self.consumer.verify_jobs(batch)
        except Exception:  # noqa: BLE001 - registry unreadable (database down): process() fails the same way and retries
            return None
        if not jobs:
            return None
        try:
            return (self._pool or self._new_pool()).submit(verify_batch, jobs, pems), where
        except Exception as exc:  # noqa: BLE001 - a broken pool: verify in this thread
            self._no_workers(f"unavailable ({exc})")
            return None

    def _verdicts(self, batch: list[Incoming], job: tuple | None) -> list | None:
        if job is None:
            return None
        future, where = job
        try:
            results = future.result()
        except Exception as exc:  # noqa: BLE001 - the worker died: verify this batch here instead
            self._no_workers(f"failed ({exc})")
            return None
        verdicts: list = [None] * len(batch)
        for i, v in zip(where, results, strict=True):
            verdicts[i] = v
        return verdicts

    def _new_pool(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: this process has threads (paho, the fleet page)
        self._pool = ProcessPoolExecutor(self.verify_workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def _no_workers(self, why: str) -> None:
        """Verify in the consumer thread from now on (slower, never wrong)."""
        log.warning("signature worker %s; verifying in the consumer thread from now on", why)
        self.verify_workers = 0
        self._drop_pool()

    def _drop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _done(job: tuple | None) -> bool:
    return job is None or job[0].done()


def gap_summary() -> list[tuple[str, int, str, int]]:
    """(device, seq, detected_at, resend requests) of every sequence number still missing."""
    return list(SequenceGap.select(SequenceGap.device, SequenceGap.seq, SequenceGap.detected_at,
                                   SequenceGap.resend_count).order_by(SequenceGap.device, SequenceGap.seq).tuples())


def parse_when(text: str):
    return parse_iso(text)
