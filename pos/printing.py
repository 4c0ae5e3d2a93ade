"""The print-job lifecycle (pure domain): claim, print, mark printed or failed, reprint.

Every receipt to print is a PrintJob row, created by RedemptionService in the same durable
transaction as the sale or void it prints. States:

    pending --claim--> printing --ok--> printed
                          |
                          +--fault before any byte was sent--> failed (not_sent): retry prints the ORIGINAL
                          +--fault after bytes were sent-------> failed (sent): never re-sent; reprint = COPY

Guarantee: AT-MOST-ONCE per job id. The claim (pending -> printing) is committed durably
(synchronous=FULL) BEFORE any byte goes to the printer, and only a pending job, or a failed
job that provably sent nothing, can be claimed. So a retried or concurrent print of a job id
never prints twice. The price: if the process dies after the printer got the bytes but before
"printed" is written, the job stays in `printing` and is NOT printed again automatically;
`stuck()` lists it and the cashier reprints it as a copy marked SALINAN. We chose this over
at-least-once because a second original receipt for one sale is worse (it looks like a second
sale) than asking the cashier to press Reprint once.

last_error is "<phase>|<kind>|<detail>" with phase not_sent or sent, kind a PrinterFault kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from peewee import SQL, SqliteDatabase

from pos import journal
from pos.clock import Clock, iso
from pos.db import PrintJob, Redemption, RedemptionLine, Void, durable_transaction
from pos.device import DeviceIdentity
from pos.end_of_day import EndOfDayReport
from pos.entitlement import Entitlement, QuotaState, known_spending
from pos.ids import new_id
from pos.ledger import Ledger
from pos.period import Period
from pos.ports import PrinterFault, PrinterPort, PrinterStatus
from pos.receipt import QuotaLine, Receipt, build_receipt
from pos.signing import Signer
from pos.wording import fault_message, say

if TYPE_CHECKING:  # pragma: no cover
    from pos.redemption import RedemptionService

NOT_SENT, SENT = "not_sent", "sent"



def cashier_message(kind: str, language: str = "id", sent: bool = False) -> str:
    """What to tell whoever printed (cashier or technician at the CLI) after a printer fault.

    The fault's own words are the screen's (pos.wording), then that the sale is safe, and, when bytes
    may already be on paper, that the reprint will be marked as a copy.
    """
    parts = [fault_message(kind, language), say("sale_saved", language)]
    if sent:
        parts.append(say("partly_printed", language))
    return " ".join(parts)


@dataclass(frozen=True)
class PrintOutcome:
    """How one print job went, as codes: whoever reports it words it (`message`) in its language."""

    job_id: str
    state: str  # printed | failed | skipped
    kind: str = ""  # fault kind when failed
    sent: bool = False
    detail: str = ""  # why a job was skipped (for the log; English)
    language: str = "id"

    @property
    def ok(self) -> bool:
        """Printed: nothing for anyone to do."""
        return self.state == "printed"

    @property
    def message(self) -> str:
        """For the cashier or the CLI: the fault and what to do, or why nothing was printed."""
        return cashier_message(self.kind, self.language, self.sent) if self.state == "failed" else self.detail


def quotas_at(ledger: Ledger, redemption: Redemption) -> Entitlement | None:
    """Per-item quotas as they stood right after `redemption` (later local sales taken out)."""
    household = ledger.household(redemption.household)
    plan = ledger.plan(household.plan_code) if household else None
    if household is None or plan is None or not plan.quotas:
        return None
    period = Period.parse(redemption.period)
    spending = known_spending(ledger, redemption.household, period)
    items = dict(spending.items)
    later = (
        RedemptionLine.select(RedemptionLine.item_code, RedemptionLine.qty)
        .join(Redemption)
        .where(
            (Redemption.household == redemption.household)
            & (Redemption.period == redemption.period)
            & (Redemption.seq > redemption.seq)
            & ~(Redemption.id.in_(Void.select(Void.redemption)))
        )
        .tuples()
    )
    for code, qty in later:
        items[code] = items.get(code, 0) - qty
    quotas = {item: QuotaState(item, mx, max(0, items.get(item, 0))) for item, mx in plan.quotas.items()}
    return Entitlement(household, plan, period, plan.allowance, spending.amount, 0, quotas)


def fault_of(status: PrinterStatus) -> str | None:
    """The fault a printer's own status shows while it is idle ("" none); None when it cannot tell.
    The status bar then says "paper out" before a sale tries to print, not after."""
    if status.online is False:
        return "offline"
    if status.paper == "out":
        return "paper_out"
    if status.cover_open:
        return "cover_open"
    return "" if status.online else None


class PrintService:
    """Drives print jobs through a PrinterPort, so the at-most-once rule holds for every printer and
    every process; knows nothing of ESC/POS."""

    def __init__(
        self,
        db: SqliteDatabase,
        printer: PrinterPort,
        *,
        device: DeviceIdentity,
        signer: Signer,
        ledger: Ledger,
        clock: Clock,
        language: str = "id",
    ) -> None:
        self.db = db
        self.printer = printer
        self.device = device
        self.signer = signer
        self.ledger = ledger
        self.clock = clock
        self.language = language
        self.on_outcome: Callable[[PrintOutcome], None] | None = None

    @classmethod
    def beside(
        cls, service: RedemptionService, printer: PrinterPort, language: str | None = None
    ) -> PrintService:
        """A print service sharing the redemption service's database, keys and clock.

        Receipts must be signed by the same device key and read the same ledger as the sale they
        print, so every process builds its print service from its redemption service this way.
        """
        return cls(
            service.db, printer, device=service.device, signer=service.signer, ledger=service.ledger,
            clock=service.clock, language=language or service.policy.language,
        )

    # --- building ----------------------------------------------------------------------
    def receipt_for(self, job: PrintJob, language: str | None = None) -> Receipt:
        """The receipt a job prints, with the quotas left named in the catalog's words."""
        language = language or self.language
        red = Redemption.get_by_id(job.redemption_id)
        voided = job.kind == "void" or (job.kind == "copy" and Void.select().where(Void.redemption == red.id).exists())
        receipt = build_receipt(
            red.id,
            device=self.device,
            signer=self.signer,
            language=language,
            copy=job.kind == "copy",
            void=voided,
            entitlement_after=None if voided else quotas_at(self.ledger, red),
        )
        catalog = self.ledger.catalog()
        named = tuple(
            QuotaLine(catalog[q.name].name(language) if q.name in catalog else q.name, q.remaining, q.max_qty)
            for q in receipt.quotas
        )
        return replace(receipt, quotas=named)

    # --- lifecycle -----------------------------------------------------------------------
    def claim(self, job_id: str) -> bool:
        """pending (or failed without sending) -> printing, durably; False if not claimable."""
        with durable_transaction(self.db):
            n = (
                PrintJob.update(state="printing", attempts=PrintJob.attempts + 1)
                .where(
                    (PrintJob.id == job_id)
                    & (
                        (PrintJob.state == "pending")
                        | ((PrintJob.state == "failed") & PrintJob.last_error.startswith(NOT_SENT + "|"))
                    )
                )
                .execute()
            )
        return n == 1

    def mark_printed(self, job_id: str) -> None:
        """printing -> printed, journaled: the job is never sent again."""
        now = iso(self.clock.now())
        with self.db.atomic():
            PrintJob.update(state="printed", printed_at=now, last_error="").where(PrintJob.id == job_id).execute()
            job = PrintJob.get_by_id(job_id)
            journal.append(now, "printed", job.redemption_id, {"job": job_id, "kind": job.kind})

    def mark_failed(self, job_id: str, fault: PrinterFault) -> None:
        """printing -> failed, with whether bytes left: that decides original or copy on reprint."""
        phase = SENT if getattr(fault, "sent", False) else NOT_SENT
        now = iso(self.clock.now())
        with self.db.atomic():
            PrintJob.update(state="failed", last_error=f"{phase}|{fault.kind}|{fault.detail}"[:250]).where(
                PrintJob.id == job_id
            ).execute()
            job = PrintJob.get_by_id(job_id)
            journal.append(now, "print_failed", job.redemption_id, {"job": job_id, "fault": fault.kind, "phase": phase})

    def print_job(self, job_id: str, language: str | None = None) -> PrintOutcome:
        """Print one job at most once. Never raises for printer faults: returns the outcome.

        `language` is the receipt's, when the counter's differs from the configured one: passed, not
        set on the service, because the service is shared with the worker thread."""
        language = language or self.language
        job = PrintJob.get_or_none(PrintJob.id == job_id)
        if job is None:
            raise KeyError(f"no print job {job_id}")
        if not self.claim(job_id):
            return self._emit(PrintOutcome(job_id, "skipped", detail=f"job already {job.state}"))
        job = PrintJob.get_by_id(job_id)
        return self._send_claimed(job_id, lambda: self.printer.print_receipt(self.receipt_for(job, language), job_id),
                                  language)

    def print_end_of_day(self, report: EndOfDayReport, language: str | None = None) -> PrintOutcome:
        """Print an end-of-day report as its own job (journaled like receipts, at most once)."""
        job_id = new_id()
        with durable_transaction(self.db):
            PrintJob.create(id=job_id, kind="end_of_day", created_at=iso(self.clock.now()))
        if not self.claim(job_id):
            return self._emit(PrintOutcome(job_id, "skipped", detail="job already taken"))
        lang = language or self.language
        return self._send_claimed(job_id, lambda: self.printer.print_end_of_day(report, job_id, language=lang), lang)

    def _send_claimed(self, job_id: str, send: Callable[[], None], language: str) -> PrintOutcome:
        """Send a claimed job and record how it went: printed, or failed with the cashier's message."""
        try:
            send()
        except Exception as exc:
            # anything else from the adapter (a bug, a missing file) is a printer fault too: the
            # sale is committed and must stay visible. Bytes may have left, so only a copy reprints.
            fault = exc if isinstance(exc, PrinterFault) else PrinterFault("error", f"{type(exc).__name__}: {exc}", sent=True)
            self.mark_failed(job_id, fault)
            sent = getattr(fault, "sent", False)
            return self._emit(PrintOutcome(job_id, "failed", fault.kind, sent, language=language))
        self.mark_printed(job_id)
        return self._emit(PrintOutcome(job_id, "printed", language=language))

    def print_pending(self) -> list[PrintOutcome]:
        """Jobs committed but not yet tried (a crash between commit and print): print them now."""
        jobs = PrintJob.select(PrintJob.id).where(
            (PrintJob.state == "pending") & (PrintJob.kind.in_(("receipt", "void", "copy")))
        ).order_by(PrintJob.created_at, SQL("rowid"))
        return [self.print_job(j.id) for j in jobs]

    def retry_unsent(self) -> list[PrintOutcome]:
        """Self-recovery: failed jobs that sent nothing get their original printed now."""
        jobs = PrintJob.select(PrintJob.id).where(
            (PrintJob.state == "failed") & PrintJob.last_error.startswith(NOT_SENT + "|")
        ).order_by(PrintJob.created_at, SQL("rowid"))
        out = []
        for j in jobs:
            outcome = self.print_job(j.id)
            out.append(outcome)
            if not outcome.ok:
                break  # still broken: do not hammer the printer
        return out

    def reprint(self, redemption_id: str, language: str | None = None) -> PrintOutcome:
        """The cashier's Reprint: the original if it provably never printed, else a copy (SALINAN)."""
        if Redemption.get_or_none(Redemption.id == redemption_id) is None:
            raise KeyError(f"no redemption {redemption_id}")
        unsent = (
            PrintJob.select()
            .where(
                (PrintJob.redemption_id == redemption_id)
                & (PrintJob.state == "failed")
                & PrintJob.last_error.startswith(NOT_SENT + "|")
            )
            .order_by(PrintJob.created_at.desc())
            .first()
        )
        if unsent is not None:
            return self.print_job(unsent.id, language)
        return self.print_job(self.new_copy_job(redemption_id), language)

    def new_copy_job(self, redemption_id: str) -> str:
        """A copy is its own job, journaled, so every paper that says SALINAN is accounted for."""
        job_id = new_id()
        now = iso(self.clock.now())
        with durable_transaction(self.db):
            PrintJob.create(id=job_id, redemption_id=redemption_id, kind="copy", created_at=now)
            journal.append(now, "reprint_requested", redemption_id, {"job": job_id})
        return job_id

    def stuck(self) -> list[PrintJob]:
        """Jobs left in `printing` by a crash, and failed jobs that may be partly on paper:
        not re-sent automatically (at-most-once); the cashier reprints them as copies."""
        candidates = (
            PrintJob.select()
            .where(
                (PrintJob.state == "printing")
                | ((PrintJob.state == "failed") & PrintJob.last_error.startswith(SENT + "|"))
            )
            .order_by(PrintJob.created_at)
        )
        return [job for job in candidates if not _resolved(job)]

    def needs_reprint(self) -> list[PrintJob]:
        """Every redemption-related job the cashier should see under 'not printed'."""
        candidates = (
            PrintJob.select()
            .where((PrintJob.state.in_(("failed", "printing"))) & (PrintJob.redemption_id != ""))
            .order_by(PrintJob.created_at)
        )
        return [job for job in candidates if not _resolved(job)]

    def _emit(self, outcome: PrintOutcome) -> PrintOutcome:
        if self.on_outcome:
            self.on_outcome(outcome)
        return outcome


def _resolved(job: PrintJob) -> bool:
    """A failed job is resolved once a later job for the same redemption printed."""
    return (
        PrintJob.select()
        .where(
            (PrintJob.redemption_id == job.redemption_id)
            & (PrintJob.state == "printed")
            & (PrintJob.created_at >= job.created_at)
            & (PrintJob.id != job.id)
        )
        .exists()
    )
