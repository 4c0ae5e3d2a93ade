"""Signed device messages for the city's cross-message checks, and a published city to judge them by.

`Till` signs redemption, void and card_charged_not_sold messages as a registered device would
(each check is about what one device, or several, claim across messages); `send` hands them to
the consumer with the verify step's verdict (`Checked`), as the verify workers do, so the write
path sees exactly what a verified message carries, problems included.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from pos.clock import iso
from pos.messages import build_envelope, device_topic, sign_envelope
from pos.sample_city import demo_key
from pos.signing import EcdsaSigner, public_pem
from sync.central.consumer import Incoming
from sync.central.evidence_checks import sale_moment
from sync.central.verify import Checked, created_seconds

PRICES = {"BERAS5": 72_500, "GULA1": 18_000}
HOUSEHOLDS = [("SSN-1", "BPNT"), ("SSN-2", "BPNT"), ("SSN-OLD", "LANSIA")]
_ACTIVE = ("active", "2026-01-01", "2027-12-31")


def publish_city(tmp: Path, now: datetime, kind: str = "snapshot", prices: dict[str, int] | None = None,
                 listed: dict[str, tuple[str, str, str]] | None = None) -> None:
    """Publish the sample programme (BPNT 200,000, no rollover; LANSIA 150,000 with rollover) for
    three households, active and valid 2026-01-01..2027-12-31; `prices` changes catalog prices;
    `listed` {household: (status, valid_from, valid_until)} changes households (None: dropped)."""
    from dataclasses import replace

    from pos.signing import EcdsaSigner as Signer
    from sync.central.ledger_publish import publish_ledger
    from sync.central.programme import sample_programme

    csv = tmp / "penerima.csv"
    csv.write_text("household_id,name,area,plan,status,valid_from,valid_until,representatives\n" + "".join(
        f"{hh},Ibu {hh},Sungai Pinang,{plan},{','.join(listed.get(hh) if listed and hh in listed else _ACTIVE)},\n"
        for hh, plan in HOUSEHOLDS if not listed or listed.get(hh, _ACTIVE) is not None))
    prog = sample_programme()
    prog = replace(prog, catalog=tuple(replace(i, price=(prices or {}).get(i.code, i.price)) for i in prog.catalog))
    publish_ledger(csv, signer=Signer(demo_key("ledger"), "ledger"), city="samarinda", now=now, kind=kind,
                   programme=prog)


class Till:
    """One registered device signing its own messages, numbered 1, 2, 3..."""

    def __init__(self, device_id: str, now: datetime) -> None:
        from sync.central.registry import add_device

        self.id, self.now, self.seq = device_id, now, 0
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.signer = EcdsaSigner(self.key, device_id)
        add_device(device_id, public_pem(self.key.public_key()), shop_id=f"SHOP-{device_id[-4:]}", now=now)

    def _msg(self, kind: str, body: dict, at: datetime | None) -> tuple[Incoming, dict]:
        self.seq += 1
        env = build_envelope(kind, str(uuid.uuid4()), self.id, self.seq, iso(at or self.now), body)
        return Incoming(device_topic(self.id, kind), sign_envelope(env, self.signer)), env

    def sale(self, household: str, lines: dict[str, int], *, card: str | None = None, counter: int = 0,
             rid: str | None = None, prices: dict[str, int] | None = None, version: int = 1, at: datetime | None = None,
             period_total: int = 0, override: bool = False, period: str = "2026-11") -> tuple[Incoming, dict]:
        """A redemption v2 body (card evidence reduced to what the cross-checks read)."""
        prices = {**PRICES, **(prices or {})}
        ls = [{"item": i, "qty": q, "unit_price": prices[i], "amount": q * prices[i]} for i, q in lines.items()]
        total = sum(ln["amount"] for ln in ls)
        card = "" if override else (card or f"CARD-{household}")
        body = {"redemption_id": rid or str(uuid.uuid4()), "receipt_no": self.seq + 1, "shop_id": "SHOP",
                "household": household, "card_id": card, "card_counter": 0 if override else counter,
                "period": period, "mode": "override" if override else "card",
                "override_reason": "card_damaged" if override else "", "collected_by": {"kind": "holder"},
                "cashier": "kasir1", "ledger_version": version, "lines": ls, "total": total, "remaining_after": 0,
                "card": None if override else {"proof": {"op": 2, "counter": counter,
                                                         "period_total": period_total or total}}}
        return self._msg("redemption", body, at)

    def void(self, sale: tuple[Incoming, dict], *, amount: int | None = None, after: timedelta = timedelta(minutes=5)):
        """A void of `sale` (a message this or another device signed)."""
        sale = sale[1]
        b = sale["body"]
        body = {"void_id": str(uuid.uuid4()), "redemption_id": b["redemption_id"], "household": b["household"],
                "period": b["period"], "amount": b["total"] if amount is None else amount, "reason": "salah input",
                "cashier": "kasir1", "supervisor": "spv1"}
        return self._msg("void", body, datetime.fromisoformat(sale["created_at"].replace("Z", "+00:00")) + after)

    def charged_not_sold(self, household: str, card: str, counter: int, amount: int, period_total: int,
                         rid: str | None = None):
        """The event a device sends when the card signed a charge it never committed."""
        body = {"event": "card_charged_not_sold", "household": household, "card_id": card,
                "redemption_id": rid or str(uuid.uuid4()), "amount": amount, "period": "2026-11",
                "card": {"proof": {"op": 3, "counter": counter, "period_total": period_total},
                         "transaction": {"device_id": self.id, "amount": amount, "period_total": period_total}}}
        return self._msg("event", body, None)


def send(consumer, *msgs: tuple[Incoming, dict], problems: tuple[str, ...] = ()):
    """Process messages as verified by the verify workers (with these content problems, and created_at
    read as POSIX seconds, as the workers hand it back)."""
    return consumer.process([m for m, _ in msgs], [(True, Checked(env, problems, created_seconds(sale_moment(env["created_at"]))))
                                                   for _, env in msgs])
