"""udev rules: the receipt printer (by USB vendor/product id, or the serial port) and card readers.

The printer's device node gets group `ewarung`, mode 0660, so the counter app reaches it without
root. Card readers (USB class 0x0B, CCID) are left to pcscd, which the counter app talks to over its
socket; we only tag them so `udevadm info` shows which device is the reader and let the `ewarung`
group read them for diagnostics (`ewarung doctor`).

systemd 252 (Debian 12) has no `udevadm verify`; `check_rules` parses the syntax we emit
(KEY==value / KEY=value pairs, known keys, balanced quotes), and tests use `udevadm verify` when it exists.
"""

from __future__ import annotations

import re

RULES_FILE = "/etc/udev/rules.d/60-ewarung.rules"

_MATCH_KEYS = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "ATTR", "ATTRS", "ENV", "DRIVERS", "TAG"}
_ASSIGN_KEYS = {"GROUP", "MODE", "OWNER", "SYMLINK", "TAG", "ENV", "RUN"}
_PAIR = re.compile(r'^(?P<key>[A-Z_]+)(?:\{(?P<attr>[A-Za-z0-9_.-]+)\})?(?P<op>==|!=|\+=|-=|:=|=)"(?P<value>[^"]*)"$')


def render_rules(usb_vendor: int = 0, usb_product: int = 0, group: str = "ewarung") -> str:
    lines = [
        "# E-Warung POS: written by `ewarung provision`; changes here are replaced on the next run.",
        "",
        "# Card readers (USB class 0x0b, CCID): used through pcscd; tagged for diagnostics.",
        f'ACTION=="add|change", SUBSYSTEM=="usb", ENV{{DEVTYPE}}=="usb_device", ATTR{{bDeviceClass}}=="0b", GROUP="{group}", MODE="0660", SYMLINK+="ewarung-reader"',
        'ACTION=="add|change", SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_interface", ATTR{bInterfaceClass}=="0b", ENV{EWARUNG_READER}="1"',
        "",
        "# Receipt printers.",
    ]
    if usb_vendor and usb_product:
        vid, pid = f"{usb_vendor:04x}", f"{usb_product:04x}"
        lines += [
            f'ACTION=="add|change", SUBSYSTEM=="usb", ATTR{{idVendor}}=="{vid}", ATTR{{idProduct}}=="{pid}", GROUP="{group}", MODE="0660", SYMLINK+="ewarung-printer"',
            f'ACTION=="add|change", SUBSYSTEM=="usbmisc", KERNEL=="lp[0-9]*", ATTRS{{idVendor}}=="{vid}", ATTRS{{idProduct}}=="{pid}", GROUP="{group}", MODE="0660", SYMLINK+="ewarung-printer-lp"',
        ]
    else:
        lines.append("# (no USB printer configured; serial and network printers need no rule here)")
    lines += [
        f'ACTION=="add|change", SUBSYSTEM=="tty", KERNEL=="ttyAMA0|ttyS0|ttyUSB[0-9]*|ttyACM[0-9]*", GROUP="{group}", MODE="0660"',
        "",
    ]
    return "\n".join(lines)


def check_rules(text: str) -> list[str]:
    """Syntax problems in a rules file, one message per problem (empty when fine)."""
    problems = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            problems.append(f"line {n}: continuation lines are not used here")
            continue
        if line.count('"') % 2:
            problems.append(f"line {n}: unbalanced quotes")
            continue
        has_match = has_assign = False
        for part in (p.strip() for p in line.split(",")):
            m = _PAIR.match(part)
            if not m:
                problems.append(f"line {n}: cannot parse {part!r} (expected KEY==\"value\" or KEY=\"value\")")
                continue
            key, op = m["key"], m["op"]
            if op in ("==", "!="):
                has_match = True
                if key not in _MATCH_KEYS:
                    problems.append(f"line {n}: {key} cannot be matched")
            else:
                has_assign = True
                if key not in _ASSIGN_KEYS:
                    problems.append(f"line {n}: {key} cannot be assigned")
                if key == "MODE" and not re.fullmatch(r"0[0-7]{3}", m["value"]):
                    problems.append(f"line {n}: MODE must be octal like 0660")
        if not (has_match and has_assign):
            problems.append(f"line {n}: a rule needs at least one match and one assignment")
    return problems
