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
    assert [r["name"] for r in rows] == ["ui_cold_start_to_first_screen", "ui_peak_rss_demo", "ui_peak_rss_production",
                                        "ui_rss_demo_signed_in", "ui_rss_demo_after_sale"]
    for r in rows:
        assert set(r) == keys and r["baseline"] > 0
    assert all(isinstance(r["ok"], bool) for r in rows[:3]) and [r["ok"] for r in rows[3:]] == [None, None]
    assert 0 < rows[0]["p50"] <= rows[0]["p99"] < 60
    for r in rows[1:3]:  # the counter app holds more than a bare Kivy app drawing one label
        assert r["value"] > r["baseline"] > 0
    for r in rows[3:]:  # reported beside the budget: RSS later on, with the first screen's peak as reference
        assert r["value"] > 0 and "VmHWM" in r["notes"]
