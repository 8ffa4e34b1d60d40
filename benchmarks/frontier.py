"""The cost / on-time frontier against nearest, and service-level targets met at the least cost.

Per bench scenario (calm week, 10x sale day, regional storm, carrier meltdown) one
sweep on the same seeded worlds (common random numbers):

* the optimizer at fixed lateness prices ``late_risk_usd`` in :data:`PRICES` (the frontier);
* the optimizer with on-time targets :data:`TARGETS` (vip 96 %, plus 95 %, standard 94 %),
  priced by the controller of ``router.targets``;
* ``nearest``, ``cheapest`` and ``tier_rules`` as points.

Figures, each per seed and then mean with its 95 % Student-t interval over seeds:

(a) the frontier's cost per order at nearest's true on-time, in % of nearest's cost;
(b) the frontier's true on-time at nearest's cost per order, in points above nearest;
(c) per targeted tier, the realised on-time of orders after the first 20 % of the
    horizon minus the target, in points: met when the mean is within 1 point, or when
    it is above and the price ended at its floor in every run (the target is slack: no
    lower price exists to spend less, so being more on time is free);
(d) the targeted run's cost per order against the fixed-price optimizer that reaches
    the same on-time in every tier (the cheapest price at which each tier is at least as
    on time as under the targets, along the price line), in %.

A sixth run, ``national_vip_express`` (a 30 h vip promise with a 98 % target), checks the
guard rail: the report must call the target infeasible, name the best reachable rate,
and keep the price at or below its cap.

Seeds. Nothing here was tuned on the report seeds (101-105 by default). The controller's
gain (0.12 per hour per point) was chosen with ``--tune`` on seeds 1-3 of the four
scenarios from 0.02 / 0.05 / 0.12 / 0.25 / 0.5 (the smallest mean |realised - target|);
the window (24 h) and price bounds (1-500 USD) are the defaults as first written; the
targets and the price grid were fixed before any report seed ran. ``late_risk_usd = 18`` (the fixed-price default) was tuned on seeds
1-3 (benchmarks/strategies.py). Outcome feedback reaches the controller at each
order's promise, so in 30 h runs (shorter than the 48 h vip promise) the controller
steers on the delay-risk model's forecasts alone.

    python benchmarks/frontier.py            # 30 h of arrivals, seeds 101-105
    python benchmarks/frontier.py --quick    # calm and the infeasible case, 12 h, seeds 101-102
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from protocol import BENCH_SCENARIOS, NO_CLEAR_WINNER, interval, machine_facts, parse_seeds, winner  # noqa: E402

from router.simulation.frontier import (  # noqa: E402
    frontier_jobs,
    frontier_table,
    gaps_at_baseline,
    interpolate,
    parse_targets,
    write_frontier,
)
from router.simulation.sweep import SweepJob, run_sweep  # noqa: E402

PRICES = (0.0, 6.0, 12.0, 18.0, 36.0, 72.0)
QUICK_PRICES = (6.0, 18.0, 54.0)
TARGETS = "vip=0.96,plus=0.95,standard=0.94"
HELD_OUT_SEEDS = (101, 102, 103, 104, 105)
TUNE_SEEDS = (1, 2, 3)
TUNE_GAINS = (0.02, 0.05, 0.12, 0.25, 0.5)
QUICK_SEEDS = (101, 102)
INFEASIBLE = "national_vip_express"
TOLERANCE_POINTS = 1.0


def matched_fixed_price_cost(table, target_label: str, tiers: list[str]) -> list[float]:
    """Per seed: targeted cost minus the cost of the cheapest fixed price with every tier at least as on time, in %."""
    out = []
    for s in sorted(table["seed"].unique()):
        t = table[table["seed"] == s]
        tg = t[t["label"] == target_label]
        front = t[t["kind"] == "price"].sort_values("price")
        if tg.empty or len(front) < 2:
            out.append(math.nan)
            continue
        need = []
        for tier in tiers:
            level = float(tg[f"on_time_{tier}"].iloc[0])
            col = front[f"on_time_{tier}"].to_numpy()
            if level <= col[0]:
                need.append(float(front["price"].iloc[0]))
                continue
            # the first crossing along the price line (on-time grows with the price, not strictly)
            p = interpolate(col, front["price"].to_numpy(), level)
            need.append(p if not math.isnan(p) else math.inf)
        price = max(need)
        if math.isinf(price):
            out.append(math.nan)  # no fixed price on the grid reaches it
            continue
        cost = interpolate(front["price"].to_numpy(), front["cost_per_order"].to_numpy(), price)
        out.append(100.0 * (float(tg["cost_per_order"].iloc[0]) - cost) / cost)
    return out


def summary(values: list[float], lower_is_better: bool) -> dict:
    vals = [v for v in values if not math.isnan(v)]
    if len(vals) < 2:
        return {"mean": vals[0] if vals else None, "ci95": [None, None], "n": len(vals), "per_seed": values, "winner": NO_CLEAR_WINNER}
    iv = interval(vals, digits=6)
    m, (lo, hi) = iv["mean"], iv["ci95"]
    win = winner(iv, "optimizer", "baseline", lower_is_better=lower_is_better)
    return {"mean": round(m, 3), "ci95": [round(lo, 3), round(hi, 3)], "n": len(vals), "per_seed": [round(v, 3) for v in values], "winner": win}


def tune(args) -> None:
    """The gain grid on the tuning seeds: the gain whose realised on-time lands closest to the targets.

    Rule: the smallest mean |realised after warm-up - target| over the four scenarios
    and three tiers (per scenario and tier, the mean over seeds); ties go to the cheaper.
    """
    seeds = list(TUNE_SEEDS)
    hours = args.hours or 30.0
    gains = tuple(float(g) for g in args.gains.split(",")) if args.gains else TUNE_GAINS
    targets = parse_targets(TARGETS)
    tiers = [t["tier"] for t in targets["targets"]]
    jobs = []
    for gain in gains:
        for stem in BENCH_SCENARIOS.values():
            jobs += frontier_jobs(
                ROOT / "scenarios" / f"{stem}.yaml", seeds, prices=(), target_sets=[targets], baselines=(),
                horizon_hours=hours, target_options={"gain": gain},
            )
    t0 = time.perf_counter()
    results = run_sweep(
        jobs, processes=args.processes,
        progress=lambda d, n: print(f"{d}/{n} runs, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True) if d % 6 == 0 or d == n else None,
    )
    grid = {}
    for gain in gains:
        res = [r for r in results if json.loads(r.job.params)["targets"]["gain"] == gain]
        table = frontier_table(res)
        devs, costs, cells = [], [], {}
        for stem in BENCH_SCENARIOS.values():
            t = table[table["scenario"] == stem]
            costs.append(float(t["cost_per_order"].mean()))
            for tier in tiers:
                d = 100.0 * float((t[f"after_warmup_{tier}"] - t[f"target_{tier}"]).mean())
                devs.append(abs(d))
                cells[f"{stem}/{tier}"] = round(d, 3)
        grid[gain] = {"mean_abs_dev_points": round(sum(devs) / len(devs), 4), "max_abs_dev_points": round(max(devs), 4),
                      "cost_per_order": round(sum(costs) / len(costs), 4), "deviation_points": cells}
    chosen = min(gains, key=lambda g: (grid[g]["mean_abs_dev_points"], grid[g]["cost_per_order"]))
    for g, v in grid.items():
        print(f"gain {g:<5} mean |dev| {v['mean_abs_dev_points']:.3f} pts  max {v['max_abs_dev_points']:.3f}  $/order {v['cost_per_order']:.3f}")
    print(json.dumps({"bench": "frontier-tune", "hours": hours, "tune_seeds": seeds, "targets": TARGETS, "grid": {str(k): v for k, v in grid.items()},
                      "chosen_gain": chosen, "elapsed_s": round(time.perf_counter() - t0, 1), "machine": machine_facts()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="calm and the infeasible case, 12 h, seeds 101-102")
    ap.add_argument("--seeds", default=None, help="report seeds (default 101-105)")
    ap.add_argument("--hours", type=float, default=None, help="hours of arrivals (default 30, quick 12)")
    ap.add_argument("--processes", type=int, default=None)
    ap.add_argument(
        "--tune",
        action="store_true",
        help="choose the controller's gain on seeds 1-3 (target runs only) and print the grid; nothing else",
    )
    ap.add_argument("--gains", default=None, help="with --tune: the grid (default 0.02,0.05,0.12,0.25,0.5)")
    ap.add_argument("--out", default=None, help="report folder for the frontier CSV/PNG (default: reports/bench-frontier)")
    args = ap.parse_args()

    if args.tune:
        tune(args)
        return
    seeds = parse_seeds(args.seeds) if args.seeds else list(QUICK_SEEDS if args.quick else HELD_OUT_SEEDS)
    hours = args.hours or (12.0 if args.quick else 30.0)
    prices = QUICK_PRICES if args.quick else PRICES
    scenarios = {"calm": "national_calm"} if args.quick else dict(BENCH_SCENARIOS)
    targets = parse_targets(TARGETS)
    tiers = [t["tier"] for t in targets["targets"]]

    jobs: list[SweepJob] = []
    for stem in scenarios.values():
        jobs += frontier_jobs(ROOT / "scenarios" / f"{stem}.yaml", seeds, prices=prices, target_sets=[targets], horizon_hours=hours)
    # the infeasible case: the scenario's own target (vip 98 % on a 30 h promise)
    infeasible_path = str((ROOT / "scenarios" / f"{INFEASIBLE}.yaml").resolve())
    jobs += [SweepJob(infeasible_path, "optimizer", s, None, hours, None, "champion", None, "own targets") for s in seeds]

    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            print(f"{done}/{total} runs, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    results = run_sweep(jobs, processes=args.processes, progress=progress)
    elapsed = time.perf_counter() - t0
    out_dir = Path(args.out or ROOT / "reports" / ("bench-frontier-quick" if args.quick else "bench-frontier"))
    label = "targets " + TARGETS

    report: dict = {}
    rows = []
    for name, stem in scenarios.items():
        res = [r for r in results if Path(r.job.scenario).stem == stem]
        table = frontier_table(res)
        write_frontier(table, out_dir / stem, meta={"seeds": seeds, "hours": hours})
        g = gaps_at_baseline(table, "nearest")
        cost_a = summary([math.nan if v is None else v for v in g["cost_pct"]["per_seed"]], lower_is_better=True)
        on_b = summary([math.nan if v is None else v for v in g["on_time_points"]["per_seed"]], lower_is_better=False)
        tg = table[table["label"] == label]
        per_tier = {}
        for tier in tiers:
            target = float(tg[f"target_{tier}"].iloc[0])
            dev = [100.0 * (float(v) - target) for v in tg[f"after_warmup_{tier}"]]
            s = summary(dev, lower_is_better=False)
            per_tier[tier] = {
                "target": target,
                "realised_after_warmup": round(float(tg[f"after_warmup_{tier}"].mean()), 4),
                "deviation_points": s,
                "within_1_point": s["mean"] is not None and abs(s["mean"]) <= TOLERANCE_POINTS,
                # above the target with the price at its floor in every run: the target binds nothing
                # (a constraint's multiplier is 0 when it is slack), so being more on time is not a miss
                "slack": bool(tg[f"slack_{tier}"].all()),
                "met": s["mean"] is not None
                and (abs(s["mean"]) <= TOLERANCE_POINTS or (s["mean"] > 0 and bool(tg[f"slack_{tier}"].all()))),
                "feasible": [None if v is None or (isinstance(v, float) and math.isnan(v)) else bool(v) for v in tg[f"feasible_{tier}"]],
                "final_price_usd": [round(float(v), 2) for v in tg[f"price_{tier}"]],
            }
        matched = summary(matched_fixed_price_cost(table, label, tiers), lower_is_better=True)
        report[name] = {
            "a_cost_pct_at_nearest_on_time": cost_a,
            "b_on_time_points_at_nearest_cost": on_b,
            "a_met": cost_a["winner"] == "optimizer",
            "b_met": on_b["winner"] == "optimizer",
            "targets": per_tier,
            "targets_cost_pct_vs_matching_fixed_price": matched,
            "targets_cheaper": matched["winner"] == "optimizer",
            "means": {
                lb: {
                    "cost_per_order": round(float(grp["cost_per_order"].mean()), 4),
                    "on_time": round(float(grp["on_time"].mean()), 4),
                    **{f"on_time_{t}": round(float(grp[f"on_time_{t}"].mean()), 4) for t in tiers},
                }
                for lb, grp in table.groupby("label", sort=False)
            },
        }
        rows.append((name, cost_a, on_b, per_tier, matched))

    inf = [r for r in results if Path(r.job.scenario).stem == INFEASIBLE]
    inf_status = [next(st for st in r.kpis["targets"] if st["segment"] == "vip") for r in inf]
    infeasible = {
        "scenario": INFEASIBLE,
        "target": inf_status[0]["target"] if inf_status else None,
        "reported_infeasible": [st["feasible"] is False for st in inf_status],
        "best_reachable": [st["best_reachable"] for st in inf_status],
        "realised_after_warmup": [st["realised_after_warmup"] for st in inf_status],
        "final_price_usd": [st["price_usd"] for st in inf_status],
        "max_price_usd": 300.0,
        "price_capped_ok": all(st["price_usd"] <= 300.0 + 1e-9 for st in inf_status),
        "reason": inf_status[0]["reason"] if inf_status else "",
    }

    print(f"\nfrontier vs nearest and targets {TARGETS} ({hours:g} h, seeds {seeds}, {len(jobs)} runs, {elapsed:.0f} s)")
    print(f"{'scenario':<18} {'(a) cost % at nearest on-time':>32} {'(b) on-time pts at nearest cost':>34}")
    for name, a, b, _, _ in rows:
        print(f"{name:<18} {a['mean']!s:>8} {str(a['ci95']):>22}  {b['mean']!s:>8} {str(b['ci95']):>24}")
    print(f"\n{'scenario':<18} " + " ".join(f"{t + ' dev pts':>22}" for t in tiers) + f" {'cost % vs matched price':>30}")
    for name, _, _, per_tier, matched in rows:
        cells = " ".join(f"{per_tier[t]['deviation_points']['mean']!s:>7} {str(per_tier[t]['deviation_points']['ci95']):>14}" for t in tiers)
        print(f"{name:<18} {cells} {matched['mean']!s:>8} {str(matched['ci95']):>21}")
    print(f"\ninfeasible vip target ({INFEASIBLE}): reported infeasible {infeasible['reported_infeasible']}, "
          f"best reachable {infeasible['best_reachable']}, final price {infeasible['final_price_usd']} (cap 300)")
    print(f"report folders: {out_dir}")

    line = {
        "bench": "frontier",
        "hours": hours,
        "seeds": seeds,
        "held_out_seeds": seeds,
        "tune_seeds": list(TUNE_SEEDS),
        "prices": list(prices),
        "targets": TARGETS,
        "runs": len(jobs),
        "elapsed_s": round(elapsed, 1),
        "scenarios": report,
        "all_a_met": all(v["a_met"] for v in report.values()),
        "all_b_met": all(v["b_met"] for v in report.values()),
        "all_targets_within_1_point": all(t["within_1_point"] for v in report.values() for t in v["targets"].values()),
        "all_targets_met": all(t["met"] for v in report.values() for t in v["targets"].values()),
        "infeasible": infeasible,
        "machine": machine_facts(),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
