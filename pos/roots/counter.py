"""The counter's composition root (`ewarung counter`, `ewarung demo`): its devices, print service and session.

Production: the PC/SC reader (or the in-process one when `reader.kind = "fake"`) and the ESC/POS
printer from the config. Demo mode: the sample city, the field tester's card deck and the
in-process printer. The deck (`deck=`, else $EWARUNG_DEMO_DECK, else "auto"):
  "auto": card files inserted through pcscd + vsmartcard's vpcd, read by the production PcscReader;
          if pcscd/vpcd cannot be used, the in-process deck plus `deck_fallback` saying why and how
          to fix it (what `ewarung demo` and ./scripts/demo.sh use);
  "fake": the in-process deck (FakeReader), no pcscd (the test suite's default, since only tests
          holding the pcscd lock may touch the machine's one pcscd socket).
`build_counter` imports no Kivy; `counter_app` does, so call it after pos.ui.boot.configure_kivy().
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from firmware_config.config import Config
from pos.clock import Clock, SystemClock
from pos.ports import CardReaderPort, PrinterPort
from pos.printing import PrintService
from pos.roots import SetupError
from pos.roots.appliance import Appliance, build_appliance, ensure_demo_data
from pos.roots.keys import issuer_public_keys
from pos.sample_city import NOTABLE, household_id
from pos.session import CounterSession, Runner

if TYPE_CHECKING:  # pragma: no cover
    from pos.ui.app import CounterApp

log = logging.getLogger(__name__)
DECK_MODES = ("auto", "fake")


@dataclass
class CounterParts:
    """Everything the counter process runs on, built once from the config and handed to the app."""

    config: Config
    appliance: Appliance
    reader: CardReaderPort
    printer: PrinterPort
    printing: PrintService
    language: str
    demo: bool = False
    deck: list = field(default_factory=list)
    deck_control: object = None
    """What the panel's insert/pull/reader-cable buttons drive: the FakeReader or a PcscDeck."""
    deck_note: str = ""
    """Why the demo fell back to the in-process deck, and how to fix it, in English for the log ("" when it did not)."""
    deck_fallback: BaseException | None = None
    """What made the demo fall back (None when it did not): the panel words it in the counter's language."""


def real_devices(config: Config) -> tuple[CardReaderPort, PrinterPort]:
    """The production adapters: the PC/SC reader (pcscd) and the ESC/POS printer from config."""
    from hardware.printer.adapter import EscposPrinter

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
        reader = pcsc_reader(config, keys)
    return reader, EscposPrinter(config.printer)


def pcsc_reader(config: Config, keys, name: str | None = None) -> CardReaderPort:
    """The production PC/SC adapter (pyscard over pcscd)."""
    from hardware.card.pcsc_reader import PcscReader

    return PcscReader(keys, name=config.reader.name if name is None else name,
                      transmit_timeout=config.reader.transmit_timeout_s, allow_virtual=config.allows_virtual_reader)


@dataclass
class _DemoDevices:
    reader: CardReaderPort
    deck: list
    deck_control: object
    note: str = ""
    fallback: BaseException | None = None


def demo_devices(config: Config, mode: str) -> _DemoDevices:
    """The field tester's deck through pcscd + vpcd ("auto"), else the in-process one, and why."""
    from hardware.card.deck import PcscDeck, demo_deck, fallback_note
    from hardware.card.fake import FakeReader
    from hardware.card.pcscd import DeckUnavailable, Pcscd
    from hardware.card.vpcd import BASE_PORT

    if mode not in DECK_MODES:
        raise SetupError(f"unknown demo card deck {mode!r} (EWARUNG_DEMO_DECK): use one of {', '.join(DECK_MODES)}")
    cards = demo_deck({role: household_id(i) for i, role in NOTABLE.items()})
    note, fallback = "", None
    if mode == "auto":
        directory = config.data_dir / "card-deck"
        port = config.reader.vpcd_port
        deck = PcscDeck(cards, directory, Pcscd(port, directory / "pcscd.log"), slot=max(0, min(1, port - BASE_PORT)))
        try:
            if port - BASE_PORT not in (0, 1):
                raise DeckUnavailable("[reader] vpcd_port {port} is not one of vpcd's ports {first}, {second}",
                                      "remove vpcd_port from the configuration",
                                      port=port, first=BASE_PORT, second=BASE_PORT + 1)
            deck.start()
        except (DeckUnavailable, OSError) as exc:
            deck.close()
            fallback, note = exc.with_traceback(None), fallback_note(exc)
            log.warning("demo: %s", note)
            print(f"ewarung demo: {note}", file=sys.stderr, flush=True)
        else:
            reader = pcsc_reader(config, issuer_public_keys(config), name=config.reader.name or deck.reader_name)
            log.info("demo: card deck through pcscd + vpcd (%s)", deck.reader_name)
            return _DemoDevices(reader, cards, deck)
    fake = FakeReader(issuer_public_keys(config), name="Demo Reader 00")
    return _DemoDevices(fake, cards, fake, note, fallback)


def build_counter(config: Config, *, demo: bool, clock: Clock | None = None,
                  progress: Callable[[int], None] | None = None, deck: str | None = None,
                  language: str | None = None) -> CounterParts:
    """The counter's parts: devices, appliance and its one PrintService, in `language` (else the config's)."""
    clock = clock or SystemClock()
    language = language or config.device.language
    if demo:
        if config.demo is None:
            raise SetupError("--demo needs a configuration with a [demo] section (the built-in one has it)")
        ensure_demo_data(config, clock, progress=progress)
    else:
        reader, printer = real_devices(config)
    appliance = build_appliance(config, clock)
    if not demo:
        return CounterParts(config, appliance, reader, printer, appliance.print_service(printer, language), language)
    try:
        devices = demo_devices(config, deck or os.environ.get("EWARUNG_DEMO_DECK") or "auto")
    except BaseException:
        appliance.close()
        raise
    from hardware.printer.fake import FakePrinter

    printer = FakePrinter()
    return CounterParts(config, appliance, devices.reader, printer, appliance.print_service(printer, language),
                        language, demo=True, deck=devices.deck, deck_control=devices.deck_control,
                        deck_note=devices.note, deck_fallback=devices.fallback)


def counter_session(parts: CounterParts, runner: Runner) -> CounterSession:
    """The counter session over the parts; `runner` carries card, printer and database work off the
    caller's thread (the app's runs on a worker and answers on Kivy's clock)."""
    from firmware_config.updates import SaleGuard

    ap = parts.appliance
    session = CounterSession(service=ap.redemptions, reader=parts.reader, printing=parts.printing, runner=runner,
                             clock=ap.clock, language=parts.language)
    session.listen(SaleGuard(ap.config.data_dir))  # apt's upgrade hook holds off while a sale is on
    return session


def counter_app(parts: CounterParts, *, size: tuple[int, int], headless_shot: Path | None = None,
                on_ready: Callable[[CounterApp], None] | None = None,
                exit_after: float | None = None) -> CounterApp:
    """The Kivy app over a session built here. Imports Kivy: call after pos.ui.boot.configure_kivy()."""
    from pos.ui.app import CounterApp, CountingRunner

    runner = CountingRunner()
    return CounterApp(parts, counter_session(parts, runner), runner, size=size, headless_shot=headless_shot,
                      on_ready=on_ready, exit_after=exit_after)
