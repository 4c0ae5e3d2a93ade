"""Composition helpers: the printer adapter and print service from the device config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardware.printer.adapter import EscposPrinter

if TYPE_CHECKING:  # pragma: no cover
    from firmware_config.config import Config
    from pos.appliance import Appliance
    from pos.printing import PrintService


def build_printer(config: Config) -> EscposPrinter:
    return EscposPrinter(config.printer)


def build_print_service(app: Appliance, printer=None) -> PrintService:
    return app.print_service(printer or build_printer(app.config), app.config.device.language)
