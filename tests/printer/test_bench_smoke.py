"""The receipt benchmark runs and its rows are well-formed (numbers are not checked here)."""

from bench.bench_receipt import run

KEYS = {"name", "p50", "p99", "value", "unit", "budget", "baseline", "baseline_name", "ok", "notes"}


def test_bench_receipt_quick_rows():
    rows = run(quick=True)
    assert rows and all(set(r) == KEYS for r in rows)
    for r in rows:
        assert r["p50"] > 0 and r["p99"] >= r["p50"] and r["baseline"] > 0 and isinstance(r["ok"], bool)
