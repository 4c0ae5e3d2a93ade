"""The convergence benchmark runs and its rows are well formed (numbers are not judged here)."""

import pytest

pytestmark = pytest.mark.mqtt


def test_bench_convergence_quick_rows_well_formed():
    from bench.bench_convergence import run

    rows = run(quick=True)
    main, build = rows
    assert "snapshot request -> first sale allowed" in main["name"]
    assert main["value"] > 0 and main["baseline"] > 0 and "snapshot v3" in main["notes"]
    assert build["value"] > 0 and build["ok"] is None
