"""Fixtures for printer tests: a sale in the sample city, printer configs, the virtual printer."""

from __future__ import annotations

import socket

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sale(service, city):
    """A sale collected by a registered representative (household with a representative)."""
    from pos.ledger import Ledger
    from pos.redemption import Collector, RedemptionRequest

    hid = city.notable["representative"]
    rep = Ledger().household(hid).representatives[0]
    return service.redeem(
        RedemptionRequest(hid, "kasir1", {"BERAS5": 1, "TELUR10": 2, "MINYAK1": 2}, card_id=f"CARD-{hid}",
                          collector=Collector("representative", rep.id))
    )


@pytest.fixture
def quota_sale(service, city):
    from pos.redemption import RedemptionRequest

    hid = city.notable["quotas"]
    return service.redeem(RedemptionRequest(hid, "kasir2", {"BERAS5": 1, "GULA1": 1}, card_id=f"CARD-{hid}"))


def printer_config(**kw):
    from firmware_config.config import PrinterSection

    return PrinterSection(**kw)


@pytest.fixture
def virtual_printer(tmp_path):
    from hardware.printer.emulator import VirtualPrinter

    vp = VirtualPrinter(port=free_port(), out_dir=tmp_path / "printed", width_mm=58)
    vp.start()
    yield vp
    vp.stop()


@pytest.fixture
def print_service_for(db, device, signer, clock):
    from pos.ledger import Ledger
    from pos.printing import PrintService

    def make(printer, language="id"):
        return PrintService(db, printer, device=device, signer=signer, ledger=Ledger(), clock=clock, language=language)

    return make
