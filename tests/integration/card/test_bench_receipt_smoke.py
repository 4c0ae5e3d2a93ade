"""The receipt benchmark runs through the card's SPEND on pcscd + vpcd and its rows are well-formed
(numbers are not checked here)."""

import pytest

pytestmark = pytest.mark.pcsc

KEYS = {"name", "p50", "p99", "value", "unit", "budget", "baseline", "baseline_name", "ok", "notes"}


def test_bench_receipt_quick_rows(stack):
    from bench.bench_receipt import run

    stack.remove_all()
    rows = run(quick=True)
    assert rows and all(set(r) == KEYS for r in rows)
    for r in rows:
        assert r["p50"] > 0 and r["p99"] >= r["p50"] and r["baseline"] > 0 and isinstance(r["ok"], bool)
    assert "card SPEND through pcscd+vpcd" in rows[0]["notes"] and "card counter 60" in rows[0]["notes"]
