"""Shared helpers for benchmarks: percentiles, result rows, writing result files."""

from __future__ import annotations

import json
import platform
import statistics
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation): p99 of 1000 samples is the 990th smallest."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def row(
    name: str,
    *,
    unit: str,
    budget: str,
    ok: bool | None,
    p50: float | None = None,
    p99: float | None = None,
    value: float | None = None,
    baseline: float | None = None,
    baseline_name: str = "",
    notes: str = "",
) -> dict:
    """One result row in the shape every area writes, so
    bench.run can report all areas in one table."""
    return {
        "name": name,
        "p50": p50,
        "p99": p99,
        "value": value,
        "unit": unit,
        "budget": budget,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "ok": None if ok is None else bool(ok),  # None: reported beside a budget, not judged by it
        "notes": notes,
    }


def summary(samples: list[float]) -> dict:
    """n, p50, p99 and mean of a set of samples: what a latency row reports."""
    return {
        "n": len(samples),
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "mean": statistics.fmean(samples),
    }


def machine() -> dict:
    """What the results were measured on, written beside them
    (figures from another machine do not compare)."""
    import os

    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()}


def write(area: str, rows: list[dict]) -> Path:
    """Write an area's rows to bench/results/<area>.json, where the figures the docs quote live."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{area}.json"
    path.write_text(json.dumps({"area": area, "machine": machine(), "rows": rows}, indent=2))
    return path


def fmt(v: float | None) -> str:
    """A figure at a precision that reads well in a table, "-" when missing."""
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.4f}"


def print_rows(rows: list[dict]) -> None:
    """The rows on the terminal, one line each."""
    for r in rows:
        status = "OK  " if r["ok"] else "OVER"
        print(
            f"{status} {r['name']}: p50 {fmt(r['p50'])} p99 {fmt(r['p99'])} value {fmt(r['value'])} {r['unit']}"
            f" | budget {r['budget']} | baseline {r['baseline_name']} {fmt(r['baseline'])} {r['notes']}"
        )


def main(area: str, run) -> None:
    """The command line of one benchmark module: run it
    (--quick for small sizes), print and write its rows."""
    quick = "--quick" in sys.argv
    rows = run(quick=quick)
    print_rows(rows)
    print(f"written: {write(area, rows)}")
