"""The counter's composition root picks the adapters from config (no hardware needed to build them)
and builds the one PrintService the session prints through."""

from __future__ import annotations

import pytest

from firmware_config.config import demo_config, parse_config
from pos.roots import SetupError
from pos.roots.counter import real_devices


def test_pcsc_reader_and_escpos_printer_from_config(tmp_path):
    from hardware.card.pcsc_reader import PcscReader
    from hardware.printer.adapter import EscposPrinter

    reader, printer = real_devices(demo_config(tmp_path))
    assert isinstance(reader, PcscReader) and isinstance(printer, EscposPrinter)


def test_card_deadline_from_config(tmp_path):
    from pos.sample_city import write_demo_keys

    write_demo_keys(tmp_path / "keys")
    cfg = parse_config(f'[device]\ndata_dir = "{tmp_path}"\n[reader]\ntransmit_timeout_s = 2.5\n[printer]\nkind = "dummy"\n')
    reader, _ = real_devices(cfg)
    assert reader.transmit_timeout == 2.5
    assert real_devices(demo_config(tmp_path))[0].transmit_timeout == 5.0


def test_fake_reader_by_config(tmp_path):
    from hardware.card.fake import FakeReader

    cfg = parse_config(f'[device]\ndata_dir = "{tmp_path}"\n[reader]\nkind = "fake"\n[printer]\nkind = "dummy"\n[demo]\n')
    reader, _ = real_devices(cfg)
    assert isinstance(reader, FakeReader)


def test_missing_issuer_key_says_what_to_do(tmp_path):
    cfg = parse_config(f'[device]\ndata_dir = "{tmp_path}"\n')
    with pytest.raises(SetupError, match="ewarung provision"):
        real_devices(cfg)


def test_one_of_several_issuer_keys_missing_is_refused_not_skipped(tmp_path):
    """Skipping it would refuse that issuer's genuine cards as forged (and report them to the city)."""
    from pos.sample_city import write_demo_keys

    write_demo_keys(tmp_path / "keys")
    cfg = parse_config(f'[device]\ndata_dir = "{tmp_path}"\n[printer]\nkind = "dummy"\n'
                       '[keys]\nissuer_public_keys = ["keys/issuer.pub.pem", "keys/issuer-2027.pub.pem"]\n')
    with pytest.raises(SetupError, match="issuer-2027.pub.pem is missing.*refused as forged"):
        real_devices(cfg)


def test_demo_counter_gets_one_print_service_in_its_language(tmp_path):
    from firmware_config.config import DemoSection
    from hardware.card.fake import FakeReader
    from hardware.printer.fake import FakePrinter
    from pos.roots.counter import build_counter, counter_session
    from pos.session import InlineRunner

    config = demo_config(tmp_path).replace(demo=DemoSection(households=60))
    parts = build_counter(config, demo=True, deck="fake", language="en")
    try:
        assert isinstance(parts.reader, FakeReader) and parts.deck_control is parts.reader
        assert isinstance(parts.printer, FakePrinter) and parts.printing.printer is parts.printer
        assert parts.printing.language == "en" and parts.printing.signer is parts.appliance.signer
        session = counter_session(parts, InlineRunner())
        assert session.printing is parts.printing and session.language == "en"
        assert session.service is parts.appliance.redemptions
        from firmware_config.updates import sale_in_progress

        assert not sale_in_progress(config.data_dir)
        parts.reader.subscribe(session.card_event)
        assert session.sign_in("kasir1", "1234", "pagi")
        parts.reader.insert(parts.deck[0])  # the holder's card: a sale begins, apt's upgrade hook must hold off
        assert sale_in_progress(config.data_dir)
    finally:
        parts.appliance.close()


def test_unknown_demo_deck_is_refused_with_the_choices(tmp_path):
    from firmware_config.config import DemoSection
    from pos.roots.counter import build_counter

    config = demo_config(tmp_path).replace(demo=DemoSection(households=60))
    with pytest.raises(SetupError, match="unknown demo card deck 'paper'"):
        build_counter(config, demo=True, deck="paper")
