"""The appliance database: peewee on SQLite in WAL mode, shared by the counter app and sync.

Two processes open it; the database is their only channel. Ledger tables hold what the city
sends (households, plans, catalog, hotlist, confirmed redemptions); local tables hold what
this device did (redemptions, voids, outbox, journal, print jobs). Local tables never carry
foreign keys into ledger tables: a new ledger snapshot replaces the ledger wholesale and must
not be blocked by, or cascade into, this device's history.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from peewee import (
    AutoField,
    BlobField,
    BooleanField,
    CharField,
    CompositeKey,
    DatabaseError,
    DatabaseProxy,
    ForeignKeyField,
    IntegerField,
    Model,
    SqliteDatabase,
    TextField,
)

database = DatabaseProxy()

BUSY_TIMEOUT_MS = 10_000


class BaseModel(Model):
    """Binds every model to the one database proxy, which open_database points at a file."""

    class Meta:
        database = database
        legacy_table_names = False


# --- settings and counters -------------------------------------------------------------


class Setting(BaseModel):
    """Small named values: schema version, device sequence, last contact with the city."""

    key = CharField(primary_key=True)
    value = TextField()


# --- the ledger (from the city) --------------------------------------------------------


class LedgerState(BaseModel):
    """The one live ledger's identity: version, signature time, expiry. One row, id 1."""

    id = IntegerField(primary_key=True)
    version = IntegerField()
    issued_at = CharField()
    expires_at = CharField()
    applied_at = CharField()
    kind = CharField()  # snapshot | delta | sample
    signer = CharField(default="")


class CatalogItem(BaseModel):
    """An item the city allows, priced in rupiah; only active items can go in a basket."""

    code = CharField(primary_key=True)
    name_id = CharField()
    name_en = CharField()
    unit = CharField()
    price = IntegerField()  # rupiah per unit
    active = BooleanField(default=True)


class Plan(BaseModel):
    """An allowance plan: rupiah per period, and whether
    the unspent part carries into the next period."""

    code = CharField(primary_key=True)
    name = CharField()
    allowance = IntegerField()  # rupiah per period
    rollover = BooleanField(default=False)


class PlanQuota(BaseModel):
    """The most units of one item a household on a plan may take per period."""

    plan = CharField()
    item = CharField()
    max_qty = IntegerField()

    class Meta:
        primary_key = CompositeKey("plan", "item")


class Household(BaseModel):
    """A beneficiary household as the counter needs it: no national ID numbers."""

    id = CharField(primary_key=True)
    name = CharField()  # head of household, as printed on the card
    area = CharField(default="")  # kelurahan
    plan = CharField()
    status = CharField(default="active")  # active | revoked | suspended
    valid_from = CharField()  # YYYY-MM-DD (WITA)
    valid_until = CharField()  # YYYY-MM-DD inclusive (WITA)


class Representative(BaseModel):
    """Someone registered to collect for a household; named on the receipt when they do."""

    id = CharField(primary_key=True)
    household = CharField(index=True)
    name = CharField()
    relation = CharField(default="")


class HotlistEntry(BaseModel):
    """A revoked card (lost, stolen, cloned): refused at the
    counter even while its certificate is valid."""

    card_id = CharField(primary_key=True)
    reason = CharField()
    listed_at = CharField()
    ledger_version = IntegerField()


class ConfirmedRedemption(BaseModel):
    """A redemption the city has received (from any device), as the ledger reports it."""

    redemption_id = CharField(primary_key=True)
    household = CharField()
    period = CharField()
    amount = IntegerField()
    items = TextField(default="{}")  # JSON {item_code: qty}
    device_id = CharField(default="")

    class Meta:
        indexes = ((("household", "period"), False),)


LEDGER_MODELS = [
    LedgerState,
    CatalogItem,
    Plan,
    PlanQuota,
    Household,
    Representative,
    HotlistEntry,
    ConfirmedRedemption,
]

# --- local records (this device) -------------------------------------------------------


class Cashier(BaseModel):
    """Staff who may sign in at this device, with their
    role; the PIN is kept only as a scrypt hash."""

    id = CharField(primary_key=True)
    name = CharField()
    role = CharField(default="cashier")  # cashier | supervisor | technician
    pin_hash = CharField()  # scrypt$n$r$p$salt$hash
    active = BooleanField(default=True)


class Redemption(BaseModel):
    """One sale, made durable before its receipt prints;
    never edited or deleted (a void is a new record)."""

    id = CharField(primary_key=True)  # a UUIDv7 (pos.ids), the idempotency key end to end
    seq = IntegerField(unique=True)  # device message sequence (the city's gap check)
    device_id = CharField()
    household = CharField(index=True)
    card_id = CharField(default="")
    period = CharField(index=True)
    mode = CharField(default="card")  # card | override
    override_reason = CharField(default="")
    collected_by = CharField(default="holder")  # holder | representative
    collector_id = CharField(default="")
    collector_name = CharField(default="")
    cashier_id = CharField()
    ledger_version = IntegerField()
    total = IntegerField()
    remaining_after = IntegerField()
    card_counter = IntegerField(null=True)  # the card's transaction counter after the update
    created_at = CharField()
    # the printed receipt number: its own gapless series (refusals and voids take message
    # sequence numbers too); null only in a row a migration could not number
    receipt_no = IntegerField(null=True, unique=True)


class RedemptionLine(BaseModel):
    """One item of a sale, with the name and price it had then, so
    receipts and reports do not change when the catalog does."""

    redemption = ForeignKeyField(Redemption, backref="lines", on_delete="RESTRICT")
    item_code = CharField()
    item_name = CharField()
    unit = CharField(default="")
    qty = IntegerField()
    unit_price = IntegerField()
    amount = IntegerField()


class Void(BaseModel):
    """A compensating record: redemptions are never deleted or edited."""

    id = CharField(primary_key=True)
    seq = IntegerField(unique=True)
    redemption = ForeignKeyField(Redemption, unique=True, backref="voids", on_delete="RESTRICT")
    reason = CharField()
    cashier_id = CharField()
    supervisor_id = CharField()
    created_at = CharField()


class OutboxMessage(BaseModel):
    """A signed message for the city, written in the same transaction as what it reports."""

    seq = IntegerField(primary_key=True)
    msg_id = CharField(unique=True)
    kind = CharField()  # redemption | void | event
    topic = CharField()
    payload = BlobField()  # the exact signed bytes (JWS compact serialization)
    state = CharField(default="queued", index=True)  # queued | published | acked
    attempts = IntegerField(default=0)
    created_at = CharField()
    published_at = CharField(null=True)
    acked_at = CharField(null=True)
    last_error = CharField(default="")


class PrintJob(BaseModel):
    """One receipt to print; its id makes a retried job print at most once."""

    id = CharField(primary_key=True)
    redemption_id = CharField(index=True, default="")
    kind = CharField()  # receipt | void | copy | end_of_day | test
    state = CharField(default="pending", index=True)  # pending | printing | printed | failed
    attempts = IntegerField(default=0)
    last_error = CharField(default="")
    created_at = CharField()
    printed_at = CharField(null=True)


class JournalEntry(BaseModel):
    """Append-only, hash-chained record of everything that matters (see pos.journal)."""

    id = AutoField()
    at = CharField()
    kind = CharField()
    ref = CharField(default="")
    data = TextField(default="{}")
    prev_hash = CharField()
    hash = CharField()


class StaffLock(BaseModel):
    """One staff member's wrong PINs in a row, kept in the database so that
    restarting the counter app lifts no wait and no lockout (see pos.staff_lockout)."""

    cashier_id = CharField(primary_key=True)
    failures = IntegerField(default=0)
    retry_at = CharField(default="")  # no PIN is checked before this moment (ISO UTC); "" when free
    locked_at = CharField(default="")  # set at the lockout; only an unlock clears it


LOCAL_MODELS = [Setting, Cashier, Redemption, RedemptionLine, Void, OutboxMessage, PrintJob, JournalEntry, StaffLock]
ALL_MODELS = LOCAL_MODELS + LEDGER_MODELS


def open_database(path: str | Path, *, migrate: bool = True, cache_mib: int = 16) -> SqliteDatabase:
    """Open (creating if needed) the database at `path`, bind the models, run migrations.

    WAL lets the counter app read while sync writes. `synchronous=NORMAL` is the default;
    the redemption write switches to FULL for itself (see `durable_transaction`). `cache_mib` is
    SQLite's page cache per connection: bulk work (a 1M-household snapshot) gains from 16 MiB; the
    counter's single-row lookups do not (the OS file cache serves them), so it asks for less.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(
        str(path),
        pragmas={
            "journal_mode": "wal",
            "synchronous": "normal",
            "foreign_keys": 1,
            "busy_timeout": BUSY_TIMEOUT_MS,
            "cache_size": -1024 * cache_mib,
        },
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,
        autoconnect=True,
    )
    database.initialize(db)
    try:
        db.connect(reuse_if_open=True)
        if migrate:
            from pos.migrations import migrate as run_migrations

            run_migrations(db)
    except (DatabaseError, sqlite3.DatabaseError) as exc:
        fault = classify_storage_error(exc)
        if fault is None:
            raise
        if not db.is_closed():
            db.close()
        raise fault from exc
    return db


class StorageFault(RuntimeError):
    """The database could not be written (disk full, read-only, I/O error). Nothing was saved.

    `kind` is one of disk_full, read_only, io_error, corrupt, locked, cannot_open; the message says what to do.
    """

    ADVICE = {
        "disk_full": "the data partition is full: free space (ewarung doctor shows what uses it), then try again",
        "read_only": "the data partition is read-only: check the SD card or disk and remount it read-write",
        "io_error": "the storage reported an I/O error: the SD card may be failing; run ewarung doctor and back up",
        # SQLite says "malformed" when a read under it fails part-way (a failing SD card), too
        "corrupt": "the database could not be read back intact: the SD card may be failing; run ewarung doctor and back up",
        "locked": "the database is busy for too long: check that only one counter app runs, then try again",
        "cannot_open": "the database cannot be opened: check that the data partition is mounted and writable",
    }

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"storage fault ({kind}): {self.ADVICE[kind]}. Nothing was saved. [{detail}]")


def classify_storage_error(exc: BaseException | None) -> StorageFault | None:
    """Find a storage failure in an exception or what it was raised from.

    When SQLite rolls a transaction back by itself (disk full), peewee's own ROLLBACK then fails
    with "no transaction is active"; the real cause is that exception's context.
    """
    seen = 0
    while exc is not None and seen < 5:
        text = str(exc).lower()
        for needle, kind in (
            ("disk is full", "disk_full"),
            ("readonly", "read_only"),
            ("read-only", "read_only"),
            ("disk i/o error", "io_error"),
            ("disk image is malformed", "corrupt"),
            ("database is locked", "locked"),
            ("unable to open database", "cannot_open"),
        ):
            if needle in text:
                return StorageFault(kind, str(exc))
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


@contextlib.contextmanager
def durable_transaction(db: SqliteDatabase) -> Iterator[None]:
    """A write transaction that is on disk when it returns, even across a power cut.

    BEGIN IMMEDIATE takes the write lock up front, so what we read inside is what we commit
    against; synchronous=FULL makes the WAL commit fsync (NORMAL can lose the last commit).
    Storage failures surface as StorageFault, after SQLite rolled the transaction back.
    """
    try:
        db.execute_sql("PRAGMA synchronous=FULL")
        try:
            with db.atomic("IMMEDIATE"):
                yield
        finally:
            db.execute_sql("PRAGMA synchronous=NORMAL")
    except (DatabaseError, sqlite3.DatabaseError) as exc:  # OperationalError, and "malformed" on a failing read
        fault = classify_storage_error(exc)
        if fault is None:
            raise
        raise fault from exc
