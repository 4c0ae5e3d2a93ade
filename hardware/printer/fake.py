"""The in-process printer: what unit tests print to, and the demo's printer beside the panel.

It keeps what it printed (the panel shows it, tests count it) and fails on request with the same
PrinterFault kinds the ESC/POS adapter raises, so the counter's fault handling is tested without
a printer.
"""

from __future__ import annotations

from collections.abc import Callable

from pos.end_of_day import EndOfDayReport
from pos.ports import PrinterFault, PrinterStatus
from pos.receipt import Receipt


class FakePrinter:
    """pos.ports.PrinterPort keeping every receipt and report; `fault` makes the next prints fail."""

    def __init__(self) -> None:
        self.printed: list[tuple[str, Receipt]] = []
        self.reports: list[tuple[str, EndOfDayReport]] = []
        self.fault: str = ""  # "" | offline | paper_out | cover_open | error
        self._listeners: list[Callable[[Receipt | EndOfDayReport], None]] = []

    def on_print(self, callback: Callable[[Receipt | EndOfDayReport], None]) -> None:
        """`callback(paper)` after each receipt or end-of-day report printed: the demo panel's preview."""
        self._listeners.append(callback)

    def print_receipt(self, receipt: Receipt, job_id: str) -> None:
        """Keep the receipt, or fail as `fault` says."""
        self._check()
        self.printed.append((job_id, receipt))
        for cb in list(self._listeners):
            cb(receipt)

    def print_end_of_day(self, report: EndOfDayReport, job_id: str, language: str = "id") -> None:
        """Keep the report, or fail as `fault` says."""
        self._check()
        self.reports.append((job_id, report))
        for cb in list(self._listeners):
            cb(report)

    def _check(self) -> None:
        if self.fault:
            raise PrinterFault(self.fault, "demo printer")  # type: ignore[arg-type]

    def status(self) -> PrinterStatus:
        """What a real printer's status query would answer in this fault."""
        if self.fault == "offline":
            return PrinterStatus(False, "unknown")
        if self.fault == "paper_out":
            return PrinterStatus(True, "out")
        if self.fault == "cover_open":
            return PrinterStatus(True, "ok", True)
        return PrinterStatus(True, "ok", False)
