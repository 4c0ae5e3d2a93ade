"""Receipt layouts, written once against python-escpos's `Escpos` API (any backend, or Dummy).

What we emit, and nothing else (hardware/printer/decoder.py reads exactly this back):
ESC @ (init), ESC t 0 (code page CP437), ESC a n (align), ESC E n (bold), GS ! n (size),
text + LF, GS ( k (native QR: model, size, error correction, store, print), ESC d n (feed),
GS V 0 (cut). Text is transliterated to ASCII first (CP437 covers ASCII on every printer;
Indonesian needs nothing else, and names like "Sité" become "Site" instead of garbage).
"""

from __future__ import annotations

import textwrap
import unicodedata
from typing import TYPE_CHECKING

from pos.money import format_rupiah
from pos.period import WITA
from pos.receipt import Receipt
from pos.receipt_text import labels

if TYPE_CHECKING:  # pragma: no cover
    from escpos.escpos import Escpos

    from pos.end_of_day import EndOfDayReport

COLUMNS = {58: 32, 80: 48}
QR_MODULE_DOTS = {58: 4, 80: 5}
_REPLACE = {
    "\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
    "\u2026": "...", "\u00d7": "x", "\u20ac": "EUR", "\u00a0": " ",
}

EXTRA_LABELS = {
    "id": {"job": "Cetak", "qr": "Pindai untuk memeriksa struk", "eod": "LAPORAN AKHIR HARI",
           "date": "Tanggal", "items": "Barang", "sales": "Transaksi", "voids": "Pembatalan",
           "cashiers": "Kasir", "queued": "Belum terkirim ke kota", "printed": "Dicetak",
           "test": "TES PRINTER", "test_ok": "Printer siap dipakai.", "void_of": "Membatalkan struk No", "void_no": "No pembatalan"},
    "en": {"job": "Print", "qr": "Scan to verify this receipt", "eod": "END OF DAY REPORT",
           "date": "Date", "items": "Items", "sales": "Sales", "voids": "Voids",
           "cashiers": "Cashiers", "queued": "Not yet sent to the city", "printed": "Printed",
           "test": "PRINTER TEST", "test_ok": "The printer is ready.", "void_of": "Voids receipt No", "void_no": "Void no"},
}


def to_ascii(text: str) -> str:
    """Transliterate to printable ASCII (what CP437 surely has): accents dropped, rest '?'."""
    out = []
    for ch in str(text):
        if ch in _REPLACE:
            out.append(_REPLACE[ch])
            continue
        if 32 <= ord(ch) < 127:
            out.append(ch)
            continue
        base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode("ascii")
        out.append(base if base and all(32 <= ord(c) < 127 for c in base) else "?")
    return "".join(out)


def pair(left: str, right: str, width: int) -> list[str]:
    """A label and a value on one line, value right-aligned; two lines when both do not fit."""
    left, right = to_ascii(left), to_ascii(right)
    space = width - len(left) - len(right)
    if space < 1:
        return [left[:width], right[-width:].rjust(width)]
    return [left + " " * space + right]


class Writer:
    """Thin helper over an Escpos object: every style change goes through here."""

    def __init__(self, p: Escpos, width_mm: int) -> None:
        self.p = p
        self.width_mm = width_mm
        self.cols = COLUMNS[width_mm]

    def begin(self) -> None:
        """Reset the printer and select CP437, so every job starts from a known state."""
        self.p.hw("INIT")  # ESC @
        self.p.charcode("CP437")  # ESC t 0, and magic encoding stays there

    def style(self, *, align: str = "left", bold: bool = False, size: tuple[int, int] = (1, 1)) -> None:
        """Set alignment, bold and size; every line sets
        all three, so no style leaks into the next."""
        self.p.set(align=align, bold=bold, custom_size=True, width=size[0], height=size[1])

    def line(self, text: str = "", **style) -> None:
        """One line of text in a style, transliterated to what the code page can print."""
        self.style(**style)
        self.p.text(to_ascii(text) + "\n")

    def wrapped(self, text: str, *, size: tuple[int, int] = (1, 1), **style) -> None:
        """Text wrapped to the columns the character size leaves."""
        width = max(8, self.cols // size[0])
        for chunk in textwrap.wrap(to_ascii(text), width) or [""]:
            self.line(chunk, size=size, **style)

    def pairs(self, left: str, right: str, **style) -> None:
        """A label and a right-aligned value (see pair)."""
        for text in pair(left, right, self.cols):
            self.line(text, **style)

    def rule(self, ch: str = "-") -> None:
        """A full-width rule between sections."""
        self.line(ch * self.cols)

    def qr(self, data: str) -> None:
        """A centred native QR code (error correction M), sized for the paper width."""
        from escpos.constants import QR_ECLEVEL_M

        self.style(align="center")
        self.p.qr(data, ec=QR_ECLEVEL_M, size=QR_MODULE_DOTS[self.width_mm], native=True)
        self.p.text("\n")

    def end(self) -> None:
        """Reset the style and cut, ending the piece of paper."""
        self.style()
        self.p.cut()  # ESC d 6, GS V 0


def receipt(p: Escpos, r: Receipt, *, width_mm: int = 58, job_id: str = "") -> None:
    """The receipt (sale or void slip, original or SALINAN copy) onto an Escpos printer."""
    t = labels(r.language)
    x = EXTRA_LABELS.get(r.language, EXTRA_LABELS["id"])
    w = Writer(p, width_mm)
    w.begin()
    w.wrapped(r.shop_name, align="center", bold=True, size=(1, 2))
    if r.shop_address:
        w.wrapped(r.shop_address, align="center")
    w.rule("=")
    w.wrapped(t["void"] if r.kind == "void" else t["receipt"], align="center", bold=True)
    if r.copy:
        w.line(t["copy"], align="center", bold=True, size=(2, 2) if width_mm == 80 else (1, 2))
    local = r.created_at.astimezone(WITA)
    w.pairs(f"{t['no']} {r.receipt_no:06d}", local.strftime("%d-%m-%Y %H:%M WITA"))
    w.pairs(t["device"], r.device_id)
    w.pairs(t["cashier"], r.cashier_name)
    w.pairs(t["card"], r.masked_card)
    w.pairs(t["household"], r.household_id)
    w.wrapped(f"{t['collector']}: {r.collector_name} ({t[r.collected_by]})")
    if r.mode == "override":
        w.wrapped(t["override"], bold=True)
    w.pairs(t["period"], r.period)
    if r.kind == "void" and r.void_no is not None:
        w.pairs(x["void_of"], f"{r.receipt_no:06d}")
        w.pairs(x["void_no"], f"{r.void_no:06d}")
    w.rule()
    for ln in r.lines:
        w.wrapped(ln.name + (f" ({ln.unit})" if ln.unit else ""))
        w.pairs(f"  {ln.qty} x {format_rupiah(ln.unit_price)}", format_rupiah(ln.amount))
    w.rule()
    total = format_rupiah(-r.total if r.kind == "void" else r.total)
    if width_mm == 80:
        w.pairs(t["total"], total, bold=True)
    else:
        w.line(t["total"], bold=True)
        w.line(total, align="right", bold=True, size=(1, 2))
    if r.kind == "void":
        w.wrapped(f"{t['reason']}: {r.void_reason_text}")
        w.pairs(t["supervisor"], r.supervisor_name)
        w.pairs(t["balance_after"], format_rupiah(r.remaining_after), bold=True)
        w.wrapped(r.void_refund)
    else:
        w.pairs(t["remaining"], format_rupiah(r.remaining_after), bold=True)
        for q in r.quotas:
            w.pairs(f"{t['quota']} {q.name}", f"{q.remaining}/{q.max_qty}")
    w.rule()
    w.wrapped(r.no_cash_notice, align="center", bold=True)
    if r.hotline:
        w.wrapped(r.hotline, align="center")
    w.qr(r.qr_token)
    w.line(x["qr"], align="center")
    w.wrapped(r.redemption_id, align="center")
    if job_id:
        w.wrapped(f"{x['job']} {job_id}", align="center")
    w.end()


def end_of_day(p: Escpos, report: EndOfDayReport, *, width_mm: int = 58, language: str = "id", job_id: str = "") -> None:
    """The day's report onto an Escpos printer: items, sales,
    voids, cashiers, and what is not yet sent to the city."""
    t = labels(language)
    x = EXTRA_LABELS.get(language, EXTRA_LABELS["id"])
    w = Writer(p, width_mm)
    w.begin()
    w.wrapped(report.shop_name, align="center", bold=True, size=(1, 2))
    w.wrapped(x["eod"], align="center", bold=True)
    w.pairs(x["date"], report.day.strftime("%d-%m-%Y") + " WITA")
    w.pairs(t["device"], report.device_id)
    w.rule("=")
    w.line(x["items"], bold=True)
    for it in report.items:
        w.wrapped(f"{it.name} ({it.code})")
        w.pairs(f"  {it.qty} {it.unit}", format_rupiah(it.amount))
    w.rule()
    w.pairs(x["sales"], str(report.sales_count), bold=True)
    w.pairs(t["total"], format_rupiah(report.sales_total), bold=True)
    w.pairs(x["voids"], f"{report.void_count} / {format_rupiah(report.void_total)}")
    w.rule()
    w.line(x["cashiers"], bold=True)
    for c in report.cashiers:
        w.pairs(f"  {c.name}", f"{c.count} / {format_rupiah(c.total)}")
    w.rule()
    w.pairs(x["queued"], str(report.queued_for_city), bold=True)
    w.pairs(x["printed"], report.generated_at.astimezone(WITA).strftime("%d-%m-%Y %H:%M"))
    if job_id:
        w.wrapped(f"{x['job']} {job_id}", align="center")
    w.end()


def test_page(p: Escpos, *, width_mm: int = 58, language: str = "id", shop_name: str = "", job_id: str = "") -> None:
    """The printer test page: width, columns, bold,
    alignment and a QR, so setup problems show on paper."""
    x = EXTRA_LABELS.get(language, EXTRA_LABELS["id"])
    w = Writer(p, width_mm)
    w.begin()
    w.line(x["test"], align="center", bold=True, size=(2, 2))
    if shop_name:
        w.wrapped(shop_name, align="center")
    w.rule()
    w.line(f"{width_mm} mm, {w.cols} columns")
    w.line("0123456789" * (w.cols // 10))
    w.line("Bold / Tebal", bold=True)
    w.line("Right / Kanan", align="right")
    w.line(x["test_ok"], align="center")
    w.qr("ewarung-printer-test")
    if job_id:
        w.wrapped(f"{x['job']} {job_id}", align="center")
    w.end()
