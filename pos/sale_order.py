"""The order of a card sale: the card signs first, then the sale is committed with its proof.

prepare (read-only) -> card.spend(plan.transaction) -> commit(plan, proof) -> print. A card that
cannot be charged means no sale; a charge the device could not commit is reported to the city
("card charged, nothing sold"), at once or at the card's next insertion, exactly once per
redemption id. docs/card-protocol.md, "Recovery", says why in this order.
"""

from __future__ import annotations

from pos.card_proof import CardProof
from pos.ports import AuthenticatedCard, CardSessionPort
from pos.redemption import RedemptionResult, RedemptionService, SalePlan


class SaleNotMade(Exception):
    """Nothing was sold; `fault` is the pos.wording code the cashier reads, `detail` the cause."""

    fault = "card_not_charged"

    def __init__(self, detail: str, *, amount: int = 0, seq: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.amount = amount
        self.seq = seq  # the card_charged_not_sold event's sequence, when it is already queued


class NotCharged(SaleNotMade):
    """The spend failed and the card, read back, holds no charge for this sale."""

    fault = "card_not_charged"


class ChargeUnknown(SaleNotMade):
    """The spend failed and the card could not be read back (it left, or stopped answering): no
    sale here; if the card was charged, its next insertion at this device reports it."""

    fault = "card_charge_unknown"


class ChargedNotSold(SaleNotMade):
    """The card signed the charge but the sale could not be committed: reported to the city (now,
    or at the card's next insertion when the database refused even the event)."""

    fault = "card_charged_not_sold"


def read_back(card: CardSessionPort, plan: SalePlan) -> CardProof | None:
    """After a spend whose answer was lost: the card's last transaction if it is exactly this
    plan's (the card did charge it: op 3 proof), else None. Raises when the card cannot answer."""
    proof = card.last_transaction()
    if proof is not None and proof.transaction == plan.transaction:
        return proof
    return None


def card_charge_proof(card: CardSessionPort, plan: SalePlan) -> CardProof:
    """The card's proof that it was charged for this plan (SPEND, or read back when SPEND's answer
    was lost); NotCharged or ChargeUnknown when there is none, so nothing is committed."""
    assert plan.transaction is not None
    try:
        return card.spend(plan.transaction)
    except ValueError:
        raise  # the terminal's own mistake (a transaction it cannot encode): nothing was sent
    except Exception as spend_failed:
        try:
            proof = read_back(card, plan)
        except Exception as exc:
            raise ChargeUnknown(f"spend: {spend_failed}; read back: {exc}", amount=plan.total) from spend_failed
        if proof is None:
            raise NotCharged(f"spend: {spend_failed}", amount=plan.total) from spend_failed
        return proof


def sell_with_card(service: RedemptionService, card: CardSessionPort, auth: AuthenticatedCard,
                   plan: SalePlan) -> RedemptionResult:
    """Charge the card, then commit the sale with the card's proof; when the commit fails after
    the card signed, report the charge (ChargedNotSold says whether the event is queued)."""
    proof = card_charge_proof(card, plan)
    try:
        return service.commit(plan, proof, auth.certificate_bytes)
    except Exception as commit_failed:
        try:
            seq = service.report_charge(auth.certificate.household_id, auth.certificate.card_id,
                                        auth.certificate_bytes, proof)
        except Exception:
            seq = None  # the database refuses writes: the card's next insertion reports it
        raise ChargedNotSold(f"commit: {type(commit_failed).__name__}: {commit_failed}", amount=plan.total,
                             seq=seq) from commit_failed


def settle_last_charge(service: RedemptionService, card: CardSessionPort,
                       auth: AuthenticatedCard) -> tuple[int, CardProof] | None:
    """At a card's insertion: its last transaction, if this device charged it and never committed
    nor reported the sale, is reported now (once). Returns (event seq, proof) when it reported."""
    proof = card.last_transaction()
    if proof is None:
        return None
    seq = service.report_charge(auth.certificate.household_id, auth.certificate.card_id, auth.certificate_bytes,
                                proof)
    return None if seq is None else (seq, proof)
