"""Integration: the real escpos Serial backend (pyserial) on a pseudo-terminal, with a printer
twin on the other end that answers DLE EOT like the virtual printer does."""

from __future__ import annotations

import os
import pty
import select
import threading

import pytest

from hardware.printer.adapter import EscposPrinter
from hardware.printer.decoder import Cut, Decoder, StatusQuery
from hardware.printer.emulator import status_byte
from tests.printer.printer_fixtures import printer_config

pytest.importorskip("serial")


class SerialTwin:
    def __init__(self):
        self.master, slave = pty.openpty()
        self.path = os.ttyname(slave)
        self._slave = slave
        os.system(f"stty -F {self.path} raw -echo")  # noqa: S605  (a pty of our own)
        self.state = "ok"
        self.docs: list[list] = [[]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        dec = Decoder()
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.1)
            if not r:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for item in dec.feed(data):
                if isinstance(item, StatusQuery):
                    if self.state != "offline":
                        os.write(self.master, bytes([status_byte(item.n, self.state)]))
                    continue
                self.docs[-1].append(item)
                if isinstance(item, Cut):
                    self.docs.append([])

    @property
    def printed(self):
        return [d for d in self.docs if d and isinstance(d[-1], Cut)]

    def close(self):
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)
        os.close(self._slave)


@pytest.fixture
def twin():
    t = SerialTwin()
    yield t
    t.close()


def test_serial_print_and_paper_out(sale, twin, print_service_for):
    printer = EscposPrinter(printer_config(kind="serial", serial_port=twin.path, baudrate=115200, timeout_s=1.0),
                            status_timeout_s=0.5)
    assert printer.status().paper == "ok"
    twin.state = "paper_out"
    svc = print_service_for(printer)
    out = svc.print_job(sale.print_job_id)
    assert out.kind == "paper_out" and not out.sent and twin.printed == []
    twin.state = "offline"
    assert printer.status().online is False
    twin.state = "ok"
    assert svc.reprint(sale.redemption_id).ok
    import time

    deadline = time.monotonic() + 5
    while not twin.printed and time.monotonic() < deadline:
        time.sleep(0.05)
    (doc,) = twin.printed
    assert any(getattr(i, "text", "").startswith("STRUK BANTUAN PANGAN") for i in doc)
