"""Devices for the central tests: each a real device database with the sample city and the
real RedemptionService, so the messages central receives are the ones a counter writes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from pos.clock import FixedClock
from pos.db import OutboxMessage, database, open_database
from pos.device import DeviceIdentity
from pos.ledger import Ledger
from pos.policy import Policy
from pos.redemption import Collector, RedemptionRequest, RedemptionService
from pos.sample_city import build_sample_city
from pos.signing import EcdsaSigner, public_pem


class SimDevice:
    def __init__(self, root: Path, device_id: str, now: datetime, *, households: int = 30, city: bool = True) -> None:
        self.device_id = device_id
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.signer = EcdsaSigner(self.key, device_id)
        self.clock = FixedClock(now)
        self.identity = DeviceIdentity(device_id, f"SHOP-{device_id[-4:]}", f"Warung {device_id}", "Samarinda")
        self.db = open_database(root / f"{device_id}.db")
        if city:
            self.city = build_sample_city(self.db, households=households, now=now)
        self.service = RedemptionService(self.db, Ledger(), self.identity, self.signer, self.clock, Policy())

    def public_pem(self) -> bytes:
        return public_pem(self.key.public_key())

    def use(self) -> None:
        database.initialize(self.db)

    def redeem(self, household: str, basket: dict[str, int], cashier: str = "kasir1", **kw):
        self.use()
        return self.service.redeem(RedemptionRequest(household, cashier, basket, collector=Collector(), **kw))

    def outbox(self, state: str | None = None) -> list[OutboxMessage]:
        self.use()
        q = OutboxMessage.select().order_by(OutboxMessage.seq)
        if state:
            q = q.where(OutboxMessage.state == state)
        return list(q)

    def incoming(self):
        from sync.central.consumer import Incoming

        return [Incoming(m.topic, bytes(m.payload)) for m in self.outbox()]
