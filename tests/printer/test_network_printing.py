"""Integration: the real escpos Network backend printing to the virtual printer on loopback.

Faults are real too: the virtual printer answers DLE EOT with paper-out / cover-open bits,
or goes silent (offline), or is not there at all (connection refused).
"""

from __future__ import annotations

import shutil

import pytest

from hardware.printer.adapter import EscposPrinter
from pos.db import PrintJob, Redemption
from pos.wording import say
from tests.printer.printer_fixtures import free_port, printer_config


def network_printer(vp, **kw):
    return EscposPrinter(printer_config(kind="network", host="127.0.0.1", port=vp.port, timeout_s=2.0, **kw),
                         status_timeout_s=0.5)


def test_sale_prints_to_virtual_printer_png(sale, virtual_printer, print_service_for, artifacts):
    svc = print_service_for(network_printer(virtual_printer))
    outcome = svc.print_job(sale.print_job_id)
    assert outcome.ok, outcome
    assert PrintJob.get_by_id(sale.print_job_id).state == "printed"
    (printed,) = virtual_printer.printed
    assert printed.job_id == sale.print_job_id
    doc = printed.document
    red = Redemption.get_by_id(sale.redemption_id)
    for needle in ("E-Warung Uji", "STRUK BANTUAN PANGAN", f"No {red.seq:06d}", "WITA", "EW-TEST-0001",
                   "Rina Kasir", "****", red.household, red.collector_name, "2026-11", "TOTAL", "Sisa bantuan", "0541-000"):
        assert needle in doc.text(), needle
    assert say("no_cash", "id") in doc.flat()
    assert red.id in doc.joined()
    assert doc.qr_codes and doc.qr_codes[0].data.count(".") == 2
    assert printed.png.exists() and printed.png.stat().st_size > 5000
    dest = artifacts / "receipts"
    dest.mkdir(exist_ok=True)
    shutil.copy(printed.png, dest / "receipt-sale-58mm.png")


def test_retried_job_never_prints_twice(sale, virtual_printer, print_service_for):
    svc = print_service_for(network_printer(virtual_printer))
    assert svc.print_job(sale.print_job_id).ok
    again = svc.print_job(sale.print_job_id)
    assert again.state == "skipped"
    fresh = print_service_for(network_printer(virtual_printer))  # a new process, same database
    assert fresh.print_job(sale.print_job_id).state == "skipped"
    assert fresh.print_pending() == []
    assert virtual_printer.job_ids == [sale.print_job_id]


@pytest.mark.parametrize("fault", ["paper_out", "cover_open", "offline"])
def test_fault_then_fix_then_reprint(fault, sale, virtual_printer, print_service_for):
    virtual_printer.set_state(fault)
    svc = print_service_for(network_printer(virtual_printer))
    out = svc.print_job(sale.print_job_id)
    assert out.state == "failed" and out.kind == fault and out.sent is False
    assert "Transaksi sudah tersimpan" in out.message
    assert virtual_printer.printed == []
    # nothing lost: the sale is committed and the job is marked for reprint
    assert Redemption.get_or_none(Redemption.id == sale.redemption_id) is not None
    job = PrintJob.get_by_id(sale.print_job_id)
    assert job.state == "failed" and job.last_error.startswith(f"not_sent|{fault}|")
    assert [j.id for j in svc.needs_reprint()] == [sale.print_job_id]
    # still broken: reprint fails again, still nothing on paper
    assert svc.reprint(sale.redemption_id).state == "failed"
    virtual_printer.set_state("ok")
    fixed = svc.reprint(sale.redemption_id)
    assert fixed.ok and fixed.job_id == sale.print_job_id  # the original: it never printed
    assert virtual_printer.job_ids == [sale.print_job_id]
    assert "SALINAN" not in virtual_printer.printed[0].document.text()
    assert svc.needs_reprint() == []
    assert svc.reprint(sale.redemption_id).ok  # now a reprint is a copy
    assert len(virtual_printer.printed) == 2
    assert "*** SALINAN ***" in virtual_printer.printed[1].document.text()
    assert len(set(virtual_printer.job_ids)) == 2


def test_printer_not_there_is_offline(sale, print_service_for):
    port = free_port()  # nothing listens here
    printer = EscposPrinter(printer_config(kind="network", host="127.0.0.1", port=port, timeout_s=1.0))
    assert printer.status().online is False
    out = print_service_for(printer).print_job(sale.print_job_id)
    assert out.kind == "offline" and not out.sent
    assert out.message.startswith(say("offline", "id"))  # the screen's words for the fault


def test_status_reads_the_printer(virtual_printer):
    p = network_printer(virtual_printer)
    st = p.status()
    assert (st.online, st.paper, st.cover_open) == (True, "ok", False)
    virtual_printer.set_state("paper_low")
    assert p.status().paper == "low"
    virtual_printer.set_state("paper_out")
    assert p.status().paper == "out"
    virtual_printer.set_state("offline")
    assert p.status().online is False  # silence is offline, not "plenty"


def test_asking_a_network_printer_how_it_is_loads_no_escpos(virtual_printer):
    """The counter polls an idle printer every few seconds: that must not pull python-escpos (and
    Pillow, qrcode, ...) into the counter's memory before the first receipt does."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    virtual_printer.set_state("paper_out")
    code = (
        "import sys\n"
        "from hardware.printer.adapter import EscposPrinter\n"
        "from tests.printer.printer_fixtures import printer_config\n"
        f"p = EscposPrinter(printer_config(kind='network', host='127.0.0.1', port={virtual_printer.port}, "
        "timeout_s=2.0), status_timeout_s=0.5)\n"
        "st = p.status()\n"
        "print(st.paper, any(m == 'escpos' or m.startswith('escpos.') for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["out", "False"], out.stdout + out.stderr


def test_state_file_control(sale, virtual_printer, print_service_for):
    virtual_printer.state_file.write_text("paper_out\n")
    svc = print_service_for(network_printer(virtual_printer))
    assert svc.print_job(sale.print_job_id).kind == "paper_out"
    virtual_printer.state_file.write_text("ok\n")
    assert svc.retry_unsent()[0].ok
    assert virtual_printer.job_ids == [sale.print_job_id]


def test_crash_after_send_is_not_reprinted_automatically(sale, virtual_printer, print_service_for):
    """At-most-once: a job left in `printing` (crash after bytes went out) is never re-sent."""
    svc = print_service_for(network_printer(virtual_printer))
    assert svc.claim(sale.print_job_id)  # ... and the process dies here
    assert svc.print_job(sale.print_job_id).state == "skipped"
    assert svc.print_pending() == [] and svc.retry_unsent() == []
    assert [j.id for j in svc.stuck()] == [sale.print_job_id]
    out = svc.reprint(sale.redemption_id)
    assert out.ok and out.job_id != sale.print_job_id
    assert "*** SALINAN ***" in virtual_printer.printed[0].document.text()
    assert svc.stuck() == []


def test_80mm_receipt_png(quota_sale, tmp_path, print_service_for, artifacts):
    from hardware.printer.emulator import VirtualPrinter

    vp = VirtualPrinter(port=free_port(), out_dir=tmp_path / "p80", width_mm=80)
    vp.start()
    try:
        printer = EscposPrinter(printer_config(kind="network", port=vp.port, width_mm=80, timeout_s=2.0))
        assert print_service_for(printer).print_job(quota_sale.print_job_id).ok
        (rec,) = vp.printed
        assert max(len(t) for t in rec.document.texts) == 48
        assert any(t.startswith("Sisa jatah") for t in rec.document.texts)
        (artifacts / "receipts").mkdir(exist_ok=True)
        shutil.copy(rec.png, artifacts / "receipts" / "receipt-quotas-80mm.png")
    finally:
        vp.stop()


def test_usb_printer_absent_is_offline(sale, print_service_for):
    printer = EscposPrinter(printer_config(kind="usb", usb_vendor=0x1234, usb_product=0x5678, timeout_s=1.0))
    assert printer.status().online is False
    out = print_service_for(printer).print_job(sale.print_job_id)
    assert out.kind == "offline" and not out.sent and "1234:5678" in PrintJob.get_by_id(sale.print_job_id).last_error


def test_concurrent_prints_of_one_job_print_once(sale, virtual_printer, print_service_for):
    import threading

    results = []
    services = [print_service_for(network_printer(virtual_printer)) for _ in range(6)]
    barrier = threading.Barrier(len(services))

    def go(svc):
        barrier.wait()
        results.append(svc.print_job(sale.print_job_id).state)

    threads = [threading.Thread(target=go, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["printed"] + ["skipped"] * 5
    assert virtual_printer.job_ids == [sale.print_job_id]


def test_status_query_off_prints_without_asking(sale, virtual_printer, print_service_for):
    virtual_printer.set_state("offline")  # a printer that prints but never answers DLE EOT ...
    printer = network_printer(virtual_printer, status_query=False)
    assert printer.status().online is None  # ... is "unknown", not offline
    virtual_printer.set_state("ok")
    before = virtual_printer.status_queries
    assert print_service_for(printer).print_job(sale.print_job_id).ok
    import time

    deadline = time.monotonic() + 5  # no status round trip to wait on: the printer works on its own time
    while not virtual_printer.printed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert virtual_printer.status_queries == before and virtual_printer.job_ids == [sale.print_job_id]
