"""Plain-text layout of a receipt: for screen previews, logs and the scripted demo.

Thermal printers render the same Receipt through hardware.printer with ESC/POS styling;
this is the readable twin (32 columns for 58 mm paper, 48 for 80 mm).
"""

from __future__ import annotations

from pos.end_of_day import EndOfDayReport
from pos.money import format_rupiah
from pos.period import WITA
from pos.receipt import Receipt
from pos.wording import RECEIPT_LABELS, say


def labels(language: str) -> dict[str, str]:
    """The receipt's fixed words in its language, from the one catalog (pos.wording, `receipt.*`),
    so the paper and its text preview say the same."""
    return {key: say(f"receipt.{key}", language) for key in RECEIPT_LABELS}


def _pair(left: str, right: str, width: int) -> str:
    space = width - len(left) - len(right)
    if space < 1:
        return f"{left}\n{right.rjust(width)}"
    return left + " " * space + right


def report_text(report: EndOfDayReport, language: str = "id", columns: int = 32) -> list[str]:
    """The end-of-day report as lines of text: the field tester's panel shows what was printed."""
    t = labels(language)
    rule = "-" * columns
    out = [report.shop_name.center(columns), t["end_of_day"].center(columns), report.day.strftime("%d-%m-%Y"), rule]
    for it in report.items:
        out.append(it.name[:columns])
        out.append(_pair(f"  {it.qty} {it.unit}", format_rupiah(it.amount), columns))
    out += [rule, _pair(t["sales"], str(report.sales_count), columns),
            _pair(t["total"], format_rupiah(report.sales_total), columns),
            _pair(t["voids"], f"{report.void_count} / {format_rupiah(report.void_total)}", columns), rule]
    out += [_pair(f"  {c.name}", f"{c.count} / {format_rupiah(c.total)}", columns) for c in report.cashiers]
    out += [rule, _pair(t["queued"], str(report.queued_for_city), columns)]
    return out


def render_text(receipt: Receipt, columns: int = 32) -> list[str]:
    """The receipt as lines of text: what the field tester's panel and the scripted demo show."""
    t = labels(receipt.language)
    out: list[str] = []
    rule = "-" * columns
    out.append(receipt.shop_name.center(columns))
    if receipt.shop_address:
        out.append(receipt.shop_address[:columns].center(columns))
    out.append(rule)
    out.append((t["void"] if receipt.kind == "void" else t["receipt"]).center(columns))
    if receipt.copy:
        out.append(t["copy"].center(columns))
    local = receipt.created_at.astimezone(WITA)
    out.append(_pair(f"{t['no']} {receipt.receipt_no:06d}", local.strftime("%d-%m-%Y %H:%M WITA"), columns))
    out.append(_pair(t["device"], receipt.device_id, columns))
    out.append(_pair(t["cashier"], receipt.cashier_name, columns))
    out.append(_pair(t["card"], receipt.masked_card, columns))
    out.append(_pair(t["household"], receipt.household_id, columns))
    out.append(f"{t['collector']}: {receipt.collector_name} ({t[receipt.collected_by]})"[: columns * 2])
    if receipt.mode == "override":
        out.append(t["override"])
    out.append(_pair(t["period"], receipt.period, columns))
    out.append(rule)
    for line in receipt.lines:
        out.append(line.name[:columns])
        out.append(_pair(f"  {line.qty} x {format_rupiah(line.unit_price)}", format_rupiah(line.amount), columns))
    out.append(rule)
    out.append(_pair(t["total"], format_rupiah(receipt.total), columns))
    if receipt.kind == "void":
        out.append(f"{t['reason']}: {receipt.void_reason_text}")
        out.append(_pair(t["supervisor"], receipt.supervisor_name, columns))
        out.append(_pair(t["balance_after"], format_rupiah(receipt.remaining_after), columns))
        out.append(receipt.void_refund)
    else:
        out.append(_pair(t["remaining"], format_rupiah(receipt.remaining_after), columns))
        for q in receipt.quotas:
            out.append(_pair(f"{t['quota']} {q.name}", f"{q.remaining}/{q.max_qty}", columns))
    out.append(rule)
    out.append(receipt.no_cash_notice)
    if receipt.hotline:
        out.append(receipt.hotline)
    out.append(f"[QR {receipt.redemption_id}]")
    return out
