"""The consumer's storage: bulk SQL for device messages, their sequence marks and gaps.

Kept apart from the consumer's decisions (sync/central/consumer.py) so that what is stored and
how fast it is written can change without touching what is accepted. Every function runs inside
the caller's transaction (`store.write_transaction`), on SQLite or PostgreSQL alike; on SQLite
the hot inserts skip peewee's query builder, which costs more than the insert itself at the
consumer's rates.
"""

from __future__ import annotations

import json
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import NamedTuple

from peewee import SqliteDatabase

from pos.clock import parse_iso
from pos.signing import canonical_json
from sync.central.store import (
    DeviceState,
    EventRecord,
    Message,
    RedemptionRecord,
    Rejected,
    SequenceGap,
    VoidRecord,
    central_db,
)

_items_json = json.JSONEncoder(sort_keys=True).encode  # json.dumps(items, sort_keys=True), one encoder for all
_quoted = encode_basestring_ascii  # a str as json.dumps writes it (ensure_ascii)
ID_CHUNK = 500  # ids per `IN (...)` query: under every backend's parameter limit
PAIR_CHUNK = 400  # (device, seq) pairs per VALUES join: two parameters each


class Accepted(NamedTuple):
    """A verified sequenced message on its way to the database."""

    device: str
    seq: int
    kind: str
    envelope: dict
    token: str
    problems: tuple[str, ...] = ()  # what its content failed (sync.central.verify.Checked): quarantine it
    at: float | None = None  # created_at as POSIX seconds (Checked.at; None: unparsed or not a time)

    def seconds(self) -> float | None:
        """created_at as POSIX seconds: the verify worker's reading (`at`) when it made one, else
        the text read here as the cross-checks always read it (None: not a time)."""
        return self.at if self.at is not None else time_seconds(self.envelope["created_at"])


@lru_cache(maxsize=8192)
def iso_seconds(text: str) -> float:
    """`pos.clock.parse_iso(text)` as POSIX seconds, raising as it does. Cached: a batch compares its
    messages with the same few stored times (list changes, hotlist spans) again and again."""
    return parse_iso(text).timestamp()


def time_seconds(text: str) -> float | None:
    """`iso_seconds`, None when the text is not a time."""
    try:
        return iso_seconds(text)
    except (ValueError, TypeError, OverflowError, AttributeError):
        return None


def _mark() -> str:
    return "?" if isinstance(central_db.obj, SqliteDatabase) else "%s"


def _chunks(values: list, size: int):
    for i in range(0, len(values), size):
        yield values[i:i + size]


@lru_cache(maxsize=64)
def _marks(mark: str, count: int, width: int = 1) -> str:
    """`count` parameter marks, or `count` rows of `width` of them: the same few lists every batch."""
    one = mark if width == 1 else f"({', '.join([mark] * width)})"
    return ", ".join([one] * count)


def _in_index_order(values: list) -> list:
    """The distinct values sorted, as the index a lookup reads them from is: each lookup then starts
    near the one before it, which costs less than a batch's random order."""
    try:
        return sorted(set(values))
    except TypeError:  # values of kinds that do not compare: first seen first
        return list(dict.fromkeys(values))


def select_in(sql: str, values: list) -> list[tuple]:
    """Rows of `sql`, whose `{in}` is replaced by a parameter list, for every value (in chunks
    under every backend's parameter limit): one query per chunk, not one per message. The rows
    come in no promised order (ORDER BY in `sql` gives one)."""
    rows: list[tuple] = []
    mark = _mark()
    for chunk in _chunks(_in_index_order(values), ID_CHUNK):
        rows += central_db.obj.execute_sql(sql.replace("{in}", _marks(mark, len(chunk))), chunk).fetchall()
    return rows


def select_pairs(sql: str, pairs: list[tuple]) -> list[tuple]:
    """Rows of `sql`, whose `{values}` is replaced by a VALUES list of these pairs (columns
    `v.column1`, `v.column2`), joined on a unique index: one query per chunk of pairs."""
    rows: list[tuple] = []
    mark = _mark()
    for chunk in _chunks(list(dict.fromkeys(pairs)), PAIR_CHUNK):
        values = _marks(mark, len(chunk), 2)
        rows += central_db.obj.execute_sql(sql.replace("{values}", values), [x for p in chunk for x in p]).fetchall()
    return rows


def known_ids(ids: list[str]) -> dict[str, tuple[str, int]]:
    """{message id: (device, seq)} of the ids already stored: a redelivery is acknowledged again,
    not stored twice."""
    return {mid: (dev, seq) for mid, dev, seq in select_in(
        "SELECT id, device, seq FROM central_message WHERE id IN ({in})", ids)}


def taken_seqs(pairs: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """{(device, seq): stored message id} for these pairs: a VALUES list joined on the unique
    (device, seq) index, one query per chunk rather than one per device (a row-value IN would scan
    the table on SQLite)."""
    return {(dev, seq): mid for mid, dev, seq in select_pairs(
        "SELECT m.id, m.device, m.seq FROM (VALUES {values}) AS v "
        "JOIN central_message m ON m.device = v.column1 AND m.seq = v.column2", pairs)}


def insert_rows(model, columns: list[str], rows: list[tuple], ignore_conflicts: bool = False) -> None:
    """Insert many rows in the current transaction; on SQLite a plain executemany."""
    if not rows:
        return
    db = central_db.obj
    if isinstance(db, SqliteDatabase):
        table = model._meta.table_name
        names = ", ".join(model._meta.fields[c].column_name for c in columns)
        marks = ", ".join("?" for _ in columns)
        verb = "INSERT OR IGNORE" if ignore_conflicts else "INSERT"
        db.connection().executemany(f"{verb} INTO {table} ({names}) VALUES ({marks})", rows)
        return
    fields = [getattr(model, c) for c in columns]
    for chunk in _chunks(rows, PAIR_CHUNK):
        q = model.insert_many(chunk, fields=fields)
        if ignore_conflicts:
            q = q.on_conflict_ignore()
        q.execute()


def _items_text(items: dict[str, int]) -> str:
    """{item: qty} as `json.dumps(items, sort_keys=True)` writes it, joined here for item codes (the
    encoder's set-up costs more than a basket's few pairs); anything else is json's own."""
    try:
        return "{" + ", ".join([f"{_quoted(item)}: {qty}" for item, qty in sorted(items.items())]) + "}"
    except TypeError:  # an item that is not a string
        return _items_json(items)


def store_messages(new: list[Accepted], now: str, uncounted: set[str] = frozenset()) -> None:
    """Each message's signed bytes, plus the row the reports read (redemption, void or event),
    except for the messages in `uncounted` (quarantined, or a void waiting for its sale)."""
    msgs, reds, voids, events = [], [], [], []
    for dev, seq, kind, env, tok, _, _ in new:
        mid, created = env["id"], env["created_at"]
        msgs.append((mid, dev, seq, kind, created, now, tok))
        if mid in uncounted:
            continue
        body = env["body"]
        if kind == "redemption":
            items: dict[str, int] = {}
            for ln in body.get("lines", []):
                item = ln["item"]
                items[item] = items.get(item, 0) + int(ln["qty"])
            cb = body.get("collected_by") or {}
            reds.append((body["redemption_id"], mid, dev, seq, body.get("shop_id", ""), body["household"],
                         body["period"], body.get("card_id", "") or "", body.get("cashier", ""),
                         cb.get("kind", "holder"), cb.get("name", ""), int(body.get("ledger_version") or 0),
                         body.get("mode", "card"), int(body["total"]), _items_text(items), created))
        elif kind == "void":
            voids.append((body["void_id"], mid, dev, body["redemption_id"], body.get("household", ""),
                          body.get("period", ""), int(body.get("amount") or 0), body.get("reason", ""), created))
        else:
            events.append((mid, dev, str(body.get("event", "")), str(body.get("household", "")),
                           str(body.get("problem", "")), str(body.get("note", "")),
                           canonical_json(body).decode(), created))
    insert_rows(Message, ["id", "device", "seq", "kind", "created_at", "received_at", "token"], msgs)
    insert_rows(RedemptionRecord, ["id", "msg_id", "device", "seq", "shop_id", "household", "period", "card_id",
                                   "cashier", "collected_by", "collector_name", "ledger_version", "mode", "total",
                                   "items", "created_at"], reds)
    insert_rows(VoidRecord, ["id", "msg_id", "device", "redemption_id", "household", "period", "amount", "reason",
                             "created_at"], voids, ignore_conflicts=True)
    insert_rows(EventRecord, ["id", "device", "event", "household", "problem", "note", "body", "created_at"], events)


def store_rejected(rejected: list[tuple[str, str, bytes]], now: str) -> None:
    """Refused messages (topic, reason, payload) kept, truncated, for the operator to look at."""
    for topic, reason, payload in rejected:
        Rejected.insert(topic=topic[:255], reason=reason[:2000], received_at=now,
                        payload_head=payload[:200].decode("ascii", "replace")).execute()


def device_state(device_id: str) -> DeviceState:
    """The device's state row, created on first contact (a status may come before any message)."""
    state = DeviceState.get_or_none(DeviceState.device == device_id)
    if state is None:
        state = DeviceState.create(device=device_id)
    return state


class Marks(NamedTuple):
    """A device's sequence marks as its batch found them (central_device_state)."""

    contiguous: int  # every seq 1..contiguous is stored
    highest: int
    checked_to: int  # a seq above this was never stored: `highest`, or any seq for a device without marks yet


def device_marks(devices: list[str], now: str) -> dict[str, Marks]:
    """The marks of these devices in a few queries; a device without a state row gets one (online,
    seen now), and its every number is looked up as if it might be taken."""
    marks = {device: Marks(contiguous, highest, highest) for device, contiguous, highest in select_in(
        "SELECT device, contiguous_seq, highest_seq FROM central_device_state WHERE device IN ({in})", devices)}
    missing = [d for d in devices if d not in marks]
    if missing:
        insert_rows(DeviceState, ["device", "online", "last_seen", "queue_depth", "ledger_version", "software_version",
                                  "reader", "printer", "contiguous_seq", "highest_seq"],
                    [(d, True, now, 0, 0, "", "", "", 0, 0) for d in missing])
        marks.update((d, Marks(0, 0, 2**63 - 1)) for d in missing)
    return marks


def extend_marks(updates: list[tuple[int, int, str, str]]) -> None:
    """(contiguous, highest, last_seen, device): the usual batch, a gap-free run of next numbers,
    moves each device's marks with one statement and no read."""
    if not updates:
        return
    db = central_db.obj
    mark = _mark()
    sql = (f"UPDATE central_device_state SET contiguous_seq = {mark}, highest_seq = {mark}, "
           f"last_seen = {mark}, online = {'1' if mark == '?' else 'TRUE'} WHERE device = {mark}")
    if isinstance(db, SqliteDatabase):
        db.connection().executemany(sql, updates)
    else:
        for u in updates:
            db.execute_sql(sql, u)


def seqs_after(device_id: str, mark: int) -> list[int]:
    """The stored sequence numbers above the device's contiguous mark, in order."""
    return [s for (s,) in Message.select(Message.seq).where(
        (Message.device == device_id) & (Message.seq > mark)).order_by(Message.seq).tuples()]


def record_gaps(device_id: str, contiguous: int, present: set[int], missing: list[int], now: str) -> list[int]:
    """Forget the gaps now filled; record the missing numbers not recorded yet and return them
    (the ones to ask the device for now; older ones are asked again by `due_gaps`)."""
    SequenceGap.delete().where((SequenceGap.device == device_id) & (
        (SequenceGap.seq <= contiguous) | SequenceGap.seq.in_(list(present) or [0]))).execute()
    known = {s for (s,) in SequenceGap.select(SequenceGap.seq).where(SequenceGap.device == device_id).tuples()}
    fresh = [s for s in missing if s not in known]
    insert_rows(SequenceGap, ["device", "seq", "detected_at", "resend_requested_at", "resend_count"],
                [(device_id, s, now, now, 1) for s in fresh])
    return fresh


def due_gaps(cutoff: str, max_requests: int, now: str) -> dict[str, list[int]]:
    """{device: seqs} of gaps last asked for before `cutoff`, fewer than `max_requests` times;
    each is counted as asked again now."""
    plan: dict[str, list[int]] = {}
    rows = list(SequenceGap.select().where((SequenceGap.resend_requested_at < cutoff) &
                                           (SequenceGap.resend_count < max_requests)))
    for g in rows:
        plan.setdefault(g.device, []).append(g.seq)
        SequenceGap.update(resend_requested_at=now, resend_count=g.resend_count + 1).where(
            (SequenceGap.device == g.device) & (SequenceGap.seq == g.seq)).execute()
    return plan
