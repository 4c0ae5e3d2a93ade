"""The bench report maps every DESIGN.md budget to the rows measuring it, and says when one is missing."""

from __future__ import annotations

from bench.common import row
from bench.run import DESIGN_BUDGETS, design_budgets, markdown


def _report(names: list[str], failing: str = "") -> dict:
    rows = [row(n, unit="ms", budget="b", ok=n != failing, p99=1.0, baseline=0.5, baseline_name="raw") for n in names]
    return {"machine": {"platform": "x", "python": "3", "cpus": 2}, "started": "now", "areas": {"all": {"rows": rows}}}


def test_every_budget_found_and_judged():
    names = [f"bench {key}" for _what, _target, keys in DESIGN_BUDGETS for key in keys]
    budgets = design_budgets(_report(names, failing=names[-1]))
    assert [b["met"] for b in budgets] == [True] * (len(DESIGN_BUDGETS) - 1) + [False]
    md = markdown(_report(names, failing=names[-1]))
    assert f"{len(DESIGN_BUDGETS) - 1} of {len(DESIGN_BUDGETS)} budgets met." in md
    assert "1.00 ms (raw: 0.5000)" in md


def test_a_budget_not_measured_is_said_not_hidden():
    budgets = design_budgets(_report(["bench card tap"]))
    assert budgets[0]["met"] is True and all(b["met"] is None for b in budgets[1:])
    assert "not measured in this run" in markdown(_report(["bench card tap"]))
