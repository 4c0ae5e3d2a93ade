"""Versioned schema: each migration takes the database from version N-1 to N.

The version lives in SQLite's `user_version`. Migrations run at start, each in its own
transaction, so a crash mid-migration leaves the previous version intact. A database from a
newer release than this software is refused rather than guessed at. Every released schema is
kept as SQL under tests/fixtures/schemas/ and the tests migrate each one to the current version.
"""

from __future__ import annotations

from collections.abc import Callable

from peewee import SqliteDatabase

from pos import db as models

Migration = Callable[[SqliteDatabase], None]


# Tables a later migration creates: the first one must not, or that migration would find them there.
_ADDED_LATER = (models.StaffLock,)


def _v1_initial(db: SqliteDatabase) -> None:
    db.create_tables([m for m in models.ALL_MODELS if m not in _ADDED_LATER], safe=False)


def _v2_staff_lock(db: SqliteDatabase) -> None:
    db.create_tables([models.StaffLock], safe=False)


def _v3_receipt_series(db: SqliteDatabase) -> None:
    """Receipts get their own gapless numbers. A sale already printed keeps the number on its paper
    (its message sequence); the series goes on from the highest. A fresh database already has the
    column (version 1 creates the tables as the models are now)."""
    columns = {c.name for c in db.get_columns("redemption")}
    if "receipt_no" not in columns:
        db.execute_sql('ALTER TABLE "redemption" ADD COLUMN "receipt_no" INTEGER')
        db.execute_sql('CREATE UNIQUE INDEX "redemption_receipt_no" ON "redemption" ("receipt_no")')
    db.execute_sql('UPDATE "redemption" SET "receipt_no" = "seq" WHERE "receipt_no" IS NULL')


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial schema: ledger, redemptions, voids, outbox, journal, print jobs", _v1_initial),
    (2, "staff_lock: wrong staff PINs in a row, their wait and lockout", _v2_staff_lock),
    (3, "receipt numbers on their own gapless series", _v3_receipt_series),
]

CURRENT_VERSION = MIGRATIONS[-1][0]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer release: refusing beats
    misreading it (going back means restoring a backup)."""


def schema_version(db: SqliteDatabase) -> int:
    """The schema version the database file records (SQLite's user_version)."""
    return db.execute_sql("PRAGMA user_version").fetchone()[0]


def migrate(db: SqliteDatabase) -> list[int]:
    """Bring the schema to CURRENT_VERSION; return the versions applied."""
    current = schema_version(db)
    if current > CURRENT_VERSION:
        raise SchemaTooNew(
            f"database schema version {current} is newer than this software understands "
            f"({CURRENT_VERSION}); install the newer E-Warung POS release or restore a backup"
        )
    applied = []
    for version, _title, step in MIGRATIONS:
        if version <= current:
            continue
        with db.atomic("IMMEDIATE"):
            step(db)
            db.execute_sql(f"PRAGMA user_version = {int(version)}")
        applied.append(version)
    return applied
