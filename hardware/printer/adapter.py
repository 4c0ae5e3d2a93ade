"""EscposPrinter: the PrinterPort adapter over python-escpos, backend chosen by config.

One print = render the whole receipt to bytes (escpos Dummy, layout.py), ask the printer
for its status (where the backend can answer), send all bytes in one write, ask again.
A fault before any byte left us is PrinterFault(sent=False): the job may be retried as the
original. A fault after bytes left us is PrinterFault(sent=True): the receipt may be
partly on paper, so it is never re-sent; the cashier reprints a copy (at-most-once).
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from hardware.printer import backends, layout
from pos.ports import PrinterFault, PrinterStatus
from pos.receipt import Receipt

if TYPE_CHECKING:  # pragma: no cover
    from firmware_config.config import PrinterSection
    from pos.end_of_day import EndOfDayReport


def receipt_bytes(receipt: Receipt, *, width_mm: int = 58, job_id: str = "", profile: str | None = None) -> bytes:
    """The exact ESC/POS bytes of a receipt (no device needed)."""
    d = backends.make_dummy(profile)
    layout.receipt(d, receipt, width_mm=width_mm, job_id=job_id)
    return d.output


def end_of_day_bytes(report: EndOfDayReport, *, width_mm: int = 58, language: str = "id", job_id: str = "") -> bytes:
    """The exact ESC/POS bytes of the day's report, so it can be checked without a printer."""
    d = backends.make_dummy()
    layout.end_of_day(d, report, width_mm=width_mm, language=language, job_id=job_id)
    return d.output


def test_page_bytes(*, width_mm: int = 58, language: str = "id", shop_name: str = "", job_id: str = "") -> bytes:
    """The exact ESC/POS bytes of the printer test page the technician prints after setup."""
    d = backends.make_dummy()
    layout.test_page(d, width_mm=width_mm, language=language, shop_name=shop_name, job_id=job_id)
    return d.output


def _fault(kind: str, detail: str, sent: bool) -> PrinterFault:
    return PrinterFault(kind, detail, sent=sent)  # type: ignore[arg-type]


class EscposPrinter:
    """PrinterPort over python-escpos. Thread-safe: one job on the wire at a time."""

    def __init__(self, cfg: PrinterSection, *, status_timeout_s: float | None = None) -> None:
        self.cfg = cfg
        self.status_timeout_s = status_timeout_s or min(cfg.timeout_s, 2.0)
        self._lock = threading.Lock()
        self._printed: set[str] = set()
        self.last_output: bytes = b""  # dummy backend: what would have printed

    # --- PrinterPort -------------------------------------------------------------------
    def print_receipt(self, receipt: Receipt, job_id: str) -> None:
        """Lay the receipt out for the configured paper and profile, then send it
        as one job; an unknown profile is a printer fault, not a crash."""
        try:
            data = receipt_bytes(receipt, width_mm=self.cfg.width_mm, job_id=job_id, profile=backends.profile_name(self.cfg))
        except backends.UnknownProfile as exc:
            raise PrinterFault("error", str(exc)) from None
        self.send(data, job_id)

    def print_end_of_day(self, report: EndOfDayReport, job_id: str, language: str = "id") -> None:
        """Print the day's report as one job."""
        self.send(end_of_day_bytes(report, width_mm=self.cfg.width_mm, language=language, job_id=job_id), job_id)

    def print_test_page(self, job_id: str, language: str = "id", shop_name: str = "") -> None:
        """Print the test page, so the technician sees width, alignment and QR on paper."""
        self.send(test_page_bytes(width_mm=self.cfg.width_mm, language=language, shop_name=shop_name, job_id=job_id), job_id)

    def _query(self, p) -> PrinterStatus:
        if not self.cfg.status_query:
            return PrinterStatus(online=None)
        return backends.query_status(p, self.cfg.kind, self.status_timeout_s)

    def status(self) -> PrinterStatus:
        """Ask the printer how it is without printing; a printer that cannot be opened is offline."""
        with self._lock:
            try:
                p = backends.open_status_line(self.cfg)
            except PrinterFault:
                return PrinterStatus(online=False)
            try:
                return self._query(p)
            finally:
                _close(p)

    # --- the one write ---------------------------------------------------------------
    def send(self, data: bytes, job_id: str) -> None:
        """The one write: check status, send every byte at once, check again, and report
        a fault with whether bytes left, so a receipt is never printed twice."""
        with self._lock:
            if job_id and job_id in self._printed:
                return  # this process already printed this job: never twice
            try:
                p = backends.open_backend(self.cfg)
            except PrinterFault as f:
                raise _fault(f.kind, f.detail, sent=False) from None
            try:
                before = self._query(p)
                fault = backends.fault_of(before)
                if fault:
                    raise _fault(fault.kind, fault.detail, sent=False)
                try:
                    p._raw(data)
                    if self.cfg.kind == "file":
                        p.flush()
                except Exception as exc:  # noqa: BLE001  (socket, serial, usb errors)
                    raise _fault("offline", f"connection lost while printing: {exc}", sent=True) from None
                if job_id:
                    self._printed.add(job_id)
                if self.cfg.kind == "dummy":
                    self.last_output = p.output
                after = self._query(p)
                fault = backends.fault_of(after)
                if fault and fault.kind != "offline":
                    # paper ran out or the cover opened during this receipt: maybe partly printed
                    raise _fault(fault.kind, fault.detail + " (during printing)", sent=True)
            finally:
                _close(p)


def _close(p) -> None:
    with contextlib.suppress(Exception):
        p.close()
