"""Builds what the counter app needs from the device configuration (no kivy here).

Demo mode: the sample city, the in-process demo card deck and demo printer
(pos.ui.demo_devices). Production: the real adapters from hardware/ (wired by the lead at
merge; until then `ewarung counter` without --demo says so and stops).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_config.config import Config
from pos.appliance import Appliance, SetupError, build_appliance, ensure_demo_data
from pos.clock import Clock, SystemClock
from pos.ports import CardReaderPort, PrinterPort
from pos.sample_city import NOTABLE, household_id


@dataclass
class CounterParts:
    config: Config
    appliance: Appliance
    reader: CardReaderPort
    printer: PrinterPort
    demo: bool = False
    deck: list = field(default_factory=list)


def real_devices(config: Config) -> tuple[CardReaderPort, PrinterPort]:
    """The production adapters: the PC/SC reader (pcscd) and the ESC/POS printer from config."""
    from hardware.card.keys import issuer_public_keys
    from hardware.printer.factory import build_printer

    keys = issuer_public_keys(config)
    if not keys:
        raise SetupError(
            "no card issuer public key is installed (keys.issuer_public_keys): "
            "install the city's issuer key with `ewarung provision`, then start again"
        )
    if config.reader.kind == "fake":
        from hardware.card.fake import FakeReader

        reader: CardReaderPort = FakeReader(keys)
    else:
        from hardware.card.pcsc_reader import PcscReader

        reader = PcscReader(keys, name=config.reader.name)
    return reader, build_printer(config)


def build_counter(config: Config, *, demo: bool, clock: Clock | None = None,
                  progress: Callable[[int], None] | None = None) -> CounterParts:
    clock = clock or SystemClock()
    if demo:
        if config.demo is None:
            raise SetupError("--demo needs a configuration with a [demo] section (the built-in one has it)")
        ensure_demo_data(config, clock, progress=progress)
    else:
        reader, printer = real_devices(config)
    appliance = build_appliance(config, clock)
    if demo:
        from pos.ui.demo_devices import FakeCardReader, FakePrinter, demo_deck

        notable = {role: household_id(i) for i, role in NOTABLE.items()}
        return CounterParts(config, appliance, FakeCardReader(), FakePrinter(), True, demo_deck(notable))
    return CounterParts(config, appliance, reader, printer)
