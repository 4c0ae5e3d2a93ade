"""The reference central consumer: verify, de-duplicate, store durably, then acknowledge.

`CentralConsumer.process(batch)` decides, for a batch of messages, what is stored, what is a
duplicate, what is refused and which acks and resend requests go out after the commit. It has no
transport (tests and the benchmark drive it directly); `sync.central.runner.MqttRunner` attaches it
to a broker, and `sync.central.message_store` holds its SQL. `MqttRunner` and the contract's ack
constants are re-exported here for the callers that import them from this module.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property, lru_cache
from typing import NamedTuple

from pos.clock import Clock, SystemClock, iso
from pos.messages import MESSAGE_TYP, SEQUENCED_KINDS, TOPIC_ROOT, device_topic
from pos.signing import BadSignature, Signer, jws_peek, jws_verify
from sync.acks import ACK_SCHEMA, ACK_TYP, RESEND_SCHEMA, RESEND_TYP, build_ack, seq_ranges
from sync.central.convergence import record_report
from sync.central.evidence_checks import demo_issuer_keys, issuer_pems
from sync.central.message_store import (
    ID_CHUNK,
    Accepted,
    Marks,
    device_marks,
    device_state,
    due_gaps,
    extend_marks,
    known_ids,
    record_gaps,
    seqs_after,
    store_messages,
    store_rejected,
    taken_seqs,
)
from sync.central.quarantine import CrossChecks, store_judgement
from sync.central.store import Device, DeviceState, write_transaction
from sync.central.verify import Checked, Verifier

__all__ = [
    "ACK_SCHEMA", "ACK_TYP", "DEVICE_LEAVES", "RESEND_SCHEMA", "RESEND_TYP", "CentralConsumer", "Incoming",
    "Outcome", "seq_ranges",
]

log = logging.getLogger(__name__)
MAX_STATUS_NUMBER = 2**31 - 1  # fits every database's INTEGER column (PostgreSQL's is 32-bit)
DEVICE_LEAVES = (*SEQUENCED_KINDS, "status", "heartbeat", "request")
MAX_GAP_REQUEST = 500
DEVICES_PREFIX = f"{TOPIC_ROOT}/devices"


class Incoming(NamedTuple):
    """One message as the broker delivered it; `mid` and `qos` are what its PUBACK needs (a
    tuple: one per message, made from the receive buffer's (topic, payload, mid, qos))."""

    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 0


@dataclass
class Outcome:
    """What a committed batch produced: counts for the log and the downlink to publish."""

    stored: int = 0
    quarantined: int = 0  # kept and acked but not counted (sync.central.quarantine); waiting voids judged now too
    duplicates: int = 0
    rejected: int = 0
    status_updates: int = 0
    failures: int = 0
    snapshot_requests: list[str] = field(default_factory=list)  # devices that asked for a snapshot
    acks: list[tuple[str, bytes]] = field(default_factory=list)  # (topic, signed ack) to publish
    resends: list[tuple[str, bytes]] = field(default_factory=list)


@lru_cache(maxsize=65_536)  # a few topics per device, asked twice for every message
def device_leaf(topic: str) -> tuple[str, str] | None:
    """(device, leaf) of a device topic this consumer handles, None for any other topic."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != DEVICES_PREFIX or parts[4] not in DEVICE_LEAVES:
        return None
    return parts[3], parts[4]


class CentralConsumer:
    """Verify -> de-duplicate -> store -> ack decisions for batches of device messages.

    One instance per consumer thread: it caches the registered keys of the devices it has heard.
    `issuer_keys` (by key id) are the card issuers whose certificates it believes; the default,
    the DEMO issuer, is for tests and the demo (pos/roots/central.py warns when a city runs on it)."""

    def __init__(self, ack_signer: Signer, clock: Clock | None = None, issuer_keys: dict | None = None) -> None:
        self.signer = ack_signer
        self.clock = clock or SystemClock()
        self._keys: dict[str, object] = {}
        self._pems: dict[str, str] = {}
        self.issuer_keys = demo_issuer_keys() if issuer_keys is None else dict(issuer_keys)
        self.issuer_pems = issuer_pems(self.issuer_keys)  # what a verify worker is given with each batch
        self._verifier = Verifier(self.issuer_keys)

    # --- registry -------------------------------------------------------------------
    def device_key(self, device_id: str):
        """The registered, active device's public key (None: refuse its messages), cached."""
        if device_id not in self._keys:
            self._load_keys({device_id})
        return self._keys.get(device_id)

    def _load_keys(self, device_ids: set[str]) -> None:
        """Read the registered keys of the devices not heard yet with one query per chunk, not one
        per device (a city's first batch names hundreds); the unregistered stay unknown."""
        unknown = sorted(d for d in device_ids if d not in self._keys)
        for i in range(0, len(unknown), ID_CHUNK):
            for device_id, pem in Device.select(Device.id, Device.public_key_pem).where(
                    Device.id.in_(unknown[i:i + ID_CHUNK]) & (Device.status == "active")).tuples():
                self._keys[device_id], self._pems[device_id] = self._verifier.key_for(pem), pem

    def forget_keys(self) -> None:
        """Read the registry again (a device retired or its key replaced)."""
        self._keys.clear()
        self._pems.clear()

    # --- processing -----------------------------------------------------------------
    @cached_property
    def _checks(self) -> CrossChecks:
        """The cross-message checks of the write path (sync.central.quarantine), made on first use."""
        return CrossChecks()

    def process(self, batch: list[Incoming], verified: list[tuple[bool, object] | None] | None = None) -> Outcome:
        """Verify and store a batch in ONE transaction; return the acks to send after commit.

        `verified`, if given, is aligned with `batch`: the result of `verify.verify_batch` for the
        messages `verify_jobs` handed out ((True, Checked) or (False, reason)), None for the rest,
        which are verified here."""
        out = Outcome()
        now = iso(self.clock.now())
        accepted: list[Accepted] = []
        statuses: list[tuple[str, str, dict]] = []
        rejected: list[tuple[str, str, bytes]] = []
        for i, msg in enumerate(batch):
            where = device_leaf(msg.topic)
            if where is None:
                rejected.append((msg.topic, "not a device topic this consumer handles", msg.payload))
                continue
            device_id, leaf = where
            try:
                if leaf == "request":
                    if self._status_payload(device_id, msg.payload, signed_only=True).get("request") == "snapshot":
                        out.snapshot_requests.append(device_id)
                elif leaf in ("status", "heartbeat"):
                    statuses.append((device_id, leaf, self._status_payload(device_id, msg.payload)))
                else:
                    verdict = verified[i] if verified is not None else None
                    if verdict is None:
                        env, problems, at = self._verify(device_id, leaf, msg.payload)
                    elif verdict[0]:
                        env, problems, at = verdict[1]
                    else:
                        raise ValueError(str(verdict[1]))
                    accepted.append(Accepted(device_id, env["seq"], leaf, env, msg.payload.decode("ascii"), problems,
                                             at))
            except (BadSignature, ValueError) as exc:
                rejected.append((msg.topic, str(exc), msg.payload))

        with write_transaction():
            marks = device_marks(sorted({m.device for m in accepted}), now)
            new, dup_ids = self._dedupe(accepted, rejected, marks)
            judged = self._checks.judge(new)
            store_messages(new, now, judged.uncounted())
            store_judgement(judged)
            for device_id, leaf, data in statuses:
                self._update_status(device_id, leaf, data, now)
            by_device: dict[str, list[Accepted]] = {}
            for m in new:
                by_device.setdefault(m.device, []).append(m)
            resend_plan = self._advance_all({d: [m.seq for m in ms] for d, ms in by_device.items()}, marks, now)
            store_rejected(rejected, now)
        # committed: now the acks may go out
        out.stored, out.duplicates, out.rejected, out.status_updates = len(new), len(dup_ids), len(rejected), len(statuses)
        out.quarantined = len(judged.quarantine)
        for row in list(judged.quarantine.values())[:20]:
            log.warning("quarantined %s seq %s from %s (%s): %s", row[3], row[2], row[1], row[4], row[5][:200])
        acked = {d: [(m.envelope["id"], m.seq) for m in ms] for d, ms in by_device.items()}
        for device_id, msg_id, seq in dup_ids:
            acked.setdefault(device_id, []).append((msg_id, seq))
        for device_id, items in acked.items():
            out.acks.append((device_topic(device_id, "ack"), self.ack_token(device_id, items, now)))
        for device_id, missing in resend_plan.items():
            if missing:
                out.resends.append((device_topic(device_id, "resend"), self.resend_token(device_id, missing, now)))
        return out

    def _verify(self, device_id: str, leaf: str, token: bytes) -> Checked:
        key = self.device_key(device_id)
        if key is None:
            raise ValueError(_unregistered(device_id))
        return self._verifier.check(device_id, leaf, key, token)

    def verify_jobs(self, batch: list[Incoming]) -> tuple[list[tuple[str, str, bytes]], list[int], dict[str, str]]:
        """The sequenced messages of `batch` from registered devices, for `verify.verify_batch` in a
        worker process: (jobs, their indexes in batch, {device: registered key PEM}). Everything
        else (status, unknown topics and devices) is left to `process`."""
        jobs, where, pems = [], [], {}
        leaves = [device_leaf(msg.topic) for msg in batch]
        self._load_keys({found[0] for found in leaves if found is not None})
        for i, (msg, found) in enumerate(zip(batch, leaves, strict=True)):
            if found is None or found[1] not in SEQUENCED_KINDS:
                continue
            pem = self._pems.get(found[0])
            if pem is None:
                continue  # not registered (or retired): `process` refuses it
            jobs.append((found[0], found[1], msg.payload))
            where.append(i)
            pems[found[0]] = pem
        return jobs, where, pems

    def _status_payload(self, device_id: str, payload: bytes, signed_only: bool = False) -> dict:
        """A status, heartbeat or request as a dict, refused when a number is out of range for the
        database or a signed one is not by the topic's device (`signed_only`: requests must be signed)."""
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

    def _dedupe(self, accepted: list[Accepted], rejected: list[tuple[str, str, bytes]], marks: dict[str, Marks]):
        """New messages to store, and (device, id, seq) of those already stored (acked again).
        A new id on a (device, seq) already taken is refused: the device's sequence was reset.
        `marks`: the devices' sequence marks, so that only numbers a device has already used are
        looked up (the usual batch only continues its devices' sequences)."""
        known = known_ids([m.envelope["id"] for m in accepted])
        taken = taken_seqs(sorted({(m.device, m.seq) for m in accepted if m.seq <= marks[m.device].checked_to}))
        new: list[Accepted] = []
        dups, seen = [], set()
        for item in accepted:
            dev, seq, kind, env, tok, _, _ = item
            mid = env["id"]
            if mid in known or mid in seen:
                dups.append((dev, mid, seq))
                continue
            if (dev, seq) in taken:
                rejected.append((device_topic(dev, kind), f"seq {seq} already used by message {taken[(dev, seq)]}; "
                                 "the device's sequence was reset (restored from a backup?)", tok.encode()))
                continue
            seen.add(mid)
            taken[(dev, seq)] = mid
            new.append(item)
        return new, dups

    def _update_status(self, device_id: str, leaf: str, data: dict, now: str) -> None:
        """What the fleet page shows: online, last seen, queue depth, ledger, software, reader, printer."""
        state = device_state(device_id)
        state.last_seen = now
        if leaf == "status":
            state.online = str(data.get("state", data.get("status", "online"))) == "online"
        else:
            state.online = True
        ledger = data.get("ledger")
        if isinstance(ledger, dict) and isinstance(ledger.get("version"), int):
            data = {**data, "ledger_version": ledger["version"]}
            if leaf == "heartbeat":
                record_report(device_id, ledger, now)
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

    def _advance_all(self, new_seqs: dict[str, list[int]], marks: dict[str, Marks], now: str) -> dict[str, list[int]]:
        """Move each device's contiguous mark. Fast path (the usual case): the batch extends a
        gap-free sequence by the next numbers, so no query is needed beyond the marks' load."""
        plan: dict[str, list[int]] = {}
        updates = []
        for d in sorted(new_seqs):
            base, highest = marks[d].contiguous, marks[d].highest
            seqs = sorted(new_seqs[d])
            if highest == base and seqs == list(range(base + 1, base + 1 + len(seqs))):
                updates.append((seqs[-1], seqs[-1], now, d))
            else:
                plan[d] = self._advance(d, now, device_state(d))
        extend_marks(updates)
        return plan

    def _advance(self, device_id: str, now: str, state: DeviceState) -> list[int]:
        """Move the device's contiguous mark; record gaps; return newly missing seqs to request."""
        seqs = seqs_after(device_id, state.contiguous_seq)
        contiguous = state.contiguous_seq
        for s in seqs:
            if s != contiguous + 1:
                break
            contiguous = s
        highest = max([state.highest_seq, *seqs]) if seqs else state.highest_seq
        present = set(seqs)
        missing = [s for s in range(contiguous + 1, highest) if s not in present][:MAX_GAP_REQUEST]
        fresh = record_gaps(device_id, contiguous, present, missing, now)
        state.contiguous_seq, state.highest_seq, state.last_seen, state.online = contiguous, highest, now, True
        state.save()
        return fresh

    def overdue_gaps(self, older_than: timedelta, max_requests: int = 5) -> list[tuple[str, bytes]]:
        """Ask again for gaps nobody filled; after max_requests they stay reported as missing."""
        now = self.clock.now()
        with write_transaction():
            plan = due_gaps(iso(now - older_than), max_requests, iso(now))
        return [(device_topic(d, "resend"), self.resend_token(d, seqs, iso(now))) for d, seqs in plan.items()]

    # --- downlink -----------------------------------------------------------------------
    def ack_token(self, device_id: str, items: list[tuple[str, int]], now: str) -> bytes:
        """The contract's ack for (id, seq) pairs: ids plus the same messages as seq ranges, so a
        device may use either."""
        return build_ack(device_id, now, self.signer, ids=[i for i, _ in items],
                         ranges=seq_ranges([s for _, s in items]))

    def resend_token(self, device_id: str, seqs: list[int], now: str) -> bytes:
        """The contract's resend request for missing sequence numbers (ranges only)."""
        return build_ack(device_id, now, self.signer, ranges=seq_ranges(seqs), schema=RESEND_SCHEMA)


def _unregistered(device_id: str) -> str:
    return f"device {device_id} is not in the registry (or retired): `ewarung central device add`"


def _peek_kid(token: bytes) -> str:
    return jws_peek(token)["kid"]


def __getattr__(name: str):
    """`MqttRunner` is re-exported lazily: the runner imports this module, and callers that only
    process batches (tests, fuzzing, the benchmark's parts) need not load paho."""
    if name == "MqttRunner":
        from sync.central.runner import MqttRunner

        return MqttRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
