"""The one-shot commands' composition root: `ewarung receipt reprint`, `printer ...`, `report
end-of-day --print`, the scripted demo. Each runs beside the counter on the same database and
must sign and print as the counter does, so it builds the same appliance and the printer from
the same config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware_config.config import Config
from pos.printing import PrintService
from pos.roots.appliance import Appliance, build_appliance, ensure_demo_data
from pos.roots.keys import issuer_public_keys

if TYPE_CHECKING:  # pragma: no cover
    from hardware.printer.adapter import EscposPrinter

__all__ = ["Appliance", "build_appliance", "ensure_demo_data", "issuer_public_keys", "print_service", "printer"]


def printer(config: Config) -> EscposPrinter:
    """The configured receipt printer; python-escpos loads only for the commands that print."""
    from hardware.printer.adapter import EscposPrinter

    return EscposPrinter(config.printer)


def print_service(app: Appliance) -> PrintService:
    """The appliance's PrintService on the configured printer, in the device's language."""
    return app.print_service(printer(app.config), app.config.device.language)
