"""Builds what the counter app needs from the device configuration (no kivy here).

Demo mode: the sample city, the field tester's card deck and the demo printer
(pos.ui.demo_devices). The deck (`deck=`, else $EWARUNG_DEMO_DECK, else "auto"):
  "auto": real card files inserted through pcscd + vsmartcard's vpcd, read by the production
          PcscReader; if pcscd/vpcd cannot be used, the in-process deck plus `deck_fallback` saying
          why and how to fix it, in `deck_note` in English (what `ewarung demo` and ./scripts/demo.sh use);
  "fake": the in-process deck (FakeCardReader), no pcscd (the test suite's default, since only
          tests holding the pcscd lock may touch the machine's one pcscd socket).
Production: the real adapters from hardware/.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_config.config import Config
from pos.appliance import Appliance, SetupError, build_appliance, ensure_demo_data
from pos.clock import Clock, SystemClock
from pos.ports import CardReaderPort, PrinterPort
from pos.sample_city import NOTABLE, household_id

log = logging.getLogger(__name__)
DECK_MODES = ("auto", "fake")


@dataclass
class CounterParts:
    config: Config
    appliance: Appliance
    reader: CardReaderPort
    printer: PrinterPort
    demo: bool = False
    deck: list = field(default_factory=list)
    deck_control: object = None
    """What the panel's insert/pull/reader-cable buttons drive: the FakeCardReader or a PcscDeck."""
    deck_note: str = ""
    """Why the demo fell back to the in-process deck, and how to fix it, in English for the log ("" when it did not)."""
    deck_fallback: BaseException | None = None
    """What made the demo fall back (None when it did not): the panel words it in the counter's language."""


def real_devices(config: Config) -> tuple[CardReaderPort, PrinterPort]:
    """The production adapters: the PC/SC reader (pcscd) and the ESC/POS printer from config."""
    from hardware.card.keys import issuer_public_keys
    from hardware.printer.factory import build_printer

    if config.demo is None:
        missing = [p for p in config.keys.issuer_public_keys if not config.key_path(p).exists()]
        if missing:  # else every card that issuer signed would be refused, and reported, as forged
            raise SetupError(
                f"card issuer public key {config.key_path(missing[0])} is missing: cards it signed would be "
                "refused as forged. Install it with `ewarung provision --issuer-key FILE`, or remove it from "
                "keys.issuer_public_keys, then start again"
            )
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
    return reader, build_printer(config)


def pcsc_reader(config: Config, keys, name: str | None = None) -> CardReaderPort:
    """The production PC/SC adapter (pyscard over pcscd)."""
    from hardware.card.pcsc_reader import PcscReader

    return PcscReader(keys, name=config.reader.name if name is None else name,
                      transmit_timeout=config.reader.transmit_timeout_s, allow_virtual=config.allows_virtual_reader)


def demo_parts(config: Config, appliance: Appliance, mode: str) -> CounterParts:
    from pos.ui.demo_devices import (
        DeckUnavailable,
        FakeCardReader,
        FakePrinter,
        Pcscd,
        PcscDeck,
        demo_deck,
        fallback_note,
    )

    if mode not in DECK_MODES:
        raise SetupError(f"unknown demo card deck {mode!r} (EWARUNG_DEMO_DECK): use one of {', '.join(DECK_MODES)}")
    cards = demo_deck({role: household_id(i) for i, role in NOTABLE.items()})
    note, fallback = "", None
    if mode == "auto":
        from hardware.card.keys import issuer_public_keys
        from hardware.card.vpcd import BASE_PORT

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
            return CounterParts(config, appliance, reader, FakePrinter(), True, cards, deck, "")
    reader = FakeCardReader()
    return CounterParts(config, appliance, reader, FakePrinter(), True, cards, reader, note, fallback)


def build_counter(config: Config, *, demo: bool, clock: Clock | None = None,
                  progress: Callable[[int], None] | None = None, deck: str | None = None) -> CounterParts:
    clock = clock or SystemClock()
    if demo:
        if config.demo is None:
            raise SetupError("--demo needs a configuration with a [demo] section (the built-in one has it)")
        ensure_demo_data(config, clock, progress=progress)
    else:
        reader, printer = real_devices(config)
    appliance = build_appliance(config, clock)
    if demo:
        try:
            return demo_parts(config, appliance, deck or os.environ.get("EWARUNG_DEMO_DECK") or "auto")
        except BaseException:
            appliance.close()
            raise
    return CounterParts(config, appliance, reader, printer)
