"""Strategies side by side in the simulator, on the shipped scenarios.

Every strategy runs on the same seeded world (common random numbers: the same
arrivals, the same transit draws per order and lane), so differences come from
decisions alone. The scenarios are a calm week, a 10x sale day, a regional storm (a
closed DC and slowed lanes) and a carrier meltdown. Per scenario and strategy the
simulator's true KPIs are reported as the mean over seeds: on-time rate, cost per
order, shipments per order, p95 delivery hours and unfulfilled lines.

The bar (from the issue): `optimizer` beats `nearest` on cost per order AND on on-time
rate in every scenario. The script reports by how much, per scenario.

    python benchmarks/strategies.py            # 30 hours of arrivals (the windows are hours 6-30), 3 seeds
    python benchmarks/strategies.py --quick    # 12 hours, 2 seeds
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from router.simulation.sweep import run_sweep, sweep_jobs  # noqa: E402

SCENARIOS = {
    "calm": "national_calm",
    "peak_sale_day": "national_peak",
    "regional_storm": "national_storm",
    "carrier_meltdown": "national_meltdown",
}
STRATEGIES = ("nearest", "cheapest", "tier_rules", "optimizer")
METRICS = ("on_time_rate", "cost_per_order_usd", "shipments_per_order", "p95_delivery_hours", "unfulfilled_lines")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="12 hours of arrivals, 2 seeds")
    ap.add_argument("--hours", type=float, default=None, help="hours of arrivals (default 30; --quick 12)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per scenario (default 3; --quick 2)")
    ap.add_argument("--processes", type=int, default=None, help="worker processes (default: CPU count)")
    args = ap.parse_args(argv)
    hours = args.hours if args.hours is not None else (12.0 if args.quick else 30.0)
    n_seeds = args.seeds if args.seeds is not None else (2 if args.quick else 3)
    seeds = list(range(1, n_seeds + 1))

    paths = [str(ROOT / "scenarios" / f"{f}.yaml") for f in SCENARIOS.values()]
    # The bench scenarios put every window (storm, sale, meltdown) at hours 6-30 and run
    # 4,000 orders a day, so a 30-hour run sees each window open and close.
    jobs = sweep_jobs(paths, list(STRATEGIES), seeds, horizon_hours=hours)
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        print(f"  {done}/{total} runs ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    results = run_sweep(jobs, executor="local", processes=args.processes, progress=progress)
    elapsed = time.perf_counter() - t0

    table: dict[str, dict[str, dict[str, float]]] = {}
    for label, fname in SCENARIOS.items():
        table[label] = {}
        for strategy in STRATEGIES:
            runs = [
                r.kpis["overall"]
                for r in results
                if Path(r.job.scenario).stem == fname and r.job.strategy == strategy
            ]
            table[label][strategy] = {
                m: statistics.fmean(float(x[m] or 0.0) for x in runs) for m in METRICS
            }

    print()
    print(f"{'scenario':17s} {'strategy':10s} {'on-time':>8s} {'cost/order':>11s} {'ships/order':>12s} {'p95 h':>7s} {'unfilled':>9s}")
    verdict = {}
    for label in SCENARIOS:
        for strategy in STRATEGIES:
            k = table[label][strategy]
            print(
                f"{label:17s} {strategy:10s} {100 * k['on_time_rate']:7.2f}% {k['cost_per_order_usd']:11.2f} "
                f"{k['shipments_per_order']:12.3f} {k['p95_delivery_hours']:7.1f} {k['unfulfilled_lines']:9.1f}"
            )
        opt, near = table[label]["optimizer"], table[label]["nearest"]
        verdict[label] = {
            "cost_saving_pct": round(100.0 * (1.0 - opt["cost_per_order_usd"] / near["cost_per_order_usd"]), 2),
            "on_time_gain_points": round(100.0 * (opt["on_time_rate"] - near["on_time_rate"]), 2),
            "beats_nearest_on_both": opt["cost_per_order_usd"] < near["cost_per_order_usd"]
            and opt["on_time_rate"] > near["on_time_rate"],
        }
        v = verdict[label]
        print(
            f"{'':17s} optimizer vs nearest: cost {-v['cost_saving_pct']:+.2f}%, on-time "
            f"{v['on_time_gain_points']:+.2f} points -> {'beats' if v['beats_nearest_on_both'] else 'DOES NOT beat'} nearest on both"
        )
    print(
        json.dumps(
            {
                "bench": "strategies",
                "hours": hours,
                "seeds": seeds,
                "elapsed_s": round(elapsed, 1),
                "kpis": {s: {t: {m: round(v, 4) for m, v in k.items()} for t, k in row.items()} for s, row in table.items()},
                "optimizer_vs_nearest": verdict,
                "all_beaten": all(v["beats_nearest_on_both"] for v in verdict.values()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
