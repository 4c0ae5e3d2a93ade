"""A private virtual X display (Xvfb) for headless machines: demo mode, UI tests and benchmarks."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path


class Xvfb:
    """A running private display, so whoever started it can stop it and nothing else."""

    def __init__(self, number: int, proc: subprocess.Popen) -> None:
        self.number = number
        self.proc = proc
        self.display = f":{number}"

    def stop(self) -> None:
        """End the display, forcibly if it does not go within seconds, so no Xvfb outlives its user."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _free_display(start: int = 50) -> int:
    for n in range(start, start + 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number between :50 and :250")


def start_xvfb(screen: str = "1440x900x24", set_env: bool = True) -> Xvfb | None:
    """Start Xvfb on a free display number; returns None when Xvfb is not installed."""
    exe = shutil.which("Xvfb")
    if exe is None:
        return None
    for _attempt in range(5):
        n = _free_display(50 + (os.getpid() % 100))
        proc = subprocess.Popen([exe, f":{n}", "-screen", "0", screen, "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if Path(f"/tmp/.X11-unix/X{n}").exists():
                break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        if proc.poll() is None and Path(f"/tmp/.X11-unix/X{n}").exists():
            if set_env:
                os.environ["DISPLAY"] = f":{n}"
            return Xvfb(n, proc)
    return None
