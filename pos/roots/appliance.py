"""The appliance's core parts from the device configuration: database, ledger, device key, clock
and the redemption service over them. The counter's root and the one-shot commands' root build
these the same way, so a receipt reprinted from the command line is signed as the counter signs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from peewee import SqliteDatabase

from firmware_config.config import Config
from pos import sample_city
from pos.clock import Clock, SystemClock, parse_iso
from pos.db import LedgerState, open_database
from pos.ledger import Ledger
from pos.ports import PrinterPort
from pos.printing import PrintService
from pos.redemption import RedemptionService
from pos.roots.keys import device_signer
from pos.signing import EcdsaSigner


@dataclass
class Appliance:
    """What every process that sells, voids or prints shares; built once by build_appliance."""

    config: Config
    db: SqliteDatabase
    ledger: Ledger
    signer: EcdsaSigner
    clock: Clock
    redemptions: RedemptionService

    def print_service(self, printer: PrinterPort, language: str | None = None) -> PrintService:
        """The one way a process gets its PrintService, so every receipt is signed and numbered alike."""
        return PrintService.beside(self.redemptions, printer, language)

    def close(self) -> None:
        """Close the database at the end of the process (idempotent)."""
        if not self.db.is_closed():
            self.db.close()


def ensure_demo_data(
    config: Config, clock: Clock, progress: Callable[[int], None] | None = None
) -> sample_city.SampleCity | None:
    """In demo mode, create the sample city and DEMO keys once; return it if (re)built now.

    A sample ledger more than a day old is rebuilt in place (ledger tables only: sales, the
    journal and cashiers stay), so a demo laptop never ends up refusing "ledger too old" and the
    sample households stay in the states their names promise for the current month.
    """
    if config.demo is None:
        return None
    db = open_database(config.database_path)
    try:
        state = LedgerState.get_or_none(LedgerState.id == 1)
        keys_there = config.key_path(config.keys.device_key).exists()
        fresh = state is not None and (
            state.kind != "sample" or clock.now() - parse_iso(state.issued_at) < timedelta(days=1)
        )
        if fresh and keys_there:
            return None
        if not keys_there:
            sample_city.write_demo_keys(config.data_dir / "keys")
        return sample_city.build_sample_city(
            db, households=config.demo.households, seed=config.demo.seed, now=clock.now(), progress=progress,
            ledger_version=(state.version + 1) if state is not None else 1,
        )
    finally:
        db.close()


COUNTER_CACHE_MIB = 2
"""SQLite page cache of the counter's connections. Lookups by key in a 1M-household ledger
(30,000 of them) are as fast with 2 MiB as with 16, which grew the counter's RSS by 11 MB."""


def build_appliance(config: Config, clock: Clock | None = None) -> Appliance:
    """The appliance from its configuration; the device key must be installed (SetupError says how)."""
    clock = clock or SystemClock()
    db = open_database(config.database_path, cache_mib=COUNTER_CACHE_MIB)
    ledger = Ledger()
    signer = device_signer(config)
    service = RedemptionService(db, ledger, config.identity(), signer, clock, config.to_policy())
    return Appliance(config, db, ledger, signer, clock, service)
