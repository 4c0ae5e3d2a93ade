"""Smoke test: the card benchmark runs and its rows are well-formed (not a timing assertion)."""

import pytest

pytestmark = pytest.mark.pcsc


def test_bench_card_quick_rows_well_formed(stack):
    from bench.bench_card import run

    stack.remove_all()
    rows = run(quick=True)
    keys = {"name", "p50", "p99", "value", "unit", "budget", "baseline", "baseline_name", "ok", "notes"}
    assert rows and all(set(r) == keys for r in rows)
    assert all(r["p50"] > 0 and r["p99"] >= r["p50"] and r["baseline"] > 0 for r in rows)
