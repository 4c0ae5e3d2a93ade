"""The composition root picks the real adapters from config (no hardware needed to build them)."""

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
