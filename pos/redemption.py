"""The redemption service: one durable transaction per sale, void or flagged problem.

A card sale is prepared (read-only), signed by the card, then committed with the card's proof
(docs/card-protocol.md, "Recovery"); a charge that was never committed is reported once. A
redemption, its lines, its signed outbox message, its journal entry and its print job are
written in ONE transaction with synchronous=FULL, so after a crash or power cut each sale is
either whole or absent, and it is on disk before any receipt prints. A void is a new,
compensating record; nothing is ever deleted or edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from peewee import SqliteDatabase, fn

from pos import journal, settings
from pos.card_proof import CardProof, CardTransaction, charge_card, lines_digest, redemption_card
from pos.clock import Clock, iso, parse_iso
from pos.db import JournalEntry, PrintJob, Redemption, RedemptionLine, Void, durable_transaction
from pos.device import DeviceIdentity
from pos.entitlement import Entitlement, PricedLine, assess, price_basket
from pos.ids import new_id
from pos.ledger import Ledger
from pos.outbox import enqueue
from pos.period import WITA, Period
from pos.policy import Policy
from pos.refusals import Reason, Refusal
from pos.risk import assess_device
from pos.signing import Signer

DATA_PROBLEMS = ("moved", "not_eligible", "deceased", "unregistered_poor", "wrong_data", "other")
DATA_PROBLEM_NOTE_MAX = 500  # characters of a data report's note the city keeps (docs/schemas/event.json)
OVERRIDE_REASONS = ("card_damaged", "card_forgotten", "reader_broken")
VOID_REASONS = ("wrong_items", "wrong_quantity", "buyer_cancelled", "cashier_mistake")
"""Why a sale is taken back: codes, so the screen, the void slip and the city's reports word them
alike (pos.wording `void.<code>`). Devices before this list sent free text, which the city still
accepts (docs/mqtt-contract.md); a device sends only these now."""
CHARGE_EVENT = "card_charged_not_sold"
"""The event a device sends for a card it charged without committing the sale (SPEC: Recovery)."""
HISTORY_ROWS = 30  # the counter's history screen: today's sales and a few before, not the whole ledger


@dataclass(frozen=True)
class Collector:
    """Who takes the goods: the card holder or one of the household's registered representatives."""

    kind: Literal["holder", "representative"] = "holder"
    representative_id: str = ""


def collector_name(household, collector: Collector) -> str | None:
    """The name the record, the receipt and the confirm screen give the person taking the goods:
    the holder's, or the registered representative's (None: not one of this household's)."""
    if collector.kind == "holder":
        return household.name
    return next((rep.name for rep in household.representatives if rep.id == collector.representative_id), None)


@dataclass(frozen=True)
class RedemptionRequest:
    """What the counter asks to sell: the basket and everything the record must say about who and how."""

    household_id: str
    cashier_id: str
    basket: dict[str, int]
    card_id: str = ""
    card_spent: int = 0
    card_counter: int | None = None
    card_period: str = ""  # the period card_spent belongs to ("": the current one)
    collector: Collector = Collector()
    mode: Literal["card", "override"] = "card"
    override_reason: str = ""


@dataclass(frozen=True)
class SalePlan:
    """A sale priced and checked but not written (RedemptionService.prepare): what the card is
    asked to sign (`transaction`, None for an override) and what commit writes."""

    request: RedemptionRequest
    redemption_id: str
    period: str
    ledger_version: int
    lines: tuple[PricedLine, ...]
    total: int
    remaining_after: int
    collector_name: str
    transaction: CardTransaction | None


@dataclass(frozen=True)
class RedemptionResult:
    """A committed sale: enough for the done screen and the receipt without reading the database again."""

    redemption_id: str
    seq: int
    period: str
    total: int
    remaining_after: int
    lines: tuple[PricedLine, ...]
    created_at: str
    print_job_id: str
    collector_name: str
    receipt_no: int = 0  # the printed number: its own gapless series, not the message sequence


@dataclass(frozen=True)
class VoidResult:
    """A committed void: its own sequence number (the city's gap check) and the slip to print."""

    void_id: str
    seq: int
    redemption_id: str
    amount: int
    print_job_id: str
    receipt_no: int = 0  # the voided sale's receipt number, as the cashier and household know it


@dataclass(frozen=True)
class HistoryRow:
    """One past sale as the counter's history lists it (reprint and void work from it)."""

    redemption_id: str
    receipt_no: int
    created_at: str
    household: str
    collector_name: str
    total: int
    voided: bool
    mode: str


def charge_reported(redemption_id: str) -> bool:
    """Whether this device already reported the card charge of `redemption_id` (its journal entry)."""
    return JournalEntry.select().where((JournalEntry.kind == CHARGE_EVENT)
                                       & (JournalEntry.ref == redemption_id)).exists()


def next_receipt_no() -> int:
    """The next receipt number, one above the last: sales are never deleted, so the series has no
    holes. Call inside the write transaction that stores the sale."""
    last = Redemption.select(fn.MAX(Redemption.receipt_no)).scalar()
    return (last or 0) + 1


class RedemptionService:
    """Every write the counter makes about a sale, each in one durable transaction with its outbox
    message, so a sale the screen shows is one the city will hear about."""

    def __init__(
        self,
        db: SqliteDatabase,
        ledger: Ledger,
        device: DeviceIdentity,
        signer: Signer,
        clock: Clock,
        policy: Policy,
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.device = device
        self.signer = signer
        self.clock = clock
        self.policy = policy

    def prepare(self, req: RedemptionRequest) -> SalePlan:
        """Everything about a sale except writing it (read-only): the device may sell, the household
        may take this basket now, its price, a new redemption id and, for a card sale, the
        transaction the card is asked to sign. Raises Refusal; nothing is written either way.

        The period is always the current one (Period.of(now)): the terminal never asks a card to
        record another period."""
        if req.mode == "override" and not req.override_reason:
            raise ValueError("an override needs a reason code")
        now = self.clock.now()
        period = Period.of(now)
        info = self.ledger.info()
        assess_device(info, self.policy, now)
        card_spent = req.card_spent if req.card_period in ("", str(period)) else 0
        ent = assess(self.ledger, req.household_id, period, now.astimezone(WITA).date(), card_spent)
        collector_name = self._collector_name(ent.household, req.collector)
        if req.mode == "override":
            self._check_override_cap(period)
        lines, total = price_basket(ent, self.ledger.catalog(), req.basket)
        redemption_id = new_id()
        tx = None
        if req.mode == "card":
            digest = lines_digest((ln.item.code, ln.qty, ln.item.price) for ln in lines)
            tx = CardTransaction(self.device.device_id, redemption_id, str(period), total, ent.card_spent + total,
                                 digest)
        return SalePlan(req, redemption_id, str(period), info.version, tuple(lines), total, ent.remaining - total,
                        collector_name, tx)

    def commit(self, plan: SalePlan, proof: CardProof | None, certificate_bytes: bytes = b"") -> RedemptionResult:
        """Write a prepared sale in ONE durable transaction: the redemption, its lines, its signed
        outbox message (ewarung.redemption/2, with the card's proof), its print job and journal
        entry. A card sale needs the card's proof of exactly this plan's transaction (the card
        signs first: docs/card-protocol.md, "Recovery"); an override has none."""
        if plan.transaction is None and proof is not None:
            raise ValueError("an override sale has no card proof")
        if plan.transaction is not None and (proof is None or proof.transaction != plan.transaction):
            raise ValueError("a card sale is committed only with the card's proof of this plan's transaction")
        return self._commit(plan, proof, certificate_bytes)

    def redeem(self, req: RedemptionRequest) -> RedemptionResult:
        """Prepare and commit a sale that no card signs: the supervised override, and tools and tests
        that need a sale without a card. A card-mode sale made here carries `card: null`, which the
        city quarantines; the counter's card sales go through prepare, the card, then commit."""
        return self._commit(self.prepare(req), None, b"")

    def _commit(self, plan: SalePlan, proof: CardProof | None, certificate_bytes: bytes) -> RedemptionResult:
        req = plan.request
        created_at = iso(self.clock.now())
        with durable_transaction(self.db):
            if req.mode == "override":  # under the write lock: two counters' overrides cannot both pass
                self._check_override_cap(Period.parse(plan.period))
            seq = settings.next_sequence()
            receipt_no = next_receipt_no()
            counter = proof.counter if proof is not None else req.card_counter
            Redemption.create(
                id=plan.redemption_id, seq=seq, receipt_no=receipt_no, device_id=self.device.device_id,
                household=req.household_id, card_id=req.card_id, period=plan.period, mode=req.mode,
                override_reason=req.override_reason, collected_by=req.collector.kind,
                collector_id=req.collector.representative_id, collector_name=plan.collector_name,
                cashier_id=req.cashier_id, ledger_version=plan.ledger_version, total=plan.total,
                remaining_after=plan.remaining_after, card_counter=counter, created_at=created_at,
            )
            RedemptionLine.insert_many([
                {"redemption": plan.redemption_id, "item_code": line.item.code, "item_name": line.item.name_id,
                 "unit": line.item.unit, "qty": line.qty, "unit_price": line.item.price, "amount": line.amount}
                for line in plan.lines
            ]).execute()
            body = {
                "redemption_id": plan.redemption_id,
                "receipt_no": receipt_no,
                "shop_id": self.device.shop_id,
                "household": req.household_id,
                "card_id": req.card_id,
                "card_counter": counter,
                "period": plan.period,
                "mode": req.mode,
                "override_reason": req.override_reason,
                "collected_by": {"kind": req.collector.kind, "representative_id": req.collector.representative_id,
                                 "name": plan.collector_name},
                "cashier": req.cashier_id,
                "ledger_version": plan.ledger_version,
                "lines": [{"item": ln.item.code, "qty": ln.qty, "unit_price": ln.item.price, "amount": ln.amount}
                          for ln in plan.lines],
                "total": plan.total,
                "remaining_after": plan.remaining_after,
                "card": redemption_card(certificate_bytes, proof) if proof is not None else None,
            }
            enqueue("redemption", body, device=self.device, signer=self.signer, created_at=created_at, seq=seq)
            job_id = new_id()
            PrintJob.create(id=job_id, redemption_id=plan.redemption_id, kind="receipt", created_at=created_at)
            journal.append(created_at, "redemption", plan.redemption_id,
                           {"seq": seq, "total": plan.total, "household": req.household_id})
        return RedemptionResult(plan.redemption_id, seq, plan.period, plan.total, plan.remaining_after, plan.lines,
                                created_at, job_id, plan.collector_name, receipt_no)

    def report_charge(self, household: str, card_id: str, certificate_bytes: bytes, proof: CardProof) -> int | None:
        """Report "card charged, nothing sold" for a transaction this device asked a card to sign
        and never committed: a durable `card_charged_not_sold` event with the card's proof, so the
        city can credit the household. Once per redemption id (the journal remembers it); None,
        writing nothing, when the transaction is another device's, committed here, or reported."""
        tx = proof.transaction
        if tx.device_id != self.device.device_id or not tx.redemption_id or self._settled(tx.redemption_id):
            return None  # the usual case at an insertion: read only, no write lock taken
        created_at = iso(self.clock.now())
        with durable_transaction(self.db):
            if self._settled(tx.redemption_id):  # again under the write lock
                return None
            body = {"event": CHARGE_EVENT, "household": household, "card_id": card_id,
                    "redemption_id": tx.redemption_id, "amount": tx.amount, "period": tx.period,
                    "card": charge_card(certificate_bytes, proof)}
            msg = enqueue("event", body, device=self.device, signer=self.signer, created_at=created_at)
            journal.append(created_at, CHARGE_EVENT, tx.redemption_id,
                           {"seq": msg.seq, "household": household, "amount": tx.amount, "counter": proof.counter})
        return msg.seq

    @staticmethod
    def _settled(redemption_id: str) -> bool:
        """Whether a card charge is accounted for here: committed as a sale, or reported."""
        return Redemption.get_or_none(Redemption.id == redemption_id) is not None or charge_reported(redemption_id)

    def _check_override_cap(self, period: Period) -> None:
        """Card-less sales are capped per period (the city checks the same cap): refuse past it."""
        used = Redemption.select().where((Redemption.mode == "override") & (Redemption.period == str(period))).count()
        if used >= self.policy.override_cap_per_period:
            raise Refusal(Reason.OVERRIDE_CAP_REACHED, f"{used} overrides in {period}")

    def start_override(self, household_id: str, reason: str, supervisor_id: str, cashier_id: str) -> Entitlement:
        """Open a card-less visit a supervisor approved: refused before any basket if the device may not
        sell, the cap is reached or the household may not be served; journaled, since no card signs it."""
        if reason not in OVERRIDE_REASONS:
            raise ValueError(f"reason must be one of {', '.join(OVERRIDE_REASONS)}")
        now = self.clock.now()
        period = Period.of(now)
        assess_device(self.ledger.info(), self.policy, now)
        self._check_override_cap(period)
        ent = assess(self.ledger, household_id, period, now.astimezone(WITA).date())
        with durable_transaction(self.db):
            journal.append(iso(now), "override_start", household_id,
                           {"reason": reason, "supervisor": supervisor_id, "cashier": cashier_id})
        return ent

    def start_shift(self, cashier_id: str, shift: str) -> None:
        """Journal who took the counter and for which shift: the end of day and audits count on it."""
        with durable_transaction(self.db):
            journal.append(iso(self.clock.now()), "shift_start", cashier_id, {"shift": shift, "device": self.device.device_id})

    def history(self, limit: int = HISTORY_ROWS) -> list[HistoryRow]:
        """The latest sales, newest first, each marked voided or not, for reprint and void."""
        voided = {v for (v,) in Void.select(Void.redemption).tuples()}
        rows = Redemption.select().order_by(Redemption.seq.desc()).limit(limit)
        return [HistoryRow(r.id, r.receipt_no, r.created_at, r.household, r.collector_name, r.total, r.id in voided, r.mode)
                for r in rows]

    def _collector_name(self, household, collector: Collector) -> str:
        name = collector_name(household, collector)
        if name is None:
            raise Refusal(Reason.REPRESENTATIVE_UNKNOWN, f"{collector.representative_id} for {household.id}")
        return name

    def void(self, redemption_id: str, reason: str, cashier_id: str, supervisor_id: str) -> VoidResult:
        """Void a sale within the policy window with a compensating record; `reason` is one of
        VOID_REASONS (a code the slip and the city word, never free text)."""
        if reason not in VOID_REASONS:
            raise ValueError(f"void reason {reason!r} is not one of {', '.join(VOID_REASONS)}: "
                             "pick the one that says why the sale is taken back")
        now = self.clock.now()
        created_at = iso(now)
        with durable_transaction(self.db):
            original = Redemption.get_or_none(Redemption.id == redemption_id)
            if original is None:
                raise Refusal(Reason.REDEMPTION_UNKNOWN, redemption_id)
            if Void.select().where(Void.redemption == redemption_id).exists():
                raise Refusal(Reason.ALREADY_VOIDED, redemption_id)
            if now - parse_iso(original.created_at) > timedelta(minutes=self.policy.void_window_minutes):
                raise Refusal(Reason.VOID_WINDOW_PASSED, f"sale at {original.created_at}")
            void_id = new_id()
            seq = settings.next_sequence()
            Void.create(
                id=void_id,
                seq=seq,
                redemption=redemption_id,
                reason=reason,
                cashier_id=cashier_id,
                supervisor_id=supervisor_id,
                created_at=created_at,
            )
            body = {
                "void_id": void_id,
                "redemption_id": redemption_id,
                "household": original.household,
                "period": original.period,
                "amount": original.total,
                "reason": reason,
                "cashier": cashier_id,
                "supervisor": supervisor_id,
            }
            enqueue("void", body, device=self.device, signer=self.signer, created_at=created_at, seq=seq)
            job_id = new_id()
            PrintJob.create(id=job_id, redemption_id=redemption_id, kind="void", created_at=created_at)
            journal.append(created_at, "void", redemption_id, {"seq": seq, "void_id": void_id, "reason": reason})
        return VoidResult(void_id, seq, redemption_id, original.total, job_id, original.receipt_no)

    def flag_problem(self, household_id: str, problem: str, note: str, cashier_id: str) -> int:
        """A cashier's report that the ledger is wrong about a household; reaches the city as an event."""
        if problem not in DATA_PROBLEMS:
            raise ValueError(f"problem must be one of {', '.join(DATA_PROBLEMS)}")
        created_at = iso(self.clock.now())
        with durable_transaction(self.db):
            body = {"event": "data_problem", "household": household_id, "problem": problem, "note": note[:DATA_PROBLEM_NOTE_MAX], "cashier": cashier_id}
            msg = enqueue("event", body, device=self.device, signer=self.signer, created_at=created_at)
            journal.append(created_at, "data_problem", household_id, {"problem": problem, "seq": msg.seq})
        return msg.seq

    def record_event(self, event: str, detail: dict) -> int:
        """A refusal or device fault the city should know about (queued, signed, sequenced)."""
        created_at = iso(self.clock.now())
        with durable_transaction(self.db):
            msg = enqueue("event", {"event": event, **detail}, device=self.device, signer=self.signer, created_at=created_at)
            journal.append(created_at, event, detail.get("household", ""), {"seq": msg.seq})
        return msg.seq
