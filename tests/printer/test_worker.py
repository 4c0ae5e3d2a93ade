"""PrintWorker: off-thread printing; after paper is loaded the original prints by itself, once."""

from __future__ import annotations

import threading
import time

from hardware.printer.worker import PrintWorker
from tests.printer.test_network_printing import network_printer


def _wait(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_worker_self_recovers_after_paper_out(sale, virtual_printer, print_service_for):
    virtual_printer.set_state("paper_out")
    outcomes = []
    main = threading.get_ident()
    threads = set()

    def seen(o):
        threads.add(threading.get_ident())
        outcomes.append(o)

    worker = PrintWorker(print_service_for(network_printer(virtual_printer)), seen, retry_interval_s=0.3)
    worker.start()  # the sale's job is pending: printed at start
    try:
        assert _wait(lambda: len(outcomes) >= 1)
        assert outcomes[0].kind == "paper_out" and "Kertas printer habis" in outcomes[0].message
        assert virtual_printer.printed == []
        virtual_printer.set_state("ok")
        assert _wait(lambda: any(o.ok for o in outcomes))
        time.sleep(1.0)  # several retry intervals: nothing more may print
        assert virtual_printer.job_ids == [sale.print_job_id]
        worker.reprint(sale.redemption_id)
        assert _wait(lambda: len(virtual_printer.printed) == 2)
        assert "*** SALINAN ***" in virtual_printer.printed[1].document.text()
    finally:
        worker.stop()
    assert main not in threads
