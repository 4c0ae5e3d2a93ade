"""Wrong staff PINs: a few free tries, then a growing wait, then a lockout that only a supervisor or a
technician lifts.

A 4-digit PIN falls to a guessing loop in minutes; with this it falls to none. The count lives in the
database (staff_lock), per staff member, so restarting the counter app lifts nothing. Every wrong PIN and
every lockout is journaled and, at the counter, queued as a signed event for the city. A try refused for
the wait or the lock checks no PIN and writes nothing: it tells a guesser nothing, and a loop against it
cannot flood the journal or the outbox. The wait is a refusal ("try again in N s"), never a sleep, so no
thread waits on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from peewee import SqliteDatabase

from pos import journal
from pos.clock import Clock, iso, parse_iso
from pos.db import Cashier, StaffLock, durable_transaction
from pos.device import DeviceIdentity
from pos.outbox import enqueue
from pos.refusals import Reason, Refusal
from pos.signing import Signer

Report = Callable[[str, dict[str, Any], str], None]
"""Queues an event for the city (name, detail, created_at) inside the caller's transaction."""


@dataclass(frozen=True)
class PinLimits:
    """How many wrong PINs in a row a staff member gets: after `free_tries` of them the next is not
    checked for `first_wait_s`, each further one doubles the wait, and the `lock_after`-th locks."""

    free_tries: int = 3
    first_wait_s: int = 10
    lock_after: int = 5

    def wait_after(self, failures: int) -> int:
        """Seconds before the next try after `failures` wrong PINs in a row."""
        if failures < self.free_tries:
            return 0
        return self.first_wait_s * 2 ** (failures - self.free_tries)


class CounterService(Protocol):
    """What the lockout needs of the counter's service: its database, clock and device signature."""

    db: SqliteDatabase
    clock: Clock
    device: DeviceIdentity
    signer: Signer


def city_report(device: DeviceIdentity, signer: Signer) -> Report:
    """Report staff events the way every event reaches the city: signed and sequenced in the outbox."""

    def report(event: str, detail: dict[str, Any], created_at: str) -> None:
        enqueue("event", {"event": event, **detail}, device=device, signer=signer, created_at=created_at)

    return report


class StaffLockout:
    """The try limit of staff PINs. It keeps no state of its own (the database does), so each
    check may build a new one."""

    def __init__(self, db: SqliteDatabase, clock: Clock, report: Report | None = None,
                 limits: PinLimits = PinLimits()) -> None:
        self.db = db
        self.clock = clock
        self.report = report
        self.limits = limits

    @classmethod
    def beside(cls, service: CounterService) -> StaffLockout:
        """The counter's lockout: the service's database and clock, events signed by the device."""
        return cls(service.db, service.clock, city_report(service.device, service.signer))

    def may_try(self, cashier: Cashier) -> None:
        """Refuse, before any PIN is checked, a staff member who is locked or still has to wait."""
        row = StaffLock.get_or_none(StaffLock.cashier_id == cashier.id)
        if row is None:
            return
        if row.locked_at:
            raise Refusal(Reason.STAFF_LOCKED, cashier.id, name=cashier.name, id=cashier.id)
        if row.retry_at:
            # a clock set back must not stretch the wait beyond what the count asks for
            left = min((parse_iso(row.retry_at) - self.clock.now()).total_seconds(),
                       self.limits.wait_after(row.failures))
            if left > 0:
                raise Refusal(Reason.STAFF_PIN_WAIT, cashier.id, seconds=math.ceil(left))

    def unknown(self, cashier_id: str, purpose: str) -> Refusal:
        """Journal and report a try for an id that is unknown or disabled (it counts against nobody)."""
        with durable_transaction(self.db):
            self._record("staff_pin_failed", {"cashier": cashier_id, "purpose": purpose, "failures": 0,
                                              "wait_s": 0, "known": False}, iso(self.clock.now()))
        return Refusal(Reason.CASHIER_UNKNOWN, cashier_id)

    def failed(self, cashier: Cashier, purpose: str) -> Refusal:
        """Count a wrong PIN, journal and report it and the lockout it may cause; the refusal to raise."""
        now = self.clock.now()
        at = iso(now)
        with durable_transaction(self.db):
            row = StaffLock.get_or_none(StaffLock.cashier_id == cashier.id)
            failures = (row.failures if row else 0) + 1
            locked = failures >= self.limits.lock_after
            wait = 0 if locked else self.limits.wait_after(failures)
            StaffLock.insert(cashier_id=cashier.id, failures=failures, locked_at=at if locked else "",
                             retry_at=iso(now + timedelta(seconds=wait)) if wait else "").on_conflict_replace().execute()
            self._record("staff_pin_failed", {"cashier": cashier.id, "purpose": purpose, "failures": failures,
                                              "wait_s": wait, "known": True}, at)
            if locked:
                self._record("staff_locked", {"cashier": cashier.id, "purpose": purpose, "failures": failures}, at)
        if locked:
            return Refusal(Reason.STAFF_LOCKED, cashier.id, name=cashier.name, id=cashier.id)
        if wait:
            return Refusal(Reason.STAFF_PIN_WAIT, cashier.id, seconds=wait)
        return Refusal(Reason.CASHIER_PIN_WRONG, cashier.id)

    def passed(self, cashier_id: str) -> None:
        """A right PIN starts the count afresh."""
        if StaffLock.get_or_none(StaffLock.cashier_id == cashier_id) is not None:
            with durable_transaction(self.db):
                StaffLock.delete().where(StaffLock.cashier_id == cashier_id).execute()

    def is_locked(self, cashier_id: str) -> bool:
        """Whether only an unlock lets this staff member in again."""
        row = StaffLock.get_or_none(StaffLock.cashier_id == cashier_id)
        return row is not None and bool(row.locked_at)

    def unlock(self, cashier_id: str, by: str) -> bool:
        """Lift a lockout (and any wait), journaled and reported with who lifted it; False if there was none."""
        at = iso(self.clock.now())
        with durable_transaction(self.db):
            row = StaffLock.get_or_none(StaffLock.cashier_id == cashier_id)
            if row is None:
                return False
            StaffLock.delete().where(StaffLock.cashier_id == cashier_id).execute()
            self._record("staff_unlocked", {"cashier": cashier_id, "by": by, "failures": row.failures}, at)
        return True

    def _record(self, event: str, detail: dict[str, Any], at: str) -> None:
        journal.append(at, event, detail["cashier"], detail)
        if self.report is not None:
            self.report(event, detail, at)
