"""Applying signed ledger updates from the city: snapshots (chunked, staged, swapped), deltas, hotlist.

Checks on everything: the ledger key's signature, the city, a version newer than the live one
(rollback protection), an expiry in the future. A snapshot's chunks are written into staging
tables (``stage_<table>``) in the same database as they arrive; progress survives a restart
(the staging tables and ``ledger_stage_chunk`` are on disk). Only when the signed manifest and
every chunk it lists (by sha256) are present does one transaction drop the live tables and
rename the staging tables into their place. A half-received snapshot never touches the live
ledger. Rows stream chunk by chunk: a 1,000,000-household ledger never sits in memory.

The hotlist is never lost to a snapshot: a snapshot says which hotlist serial it includes, and the
hotlist updates this device applied after that serial are applied again on top of it. A snapshot
of the live version is still taken when it includes hotlist serials this device is missing.
A delta that arrives before the version it builds on (while a snapshot is on its way) is held and
applied as soon as the ledger reaches its base.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from peewee import SqliteDatabase

from pos import journal, settings
from pos.clock import Clock, iso, parse_iso
from pos.db import LEDGER_MODELS, LedgerState
from pos.signing import BadSignature, jws_verify
from sync.ledger_format import (
    CHUNK,
    DELTA,
    HOTLIST,
    LEDGER_TYP,
    MANIFEST,
    REQUIRED,
    TABLES,
    decode_rows,
    token_hash,
)

STAGING_KEY = "ledger.staging"  # {"version": v, "manifest": "<token>" | null}
HOTLIST_SERIAL_KEY = "ledger.hotlist_serial"  # the newest hotlist update applied
HOTLIST_COMPLETE_KEY = "ledger.hotlist_complete"  # every hotlist update up to this serial is in
HOTLIST_LOG_KEY = "ledger.hotlist_log"  # the recent updates, [[serial, add, remove]], re-applied after a snapshot
HOTLIST_LOG_LENGTH = 64
HELD_DELTAS_KEY = "ledger.held_deltas"  # [[version, base_version, token]]: deltas ahead of the live ledger
HELD_DELTAS = 64
LAST_DELTA_KEY = "ledger.last_delta"  # sha256 of the delta token applied last: its redelivery is no replay
MODEL_BY_TABLE = {m._meta.table_name: m for m in LEDGER_MODELS}
SCHEMAS_BY_TOPIC = {"snapshot": (MANIFEST, CHUNK), "delta": (DELTA,), "hotlist": (HOTLIST,)}
"""The ledger schemas each ledger topic carries: a token on another topic is refused (`wrong_topic`),
so a consumer or an ACL that trusts the topic sees what the device applies."""


# What hostile content in a well-signed message can raise below: refused as "malformed". A
# wrongly typed field (None.replace), a huge integer (OverflowError binding it), a row SQLite will
# not take (wrong number of values, a list in a column, NOT NULL).
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, OverflowError, zlib.error,
             sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.IntegrityError)


class LedgerRefused(ValueError):
    """A ledger update that must not be applied; `code` is machine-readable, the message says why."""

    def __init__(self, code: str, message: str, version: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.version = version  # the refused update's version, when it says which


@dataclass(frozen=True)
class IntakeResult:
    """What one ledger token did, for the sync log and for callers that refresh on a change."""

    kind: str  # manifest | chunk | delta | hotlist
    version: int
    applied: bool  # True when the live ledger (or hotlist) changed
    detail: str = ""
    missing: bool = False  # hotlist updates were skipped: a snapshot would bring them
    content: bool = True  # more than confirmed spending may have changed (the ledger digest with it)


class LedgerIntake:
    """The device's side of ledger distribution: verify, stage, and apply updates atomically."""

    def __init__(self, db: SqliteDatabase, keys: dict, city: str, clock: Clock,
                 on_applied: Callable[[IntakeResult], None] | None = None) -> None:
        self.db, self.keys, self.city, self.clock = db, keys, city, clock
        self.on_applied = on_applied

    # --- entry point ---------------------------------------------------------------------

    def handle(self, token: bytes, topic_leaf: str | None = None) -> IntakeResult:
        """Verify and apply one ledger token; raise LedgerRefused (nothing applied) if it is bad.

        `topic_leaf` (snapshot, delta, hotlist) is the topic it came on; None only for files read
        outside MQTT (the bench), where no topic exists to disagree with."""
        try:
            obj = jws_verify(token, self.keys, LEDGER_TYP).json()
        except BadSignature as exc:
            raise LedgerRefused("bad_signature", f"ledger update refused: {exc}") from None
        schema = obj.get("schema")
        if topic_leaf is not None and schema not in SCHEMAS_BY_TOPIC.get(topic_leaf, ()):
            raise LedgerRefused("wrong_topic", f"a {schema!r} token on the {topic_leaf!r} topic; each ledger topic "
                                f"carries only {', '.join(SCHEMAS_BY_TOPIC.get(topic_leaf, ()))}")
        if obj.get("city") != self.city:
            raise LedgerRefused("wrong_city", f"ledger update for city {obj.get('city')!r}, this device serves {self.city!r}")
        try:
            if schema == MANIFEST:
                return self._manifest(token, obj)
            if schema == CHUNK:
                return self._chunk(token, obj)
            if schema == DELTA:
                return self._delta(obj, token)
            if schema == HOTLIST:
                return self._hotlist(obj)
        except MALFORMED as exc:  # rolled back: every write above runs in one transaction
            if isinstance(exc, LedgerRefused):
                raise
            raise LedgerRefused("malformed", f"ledger update {schema} is malformed: {exc!r}") from None
        raise LedgerRefused("unknown_schema", f"unknown ledger schema {schema!r}")

    # --- checks --------------------------------------------------------------------------

    def live_version(self) -> int:
        """The version the counter serves from; a newer update is required to replace it (no rollback)."""
        return LedgerState.select(LedgerState.version).where(LedgerState.id == 1).scalar() or 0

    def _check_version(self, version: object, hotlist_serial: object = None) -> int:
        """Refuse a version not newer than the live one, unless (a snapshot) it is the live version
        with hotlist serials this device is missing."""
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise LedgerRefused("malformed", f"ledger version must be a positive integer, got {version!r}")
        live = self.live_version()
        if version == live and isinstance(hotlist_serial, int) and not isinstance(hotlist_serial, bool):
            if hotlist_serial > self.hotlist_complete():
                return version
            raise LedgerRefused("already_current", f"snapshot {version} brings nothing new (hotlist {hotlist_serial})")
        if version <= live:
            raise LedgerRefused("old_version", f"ledger version {version} is not newer than the live version {live} (rollback refused)")
        return version

    def hotlist_serial(self) -> int:
        """The newest hotlist update applied here."""
        return int(settings.get(HOTLIST_SERIAL_KEY, "0") or 0)

    def hotlist_complete(self) -> int:
        """The serial up to which this device has every hotlist update (a device that missed some
        asks for a snapshot, which brings them)."""
        value = settings.get(HOTLIST_COMPLETE_KEY)
        return int(value) if value else self.hotlist_serial()

    def _check_expiry(self, obj: dict) -> tuple[datetime, datetime]:
        issued, expires = parse_iso(obj["issued_at"]), parse_iso(obj["expires_at"])
        now = self.clock.now()
        if expires <= now:
            raise LedgerRefused("expired", f"ledger update expired at {obj['expires_at']} (now {iso(now)})")
        if expires <= issued:
            raise LedgerRefused("malformed", "expires_at must be after issued_at")
        return issued, expires

    # --- snapshot ------------------------------------------------------------------------

    def staging(self) -> dict:
        """The snapshot being received, kept in settings so a restart resumes instead of starting over."""
        raw = settings.get(STAGING_KEY)
        return json.loads(raw) if raw else {}

    def progress(self) -> dict:
        """{"version", "received", "total"} of a snapshot being received, or {}."""
        st = self.staging()
        if not st:
            return {}
        total = None
        if st.get("manifest"):
            total = self._manifest_obj(st["manifest"])["chunks"]
        self._ensure_chunk_table()
        received = self.db.execute_sql("SELECT count(*) FROM ledger_stage_chunk").fetchone()[0]
        return {"version": st["version"], "received": received, "total": total}

    def _manifest_obj(self, token: str) -> dict:
        return jws_verify(token.encode(), self.keys, LEDGER_TYP).json()

    def _ensure_chunk_table(self) -> None:
        self.db.execute_sql(
            "CREATE TABLE IF NOT EXISTS ledger_stage_chunk (idx INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, "
            "tbl TEXT NOT NULL, count INTEGER NOT NULL)"
        )

    def _reset_staging(self, version: int, build: str = "") -> None:
        """Drop whatever was staged and start staging `version` (inside a transaction)."""
        conn = self.db.connection()
        for table, _, _ in TABLES.values():
            conn.execute(f'DROP TABLE IF EXISTS "stage_{table}"')
        conn.execute("DROP TABLE IF EXISTS ledger_stage_chunk")
        self._ensure_chunk_table()
        settings.put(STAGING_KEY, json.dumps({"version": version, "build": build, "manifest": None}))

    def _stage_for(self, version: int, build: object = "") -> dict:
        """Make the staging area hold `version` (and of it, the build issued at `build`: the city
        builds the live version again on request), or refuse an older one."""
        build = build if isinstance(build, str) else ""
        st = self.staging()
        have = (st["version"], st.get("build", "")) if st else None
        if have and (version, build) < have:
            raise LedgerRefused("old_version", f"snapshot {version} is older than the snapshot {st['version']} being received")
        if not have or (version, build) > have:
            self._reset_staging(version, build)
            st = self.staging()
        return st

    def _stage_table(self, table: str) -> str:
        stage = f"stage_{table}"
        conn = self.db.connection()
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (stage,)).fetchone():
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()[0]
            conn.execute(sql.replace(f'"{table}"', f'"{stage}"', 1))
        return stage

    def _manifest(self, token: bytes, obj: dict) -> IntakeResult:
        version = self._check_version(obj["version"], obj.get("hotlist_serial"))
        self._check_expiry(obj)
        if not isinstance(obj["chunks"], int) or len(obj["chunk_sha256"]) != obj["chunks"]:
            raise LedgerRefused("malformed", "manifest chunk count does not match its list of chunk hashes")
        missing = [t for t in REQUIRED if t not in obj["rows"]]
        if missing or any(t not in TABLES for t in obj["rows"]):
            raise LedgerRefused("malformed", f"manifest tables wrong (missing {missing})")
        with self.db.atomic("IMMEDIATE"):
            st = self._stage_for(version, obj["issued_at"] if "hotlist_serial" in obj else "")
            st["manifest"] = token.decode("ascii")
            settings.put(STAGING_KEY, json.dumps(st))
        return self._try_complete(version) or IntakeResult("manifest", version, False, "waiting for chunks")

    def _chunk(self, token: bytes, obj: dict) -> IntakeResult:
        version = self._check_version(obj["version"], obj.get("hotlist_serial"))
        wire = obj["table"]
        if wire not in TABLES:
            raise LedgerRefused("malformed", f"unknown ledger table {wire!r}")
        table, known_cols, _ = TABLES[wire]
        columns = obj["columns"]
        if not columns or any(c not in known_cols for c in columns) or len(set(columns)) != len(columns):
            raise LedgerRefused("malformed", f"chunk columns {columns!r} are not columns of {wire}")
        rows = decode_rows(obj["data"])
        if len(rows) != obj["count"] or any(not isinstance(r, list) or len(r) != len(columns) for r in rows):
            raise LedgerRefused("malformed", f"chunk {obj['index']} rows do not match its count/columns")
        with self.db.atomic("IMMEDIATE"):
            self._stage_for(version, obj.get("issued_at", ""))
            conn = self.db.connection()
            had = conn.execute("SELECT sha256 FROM ledger_stage_chunk WHERE idx=?", (obj["index"],)).fetchone()
            if had and had[0] == token_hash(token):
                return IntakeResult("chunk", version, False, "duplicate chunk ignored")  # QoS 1 redelivery
            if had:
                raise LedgerRefused("duplicate_chunk", f"snapshot {version} chunk {obj['index']} was already received "
                                    "with other content; this one is dropped (the manifest decides which is right)")
            stage = self._stage_table(table)
            cols = ", ".join(f'"{c}"' for c in columns)
            conn.executemany(f'INSERT INTO "{stage}" ({cols}) VALUES ({", ".join("?" * len(columns))})', rows)
            conn.execute("INSERT INTO ledger_stage_chunk (idx, sha256, tbl, count) VALUES (?,?,?,?)",
                         (obj["index"], token_hash(token), wire, len(rows)))
        del rows
        return self._try_complete(version) or IntakeResult("chunk", version, False, f"chunk {obj['index']} staged")

    def _try_complete(self, version: int) -> IntakeResult | None:
        st = self.staging()
        if not st or st["version"] != version or not st.get("manifest"):
            return None
        manifest = self._manifest_obj(st["manifest"])
        conn = self.db.connection()
        have = conn.execute("SELECT idx, sha256, tbl, count FROM ledger_stage_chunk ORDER BY idx").fetchall()
        if len(have) < manifest["chunks"]:
            return None
        problems = []
        counts: dict[str, int] = {}
        for idx, sha, wire, count in have:
            if idx >= manifest["chunks"] or manifest["chunk_sha256"][idx] != sha:
                problems.append(f"chunk {idx} does not match the manifest")
            counts[wire] = counts.get(wire, 0) + count
        if counts != {w: n for w, n in manifest["rows"].items() if n or w in counts}:
            problems.append(f"row counts {counts} differ from the manifest {manifest['rows']}")
        if problems:
            with self.db.atomic("IMMEDIATE"):
                self._reset_staging(version)
                settings.put(STAGING_KEY, "")
            raise LedgerRefused("snapshot_mismatch", "snapshot refused: " + "; ".join(problems[:3]))
        now = iso(self.clock.now())
        serial = manifest.get("hotlist_serial")
        with self.db.atomic("IMMEDIATE"):
            self._check_version(version, serial)  # another process may have applied something newer meanwhile
            for wire, (table, _, _) in TABLES.items():
                stage = self._stage_table(table)  # tables absent from the snapshot become empty
                conn.execute(f'DROP TABLE "{table}"')
                conn.execute(f'ALTER TABLE "{stage}" RENAME TO "{table}"')
                MODEL_BY_TABLE[table]._schema.create_indexes(safe=True)
                del wire
            conn.execute("DROP TABLE ledger_stage_chunk")
            self._reapply_hotlist(serial if isinstance(serial, int) else None)
            self._set_state(version, manifest, "snapshot", now)
            settings.put(STAGING_KEY, "")
            journal.append(now, "ledger_applied", str(version), {"kind": "snapshot", "rows": manifest["rows"]})
        return self._done(IntakeResult("snapshot", version, True, f"snapshot {version} applied: {manifest['rows']}"))

    def _reapply_hotlist(self, included: int | None) -> None:
        """After a snapshot swap: the hotlist updates applied here that the snapshot does not include
        (newer than its serial; all of the recent ones when it does not say) go on top of it again."""
        log = json.loads(settings.get(HOTLIST_LOG_KEY) or "[]")
        base = included or 0
        later = sorted((e for e in log if e[0] > base), key=lambda e: e[0])
        complete = base
        for serial, add, remove in later:
            self._apply_hotlist(add, remove)
            complete = serial if serial == complete + 1 else complete
        settings.put(HOTLIST_SERIAL_KEY, str(max(self.hotlist_serial(), base)))
        settings.put(HOTLIST_COMPLETE_KEY, str(complete if included is not None else self.hotlist_complete()))

    def _apply_hotlist(self, add: list, remove: list) -> None:
        conn = self.db.connection()
        live = self.live_version()
        conn.executemany("INSERT OR REPLACE INTO hotlist_entry (card_id, reason, listed_at, ledger_version) VALUES (?,?,?,?)",
                         [(c, r, at, live) for c, r, at in add])
        conn.executemany("DELETE FROM hotlist_entry WHERE card_id=?", [(c,) for c in remove])

    def _set_state(self, version: int, obj: dict, kind: str, now: str) -> None:
        LedgerState.insert(id=1, version=version, issued_at=obj["issued_at"], expires_at=obj["expires_at"],
                           applied_at=now, kind=kind, signer="ledger").on_conflict_replace().execute()
        settings.put(settings.LAST_CITY_CONTACT, now)

    def _done(self, result: IntakeResult) -> IntakeResult:
        if self.on_applied:
            self.on_applied(result)
        if result.kind in ("snapshot", "delta"):
            self._apply_held()
        return result

    def _hold(self, version: int, base: int, token: bytes) -> None:
        """Keep a delta that builds on a version this device has not reached yet."""
        held = [h for h in json.loads(settings.get(HELD_DELTAS_KEY) or "[]") if h[0] != version]
        held = sorted([*held, [version, base, token.decode("ascii")]])[-HELD_DELTAS:]
        settings.put(HELD_DELTAS_KEY, json.dumps(held))

    def _apply_held(self) -> None:
        """Apply the held deltas that now fit, in version order; drop those the ledger has passed."""
        while True:
            live = self.live_version()
            held = [h for h in json.loads(settings.get(HELD_DELTAS_KEY) or "[]") if h[0] > live]
            ready = next((h for h in held if h[1] == live), None)
            if ready is not None:
                held.remove(ready)
            settings.put(HELD_DELTAS_KEY, json.dumps(held))
            if ready is None:
                return
            try:
                self.handle(ready[2].encode("ascii"))
                return  # that delta's own _done applied whatever follows it
            except LedgerRefused:
                continue

    # --- delta and hotlist ---------------------------------------------------------------

    def _delta(self, obj: dict, token: bytes) -> IntakeResult:
        if obj["version"] == self.live_version() and settings.get(LAST_DELTA_KEY) == token_hash(token):
            raise LedgerRefused("already_current", f"delta {obj['version']} is the one applied last (retained)")
        version = self._check_version(obj["version"])
        self._check_expiry(obj)
        live = self.live_version()
        if obj["base_version"] != live:
            if isinstance(obj["base_version"], int) and obj["base_version"] > live:
                self._hold(version, obj["base_version"], token)
            raise LedgerRefused("base_mismatch", f"delta {version} applies to version {obj['base_version']}, "
                                f"the live ledger is {live}; a snapshot is needed", version)
        now = iso(self.clock.now())
        conn = self.db.connection()
        with self.db.atomic("IMMEDIATE"):
            if self.live_version() != live:
                raise LedgerRefused("base_mismatch", "the live ledger changed while the delta was checked")
            for wire, keys in obj["deletes"].items():
                table, _, key_cols = TABLES[wire]
                where = " AND ".join(f'"{k}"=?' for k in key_cols)
                conn.executemany(f'DELETE FROM "{table}" WHERE {where}', [list(k) for k in keys])
            for wire, part in obj["upserts"].items():
                table, known, _ = TABLES[wire]
                cols = part["columns"]
                if any(c not in known for c in cols):
                    raise LedgerRefused("malformed", f"delta columns {cols!r} are not columns of {wire}")
                names = ", ".join(f'"{c}"' for c in cols)
                conn.executemany(f'INSERT OR REPLACE INTO "{table}" ({names}) VALUES ({", ".join("?" * len(cols))})',
                                 part["rows"])
            self._set_state(version, obj, "delta", now)
            settings.put(LAST_DELTA_KEY, token_hash(token))
            journal.append(now, "ledger_applied", str(version), {"kind": "delta", "base": live})
        content = bool((set(obj["upserts"]) | set(obj["deletes"])) - {"confirmed"})
        return self._done(IntakeResult("delta", version, True, f"delta {live} -> {version} applied", content=content))

    def _hotlist(self, obj: dict) -> IntakeResult:
        serial = obj["serial"]
        if not isinstance(serial, int) or isinstance(serial, bool):
            raise LedgerRefused("malformed", "hotlist serial must be an integer")
        self._check_expiry(obj)
        now = iso(self.clock.now())
        with self.db.atomic("IMMEDIATE"):
            last = self.hotlist_serial()
            if serial <= last:
                raise LedgerRefused("old_version", f"hotlist serial {serial} is not newer than {last} (replay refused)")
            complete = self.hotlist_complete()
            self._apply_hotlist(obj["add"], obj["remove"])
            log = json.loads(settings.get(HOTLIST_LOG_KEY) or "[]")
            log.append([serial, [list(e) for e in obj["add"]], list(obj["remove"])])
            settings.put(HOTLIST_LOG_KEY, json.dumps(log[-HOTLIST_LOG_LENGTH:]))
            missing = serial != complete + 1
            settings.put(HOTLIST_COMPLETE_KEY, str(complete if missing else serial))
            settings.put(HOTLIST_SERIAL_KEY, str(serial))
            settings.put(settings.LAST_CITY_CONTACT, now)
            journal.append(now, "hotlist_applied", str(serial), {"add": len(obj["add"]), "remove": len(obj["remove"])})
        return self._done(IntakeResult("hotlist", serial, True, f"hotlist {serial}: +{len(obj['add'])} -{len(obj['remove'])}"
                                       + (f"; serials {complete + 1}..{serial - 1} missing" if missing else ""),
                                       missing=missing))
