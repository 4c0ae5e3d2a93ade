"""Configure Kivy before any Kivy module creates the window (sizes, no argv parsing, quiet logs)."""

from __future__ import annotations

import ctypes
import functools
import os
import tempfile

SIZES = {"800x480": (800, 480), "1024x600": (1024, 600)}
DEMO_PANEL_WIDTH = 340


def demo_panel_width(height: int) -> int:
    """The field tester's panel width for a screen height, rounded so the whole window's width
    stays a multiple of 8 (glReadPixels screenshots of odd widths come out sheared)."""
    return (DEMO_PANEL_WIDTH * height // 480 + 7) // 8 * 8


def parse_size(text: str) -> tuple[int, int]:
    """The window size for a --size choice; only the panel
    sizes the screens are laid out for are accepted."""
    if text not in SIZES:
        raise ValueError(f"--size must be one of {', '.join(SIZES)}, got {text!r}")
    return SIZES[text]


@functools.cache  # looked up once; trim_freed_memory runs after every burst of screen changes
def _glibc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, macOS): their allocators do not keep such blocks this way
        return None


def return_freed_blocks_to_system() -> None:
    """Keep glibc malloc from holding on to large freed blocks for good.

    glibc serves a large block (over 128 KiB) by mmap and gives it back on free, but after the first
    such free it raises that threshold to the block's size (up to 32 MiB). From the second cashier PIN
    check on, scrypt's 16 MiB work area then comes from the heap and stays there once freed, 16 MiB for
    each thread that checks PINs. Fixing the threshold keeps large blocks mmapped, so freeing them
    returns the memory.
    """
    libc = _glibc()
    if libc is None:
        return
    m_mmap_threshold = -3  # <malloc.h>; setting it also turns off the dynamic adjustment
    libc.mallopt(m_mmap_threshold, 128 * 1024)


def trim_freed_memory() -> None:
    """Give the heap's free pages back to the system (glibc malloc_trim).

    glibc returns freed heap memory only from the top of the heap; what the GL driver's shader
    compiles and replaced screens free in between stays resident, and grows as every screen gets
    used (bench_ui measures it). Run after the frame, off the touch path.
    """
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def configure_kivy(width: int, height: int, *, fullscreen: bool = False) -> None:
    """Set Kivy's environment and config before its first import
    opens a window: size, logs, no argv parsing, no Pillow."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    if os.environ.get("EWARUNG_KIVY_LOG") == "1":
        os.environ.pop("KIVY_NO_CONSOLELOG", None)
    else:
        os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_HOME", os.path.join(tempfile.gettempdir(), f"ewarung-kivy-{os.getuid()}"))
    # The screens show no pictures; Kivy's own theme atlas is PNG, which SDL2_image reads. Without
    # this Kivy also loads its Pillow image provider at start-up, memory the counter never uses.
    os.environ.setdefault("KIVY_IMAGE", "sdl2")
    from kivy.config import Config

    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "resizable", "0")
    Config.set("graphics", "multisamples", "0")  # flat UI: no antialiasing buffers (less memory, faster on llvmpipe)
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("input", "mouse", "mouse,multitouch_on_demand")
