"""Which PC/SC readers are virtual: a production device never takes one.

vsmartcard's vpcd driver gives pcscd a reader that any host on the network can put a "card" into
(it listens on every interface). Such a reader is known two ways: by its name (vpcd's readers are
called "Virtual PCD 00 00", ...), and by its driver: pcscd loads serial drivers from
`/etc/reader.conf.d`, whose FRIENDLYNAME is the reader's name before pcscd's " 00 00" suffix, so a
vpcd entry renamed to look like a shop reader is still caught by its LIBPATH.
"""

from __future__ import annotations

from pathlib import Path

READER_CONF_DIR = Path("/etc/reader.conf.d")
VIRTUAL_DRIVERS = ("libifdvpcd", "ifd-vpcd", "vpcd")
VIRTUAL_NAMES = ("Virtual PCD",)


def virtual_driver_names(conf_dir: Path = READER_CONF_DIR) -> set[str]:
    """FRIENDLYNAMEs of the reader.conf.d entries whose driver is a virtual one."""
    names: set[str] = set()
    try:
        files = sorted(p for p in conf_dir.iterdir() if p.is_file())
    except OSError:
        return names
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        fields = [line.strip().partition(" ") for line in text.splitlines()]
        if any(k == "LIBPATH" and any(d in v for d in VIRTUAL_DRIVERS) for k, _, v in fields):
            # a file loading a virtual driver: every reader it names counts as virtual (the safe side)
            names |= {v.strip().strip('"') for k, _, v in fields if k == "FRIENDLYNAME" and v.strip()}
    return names


def is_virtual(reader: str, conf_dir: Path = READER_CONF_DIR) -> bool:
    """A reader pcscd lists is virtual by its name, or by the driver its reader.conf.d entry loads."""
    prefixes = (*VIRTUAL_NAMES, *virtual_driver_names(conf_dir))
    return any(reader == p or reader.startswith(p + " ") for p in prefixes)


def vpcd_installed(conf_dir: Path = READER_CONF_DIR) -> bool:
    """Is a virtual reader driver configured for pcscd on this machine (e.g. vsmartcard-vpcd)?"""
    return bool(virtual_driver_names(conf_dir))
