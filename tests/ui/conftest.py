"""UI tests: one private Xvfb per test session; the app runs in subprocesses (Kivy runs once per process)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def xvfb_display():
    from pos.ui.xvfb import start_xvfb

    xvfb = start_xvfb(set_env=False)
    if xvfb is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    yield xvfb.display
    xvfb.stop()


@pytest.fixture(scope="session")
def ui_env(xvfb_display, tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=xvfb_display, KIVY_HOME=str(tmp_path_factory.mktemp("kivy-home")), KIVY_NO_ARGS="1")
    return env
