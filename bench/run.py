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
        for r in rows:
            print(f"   {'OK  ' if r['ok'] else 'OVER'} {r['name']}: p50 {fmt(r['p50'])} p99 {fmt(r['p99'])} "
                  f"value {fmt(r['value'])} {r['unit']} (budget {r['budget']}; {r['baseline_name']} {fmt(r['baseline'])})",
                  flush=True)
            failed |= not r["ok"]
    RESULTS.mkdir(exist_ok=True)
    suffix = "-quick" if args.quick else ""
    (RESULTS / f"report{suffix}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"report{suffix}.md").write_text(markdown(report))
    print(f"report: {RESULTS / f'report{suffix}.md'}")
    return 1 if failed else 0


def markdown(report: dict) -> str:
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
                f"{r['budget']} | {r['baseline_name']}: {fmt(r['baseline'])} | {'yes' if r['ok'] else 'NO'} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
