"""Raspberry Pi boot configuration: our lines in config.txt and our tokens in cmdline.txt.

config.txt: everything we set lives between `# BEGIN ewarung` and `# END ewarung`; the block
is replaced as a whole and every line outside it (hand edits, Raspberry Pi OS defaults) is kept
byte for byte. The block starts with `[all]` so a conditional section above it (e.g. `[pi4]`)
cannot swallow our settings, and ends with `[all]` so lines a person adds below are unconditional.

cmdline.txt is one line: we own only the tokens whose keys are in `OWNED_KEYS` (and `video=`
for our connector); other tokens keep their order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BEGIN = "# BEGIN ewarung"
END = "# END ewarung"
BEGIN_LINE = BEGIN + " (managed by `ewarung provision`; changes inside this block are replaced)"

OWNED_KEYS = ("consoleblank", "video", "ewarung.managed")

# Rotation: the counter app rotates its window, and touch with it (Kivy's graphics rotation,
# set in the counter unit); the kernel's `video=...,rotate=` turns the boot console the same way.
# The touch panel is NOT flipped in the overlay (invx/invy), or touches would be turned twice.


@dataclass(frozen=True)
class BootSettings:
    """The boot-level choices provisioning makes for a Pi: display,
    rotation, serial printer UART, watchdog, screen size."""

    display: Literal["dsi", "hdmi"] = "dsi"
    rotation: Literal[0, 90, 180, 270] = 0
    uart: bool = False
    """Serial receipt printer on the GPIO UART (/dev/serial0): enable it, free it from Bluetooth."""
    watchdog: bool = True
    width: int = 800
    height: int = 480

    @property
    def connector(self) -> str:
        """The DRM connector the kernel's video= option names for this display."""
        return "DSI-1" if self.display == "dsi" else "HDMI-A-1"


def config_block(s: BootSettings, kms_elsewhere: bool = False) -> list[str]:
    """Our lines for config.txt, between the markers; the KMS
    overlay only when the file does not load it already."""
    lines = [BEGIN_LINE, "[all]"]
    if not kms_elsewhere:  # Raspberry Pi OS already has it; loading an overlay twice is not wanted
        lines.append("dtoverlay=vc4-kms-v3d")
    if s.display == "dsi":
        lines.append("dtoverlay=vc4-kms-dsi-7inch")
    else:
        lines += ["hdmi_force_hotplug=1", "disable_overscan=1"]
    lines.append("disable_splash=1")
    if s.watchdog:
        lines.append("dtparam=watchdog=on")
    if s.uart:
        lines += ["enable_uart=1", "dtoverlay=disable-bt"]
    lines += ["[all]", END]
    return lines


def apply_config_txt(text: str, s: BootSettings) -> str:
    """Return config.txt with our block in place (appended the first time)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip().startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) > 1 or len(ends) > 1:
        raise ValueError(f"config.txt has {len(starts)} '{BEGIN}' and {len(ends)} '{END}' markers; keep one block and run again")
    outside = lines[: starts[0]] + lines[ends[0] + 1 :] if starts and ends else lines
    block = config_block(s, any(ln.strip().startswith("dtoverlay=vc4-kms-v3d") for ln in outside))
    if starts and ends and starts[0] < ends[0]:
        new = lines[: starts[0]] + block + lines[ends[0] + 1 :]
    elif not starts and not ends:
        new = lines + ([""] if lines and lines[-1].strip() else []) + block
    else:
        raise ValueError(f"config.txt has an unbalanced '{BEGIN}' / '{END}' pair; fix the markers by hand and run again")
    return "\n".join(new) + "\n"


def cmdline_tokens(s: BootSettings) -> list[str]:
    """No screen blanking; the console turned like the app (only when rotated: the display's own
    mode is left alone otherwise)."""
    tokens = ["consoleblank=0"]
    if s.rotation:
        tokens.append(f"video={s.connector}:{s.width}x{s.height}@60,rotate={s.rotation}")
    return tokens


def _owned(token: str) -> bool:
    key = token.split("=", 1)[0]
    return key in OWNED_KEYS


def apply_cmdline_txt(text: str, s: BootSettings) -> str:
    """cmdline.txt stays one line; our tokens replace earlier values of the same keys."""
    parts = text.replace("\n", " ").split()
    if not parts:
        raise ValueError("cmdline.txt is empty: it must hold the kernel command line (root=..., rootwait); restore it from the image")
    kept = [t for t in parts if not _owned(t)]
    wanted = cmdline_tokens(s)
    if sorted(t for t in parts if _owned(t)) == sorted(wanted):
        wanted = []  # ours are already there (a person may have added tokens after them): keep the order
        kept = parts
    if s.uart:
        # The serial printer needs the UART: the kernel must not use it as a console too.
        kept = [t for t in kept if not t.startswith(("console=serial0", "console=ttyAMA0", "console=ttyS0"))]
    return " ".join(kept + wanted) + "\n"

