"""Central storage: peewee models bound to the city's own database (SQLite or PostgreSQL).

`open_central(url)` takes a path (SQLite file) or a database URL understood by
`playhouse.db_url` (``sqlite:///path``, ``postgresql://user:pw@host:port/db``). Nothing here
touches the device database models in pos/db.py.
"""

from __future__ import annotations

from pathlib import Path

from peewee import (
    AutoField,
    BooleanField,
    CharField,
    CompositeKey,
    DatabaseProxy,
    IntegerField,
    Model,
    SqliteDatabase,
    TextField,
)

central_db = DatabaseProxy()


class CentralModel(Model):
    """Base of the city's tables: bound to the central database, never to a device's."""

    class Meta:
        database = central_db
        legacy_table_names = False


class Device(CentralModel):
    """Device registry: who may send, and with which key."""

    id = CharField(primary_key=True)
    public_key_pem = TextField()
    shop_id = CharField(default="")
    status = CharField(default="active")  # active | retired
    added_at = CharField()

    class Meta:
        table_name = "central_device"


class DeviceState(CentralModel):
    """What central last heard from a device, and how far its sequence is complete."""

    device = CharField(primary_key=True)
    online = BooleanField(default=False)
    last_seen = CharField(default="")
    queue_depth = IntegerField(default=0)
    ledger_version = IntegerField(default=0)
    software_version = CharField(default="")
    reader = CharField(default="")
    printer = CharField(default="")
    contiguous_seq = IntegerField(default=0)  # every seq 1..n is stored
    highest_seq = IntegerField(default=0)

    class Meta:
        table_name = "central_device_state"


class Message(CentralModel):
    """Every sequenced message stored once (id = idempotency key), with its exact signed bytes."""

    id = CharField(primary_key=True)
    device = CharField()
    seq = IntegerField()
    kind = CharField()
    created_at = CharField()
    received_at = CharField()
    token = TextField()

    class Meta:
        table_name = "central_message"
        indexes = ((("device", "seq"), True),)


class RedemptionRecord(CentralModel):
    """A redemption as the reports read it (one row per sale, items as JSON); its signed message is in Message."""

    id = CharField(primary_key=True)  # redemption_id
    msg_id = CharField()
    device = CharField()  # no index: every sale pays for each index, and no query looks sales up by device
    seq = IntegerField()
    shop_id = CharField(default="")
    household = CharField()  # indexed for override sales only (below)
    period = CharField(index=True)
    card_id = CharField(default="")
    cashier = CharField(default="")
    collected_by = CharField(default="holder")
    collector_name = CharField(default="")
    ledger_version = IntegerField(default=0)
    mode = CharField(default="card")
    total = IntegerField()
    items = TextField(default="{}")  # JSON {item: qty}
    created_at = CharField(index=True)

    class Meta:
        table_name = "central_redemption"


# the report looks up a household's override sales (card_record); a card sale, nearly every sale,
# pays for no household index (its random keys dirty a page of it per sale)
RedemptionRecord.add_index(RedemptionRecord.index(
    RedemptionRecord.household, name="central_redemption_override_household",
    where=RedemptionRecord.mode == "override"))


class VoidRecord(CentralModel):
    """A void as the reports read it: the redemption it cancels and the amount given back."""

    id = CharField(primary_key=True)  # void_id
    msg_id = CharField()
    device = CharField()
    redemption_id = CharField(index=True)
    household = CharField(default="")
    period = CharField(default="")
    amount = IntegerField(default=0)
    reason = CharField(default="")
    created_at = CharField()

    class Meta:
        table_name = "central_void"


class EventRecord(CentralModel):
    """A device event (a refusal, a fault, a tamper sign) for the operator and the reports."""

    id = CharField(primary_key=True)  # msg_id
    device = CharField(index=True)
    event = CharField()
    household = CharField(default="")
    problem = CharField(default="")
    note = TextField(default="")
    body = TextField(default="{}")
    created_at = CharField()

    class Meta:
        table_name = "central_event"


class SequenceGap(CentralModel):
    """A sequence number not received yet: asked for again, then reported as missing."""

    device = CharField()
    seq = IntegerField()
    detected_at = CharField()
    resend_requested_at = CharField(default="")
    resend_count = IntegerField(default=0)

    class Meta:
        table_name = "central_gap"
        primary_key = CompositeKey("device", "seq")


class Rejected(CentralModel):
    """Messages refused (bad signature, unknown device, malformed): kept for the operator."""

    id = AutoField()
    topic = CharField()
    reason = TextField()
    received_at = CharField()
    payload_head = TextField(default="")

    class Meta:
        table_name = "central_rejected"


class CityPlan(CentralModel):
    """A plan as last published: reconciliation checks allowances and quotas against it."""

    code = CharField(primary_key=True)
    name = CharField()
    allowance = IntegerField()
    rollover = BooleanField(default=False)
    quotas = TextField(default="{}")

    class Meta:
        table_name = "central_plan"


class CityCatalogItem(CentralModel):
    """The catalog as last published: a delta marks the items dropped since then inactive."""

    code = CharField(primary_key=True)
    name_id = CharField()
    name_en = CharField(default="")
    unit = CharField(default="")
    price = IntegerField()

    class Meta:
        table_name = "central_catalog"


class CityHousehold(CentralModel):
    """The beneficiary list as last published (what reconciliation checks against)."""

    id = CharField(primary_key=True)
    name = CharField()
    area = CharField(default="")
    plan = CharField()
    status = CharField(default="active")
    valid_from = CharField()
    valid_until = CharField()
    representatives = TextField(default="")  # id|name|relation;...
    row_hash = CharField(default="")

    class Meta:
        table_name = "central_household"


class LedgerRelease(CentralModel):
    """Every signed ledger update published, kept so central can republish it and number the next one."""

    id = AutoField()
    version = IntegerField()  # ledger version (snapshot, delta) or hotlist serial
    kind = CharField()  # snapshot | delta | hotlist
    issued_at = CharField()
    expires_at = CharField()
    households = IntegerField(default=0)
    sha256 = CharField()
    size = IntegerField(default=0)
    token = TextField()  # the signed tokens as published, newline-separated

    class Meta:
        table_name = "central_ledger_release"
        indexes = ((("kind", "version"), True),)


class HotlistCard(CentralModel):
    """A card on the hotlist as last published; the next hotlist serial builds on it."""

    card_id = CharField(primary_key=True)
    reason = CharField()
    listed_at = CharField()
    version = IntegerField()

    class Meta:
        table_name = "central_hotlist"


class LedgerConfirmed(CentralModel):
    """A stored redemption as the ledger has published it to the devices (and whether its void
    has gone out too), so each confirmed-spending delta carries only what is new."""

    redemption_id = CharField(primary_key=True)
    version = IntegerField()  # the ledger version that first carried it
    voided = BooleanField(default=False)

    class Meta:
        table_name = "central_ledger_confirmed"


class DeviceLedger(CentralModel):
    """The ledger a device last reported in its heartbeat: version, hotlist serial and content
    digest, to see which devices have not converged on the city's."""

    device = CharField(primary_key=True)
    version = IntegerField(default=0)
    hotlist_serial = IntegerField(default=0)
    digest = CharField(default="")
    reported_at = CharField(default="")

    class Meta:
        table_name = "central_device_ledger"


class CityDigest(CentralModel):
    """The digest of the city's own ledger content, computed when a release changes it."""

    id = IntegerField(primary_key=True)  # always 1
    version = IntegerField()
    hotlist_serial = IntegerField()
    digest = CharField()

    class Meta:
        table_name = "central_city_digest"


class Quarantined(CentralModel):
    """A stored, acknowledged device message the city does not count: its content failed a check
    (alone, or against the city's other records). Never in the totals; the report lists each."""

    id = AutoField()
    msg_id = CharField(index=True)
    device = CharField()
    seq = IntegerField()
    kind = CharField()  # redemption | void | event
    rule = CharField()  # the check it failed: content | id_collision | card_clone | ledger_version | price | ...
    reason = TextField()
    severity = CharField(default="critical")
    household = CharField(default="")
    period = CharField(default="")
    card_id = CharField(default="")
    ref = CharField(default="", index=True)  # the redemption id (of the sale, or of the sale a void cancels)
    amount = IntegerField(default=0)
    created_at = CharField()

    class Meta:
        table_name = "central_quarantine"


class CardCounter(CentralModel):
    """Each card counter value the city has seen, with the charge it signed: one counter with two
    redemptions is a cloned or replayed card; a counter never seen is a charge without a sale."""

    card_id = CharField()
    counter = IntegerField()
    redemption_id = CharField()
    device = CharField()
    msg_id = CharField()
    kind = CharField(default="sale")  # sale | charge (a card_charged_not_sold event)
    period = CharField(default="")
    amount = IntegerField(default=0)
    period_total = IntegerField(default=0)  # the card's record for the period after this charge
    created_at = CharField(default="")

    class Meta:
        table_name = "central_card_counter"
        primary_key = CompositeKey("card_id", "counter")


class PendingVoid(VoidRecord):
    """A void whose sale the city has not received yet: judged when the sale arrives (or reported).
    The row a counted void would be (VoidRecord's fields), plus its sequence number."""

    seq = IntegerField()

    class Meta:
        table_name = "central_void_pending"


class CatalogPrice(CentralModel):
    """The catalog price of an item from ledger `version` on (until a later release changes it):
    a sale is priced by the catalog of the ledger version it names."""

    version = IntegerField()
    item = CharField()
    price = IntegerField()

    class Meta:
        table_name = "central_catalog_price"
        primary_key = CompositeKey("version", "item")


class HotlistSpan(CentralModel):
    """When a card was on the hotlist: a sale with it between listed_at and unlisted_at is refused."""

    id = AutoField()
    card_id = CharField(index=True)
    reason = CharField(default="")
    listed_at = CharField()
    unlisted_at = CharField(default="")  # empty: still listed

    class Meta:
        table_name = "central_hotlist_span"


class HouseholdSpan(CentralModel):
    """A household's entry on the beneficiary list from `since` (the release that published it) until
    the next row for it: a sale is judged by the list as it stood at the sale's time."""

    id = AutoField()
    household = CharField(index=True)
    status = CharField()  # active | revoked | suspended | removed (dropped from the list)
    valid_from = CharField(default="")
    valid_until = CharField(default="")
    since = CharField()

    class Meta:
        table_name = "central_household_span"


class CitySetting(CentralModel):
    """A limit the city sets for every device (`ewarung central policy`): override caps, void window."""

    name = CharField(primary_key=True)
    value = IntegerField()

    class Meta:
        table_name = "central_policy"


MODELS = [
    Device, DeviceState, Message, RedemptionRecord, VoidRecord, EventRecord, SequenceGap, Rejected,
    CityPlan, CityCatalogItem, CityHousehold, LedgerRelease, HotlistCard, LedgerConfirmed, DeviceLedger, CityDigest,
    Quarantined, CardCounter, PendingVoid, CatalogPrice, HotlistSpan, CitySetting, HouseholdSpan,
]


DROPPED_INDEXES = ("central_redemption_device", "central_redemption_household")
"""Indexes older releases created that no query needs any more (the report's one lookup by household
has central_redemption_override_household): each cost every stored sale a B-tree insert."""


def open_central(url: str | Path):
    """Open (and create the tables of) the central database: a file path or a database URL."""
    text = str(url)
    if "://" in text:
        from playhouse.db_url import connect

        db = connect(text, pragmas=_SQLITE_PRAGMAS) if text.startswith("sqlite") else connect(text)
    else:
        Path(text).parent.mkdir(parents=True, exist_ok=True)
        db = SqliteDatabase(text, pragmas=_SQLITE_PRAGMAS, check_same_thread=False)
    central_db.initialize(db)
    db.connect(reuse_if_open=True)
    db.create_tables(MODELS, safe=True)
    for index in DROPPED_INDEXES:  # a database from before they were dropped
        db.execute_sql(f'DROP INDEX IF EXISTS "{index}"')
    from sync.central.catalog_history import backfill
    from sync.central.household_history import backfill_households

    backfill()  # a database from before the price and hotlist history: start them from what it has
    backfill_households()
    return db


# WAL with synchronous=FULL: a committed batch survives a power cut before its acks go out. A new
# database gets pages of SQLITE_PAGE_SIZE (set before WAL mode fixes the size): a redemption's signed
# message is over a kilobyte, and larger pages send fewer, fuller frames to the WAL and the
# checkpoint. A database made with smaller pages keeps them: SQLite changes the size of an existing
# database only at a VACUUM outside WAL mode, and it works the same either way.
SQLITE_PAGE_SIZE = 16384
_SQLITE_PRAGMAS = {"page_size": SQLITE_PAGE_SIZE, "journal_mode": "wal", "synchronous": 2, "foreign_keys": 1,
                   "busy_timeout": 10000, "cache_size": -65536}


def write_transaction():
    """A write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE), so two
    consumers on one file wait for each other (busy_timeout) instead of failing a lock upgrade."""
    db = central_db.obj
    if isinstance(db, SqliteDatabase):
        return db.atomic(lock_type="IMMEDIATE")
    return db.atomic()
