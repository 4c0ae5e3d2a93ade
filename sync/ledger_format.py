"""The signed ledger update format (see docs/mqtt-contract.md, "Ledger updates").

Shared by the device (intake) and the city (builder). Every update is a JWS compact token,
ES256, header typ ``ewarung-ledger+jws``, signed by the ledger key. Payload kinds:

- ``ewarung.ledger-manifest/1``: a snapshot's table of contents: version, issued_at,
  expires_at, chunk count, row counts per table, sha256 (hex) of every chunk token, and (in a
  snapshot the city builds on request) the ``hotlist_serial`` its hotlist includes.
- ``ewarung.ledger-chunk/1``: one slice of one table of a snapshot: version, index, table,
  columns, and ``data`` = base64url(zlib(JSON array of row arrays)); a built-on-request snapshot's
  chunks also carry its ``issued_at`` and ``hotlist_serial``, so a device tells two builds of one
  version apart before their manifest arrives.
- ``ewarung.ledger-delta/1``: upserts and deletes against ``base_version`` giving ``version``.
- ``ewarung.ledger-hotlist/1``: card ids to block (or unblock) at once, with its own
  monotonic ``serial``.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator

from pos.signing import Signer, b64url, b64url_decode, canonical_json, jws_sign

LEDGER_TYP = "ewarung-ledger+jws"
MANIFEST = "ewarung.ledger-manifest/1"
CHUNK = "ewarung.ledger-chunk/1"
DELTA = "ewarung.ledger-delta/1"
HOTLIST = "ewarung.ledger-hotlist/1"
DEFAULT_CHUNK_ROWS = 20_000

# wire name -> (SQL table, columns in wire order, key columns)
TABLES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "households": ("household", ("id", "name", "area", "plan", "status", "valid_from", "valid_until"), ("id",)),
    "representatives": ("representative", ("id", "household", "name", "relation"), ("id",)),
    "plans": ("plan", ("code", "name", "allowance", "rollover"), ("code",)),
    "plan_quotas": ("plan_quota", ("plan", "item", "max_qty"), ("plan", "item")),
    "catalog": ("catalog_item", ("code", "name_id", "name_en", "unit", "price", "active"), ("code",)),
    "hotlist": ("hotlist_entry", ("card_id", "reason", "listed_at", "ledger_version"), ("card_id",)),
    "confirmed": (
        "confirmed_redemption",
        ("redemption_id", "household", "period", "amount", "items", "device_id"),
        ("redemption_id",),
    ),
}
# tables a snapshot must always carry (it replaces the whole ledger)
REQUIRED = ("households", "plans", "catalog")


def token_hash(token: bytes) -> str:
    """The hash a manifest lists per chunk, so a device can tell a chunk belongs to it."""
    return hashlib.sha256(token).hexdigest()


def encode_rows(rows: list) -> str:
    """Rows compressed and base64url-encoded: a chunk of many households stays small on a shop's link."""
    return b64url(zlib.compress(json.dumps(rows, separators=(",", ":"), ensure_ascii=False).encode("utf-8"), 6))


def decode_rows(data: str) -> list:
    """The inverse of `encode_rows`, refusing anything but a JSON array."""
    rows = json.loads(zlib.decompress(b64url_decode(data)))
    if not isinstance(rows, list):
        raise ValueError("chunk data is not a JSON array")
    return rows


class SnapshotBuilder:
    """Build a snapshot: call `chunks(tables)` (a generator of chunk tokens), then `manifest()`.

    Rows stream through: only one chunk is in memory at a time, so a city builds a
    1,000,000-household snapshot on a small machine. Publish the manifest before or after
    the chunks; a device accepts either order.
    """

    def __init__(self, city: str, version: int, issued_at: str, expires_at: str, signer: Signer,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS, hotlist_serial: int | None = None) -> None:
        if version < 1:
            raise ValueError("ledger versions start at 1")
        self.city, self.version, self.issued_at, self.expires_at = city, version, issued_at, expires_at
        self.signer, self.chunk_rows = signer, chunk_rows
        self.build = {} if hotlist_serial is None else {"issued_at": issued_at, "hotlist_serial": hotlist_serial}
        self.hashes: list[str] = []
        self.rows: dict[str, int] = {}

    def chunks(self, tables: dict[str, Iterable[tuple | list]]) -> Iterator[bytes]:
        """Chunk tokens, table by table, one chunk in memory at a time; every required table yields at least
        one chunk."""
        missing = [t for t in REQUIRED if t not in tables]
        if missing:
            raise ValueError(f"a snapshot needs the tables {', '.join(missing)}")
        for wire, rows in tables.items():
            if wire not in TABLES:
                raise ValueError(f"unknown ledger table {wire!r}; known: {', '.join(TABLES)}")
            self.rows[wire] = 0
            batch: list = []
            for row in rows:
                batch.append(list(row))
                if len(batch) >= self.chunk_rows:
                    yield self._chunk(wire, batch)
                    batch = []
            if batch or self.rows[wire] == 0:
                yield self._chunk(wire, batch)

    def _chunk(self, wire: str, rows: list) -> bytes:
        payload = {
            "schema": CHUNK, "city": self.city, "version": self.version, "index": len(self.hashes),
            "table": wire, "columns": list(TABLES[wire][1]), "count": len(rows), "data": encode_rows(rows),
            **self.build,
        }
        token = jws_sign(canonical_json(payload), self.signer, LEDGER_TYP)
        self.hashes.append(token_hash(token))
        self.rows[wire] += len(rows)
        return token

    def manifest(self) -> bytes:
        """The manifest signs the chunks' hashes and row counts, so a device applies a snapshot only when it
        has all of it."""
        payload = {
            "schema": MANIFEST, "city": self.city, "version": self.version, "issued_at": self.issued_at,
            "expires_at": self.expires_at, "chunks": len(self.hashes), "rows": self.rows,
            "chunk_sha256": self.hashes, **self.build,
        }
        return jws_sign(canonical_json(payload), self.signer, LEDGER_TYP)


def build_delta(city: str, version: int, base_version: int, issued_at: str, expires_at: str, signer: Signer,
                upserts: dict[str, list] | None = None, deletes: dict[str, list] | None = None) -> bytes:
    """A delta: `upserts` {table: [row arrays in TABLES column order]}, `deletes` {table: [key arrays]}."""
    if version <= base_version:
        raise ValueError("a delta's version must be greater than its base_version")
    for wire in {**(upserts or {}), **(deletes or {})}:
        if wire not in TABLES:
            raise ValueError(f"unknown ledger table {wire!r}")
    payload = {
        "schema": DELTA, "city": city, "version": version, "base_version": base_version,
        "issued_at": issued_at, "expires_at": expires_at,
        "upserts": {w: {"columns": list(TABLES[w][1]), "rows": [list(r) for r in rows]} for w, rows in (upserts or {}).items()},
        "deletes": {w: [list(k) for k in keys] for w, keys in (deletes or {}).items()},
    }
    return jws_sign(canonical_json(payload), signer, LEDGER_TYP)


def build_hotlist(city: str, serial: int, issued_at: str, expires_at: str, signer: Signer,
                  add: list[tuple[str, str, str]] = (), remove: list[str] = ()) -> bytes:
    """Hotlist entries to apply at once: `add` [(card_id, reason, listed_at)], `remove` [card_id]."""
    payload = {
        "schema": HOTLIST, "city": city, "serial": serial, "issued_at": issued_at, "expires_at": expires_at,
        "add": [list(e) for e in add], "remove": list(remove),
    }
    return jws_sign(canonical_json(payload), signer, LEDGER_TYP)


def snapshot_tables_from_db(conn) -> dict[str, Iterator[tuple]]:
    """Stream the live ledger tables of an open sqlite3 connection as snapshot input."""

    def rows(table: str, columns: tuple[str, ...]) -> Iterator[tuple]:
        cursor = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid")
        while batch := cursor.fetchmany(5000):
            yield from batch

    return {wire: rows(table, cols) for wire, (table, cols, _) in TABLES.items()}


# what a ledger digest covers: the tables every device must hold alike (confirmed spending grows
# with every sale and is left out); catalog rows count only while active
DIGEST_TABLES: dict[str, tuple[str, ...]] = {
    "households": TABLES["households"][1],
    "representatives": TABLES["representatives"][1],
    "plans": TABLES["plans"][1],
    "plan_quotas": TABLES["plan_quotas"][1],
    "catalog": TABLES["catalog"][1][:-1],
    "hotlist": ("card_id", "reason"),
}


class LedgerDigest:
    """A content digest of a ledger, independent of row order, so a device (SQLite) and the city
    (any database, any collation) compute the same value from the same rows without sorting
    1,000,000 of them: per table, the sum modulo 2**256 of every row's sha256."""

    def __init__(self) -> None:
        self.sums: dict[str, int] = dict.fromkeys(DIGEST_TABLES, 0)
        self.counts: dict[str, int] = dict.fromkeys(DIGEST_TABLES, 0)

    def add(self, table: str, rows: Iterable[tuple | list]) -> None:
        """Fold rows (in DIGEST_TABLES column order) of one table into the digest."""
        total, n = self.sums[table], 0
        for row in rows:
            text = json.dumps([int(v) if isinstance(v, bool) else v for v in row], separators=(",", ":"),
                              ensure_ascii=False)
            total += int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big")
            n += 1
        self.sums[table], self.counts[table] = total % (1 << 256), self.counts[table] + n

    def hexdigest(self) -> str:
        """The digest the heartbeat reports and the fleet page compares (16 hex digits)."""
        text = ";".join(f"{t}:{self.counts[t]}:{self.sums[t]:064x}" for t in DIGEST_TABLES)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def live_digest(conn) -> str:
    """The digest of the live ledger in a device database (an open sqlite3 connection)."""
    digest = LedgerDigest()
    for wire, columns in DIGEST_TABLES.items():
        table = TABLES[wire][0]
        where = " WHERE active" if wire == "catalog" else ""
        cursor = conn.execute(f'SELECT {", ".join(columns)} FROM "{table}"{where}')
        while batch := cursor.fetchmany(5000):
            digest.add(wire, batch)
    return digest.hexdigest()
