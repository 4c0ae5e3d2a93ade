"""The UI benchmark runs and reports well-formed rows (numbers are for bench/results, not asserted)."""

from __future__ import annotations

import shutil

import pytest

pytestmark = [pytest.mark.ui, pytest.mark.slow]


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb")
def test_bench_ui_quick_rows_are_well_formed(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    from bench import bench_ui

    rows = bench_ui.run(quick=True)
    keys = {"name", "p50", "p99", "value", "unit", "budget", "baseline", "baseline_name", "ok", "notes"}
    names = [r["name"] for r in rows]
    assert names == ["ui_cold_start_to_idle_screen", "ui_rss_idle_production", "ui_rss_idle_demo",
                     "ui_peak_rss_first_screen_production", "ui_peak_rss_first_screen_demo", "ui_rss_demo_after_sale"]
    for r in rows:
        assert set(r) == keys and r["baseline"] > 0
    judged = {r["name"] for r in rows if r["ok"] is not None}
    assert judged == {"ui_cold_start_to_idle_screen", "ui_rss_idle_production", "ui_peak_rss_first_screen_production"}
    assert all(isinstance(r["ok"], bool) for r in rows if r["name"] in judged)
    start = rows[0]
    assert start["baseline"] < start["p50"] <= start["p99"] < 60  # sign-in and a PIN check come after the first frame
    by_name = {r["name"]: r for r in rows}
    for name in ("ui_rss_idle_production", "ui_peak_rss_first_screen_production"):  # more than a bare Kivy app
        assert by_name[name]["value"] > by_name[name]["baseline"] > 0
    for r in rows[1:]:  # every memory row says what it read and shows the peak or the RSS beside it
        assert r["value"] > 0 and ("VmHWM" in r["notes"] or "peak" in r["notes"])
