"""A production device never takes a virtual reader (vpcd: anyone on the network can "insert a
card" into it), by name or by driver, through the real pcscd; demo and lab configs may."""

from __future__ import annotations

import time

import pytest

from firmware_config.config import demo_config, parse_config
from hardware.card.pcsc_reader import PcscReader
from hardware.card.virtual_readers import is_virtual, virtual_driver_names
from pos.refusals import Refusal
from tests.card_fixtures import issuer_keys
from tests.integration.card.conftest import Events

pytestmark = pytest.mark.pcsc

PRODUCTION = '[device]\nid = "EW-SMD-0042"\ndata_dir = "{d}"\n[reader]\nname = "{name}"\n'


def _reader(name: str, allow_virtual: bool) -> PcscReader:
    r = PcscReader(issuer_keys(), name=name, poll_ms=100, allow_virtual=allow_virtual)
    r.events = Events()
    r.subscribe(r.events)
    r.start()
    return r


@pytest.mark.parametrize("name", ["", "Virtual PCD 00 00"])
def test_production_reader_refuses_vpcd_even_with_a_card_in_it(stack, deck, name):
    refusing, control = _reader(name, allow_virtual=False), _reader(name, allow_virtual=True)
    try:
        stack.insert(deck["holder"])
        control.events.wait("inserted")
        time.sleep(0.5)  # the refusing reader polled the same pcscd meanwhile
        assert refusing.reader is None and "inserted" not in refusing.events.seen
        refusing.events.wait("reader_lost", timeout=2)
        with pytest.raises(Refusal, match="no PC/SC reader"):
            refusing.open_session()
    finally:
        refusing.stop()
        control.stop()


def test_the_counter_is_wired_to_refuse_in_production_only(tmp_path):
    from pos.roots.counter import pcsc_reader

    production = parse_config(PRODUCTION.format(d=tmp_path, name=""))
    lab = parse_config(PRODUCTION.format(d=tmp_path, name="") + "virtual = true\n")
    assert not production.reader.virtual and not production.allows_virtual_reader
    assert pcsc_reader(production, issuer_keys()).allow_virtual is False
    assert pcsc_reader(lab, issuer_keys()).allow_virtual is True
    assert pcsc_reader(demo_config(tmp_path), issuer_keys()).allow_virtual is True


def test_virtual_by_driver_whatever_its_name(tmp_path):
    conf = tmp_path / "reader.conf.d"
    conf.mkdir()
    (conf / "renamed").write_text('FRIENDLYNAME "ACS ACR39U ICC Reader"\nDEVICENAME /dev/null:0x8C7B\n'
                                  "LIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\nCHANNELID 0x8C7B\n")
    (conf / "real").write_text('FRIENDLYNAME "Shop Serial Reader"\nLIBPATH /usr/lib/pcsc/drivers/serial/libccidtwin.so\n')
    assert virtual_driver_names(conf) == {"ACS ACR39U ICC Reader"}
    assert is_virtual("ACS ACR39U ICC Reader 00 00", conf) and not is_virtual("Shop Serial Reader 00 00", conf)
    assert is_virtual("Virtual PCD 00 01", conf)  # by name, with no driver file at all
    assert not is_virtual("Virtual PCDX", conf)
    assert "Virtual PCD" in virtual_driver_names()  # this machine's pcscd loads vpcd from /etc/reader.conf.d


def test_doctor_says_so(stack, tmp_path):
    from firmware_config.doctor import check_reader

    production = parse_config(PRODUCTION.format(d=tmp_path, name=""))
    named = parse_config(PRODUCTION.format(d=tmp_path, name="Virtual PCD"))
    lab = parse_config(PRODUCTION.format(d=tmp_path, name="Virtual PCD") + "virtual = true\n")
    check = check_reader(production)
    assert not check.ok and "(vsmartcard-vpcd) is installed" in check.message and "apt purge" in check.message
    check = check_reader(named)
    assert not check.ok and "names a virtual reader" in check.message, check.message
    check = check_reader(lab)
    assert check.ok and check.warn and "LAB configuration" in check.message
    assert check_reader(demo_config(tmp_path)).ok
