"""Run every benchmark module (bench/bench_*.py) and write one report: JSON and a markdown table.

Usage: python -m bench.run [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
import traceback
from pathlib import Path

from bench.common import RESULTS, fmt, machine

HERE = Path(__file__).resolve().parent


def main() -> int:
    """`python -m bench.run`: every benchmark (or --only some), one
    report; a broken benchmark is reported and the rest still run."""
    parser = argparse.ArgumentParser(description="Run the E-Warung POS benchmarks against their budgets.")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the benchmarks run")
    parser.add_argument("--only", nargs="*", help="module names without bench_ (e.g. ledger card)")
    args = parser.parse_args()
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if args.only:
        modules = [m for m in modules if m.removeprefix("bench_") in args.only]
    report = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "areas": {}}
    failed = False
    for name in modules:
        area = name.removeprefix("bench_")
        print(f"== {area}", flush=True)
        try:
            rows = importlib.import_module(f"bench.{name}").run(quick=args.quick)
        except Exception:  # a broken benchmark is reported, the others still run
            traceback.print_exc()
            report["areas"][area] = {"error": traceback.format_exc(limit=3)}
            failed = True
            continue
        report["areas"][area] = {"rows": rows}
        RESULTS.mkdir(exist_ok=True)  # the area's own file too, as `python -m bench.bench_<area>` writes it
        (RESULTS / f"{area}{'-quick' if args.quick else ''}.json").write_text(json.dumps(rows, indent=1) + "\n")
        for r in rows:
            print(f"   {_verdict(r['ok'], 'OK  ', 'OVER', 'INFO')} {r['name']}: p50 {fmt(r['p50'])} p99 {fmt(r['p99'])} "
                  f"value {fmt(r['value'])} {r['unit']} (budget {r['budget']}; {r['baseline_name']} {fmt(r['baseline'])})",
                  flush=True)
            failed |= r["ok"] is False  # None: reported beside a budget, not judged by it
    report["design_budgets"] = design_budgets(report)
    RESULTS.mkdir(exist_ok=True)
    suffix = "-quick" if args.quick else ""
    (RESULTS / f"report{suffix}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"report{suffix}.md").write_text(markdown(report))
    print(f"report: {RESULTS / f'report{suffix}.md'}")
    return 1 if failed else 0


# The budget table of ../shared/DESIGN.md, each matched to the benchmark rows that measure it.
DESIGN_BUDGETS = [
    ("card-present event -> authenticated decision (pcscd+vpcd)", "p99 <= 100 ms", ("card tap",)),
    ("confirm -> card SPEND -> redemption durable + receipt bytes ready", "p99 <= 50 ms", ("confirm -> card SPEND",)),
    ("1M-household snapshot verify+apply", "<= 2.5x raw sqlite3; peak RSS <= 200 MB",
     ("snapshot verify+stage+swap", "snapshot apply peak RSS")),
    ("ledger lookup with 1M households", "p99 <= 1 ms", ("ledger lookup",)),
    ("drain 20,000 queued redemptions to a local broker", ">= 0.5x raw paho QoS 1", ("outbox drain",)),
    ("counter app cold start to idle screen (Xvfb)", "<= 3 s; RSS <= 150 MB", ("cold_start_to_idle", "rss_idle_production")),
    ("central consumer: verified (device + card signatures), stored, acknowledged",
     ">= 0.6x all cores' verify-only rate of the same messages", ("consumer rate / verify-only rate",)),
    ("ledger convergence: new device's snapshot request -> first sale allowed, 1M households",
     "<= 60 s, beside the device's own snapshot apply", ("snapshot request -> first sale allowed",)),
]


def _verdict(ok: bool | None, yes: str, no: str, reported: str) -> str:
    return reported if ok is None else yes if ok else no


def design_budgets(report: dict) -> list[dict]:
    """Each DESIGN.md budget: met or not, with the benchmark rows (and baselines) that measure it."""
    rows = [r for data in report["areas"].values() for r in data.get("rows", [])]
    out = []
    for what, target, keys in DESIGN_BUDGETS:
        found = [next((r for r in rows if key in r["name"]), None) for key in keys]
        measured = None if any(r is None for r in found) else found
        out.append({"budget": what, "target": target, "rows": [r["name"] for r in measured or []],
                    "met": None if measured is None else all(r["ok"] for r in measured)})
    return out


def design_summary(report: dict) -> list[str]:
    """The DESIGN.md budgets, each with what this run measured and whether it was met."""
    rows = {r["name"]: r for data in report["areas"].values() for r in data.get("rows", [])}
    lines = ["", "## DESIGN.md budgets", "", "| budget | target | measured (same-run baseline) | met |", "|---|---|---|---|"]
    budgets = design_budgets(report)
    for b in budgets:
        if b["met"] is None:
            lines.append(f"| {b['budget']} | {b['target']} | not measured in this run | - |")
            continue
        shown = "; ".join(
            f"{fmt(r['p99'] if r['p99'] is not None else r['value'])} {r['unit']}"
            f" ({r['baseline_name'] or 'no baseline'}: {fmt(r['baseline'])})" for r in (rows[n] for n in b["rows"])
        )
        lines.append(f"| {b['budget']} | {b['target']} | {shown} | {'yes' if b['met'] else 'NO'} |")
    lines += ["", f"{sum(1 for b in budgets if b['met'])} of {len(budgets)} budgets met."]
    return lines


def markdown(report: dict) -> str:
    """The report as a markdown table, every row and then the DESIGN.md budgets."""
    m = report["machine"]
    lines = [
        "# Benchmark report",
        "",
        f"Run {report['started']} on {m['platform']}, Python {m['python']}, {m['cpus']} CPUs.",
        "",
        "| area | benchmark | p50 | p99 | value | unit | budget | baseline (same run) | ok |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for area, data in report["areas"].items():
        if "error" in data:
            lines.append(f"| {area} | ERROR | | | | | | | no |")
            continue
        for r in data["rows"]:
            lines.append(
                f"| {area} | {r['name']} | {fmt(r['p50'])} | {fmt(r['p99'])} | {fmt(r['value'])} | {r['unit']} | "
                f"{r['budget']} | {r['baseline_name']}: {fmt(r['baseline'])} | {_verdict(r['ok'], 'yes', 'NO', 'reported')} |"
            )
    lines += design_summary(report)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
