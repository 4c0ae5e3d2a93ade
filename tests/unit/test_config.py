"""The device configuration: strict schema, errors that name the key, value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_config.config import ConfigError, demo_config, load_config, masked_dump, parse_config
from tests.conftest import run_ewarung

SHOP = Path(__file__).resolve().parents[1] / "fixtures" / "config" / "shop.toml"


def test_full_config_loads():
    cfg = load_config(SHOP)
    assert cfg.device.id == "EW-SMD-0042" and cfg.printer.usb_vendor == 0x0416
    assert cfg.to_policy().void_window_minutes == 15 and cfg.to_policy().language == "id"
    assert cfg.key_path(cfg.keys.device_key) == Path("/var/lib/ewarung/keys/device.key.pem")
    assert cfg.identity().shop_name == "E-Warung Melati"
    assert cfg.identity().area_code == "6472"  # Samarinda's unless the file says otherwise
    other = parse_config("[device]\narea_code = '6471'", "shop.toml")
    assert other.identity().area_code == "6471"


def test_demo_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("EWARUNG_CONFIG", raising=False)
    assert load_config().demo is not None
    monkeypatch.setenv("EWARUNG_CONFIG", str(SHOP))
    assert load_config().device.id == "EW-SMD-0042"
    assert demo_config(tmp_path).data_dir == tmp_path


@pytest.mark.parametrize(
    "text, key, hint",
    [
        ("[printer]\nwidth_mm = 57", "printer.width_mm", "58"),
        ("[printer]\nkind = 'bluetooth'", "printer.kind", "usb"),
        ("[device]\nid = 'has space'", "device.id", "matching"),
        ("[device]\narea_code = '64721'", "device.area_code", "matching"),
        ("[device]\nshop_nmae = 'x'", "device.shop_nmae", "unknown key"),
        ("[sound]\nvolume = 3", "sound", "unknown key"),
        ("[policy]\noffline_max_value = 1.5", "policy.offline_max_value", "whole rupiah"),
        ("[policy]\npin_tries = 0", "policy.pin_tries", ">= 1"),
        ("[policy]\nledger_warn_age_hours = 200\nledger_max_age_hours = 100", "policy", "must not exceed"),
        ("[mqtt]\nhost = 'broker.example'\ntls = false", "mqtt", "insecure_plaintext_lab"),
        ("[mqtt]\ncert_file = '/x'", "mqtt", "go together"),
        ("[printer]\nkind = 'usb'", "printer", "usb_vendor"),
        ("[mqtt]\nport = 'eighty'", "mqtt.port", "`int`, got `str`"),
    ],
)
def test_bad_values_name_key_value_and_allowed(text, key, hint):
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "shop.toml")
    msg = str(exc.value)
    assert key in msg and hint in msg and "shop.toml" in msg


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_config("[device\nid=1")
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "bin.toml")


def test_secrets_masked():
    dump = masked_dump(load_config(SHOP))
    assert dump["mqtt"]["password"] == "********"


def test_cli_check_and_show(tmp_path):
    ok = run_ewarung("config", "check", str(SHOP))
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[printer]\nwidth_mm = 57\n")
    res = run_ewarung("config", "check", str(bad))
    assert res.returncode == 1 and "printer.width_mm = 57" in res.stdout
    show = run_ewarung("--config", str(SHOP), "config", "show")
    assert show.returncode == 0 and 'password = "********"' in show.stdout and "not-really-used" not in show.stdout
    broken = run_ewarung("--config", str(bad), "config", "show")
    assert broken.returncode == 2 and "width_mm" in broken.stderr


def test_tls_is_the_default_off_this_machine():
    """Plaintext to another machine needs the loudly named lab option; loopback (the shop broker) stays plain."""
    remote = parse_config("[mqtt]\nhost = 'mqtt.samarinda.go.id'\n")
    assert remote.mqtt.use_tls and not remote.mqtt.plaintext_off_device
    assert not parse_config("[mqtt]\nhost = '127.0.0.1'\n").mqtt.use_tls
    assert parse_config("[mqtt]\nhost = '127.0.0.1'\ntls = true\n").mqtt.use_tls
    lab = parse_config("[mqtt]\nhost = 'lab-broker'\ntls = false\ninsecure_plaintext_lab = true\n")
    assert not lab.mqtt.use_tls and lab.mqtt.plaintext_off_device
    with pytest.raises(ConfigError, match="in clear"):
        parse_config("[mqtt]\nhost = '10.0.0.5'\ntls = false\n")
