"""The visit, where to start reading: card -> household -> PIN -> basket -> confirm -> done.

Card events come from the reader (marshalled onto the session's thread); every card call and the
commit run on the runner and come back to `done` callbacks here. A visit's late results are
dropped once the card has left (the generation counter), except a confirm's: the card signs first
and the sale is committed with its proof (pos.sale_order), and what happened is always shown.
"""

from __future__ import annotations

from pos.money import format_rupiah
from pos.ports import CardEvent
from pos.redemption import Collector, RedemptionRequest
from pos.refusals import Reason, Refusal
from pos.sale_order import (
    ChargedNotSold,
    ChargeUnknown,
    SaleNotMade,
    sell_with_card,
    settle_last_charge,
)
from pos.session.core import ErrorInfo, Sale, SessionCore, print_fault
from pos.session.rules import CARD_STATES, Action, State


class Visit(SessionCore):
    """One household served with its card (or, after an override, without): the counter's main flow."""

    # -- card events (from the reader, marshalled onto the session thread) -----------------

    def card_event(self, event: CardEvent) -> None:
        """React to the reader: a card in or out, the reader gone or back, a card gone mute."""
        if event.kind == "reader_lost":
            self._reader_lost()
        elif event.kind == "reader_back":
            self.reader_ok = True
            if self.state == State.ERROR and self.error and self.error.fault == "reader_lost":
                self.error = None
                self._go(State.IDLE)
        elif event.kind == "card_not_answering":
            self._card_not_answering()
        elif event.kind == "removed":
            self.card_present = False
            self._card_removed()
        elif event.kind == "inserted":
            self._card_inserted()
        else:
            return
        self._changed()

    def _reader_lost(self) -> None:
        self.reader_ok = False
        self.card_present = False
        if self.state in CARD_STATES or self.state == State.IDLE:
            self._abandon_with("reader_lost")

    def _abandon_with(self, fault: str) -> None:
        """Drop the visit (its pending card results too) and show a device fault."""
        self._generation += 1
        self._close_card()
        self._reset_visit()
        self._show_fault(fault)

    def _show_fault(self, fault: str) -> None:
        self.error = ErrorInfo(fault=fault, back_to=State.IDLE)
        self._go(State.ERROR)

    def _card_inserted(self) -> None:
        self.card_present = True
        self.reader_ok = True
        if self.state == State.IDLE:
            self._start_verify()
        elif self.state == State.SIGNED_OUT:
            self.tell("sign_in_first")
        elif self.state != State.DONE:
            self.tell("finish_screen_first")

    def _card_removed(self) -> None:
        if self.notice == "take_card_out":  # done: the line must not stay and be read as a new problem
            self.tell("")
        if self.state in CARD_STATES:
            self._generation += 1
            self._close_card()
            self._reset_visit()
            self._go(State.IDLE)
            self.tell("card_pulled")
        elif self.state == State.COMMITTING:
            # the spend or the commit is under way: its result says what happened (pos.sale_order)
            pass
        elif self.state == State.DONE or self._card_error_showing():
            self._leave_visit()

    def _card_error_showing(self) -> bool:
        """An error about the card (not the reader, not an override visit) goes once the card is out."""
        return (self.state == State.ERROR and self.error is not None and self.error.fault != "reader_lost"
                and self.mode == "card")

    def _leave_visit(self) -> None:
        """Close the card and forget the visit, its sale and its error: back to idle."""
        self._close_card()
        self._reset_visit()
        self.sale = None
        self.error = None
        self._go(State.IDLE)

    def _card_not_answering(self) -> None:
        """The reader's watchdog gave up on the card (a chip that stopped answering mid-call).

        The visit is abandoned as if the card were pulled (its state on the card is unknown), and the
        cashier is told to re-insert it, or to serve with the override if it keeps happening. The
        failing call's own CARD_UNREADABLE result comes after this event and is dropped by the
        generation. During a confirm the spend's own failure decides: read back, or no sale.
        """
        if self.mode != "card":  # an override visit has no card session to lose
            return
        if self.state in CARD_STATES:
            self._abandon_with("card_not_answering")
        elif self.state == State.COMMITTING:
            pass  # the spend's own failure, read back or not, decides (pos.sale_order)
        elif self.state == State.ERROR and self.error and self.error.reason == Reason.CARD_UNREADABLE:
            self.error = ErrorInfo(fault="card_not_answering", back_to=State.IDLE)  # the result came first

    def _start_verify(self) -> None:
        self._reset_visit()
        self._go(State.VERIFYING)
        gen = self._generation = self._generation + 1
        reader, ledger, policy, clock, decide = self.reader, self.ledger, self.policy, self.clock, self._decide
        named: dict[str, str] = {}  # the household a genuine card names, for a refusal about it

        service = self.service
        settled: list = []  # (event seq, proof) of a charge this device never committed, reported now

        def work():
            card = reader.open_session()
            try:
                auth = card.authenticate()
                named["household"] = auth.certificate.household_id
                if (found := settle_last_charge(service, card, auth)) is not None:
                    settled.append(found)
                ent = decide(ledger, policy, auth, clock.now())
                catalog = dict(ledger.catalog())
            except BaseException:
                card.close()
                raise
            return card, auth, ent, catalog

        def done(result, exc):
            if gen != self._generation:
                if result is not None:
                    result[0].close()
                return
            if exc is not None:
                self._fail(exc)
                if self.error is not None:
                    self.error.household = named.get("household", "")
                self._report(exc)
            else:
                self.card, self.auth, self.entitlement, self.catalog = result
                self.pin_tries_left = self.auth.pin_tries_left
                self._go(State.HOUSEHOLD)
            if settled:  # said on whatever screen the visit reached: the city credits it either way
                seq, proof = settled[0]
                self.tell("charge_reported", amount=format_rupiah(proof.transaction.amount), seq=seq)
            self._changed()

        self.runner.submit(work, done)

    # -- household, collector, PIN ---------------------------------------------------------

    def choose_collector(self, kind: str = "holder", representative_id: str = "") -> bool:
        """Who takes the goods: the holder, or a registered representative (the record names them)."""
        if not self._may(Action.CHOOSE_COLLECTOR):
            return False
        assert self.entitlement is not None
        if kind == "representative":
            reps = {r.id for r in self.entitlement.household.representatives}
            if representative_id not in reps:
                return self._decline(Reason.REPRESENTATIVE_UNKNOWN.value)
        elif kind != "holder":
            return self._refuse(Action.CHOOSE_COLLECTOR)
        self.collector = Collector(kind, representative_id if kind == "representative" else "")  # type: ignore[arg-type]
        self._go(State.BASKET if self.mode == "override" else State.PIN)
        self._changed()
        return True

    def submit_pin(self, pin: str) -> bool:
        """The card checks the holder's PIN (never the device): a wrong one counts down its tries."""
        if not self._may(Action.SUBMIT_PIN):
            return False
        if not pin.isdigit() or not 4 <= len(pin) <= 8:
            return self._decline("pin_format")
        gen = self._generation
        card = self.card
        assert card is not None
        self.busy = True
        self._changed()

        def done(_r, exc):
            self.busy = False  # also when the card left meanwhile: the next visit's PIN must not be refused
            if gen != self._generation:
                self._changed()
                return
            if exc is None:
                self._go(State.BASKET)
            elif isinstance(exc, Refusal) and exc.reason == Reason.PIN_WRONG:
                left = getattr(exc, "tries_left", None)
                if left is None and self.pin_tries_left is not None:
                    left = max(0, self.pin_tries_left - 1)
                self.pin_tries_left = left
                self.tell(Reason.PIN_WRONG.value)
            else:
                self._generation += 1
                self._fail(exc)
                self._report(exc)
            self._changed()

        self.runner.submit(lambda: card.verify_pin(pin), done)
        return True

    # -- basket ----------------------------------------------------------------------------

    def add(self, code: str) -> bool:
        """One more of an item, if the catalog, the quota and the allowance let it in."""
        if not self._may(Action.ADD):
            return False
        entry = self.catalog.get(code)
        if entry is None:
            self.tell(Reason.ITEM_NOT_ELIGIBLE.value)
        elif (left := self.quota_left(code)) is not None and left <= 0:
            self.tell(Reason.QUOTA_EXCEEDED.value)
        elif self.basket_total + entry.price > self.remaining:
            self.tell(Reason.OVER_ALLOWANCE.value)
        else:
            self.basket[code] = self.basket.get(code, 0) + 1
            self.tell("")
            self._changed()
            return True
        self._changed()
        return False

    def remove(self, code: str) -> bool:
        """One less of an item."""
        if not self._may(Action.REMOVE):
            return False
        if self.basket.get(code, 0) <= 0:
            return False
        self.basket[code] -= 1
        if not self.basket[code]:
            del self.basket[code]
        self.tell("")
        self._changed()
        return True

    def to_confirm(self) -> bool:
        """Show the basket for the buyer to check before anything is written."""
        if not self._may(Action.TO_CONFIRM):
            return False
        if not self.basket:
            return self._decline(Reason.EMPTY_BASKET.value)
        self._go(State.CONFIRM)
        self._changed()
        return True

    def back(self) -> bool:
        """One step back inside a visit (confirm -> basket)."""
        if not self._may(Action.BACK):
            return False
        self._go(State.BASKET)
        self._changed()
        return True

    def cancel(self) -> bool:
        """Cancel the visit or leave a side screen; nothing is sold."""
        if not self._may(Action.CANCEL):
            return False
        self._generation += 1
        self._close_card()
        self._reset_visit()
        self._go(State.IDLE)
        self._changed()
        return True

    # -- commit ----------------------------------------------------------------------------

    def confirm(self) -> bool:
        """The card signs first, then the sale is committed with its proof, then the receipt prints
        (pos.sale_order). A card that cannot be charged means no sale; a charge that could not be
        committed is reported to the city, and the error screen says so."""
        if not self._may(Action.CONFIRM):
            return False
        assert self.entitlement is not None
        self._go(State.COMMITTING)
        req = self._request()
        card, auth, language, service, printing = self.card, self.auth, self.language, self.service, self.printing

        def work():
            plan = service.prepare(req)
            if card is None or auth is None:  # the supervised override: no card signs it
                result = service.commit(plan, None)
            else:
                result = sell_with_card(service, card, auth, plan)
            return result, printing.print_job(result.print_job_id, language)

        def done(res, exc):
            self.busy = False
            if isinstance(exc, SaleNotMade):
                self._sale_not_made(exc)
            elif exc is not None:
                self._fail(exc, back_to=State.IDLE)
            else:
                self._show_sale(*res)
            self._changed()

        self.busy = True
        self._changed()
        self.runner.submit(work, done)
        return True

    def _sale_not_made(self, exc: SaleNotMade) -> None:
        """Nothing was sold: say whether the card was charged (the city credits it) or not."""
        if isinstance(exc, ChargedNotSold):
            self.error = ErrorInfo(fault="card_charged_not_sold", detail=exc.detail)
        elif isinstance(exc, ChargeUnknown):
            self.error = ErrorInfo(fault="card_charge_unknown", detail=exc.detail)
        else:
            self.error = ErrorInfo(fault="card_not_charged", detail=exc.detail)
        self._go(State.ERROR)

    def _request(self) -> RedemptionRequest:
        assert self.entitlement is not None
        auth = self.auth
        return RedemptionRequest(
            household_id=self.entitlement.household.id,
            cashier_id=self.cashier_id,
            basket=dict(self.basket),
            card_id=auth.certificate.card_id if auth else "",
            card_spent=self.entitlement.card_spent,
            card_counter=auth.spend.counter if auth else None,
            card_period=str(self.entitlement.period),
            collector=self.collector,
            mode="override" if self.mode == "override" else "card",
            override_reason=self.override_reason,
        )

    def _show_sale(self, result, outcome) -> None:
        """The done screen for a committed sale (the card already signed it), saying what the printer did."""
        fault = print_fault(outcome)
        self.sale = Sale(result.redemption_id, result.receipt_no, result.total, result.remaining_after,
                         result.collector_name, result.print_job_id, printed=not fault, print_fault=fault)
        self._go(State.DONE)
        if fault:
            self.printer_fault = fault

    def finish(self) -> bool:
        """Done screen: back to idle (the card should already be out)."""
        if not self._may(Action.FINISH):
            return False
        self._leave_visit()
        if self.card_present:
            self.tell("take_card_out")
        self._changed()
        return True

    def acknowledge(self) -> bool:
        """Error screen: the cashier has read it; go where the error says."""
        if not self._may(Action.ACKNOWLEDGE):
            return False
        if self.error and self.error.fault == "reader_lost" and not self.reader_ok:
            return self._decline("connect_reader_first")
        back = self.error.back_to if self.error else State.IDLE
        self._close_card()
        self._reset_visit()
        self.error = None
        self._go(back)
        if self.card_present and back == State.IDLE:
            self.tell("take_card_out")
        self._changed()
        return True
