"""Drives the real counter app through whole flows with simulated touches (run under Xvfb).

Run by tests/ui/test_counter_ui.py in ONE subprocess per window size (Kivy's App runs once per
process):  python -m tests.ui.driver --size 800x480 --out artifacts/screens --results r.json
Each flow taps widgets at their on-screen centres (kivy.tests.common.UnitTestTouch, so hit-testing
is real), waits until the worker thread's results are delivered, and asserts on the texts the
screen shows. Every screen is saved as a PNG. Results: {flow: "ok" | failure text}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import traceback
from datetime import UTC, datetime
from pathlib import Path

NOW = datetime(2026, 11, 15, 2, 0, tzinfo=UTC)


class Gate:
    """Holds the reader's open_session until released, so 'verifying' can be seen and shot."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.event.set()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="800x480")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--flows", default="all")
    args = ap.parse_args()
    import faulthandler

    faulthandler.dump_traceback_later(int(os.environ.get("DRIVER_DUMP", "170")), exit=True)
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="ewarung-kivy-"))

    from firmware_config.config import DemoSection, demo_config
    from pos.clock import FixedClock
    from pos.roots.counter import build_counter, counter_app
    from pos.ui.boot import configure_kivy, demo_panel_width, parse_size

    width, height = parse_size(args.size)
    data = Path(tempfile.mkdtemp(prefix="ewarung-ui-"))
    config = demo_config(data)
    config = config.replace(demo=DemoSection(households=60))
    clock = FixedClock(NOW)
    parts = build_counter(config, demo=True, clock=clock, language="id")
    gate = Gate()
    real_open = parts.reader.open_session

    def gated_open():
        gate.event.wait(10)
        return real_open()

    parts.reader.open_session = gated_open
    configure_kivy(width + demo_panel_width(height), height)
    from kivy.clock import Clock

    from tests.ui.flows import Driver, flows_for

    results: dict[str, str] = {}
    suffix = "" if args.size == "800x480" else f"-{args.size}"
    args.out.mkdir(parents=True, exist_ok=True)

    def ready(app):
        driver = Driver(app, parts, gate, args.out, suffix)
        app.test_driver = driver  # Kivy's Clock keeps only a weak reference to the tick method
        steps = flows_for(args.size, args.flows)

        def run_all():
            for name, flow in steps:
                print(f"driver: flow {name}", file=sys.__stderr__, flush=True)
                try:
                    yield from flow(driver)
                    results[name] = "ok"
                except Exception:
                    results[name] = traceback.format_exc(limit=6)
                    yield from driver.recover()
            app.stop()

        driver.start(run_all())

    app = counter_app(parts, size=(width, height), on_ready=ready)
    Clock.schedule_once(lambda _dt: (results.setdefault("__timeout__", "app did not finish in time"), app.stop()), 150)
    app.run()
    args.results.write_text(json.dumps(results, indent=1))
    parts.appliance.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
