"""The counter app under Xvfb: whole flows driven by simulated touches on the real widgets.

The flows themselves are in tests/ui/flows.py; they run in one subprocess per screen size (a
Kivy App can run only once per process) and report one result per flow, checked here one test
each. Screenshots of every screen land in artifacts/screens/.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.ui.flows import FLOWS_800, FLOWS_1024

pytestmark = pytest.mark.ui

_runs: dict[str, dict] = {}


def _run(size: str, env: dict, artifacts) -> dict:
    if size not in _runs:
        out = artifacts / "screens"
        results = artifacts / f"ui-results-{size}.json"
        results.unlink(missing_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "tests.ui.driver", "--size", size, "--out", str(out), "--results", str(results)],
            cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=240,
        )
        if not results.exists():
            pytest.fail(f"the UI driver crashed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        _runs[size] = json.loads(results.read_text())
    return _runs[size]


@pytest.mark.parametrize("flow", [name for name, _ in FLOWS_800])
def test_flow_800x480(flow, ui_env, artifacts):
    results = _run("800x480", ui_env, artifacts)
    assert "__timeout__" not in results, results["__timeout__"]
    assert results.get(flow) == "ok", results.get(flow, "flow did not run")


@pytest.mark.parametrize("flow", [name for name, _ in FLOWS_1024])
def test_flow_1024x600(flow, ui_env, artifacts):
    results = _run("1024x600", ui_env, artifacts)
    assert results.get(flow) == "ok", results.get(flow, "flow did not run")


def test_every_screen_has_a_screenshot(ui_env, artifacts):
    _run("800x480", ui_env, artifacts)
    shots = {p.stem for p in (artifacts / "screens").glob("*.png")}
    screens = ["signin", "idle", "verifying", "household", "pin", "basket", "confirm", "done", "error", "history",
               "void", "end-of-day", "flag", "override", "technician", "ledger-loading"]
    missing = [s for s in screens if not any(s in shot for shot in shots)]
    assert not missing, f"no screenshot of {missing}; have {sorted(shots)}"
    from PIL import Image

    with Image.open(artifacts / "screens" / "02-idle.png") as img:
        assert img.size[1] == 480 and img.size[0] >= 800
        colours = img.convert("RGB").getcolors(1 << 20)
        assert colours and len(colours) > 20, "the idle screenshot looks blank"
