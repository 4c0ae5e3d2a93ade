"""`ewarung counter` and `ewarung demo` as a person runs them, including on a machine without a display."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import run_ewarung

pytestmark = pytest.mark.ui


def test_counter_help_lists_options():
    res = run_ewarung("counter", "--help")
    assert res.returncode == 0
    for opt in ("--demo", "--size", "800x480", "1024x600", "--language"):
        assert opt in res.stdout


def test_counter_rejects_a_bad_size():
    res = run_ewarung("counter", "--demo", "--size", "640x480")
    assert res.returncode == 2 and "invalid choice" in res.stderr


def test_counter_without_demo_on_an_unprovisioned_machine_says_what_to_do(tmp_path):
    res = run_ewarung("counter", "--data-dir", str(tmp_path), env={"DISPLAY": ":0"})
    # without --demo the real adapters and a provisioned device are needed: a clear setup error, no window
    assert res.returncode == 2
    assert res.stderr.startswith("ewarung: ") and ("--demo" in res.stderr or "provision" in res.stderr)
    assert "Traceback" not in res.stderr


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb")
def test_demo_without_a_display_starts_xvfb_and_says_how_to_see_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    env["PYTHONPATH"] = str(tmp_path.parent)  # replaced by run_ewarung with the checkout
    env["KIVY_HOME"] = str(tmp_path / "kivy")
    import subprocess
    import sys

    from tests.conftest import ROOT

    res = subprocess.run([sys.executable, "-m", "pos.cli.main", "demo", "--data-dir", str(tmp_path / "data"),
                          "--exit-after", "3"], env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "virtual display" in res.stdout and "x11vnc" in res.stdout
    shot = tmp_path / "data" / "screen.png"
    assert shot.exists() and shot.stat().st_size > 10_000
    from PIL import Image

    with Image.open(shot) as img:
        assert img.size == (800 + 344, 480)


def test_demo_scripted_still_works(tmp_path):
    res = run_ewarung("demo", "--scripted", "--data-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Journal:" in res.stdout
