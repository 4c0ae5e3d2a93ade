"""Regressions found by the multi-process kill soak (tests/integration/test_soak_processes.py)."""

from __future__ import annotations

from pos.db import PrintJob, Redemption
from pos.printing import PrintService
from pos.session import CounterSession, InlineRunner, State
from tests.fakes import FakeCard, FakeCardReader, FakePrinter


class BrokenPrinter(FakePrinter):
    """A printer adapter failing with something other than PrinterFault (seen in the soak:
    python-escpos raised FileNotFoundError for a missing capabilities cache directory)."""

    def print_receipt(self, receipt, job_id):
        raise FileNotFoundError("/nonexistent/escpos-cache/capabilities.pickle")


def test_unexpected_printer_error_after_commit_shows_the_sale_not_nothing_sold(service, city):
    reader, printer = FakeCardReader(), BrokenPrinter()
    session = CounterSession(service=service, reader=reader, printing=PrintService.beside(service, printer),
                             runner=InlineRunner())
    reader.subscribe(session.card_event)
    assert session.sign_in("kasir1", "1234", "pagi")
    hid = city.notable["holder"]
    card = FakeCard(f"CARD-{hid}", hid)
    reader.insert(card)
    session.choose_collector("holder")
    session.submit_pin(card.pin)
    session.add("GULA1")
    session.to_confirm()
    session.confirm()
    # the sale is durable and on the card: the screen must show it (with a printer problem),
    # never "internal error, nothing was sold", which invites the cashier to sell it again
    assert Redemption.select().count() == 1
    assert session.state == State.DONE, (session.state, session.error)
    assert session.sale.redemption_id == Redemption.get().id
    assert not session.sale.printed and session.sale.print_fault == "error"
    assert card.spend.spent == session.sale.total
    # the job is not left claimed forever; bytes may have left, so Reprint prints a copy
    assert PrintJob.get(PrintJob.redemption_id == session.sale.redemption_id).state == "failed"
    session.printing.printer = FakePrinter()
    session.reprint()
    assert session.sale.printed and session.printing.printer.printed[0][1].copy
