"""udev rules: the receipt printer (by USB vendor/product id, or the serial port) and card readers.

The printer's device node gets group `ewarung`, mode 0660, so the counter app reaches it without
root. Card readers (USB class 0x0B, CCID) are left to pcscd, which the counter app talks to over its
socket; we only tag them so `udevadm info` shows which device is the reader and let the `ewarung`
group read them for diagnostics (`ewarung doctor`).

systemd 252 (Debian 12) has no `udevadm verify`: the tests check the syntax we emit themselves
(tests/provision/udev_syntax.py), and use `udevadm verify` when it exists.
"""

from __future__ import annotations

RULES_FILE = "/etc/udev/rules.d/60-ewarung.rules"


def render_rules(usb_vendor: int = 0, usb_product: int = 0, group: str = "ewarung") -> str:
    """The udev rules file provisioning installs: the printer and
    serial ports to the service group, card readers tagged."""
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

