"""The central benchmark runs and its rows are well formed (numbers are not judged here)."""

import pytest

pytestmark = pytest.mark.mqtt


def test_bench_central_quick_rows_well_formed():
    from bench.bench_central import run

    rows = run(quick=True)
    keys = {"name", "p50", "p99", "value", "unit", "budget", "baseline", "baseline_name", "ok", "notes"}
    assert len(rows) == 5 and all(set(r) == keys for r in rows)
    main, ratio, cpu, batch = rows[0], rows[1], rows[2], rows[3]
    assert main["value"] > 0 and main["baseline"] > 0 and "3,000 stored, 3,000 counted" in main["notes"]
    assert ratio["value"] == pytest.approx(main["value"] / main["baseline"], rel=0.01)
    assert cpu["value"] > cpu["baseline"] > 0  # the consumer pays at least the signatures' CPU
    assert batch["p50"] > 0 and batch["p99"] >= batch["p50"]
