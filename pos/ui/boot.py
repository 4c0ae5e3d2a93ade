"""Configure Kivy before any Kivy module creates the window (sizes, no argv parsing, quiet logs)."""

from __future__ import annotations

import os
import tempfile

SIZES = {"800x480": (800, 480), "1024x600": (1024, 600)}
DEMO_PANEL_WIDTH = 340


def demo_panel_width(height: int) -> int:
    """The field tester's panel width for a screen height, rounded so the whole window's width
    stays a multiple of 8 (glReadPixels screenshots of odd widths come out sheared)."""
    return (DEMO_PANEL_WIDTH * height // 480 + 7) // 8 * 8


def parse_size(text: str) -> tuple[int, int]:
    if text not in SIZES:
        raise ValueError(f"--size must be one of {', '.join(SIZES)}, got {text!r}")
    return SIZES[text]


def configure_kivy(width: int, height: int, *, fullscreen: bool = False) -> None:
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    if os.environ.get("EWARUNG_KIVY_LOG") == "1":
        os.environ.pop("KIVY_NO_CONSOLELOG", None)
    else:
        os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_HOME", os.path.join(tempfile.gettempdir(), f"ewarung-kivy-{os.getuid()}"))
    # The screens show no pictures; Kivy's own theme atlas is PNG, which SDL2_image reads. Without
    # this Kivy also loads its Pillow image provider at start-up (about 2 MB of RSS; bench_ui).
    os.environ.setdefault("KIVY_IMAGE", "sdl2")
    from kivy.config import Config

    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "resizable", "0")
    Config.set("graphics", "multisamples", "0")  # flat UI: no antialiasing buffers (less memory, faster on llvmpipe)
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("input", "mouse", "mouse,multitouch_on_demand")
