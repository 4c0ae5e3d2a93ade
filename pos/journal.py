"""Append-only journal whose entries are hash-chained, so an edit or a deletion shows.

Each entry's hash is SHA-256 over the previous hash and the entry's canonical JSON. The
chain starts from a fixed genesis value. `verify` walks it in batches (constant memory).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from pos.db import JournalEntry

GENESIS = "0" * 64


def _digest(prev_hash: str, entry_id: int, at: str, kind: str, ref: str, data: str) -> str:
    body = json.dumps([entry_id, at, kind, ref, data], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def append(at: str, kind: str, ref: str = "", data: dict | None = None) -> JournalEntry:
    """Append an entry; call inside the transaction of the change it records."""
    last = JournalEntry.select(JournalEntry.id, JournalEntry.hash).order_by(JournalEntry.id.desc()).first()
    prev_hash = last.hash if last else GENESIS
    entry_id = (last.id + 1) if last else 1
    text = json.dumps(data or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = _digest(prev_hash, entry_id, at, kind, ref, text)
    return JournalEntry.create(id=entry_id, at=at, kind=kind, ref=ref, data=text, prev_hash=prev_hash, hash=digest)


@dataclass(frozen=True)
class ChainReport:
    """The verdict of verify: whether the chain holds, how many
    entries it checked, and the first one that broke it."""

    ok: bool
    entries: int
    first_bad_id: int | None = None
    problem: str = ""


def verify(batch: int = 5000, progress: Callable[[int], None] | None = None) -> ChainReport:
    """Check every link; report the first entry that does not chain."""
    prev_hash = GENESIS
    expected_id = 1
    count = 0
    last_id = 0
    while True:
        rows = list(
            JournalEntry.select().where(JournalEntry.id > last_id).order_by(JournalEntry.id).limit(batch).tuples()
        )
        if not rows:
            break
        for entry_id, at, kind, ref, data, stored_prev, stored_hash in rows:
            if entry_id != expected_id:
                return ChainReport(False, count, expected_id, f"entry {expected_id} is missing (next is {entry_id})")
            if stored_prev != prev_hash:
                return ChainReport(False, count, entry_id, "does not point at the previous entry's hash")
            if _digest(prev_hash, entry_id, at, kind, ref, data) != stored_hash:
                return ChainReport(False, count, entry_id, "content does not match its hash (edited)")
            prev_hash = stored_hash
            expected_id += 1
            count += 1
            last_id = entry_id
        if progress:
            progress(count)
    return ChainReport(True, count)
