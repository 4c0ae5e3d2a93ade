"""`ewarung counter`: the cashier's touchscreen app (Kivy)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung counter` (pos.cli.main lists every subcommand module)."""
    p = subs.add_parser("counter", help="run the counter app (touchscreen for cashiers)",
                        description="Run the counter app. --demo uses the sample city, a virtual card deck and a "
                                    "virtual printer, no hardware.")
    add_counter_args(p)
    p.set_defaults(func=run, counter_process=True)


def add_counter_args(p: argparse.ArgumentParser) -> None:
    """What a technician or field tester may choose when starting the counter by hand."""
    p.add_argument("--demo", action="store_true", help="demo mode: sample city, virtual cards and printer")
    p.add_argument("--size", default="800x480", choices=["800x480", "1024x600"], help="touchscreen size (default 800x480)")
    p.add_argument("--language", choices=["id", "en"], help="screen language (default: the device config's, id)")
    p.add_argument("--fullscreen", action="store_true", help="fill the screen (the appliance does)")
    p.add_argument("--data-dir", type=Path, help="demo data directory (default ~/.local/share/ewarung-demo)")
    p.add_argument("--exit-after", type=float, metavar="SECONDS", help=argparse.SUPPRESS)


def run(args: argparse.Namespace, *, headless_note: bool = True) -> int:
    """Start the counter app from the config (a private Xvfb when there is no display)."""
    import os
    import sys

    from firmware_config.config import demo_config, load_config
    from pos.cli.common import progress_to
    from pos.ui.boot import (
        configure_kivy,
        demo_panel_width,
        parse_size,
        return_freed_blocks_to_system,
    )

    return_freed_blocks_to_system()

    width, height = parse_size(args.size)
    if getattr(args, "config", None):
        config = load_config(args.config)
    else:
        config = demo_config(args.data_dir) if (args.demo or args.data_dir) else load_config(None)
    language = args.language or config.device.language

    xvfb = None
    shot = None
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("SDL_VIDEODRIVER"):
        from pos.ui.xvfb import start_xvfb

        xvfb = start_xvfb()
        if xvfb is None:
            print("ewarung: no display and Xvfb is not installed: install it (apt-get install xvfb) "
                  "or run on a machine with a screen", file=sys.stderr)
            return 2
        shot = config.data_dir / "screen.png"
        if headless_note:
            print(f"No display here: the counter app runs on a virtual display {xvfb.display}.\n"
                  f"  See it: open {shot} (a screenshot, refreshed every 2 seconds),\n"
                  f"  or live: x11vnc -display {xvfb.display} -localhost -nopw, then a VNC viewer on localhost:5900"
                  " (apt-get install x11vnc).\n"
                  "  Stop with Ctrl-C.", flush=True)

    try:
        from pos.roots.counter import build_counter, counter_app

        households = config.demo.households if config.demo else 0
        with progress_to(households, "sample city") as progress:
            parts = build_counter(config, demo=args.demo, progress=progress, language=language)
        total_width = width + (demo_panel_width(height) if parts.demo else 0)
        configure_kivy(total_width, height, fullscreen=args.fullscreen)
        app = counter_app(parts, size=(width, height), headless_shot=shot, exit_after=args.exit_after)
        app.run()
        parts.appliance.close()
        return 0
    finally:
        if xvfb is not None:
            xvfb.stop()
