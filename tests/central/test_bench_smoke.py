"""The central benchmark runs and its rows are well formed (numbers are not judged here)."""

import pytest

pytestmark = pytest.mark.mqtt


def test_bench_central_quick_rows_well_formed():
    from bench.bench_central import run

    rows = run(quick=True)
    keys = {"name", "p50", "p99", "value", "unit", "budget", "baseline", "baseline_name", "ok", "notes"}
    assert len(rows) == 3 and all(set(r) == keys for r in rows)
    main = rows[0]
    assert main["value"] > 0 and main["baseline"] > 0 and "3,000 stored" in main["notes"]
    assert rows[1]["p50"] > 0 and rows[1]["p99"] >= rows[1]["p50"]
