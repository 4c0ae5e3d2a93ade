"""The systemd units: `systemd-analyze verify` clean, exposure within budget, rendering."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from firmware_config import units

BUDGET = {"ewarung-sync.service": 2.5, "ewarung-central.service": 2.5, "ewarung-counter.service": 4.5}


def _rendered(tmp_path: Path, name: str, **kw) -> Path:
    stub = tmp_path / "venv/bin/ewarung"
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    out = tmp_path / name
    out.write_text(units.render(name, prefix=str(tmp_path / "venv"), **kw))
    return out


def exposure(unit: Path) -> float:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=60,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout)
    assert m, out.stdout + out.stderr
    return float(m.group(1))


@pytest.mark.parametrize("name", sorted(BUDGET))
def test_verify_is_clean(tmp_path, name):
    unit = _rendered(tmp_path, name)
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr


def test_verify_catches_a_missing_binary(tmp_path):
    """The check above can fail: a unit whose ExecStart does not exist is refused."""
    unit = tmp_path / "ewarung-sync.service"
    unit.write_text(units.render("ewarung-sync.service", prefix=str(tmp_path / "nowhere")))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "not executable" in out.stderr


@pytest.mark.parametrize("name", sorted(BUDGET))
def test_exposure_within_budget(tmp_path, name):
    score = exposure(_rendered(tmp_path, name))
    print(f"{name}: exposure {score}")
    assert score <= BUDGET[name]


def test_exposure_parser_sees_an_unhardened_unit(tmp_path):
    unit = tmp_path / "plain.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    assert exposure(unit) > 9.0


@pytest.mark.parametrize("name", sorted(BUDGET))
def test_units_are_notify_with_watchdog_restart_and_hardening(name):
    text = units.template(name)
    for line in ("Type=notify", "Restart=always", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "DevicePolicy=closed", "CapabilityBoundingSet=", "UMask=0077"):
        assert f"\n{line}\n" in text, line
    assert re.search(r"\nWatchdogSec=\d+\n", text)


def test_counter_device_allow_list_covers_display_touch_printer_only():
    allowed = re.findall(r"^DeviceAllow=(\S+)", units.template("ewarung-counter.service"), re.M)
    assert set(allowed) == {
        "/dev/dri", "char-drm", "char-input", "/dev/tty1", "char-usb_device", "char-usbmisc",
        "char-ttyS", "char-ttyAMA", "char-ttyUSB", "char-ttyACM",
    }
    assert "pcscd.socket" in units.template("ewarung-counter.service")


def test_shipped_units_are_the_default_rendering():
    for name in BUDGET:
        assert units.render(name) == units.template(name)


def test_data_partition_rendering(tmp_path):
    text = units.render("ewarung-counter.service", data_dir="/data/ewarung")
    assert "/var/lib/ewarung" not in text and "StateDirectory" not in text
    assert "ReadWritePaths=/data/ewarung" in text and "KIVY_HOME=/data/ewarung/kivy" in text
    unit = _rendered(tmp_path, "ewarung-counter.service", data_dir="/data/ewarung")
    assert subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True).returncode == 0
