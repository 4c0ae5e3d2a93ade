"""The receipt model: everything a printed receipt says, built from the database.

Printers render this (hardware.printer); nothing here knows about ESC/POS. The QR code
carries a small signed token (JWS, typ ``ewarung-receipt+jws``) with the redemption id,
receipt number, device, household, period and total, which `ewarung receipt verify` checks
against the device's public key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pos.clock import parse_iso
from pos.db import Cashier, Redemption, RedemptionLine, Void
from pos.device import DeviceIdentity
from pos.entitlement import Entitlement
from pos.signing import Signer, canonical_json, jws_sign
from pos.wording import WORDING, say

RECEIPT_TYP = "ewarung-receipt+jws"


@dataclass(frozen=True)
class ReceiptLine:
    """One basket line as sold: name and price are copied at sale time, so later catalog edits do not
    change an old receipt."""

    code: str
    name: str
    unit: str
    qty: int
    unit_price: int
    amount: int


@dataclass(frozen=True)
class QuotaLine:
    """What is left of one item's quota after the sale: the household plans its next visit by it."""

    name: str
    remaining: int
    max_qty: int


@dataclass(frozen=True)
class Receipt:
    """Everything one printed receipt says, so every printer (and the text preview) prints the same."""

    kind: str  # sale | void
    copy: bool
    language: str
    shop_name: str
    shop_address: str
    device_id: str
    cashier_name: str
    created_at: datetime
    receipt_no: int
    redemption_id: str
    masked_card: str
    household_id: str
    collected_by: str  # holder | representative
    collector_name: str
    period: str
    lines: tuple[ReceiptLine, ...]
    total: int
    remaining_after: int
    hotline: str
    qr_token: str
    quotas: tuple[QuotaLine, ...] = field(default_factory=tuple)
    void_reason: str = ""
    void_no: int | None = None
    mode: str = "card"
    supervisor_name: str = ""  # who approved the void

    @property
    def void_reason_text(self) -> str:
        """The void's reason in words (the record keeps a code of VOID_REASONS;
        a void stored before that list, free text, reprints as it was typed)."""
        return say(f"void.{self.void_reason}", self.language) if f"void.{self.void_reason}" in WORDING else self.void_reason

    @property
    def void_refund(self) -> str:
        """What the household gets back after a void, and when: printed on the void slip."""
        return say("void_refund", self.language)

    @property
    def no_cash_notice(self) -> str:
        """The program's rule printed on every receipt, in the receipt's language."""
        return say("no_cash", self.language)


def _staff_name(staff_id: str) -> str:
    staff = Cashier.get_or_none(Cashier.id == staff_id)
    return staff.name if staff else staff_id


def mask_card(card_id: str) -> str:
    """Show only the last four characters of a card id."""
    if not card_id:
        return "-"
    return "****" + card_id[-4:]


def receipt_token(redemption: Redemption, signer: Signer) -> str:
    """The QR's signed claims: anyone with the device's public key can tell a real receipt from a copy."""
    claims = {
        "r": redemption.id,
        "n": redemption.receipt_no or redemption.seq,  # the printed number (older receipts: it was the seq)
        "d": redemption.device_id,
        "h": redemption.household,
        "p": redemption.period,
        "t": redemption.total,
    }
    return jws_sign(canonical_json(claims), signer, RECEIPT_TYP).decode("ascii")


def build_receipt(
    redemption_id: str,
    *,
    device: DeviceIdentity,
    signer: Signer,
    language: str = "id",
    copy: bool = False,
    void: bool = False,
    entitlement_after: Entitlement | None = None,
) -> Receipt:
    """Build a receipt (or void slip) for a stored redemption."""
    red = Redemption.get_by_id(redemption_id)
    cashier = Cashier.get_or_none(Cashier.id == red.cashier_id)
    lines = tuple(
        ReceiptLine(ln.item_code, ln.item_name, ln.unit, ln.qty, ln.unit_price, ln.amount)
        for ln in red.lines.order_by(RedemptionLine.id)
    )
    quotas: tuple[QuotaLine, ...] = ()
    if entitlement_after is not None:
        quotas = tuple(QuotaLine(q.item, q.remaining, q.max_qty) for q in entitlement_after.quotas.values())
    void_row = Void.get_or_none(Void.redemption == redemption_id) if void else None
    return Receipt(
        kind="void" if void else "sale",
        copy=copy,
        language=language,
        shop_name=device.shop_name,
        shop_address=device.shop_address,
        device_id=red.device_id,
        cashier_name=cashier.name if cashier else red.cashier_id,
        created_at=parse_iso(void_row.created_at if void_row else red.created_at),
        receipt_no=red.receipt_no or red.seq,
        redemption_id=red.id,
        masked_card=mask_card(red.card_id),
        household_id=red.household,
        collected_by=red.collected_by,
        collector_name=red.collector_name,
        period=red.period,
        lines=lines,
        total=red.total,
        remaining_after=red.remaining_after,
        hotline=device.hotline,
        qr_token=receipt_token(red, signer),
        quotas=quotas,
        void_reason=void_row.reason if void_row else "",
        void_no=void_row.seq if void_row else None,
        mode=red.mode,
        supervisor_name=_staff_name(void_row.supervisor_id) if void_row else "",
    )
