"""Card sales as a device makes them, for the city's tests: a real Applet charged through the
terminal's own CardClient (hardware.card.fake), the ewarung.redemption/2 body carrying its proof,
signed by a device key as the device's outbox signs it (pos.messages)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card.applet import Applet
from hardware.card.client import CardClient
from hardware.card.fake import FakeCard, FakeReader
from pos.card_proof import CardProof, CardTransaction, charge_card, lines_digest, redemption_card
from pos.messages import build_envelope, sign_envelope
from pos.ports import AuthenticatedCard
from pos.signing import EcdsaSigner, public_pem

CREATED_AT = "2026-11-15T02:00:00.000Z"  # 10:00 WITA, the tests' clock (tests/conftest.py NOW)
PERIOD = "2026-11"
LINES = (("BERAS5", 1, 70_000), ("TELUR", 2, 25_000))


@dataclass
class Counter:
    """A device as the city knows it: its id and key (registered), signing its messages in sequence."""

    device_id: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    seq: int = 0

    def pem(self) -> str:
        """The registered public key, as the registry hands it to a verify worker."""
        return public_pem(self.key.public_key()).decode("ascii")

    def sign(self, body: dict, leaf: str = "redemption", *, schema: str | None = None,
             created_at: str = CREATED_AT) -> bytes:
        """The next sequenced message with this body, as the outbox signs it (`schema` overrides)."""
        self.seq += 1
        env = build_envelope(leaf, str(uuid.uuid4()), self.device_id, self.seq, created_at, body)
        if schema is not None:
            env["schema"] = schema
        return sign_envelope(env, EcdsaSigner(self.key, self.device_id))


@dataclass
class CardAtCounter:
    """A card in a reader, authenticated and its PIN verified, ready to be charged."""

    applet: Applet
    session: CardClient
    auth: AuthenticatedCard

    def charge(self, device_id: str, lines=LINES, *, amount: int | None = None, period: str = PERIOD,
               redemption_id: str | None = None) -> CardProof:
        """SPEND as a terminal sends it: `amount` (default the lines' sum) on the card's record."""
        amount = sum(q * p for _, q, p in lines) if amount is None else amount
        record = self.applet.card.memory
        period_total = (record.spent if record.spend_period == period else 0) + amount
        tx = CardTransaction(device_id, redemption_id or str(uuid.uuid4()), period, amount, period_total,
                             lines_digest(lines))
        return self.session.spend(tx)


def at_counter(card: FakeCard | Applet, issuer_keys: dict | None = None, pin: str = "1234") -> CardAtCounter:
    """Insert the card in a reader trusting `issuer_keys` (default: the DEMO issuer), authenticate
    and verify its PIN, as the counter session does."""
    reader = FakeReader(issuer_keys)
    reader.insert(card)
    session = reader.open_session()
    auth = session.authenticate()
    session.verify_pin(card.pin if isinstance(card, FakeCard) else pin)
    return CardAtCounter(card.applet if isinstance(card, FakeCard) else card, session, auth)


def sale_body(auth: AuthenticatedCard, proof: CardProof, lines=LINES, **changes) -> dict:
    """The v2 redemption body of a card sale the device committed with this proof."""
    tx = proof.transaction
    body = {
        "redemption_id": tx.redemption_id, "receipt_no": 1, "shop_id": "SHOP-0001",
        "household": auth.certificate.household_id, "card_id": auth.certificate.card_id,
        "card_counter": proof.counter, "period": tx.period, "mode": "card", "override_reason": "",
        "collected_by": {"kind": "holder", "representative_id": "", "name": "Siti"}, "cashier": "kasir1",
        "ledger_version": 1, "lines": [{"item": c, "qty": q, "unit_price": p, "amount": q * p} for c, q, p in lines],
        "total": tx.amount, "remaining_after": 0, "card": redemption_card(auth.certificate_bytes, proof),
    }
    body.update(changes)
    return body


def override_body(household: str, lines=LINES, **changes) -> dict:
    """The v2 body of a supervised sale without the card (card null, a reason given)."""
    body = {
        "redemption_id": str(uuid.uuid4()), "receipt_no": 2, "shop_id": "SHOP-0001", "household": household,
        "card_id": "", "card_counter": None, "period": PERIOD, "mode": "override", "override_reason": "card_damaged",
        "collected_by": {"kind": "holder", "representative_id": "", "name": "Siti"}, "cashier": "kasir1",
        "ledger_version": 1, "lines": [{"item": c, "qty": q, "unit_price": p, "amount": q * p} for c, q, p in lines],
        "total": sum(q * p for _, q, p in lines), "remaining_after": 0, "card": None,
    }
    body.update(changes)
    return body


def charge_body(auth: AuthenticatedCard, proof: CardProof, **changes) -> dict:
    """A `card_charged_not_sold` event body for a charge read back from the card."""
    tx = proof.transaction
    body = {"event": "card_charged_not_sold", "household": auth.certificate.household_id,
            "card_id": auth.certificate.card_id, "redemption_id": tx.redemption_id, "amount": tx.amount,
            "period": tx.period, "card": charge_card(auth.certificate_bytes, proof)}
    body.update(changes)
    return body
