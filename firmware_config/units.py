"""The systemd units, rendered for this device from the templates in `systemd/`.

The files in `systemd/` are the units for the standard layout (virtualenv /opt/ewarung/venv,
config /etc/ewarung/ewarung.toml, data /var/lib/ewarung). `render` swaps in another prefix,
config path or data directory (a separate writable partition for a read-only root).
"""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_PREFIX = "/opt/ewarung/venv"
DEFAULT_CONFIG = "/etc/ewarung/ewarung.toml"
DEFAULT_DATA_DIR = "/var/lib/ewarung"

DEVICE_UNITS = ("ewarung-sync.service", "ewarung-counter.service")
WATCHDOG_CONF = "system.conf.d/ewarung-watchdog.conf"


def units_dir() -> Path:
    """`systemd/` in a source checkout, else the copy pip installed under <prefix>/share/ewarung."""
    for candidate in (Path(__file__).resolve().parent.parent / "systemd", Path(sys.prefix) / "share/ewarung/systemd"):
        if (candidate / "ewarung-sync.service").is_file():
            return candidate
    raise FileNotFoundError("the systemd unit templates are missing: reinstall ewarung-pos from its source tree")


def template(name: str) -> str:
    """A unit file as shipped in `systemd/`, before render adapts it to the device."""
    return (units_dir() / name).read_text(encoding="utf-8")


def render(
    name: str,
    *,
    prefix: str = DEFAULT_PREFIX,
    config_path: str = DEFAULT_CONFIG,
    data_dir: str = DEFAULT_DATA_DIR,
    rotation: int = 0,
) -> str:
    """A unit file for this device: its prefix, config path, data directory and screen rotation."""
    text = template(name)
    if rotation and name == "ewarung-counter.service":
        # Kivy turns the window and the touch coordinates together (KCFG_<section>_<key>).
        text = text.replace("Environment=KIVY_NO_ARGS=1\n", f"Environment=KIVY_NO_ARGS=1\nEnvironment=KCFG_GRAPHICS_ROTATION={rotation}\n")
    text = text.replace(f"{DEFAULT_PREFIX}/bin/ewarung", f"{prefix.rstrip('/')}/bin/ewarung")
    text = text.replace(f"EWARUNG_CONFIG={DEFAULT_CONFIG}", f"EWARUNG_CONFIG={config_path}")
    data_dir = data_dir.rstrip("/")
    if data_dir != DEFAULT_DATA_DIR and name in DEVICE_UNITS:
        # Not under /var/lib: systemd must not create /var/lib/ewarung (read-only root).
        lines = [ln for ln in text.splitlines() if not ln.startswith(("StateDirectory=", "StateDirectoryMode="))]
        text = "\n".join(lines) + "\n"
        text = text.replace(DEFAULT_DATA_DIR, data_dir)
        text = text.replace("[Unit]\n", f"[Unit]\nRequiresMountsFor={data_dir}\n", 1)
    return text
