"""Unit: print-job lifecycle with the escpos Dummy and File backends and a faulting fake."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from hardware.printer.adapter import EscposPrinter
from hardware.printer.decoder import decode, decode_one
from pos.db import OutboxMessage, PrintJob
from pos.ports import PrinterFault
from tests.printer.printer_fixtures import printer_config


class FaultAfterSend:
    """A printer whose paper runs out in the middle of the receipt (bytes already sent)."""

    def __init__(self):
        self.calls = 0

    def print_receipt(self, receipt, job_id):
        self.calls += 1
        raise PrinterFault("paper_out", "no paper (during printing)", sent=True)

    def status(self):
        raise NotImplementedError


def test_dummy_backend_prints_and_cannot_read_status(sale, print_service_for):
    printer = EscposPrinter(printer_config(kind="dummy"))
    assert printer.status().online is None  # Dummy cannot tell; never pretends "plenty"
    assert print_service_for(printer).print_job(sale.print_job_id).ok
    doc = decode_one(printer.last_output)
    assert doc.cut and sale.print_job_id in doc.joined()


def test_file_backend_writes_escpos(sale, print_service_for, tmp_path):
    dev = tmp_path / "lp0"
    dev.touch()
    printer = EscposPrinter(printer_config(kind="file", path=dev))
    svc = print_service_for(printer)
    assert svc.print_job(sale.print_job_id).ok
    first = decode(dev.read_bytes())  # escpos File opens the device for writing ("wb") per job
    assert svc.reprint(sale.redemption_id).ok
    second = decode(dev.read_bytes())
    assert len(first) == len(second) == 1
    assert "SALINAN" not in first[0].text() and "*** SALINAN ***" in second[0].text()


def test_missing_file_device_is_offline(sale, print_service_for, tmp_path):
    printer = EscposPrinter(printer_config(kind="file", path=tmp_path / "no" / "lp0"))
    out = print_service_for(printer).print_job(sale.print_job_id)
    assert out.kind == "offline" and not out.sent


def test_fault_after_send_is_never_resent(sale, print_service_for):
    fake = FaultAfterSend()
    svc = print_service_for(fake, language="en")
    out = svc.print_job(sale.print_job_id)
    assert out.state == "failed" and out.sent and "marked COPY" in out.message
    assert PrintJob.get_by_id(sale.print_job_id).last_error.startswith("sent|paper_out|")
    assert svc.retry_unsent() == [] and svc.print_job(sale.print_job_id).state == "skipped"
    assert fake.calls == 1
    assert [j.id for j in svc.stuck()] == [sale.print_job_id]
    dummy = EscposPrinter(printer_config(kind="dummy"))
    svc.printer = dummy
    out = svc.reprint(sale.redemption_id)
    assert out.ok and out.job_id != sale.print_job_id
    assert "*** COPY ***" in decode_one(dummy.last_output).text()  # English config
    assert svc.stuck() == [] and svc.needs_reprint() == []


def test_void_job_prints_void_slip(sale, service, print_service_for):
    printer = EscposPrinter(printer_config(kind="dummy"))
    svc = print_service_for(printer)
    void = service.void(sale.redemption_id, "wrong_items", "kasir1", "spv1")
    outcomes = svc.print_pending()
    assert [o.job_id for o in outcomes] == [sale.print_job_id, void.print_job_id]
    assert all(o.ok for o in outcomes)
    assert "PEMBATALAN TRANSAKSI" in decode_one(printer.last_output).text()


def test_unknown_job_and_redemption(print_service_for, db):
    svc = print_service_for(EscposPrinter(printer_config(kind="dummy")))
    with pytest.raises(KeyError):
        svc.print_job("nope")
    with pytest.raises(KeyError):
        svc.reprint("nope")


def test_end_of_day_report(service, city, clock, device):
    from pos.end_of_day import build_end_of_day, write_csv
    from pos.period import WITA
    from pos.redemption import RedemptionRequest

    a = service.redeem(RedemptionRequest(city.notable["holder"], "kasir1", {"BERAS5": 1, "TELUR10": 1}))
    b = service.redeem(RedemptionRequest(city.notable["representative"], "kasir2", {"BERAS5": 2}))
    c = service.redeem(RedemptionRequest(city.notable["lansia"], "kasir1", {"GULA1": 1}))
    service.void(c.redemption_id, "wrong_items", "kasir1", "spv1")
    clock.advance(timedelta(hours=14))  # 00:00 WITA next day: not in today's report
    service.redeem(RedemptionRequest(city.notable["partly_spent"], "kasir1", {"GULA1": 1}))
    day = (clock.now() - timedelta(hours=14)).astimezone(WITA).date()
    OutboxMessage.update(state="acked").where(OutboxMessage.seq == a.seq).execute()
    rep = build_end_of_day(day, device_id=device.device_id, shop_name=device.shop_name, now=clock.now())
    assert rep.sales_count == 2 and rep.sales_total == a.total + b.total
    beras = next(i for i in rep.items if i.code == "BERAS5")
    assert beras.qty == 3
    assert "GULA1" not in {i.code for i in rep.items}  # voided sale left out
    assert (rep.void_count, rep.void_total) == (1, c.total)
    assert {(x.cashier_id, x.count) for x in rep.cashiers} == {("kasir1", 1), ("kasir2", 1)}
    assert rep.queued_for_city == 4  # b, c, void of c, next-day sale (a is acked)
    buf = io.StringIO()
    write_csv(rep, buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert any(r["section"] == "void" and int(r["amount_rupiah"]) == c.total for r in rows)
    assert sum(int(r["amount_rupiah"]) for r in rows if r["section"] == "item") == rep.sales_total


def test_profiles(sale, print_service_for):
    from hardware.printer.backends import UnknownProfile, check_profile

    check_profile("TM-T88III")
    with pytest.raises(UnknownProfile, match="not a python-escpos capability profile"):
        check_profile("NoSuchPrinter")
    printer = EscposPrinter(printer_config(kind="dummy", profile="NoSuchPrinter"))
    out = print_service_for(printer).print_job(sale.print_job_id)
    assert out.state == "failed" and out.kind == "error"
    ok = EscposPrinter(printer_config(kind="dummy", profile="TM-T88III"))
    assert print_service_for(ok).reprint(sale.redemption_id).ok
