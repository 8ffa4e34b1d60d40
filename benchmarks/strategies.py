"""Strategies side by side in the simulator, on the shipped scenarios, on held-out seeds.

Every strategy runs on the same seeded world (common random numbers: the same
arrivals, the same transit draws per order and lane), so differences come from
decisions alone. The scenarios are a calm week, a 10x sale day, a regional storm (a
closed DC and slowed lanes) and a carrier meltdown. Per scenario and strategy the
simulator's true KPIs are reported as the mean over seeds with its 95 % Student-t
interval: on-time rate, cost per order, shipments per order, p95 delivery hours and
unfulfilled lines.

Seeds. The optimizer's defaults (``StrategyParams``, ``late_risk_usd`` = 18 above all)
were chosen on these four scenarios with seeds 1-3 (:data:`TUNE_SEEDS`). The report runs
on other seeds, 101-105 by default (:data:`HELD_OUT_SEEDS`); ``--with-tune-seeds`` adds
the tuning seeds as a separate block, to show how much the choice flattered them.

Delay risk. Every strategy routes with the network's champion delay-risk model (the
router's default, trained on seeds 1-3); ``optimizer/analytic`` is the optimizer with the
analytic late-risk estimate and the same weights. A second comparison gives optimizer
(learned) minus optimizer/analytic: on-time points overall and for the vip tier, and cost
per order in %, paired by seed. The issue's bar: vip on-time up in every scenario, overall
on-time up by at least 1 point in storm and meltdown, at no more than +1 % cost.

Comparison. Per scenario and seed, the paired difference optimizer minus each baseline
(``nearest``, ``cheapest``, ``tier_rules``): cost per order in % of the baseline's, and
true on-time rate in points. Over seeds: the mean and its 95 % t-interval. A winner is
declared per scenario and KPI only where the interval excludes 0, otherwise "no clear
winner". The issue's bar: ``optimizer`` beats ``nearest`` on cost AND on-time in every
scenario.

    python benchmarks/strategies.py            # 30 hours of arrivals (the windows are hours 6-30), seeds 101-105
    python benchmarks/strategies.py --quick    # 12 hours, seeds 101-102
    python benchmarks/strategies.py --seeds 101-110 --with-tune-seeds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from protocol import BENCH_SCENARIOS, NO_CLEAR_WINNER, interval, machine_facts, paired, parse_seeds  # noqa: E402  (benchmarks/protocol)

from router.simulation.sweep import SweepJob, run_sweep, sweep_jobs  # noqa: E402

SCENARIOS = BENCH_SCENARIOS
STRATEGIES = ("nearest", "cheapest", "tier_rules", "optimizer")
# Every strategy routes with the network's champion delay-risk model (the router's
# default; it was trained on simulation seeds 1-3, docs/risk.md). ANALYTIC is the
# optimizer on the analytic late-risk estimate, the same weights: learned vs analytic.
ANALYTIC = "optimizer/analytic"
OURS = "optimizer"
BASELINES = ("nearest", "cheapest", "tier_rules")
METRICS = ("on_time_rate", "cost_per_order_usd", "shipments_per_order", "p95_delivery_hours", "unfulfilled_lines")
# The seeds StrategyParams' defaults (late_risk_usd = 18) were chosen on, with these
# four scenarios and 30 hours of arrivals; the report runs on others.
TUNE_SEEDS = (1, 2, 3)
HELD_OUT_SEEDS = (101, 102, 103, 104, 105)
QUICK_SEEDS = (101, 102)


def label_of(job) -> str:
    return ANALYTIC if job.strategy == OURS and job.risk_model is None else job.strategy


def per_seed(results, fname: str, strategy: str, seeds: list[int]) -> dict[str, list[float]]:
    """Each metric's value per seed, in ``seeds`` order, for one scenario file and strategy
    (``vip_on_time_rate``: the vip tier's on-time rate)."""
    by_seed = {r.job.seed: r.kpis for r in results if Path(r.job.scenario).stem == fname and label_of(r.job) == strategy}
    out = {m: [float(by_seed[s]["overall"][m] or 0.0) for s in seeds] for m in METRICS}
    out["vip_on_time_rate"] = [float(by_seed[s]["by_tier"].get("vip", {}).get("on_time_rate") or 0.0) for s in seeds]
    return out


def learned_vs_analytic(results, seeds: list[int]) -> dict:
    """Per scenario, optimizer with the learned risk minus with the analytic risk, paired by seed."""
    out = {}
    for label, fname in SCENARIOS.items():
        a, b = per_seed(results, fname, OURS, seeds), per_seed(results, fname, ANALYTIC, seeds)
        out[label] = {
            "on_time_points": paired(a["on_time_rate"], b["on_time_rate"], (OURS, ANALYTIC), lower_is_better=False, scale=100.0, digits=3),
            "vip_on_time_points": paired(a["vip_on_time_rate"], b["vip_on_time_rate"], (OURS, ANALYTIC), lower_is_better=False, scale=100.0, digits=3),
            "cost_pct": paired(a["cost_per_order_usd"], b["cost_per_order_usd"], (OURS, ANALYTIC), lower_is_better=True, scale=100.0, relative=True, digits=3),
        }
    return out


def compare(results, seeds: list[int]) -> tuple[dict, dict]:
    """KPIs per scenario and strategy (mean, 95 % interval) and optimizer's paired differences to each baseline."""
    kpis: dict = {}
    versus: dict = {}
    for label, fname in SCENARIOS.items():
        values = {st: per_seed(results, fname, st, seeds) for st in (*STRATEGIES, ANALYTIC)}
        kpis[label] = {st: {m: interval(v) for m, v in values[st].items()} for st in (*STRATEGIES, ANALYTIC)}
        ours = values[OURS]
        versus[label] = {
            base: {
                # cost per order: optimizer's % above (+) or below (-) the baseline's, per seed
                "cost_pct": paired(ours["cost_per_order_usd"], values[base]["cost_per_order_usd"], (OURS, base),
                                   lower_is_better=True, scale=100.0, relative=True, digits=3),
                # true on-time rate: optimizer's points above (+) or below (-) the baseline's
                "on_time_points": paired(ours["on_time_rate"], values[base]["on_time_rate"], (OURS, base),
                                         lower_is_better=False, scale=100.0, digits=3),
            }
            for base in BASELINES
        }
    return kpis, versus


def _ci(iv: dict, fmt: str = "+.2f") -> str:
    lo, hi = iv["ci95"]
    return "[n/a]" if lo is None else f"[{lo:{fmt}}, {hi:{fmt}}]"


def print_tables(kpis: dict, versus: dict, seeds: list[int]) -> None:
    print(f"\nseeds {seeds}: mean over seeds, 95 % t-interval in brackets")
    print(f"{'scenario':17s} {'strategy':18s} {'on-time %':>22s} {'cost/order $':>24s} {'ships/order':>12s} {'p95 h':>7s} {'unfilled':>9s}")
    for label in SCENARIOS:
        for st in (*STRATEGIES, ANALYTIC):
            k = kpis[label][st]
            on = k["on_time_rate"]
            on_ci = "" if on["ci95"][0] is None else f" [{100 * on['ci95'][0]:.2f}, {100 * on['ci95'][1]:.2f}]"
            print(
                f"{label:17s} {st:18s} {100 * on['mean']:7.2f}{on_ci:>15s} "
                f"{k['cost_per_order_usd']['mean']:8.2f} {_ci(k['cost_per_order_usd'], '.2f'):>15s} "
                f"{k['shipments_per_order']['mean']:12.3f} {k['p95_delivery_hours']['mean']:7.1f} "
                f"{k['unfulfilled_lines']['mean']:9.1f}"
            )
    print("\noptimizer minus baseline, paired per seed: cost in % of the baseline's, on-time in points")
    for label in SCENARIOS:
        for base in BASELINES:
            c, o = versus[label][base]["cost_pct"], versus[label][base]["on_time_points"]
            print(
                f"{label:17s} vs {base:10s} cost {c['mean']:+6.2f} % {_ci(c):>17s} -> {c['winner']:16s} "
                f"on-time {o['mean']:+6.2f} pts {_ci(o):>17s} -> {o['winner']}"
            )


TUNE_WEIGHTS = (18.0, 27.0, 36.0)


def tune_risk_weight(processes: int | None, hours: float) -> dict:
    """``late_risk_usd`` for each late-risk estimate, chosen on the tuning seeds with the same grid.

    For the learned and the analytic estimate alike: the weight of :data:`TUNE_WEIGHTS`
    with the highest on-time rate averaged over the four scenarios and seeds 1-3, among
    those whose cost per order is at most 1 % above the same estimate's at the default
    (18). Scenario variants with the weight are written to a temporary folder.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tune-risk-") as tmp:
        jobs, keys = [], []
        for w in TUNE_WEIGHTS:
            for label, fname in SCENARIOS.items():
                path = Path(tmp) / f"{fname}_w{w:g}.yaml"
                path.write_text(
                    f"extends: {ROOT / 'scenarios' / (fname + '.yaml')}\nname: {fname}_w{w:g}\n"
                    f"params: {{late_risk_usd: {w}}}\n"
                )
                for risk in ("champion", None):
                    for sd in TUNE_SEEDS:
                        jobs.append(SweepJob(str(path), OURS, sd, None, hours, None, risk))
                        keys.append((w, label, risk, sd))
        t0 = time.perf_counter()
        results = run_sweep(
            jobs, executor="local", processes=processes,
            progress=lambda d, t: print(f"  tune {d}/{t} runs ({time.perf_counter() - t0:.0f} s)", file=sys.stderr),
        )
    table: dict = {}
    for (w, _label, risk, _sd), r in zip(keys, results):
        cell = table.setdefault((risk or "analytic", w), {"on_time": [], "cost": []})
        cell["on_time"].append(r.kpis["overall"]["on_time_rate"])
        cell["cost"].append(r.kpis["overall"]["cost_per_order_usd"])
    out = {}
    for risk in ("champion", "analytic"):
        base_cost = sum(table[(risk, 18.0)]["cost"]) / len(table[(risk, 18.0)]["cost"])
        rows = {
            w: {
                "on_time": sum(table[(risk, w)]["on_time"]) / len(table[(risk, w)]["on_time"]),
                "cost": sum(table[(risk, w)]["cost"]) / len(table[(risk, w)]["cost"]),
            }
            for w in TUNE_WEIGHTS
        }
        allowed = [w for w in TUNE_WEIGHTS if rows[w]["cost"] <= 1.01 * base_cost]
        best = max(allowed, key=lambda w: rows[w]["on_time"])
        out[risk] = {"chosen": best, "grid": {f"{w:g}": rows[w] for w in TUNE_WEIGHTS}}
        print(f"{risk:9s}: late_risk_usd {best:g} chosen; " + "; ".join(
            f"{w:g}: on-time {100 * rows[w]['on_time']:.2f} %, ${rows[w]['cost']:.3f}" for w in TUNE_WEIGHTS), file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="12 hours of arrivals, seeds 101-102")
    ap.add_argument("--hours", type=float, default=None, help="hours of arrivals (default 30; --quick 12)")
    ap.add_argument("--seeds", default=None, help="held-out seeds, e.g. 101-105 (default 101-105; --quick 101,102)")
    ap.add_argument("--with-tune-seeds", action="store_true",
                    help=f"also run the tuning seeds {','.join(map(str, TUNE_SEEDS))} and report them apart")
    ap.add_argument("--processes", type=int, default=None, help="worker processes (default: CPU count)")
    ap.add_argument("--tune", action="store_true",
                    help="choose late_risk_usd for the learned and the analytic estimate on the tuning seeds, then stop")
    args = ap.parse_args(argv)
    if args.tune:
        print(json.dumps({"bench": "strategies-tune", "hours": 30.0, "tune_seeds": list(TUNE_SEEDS),
                          "late_risk_usd": tune_risk_weight(args.processes, 30.0), "machine": machine_facts()}))
        return 0
    hours = args.hours if args.hours is not None else (12.0 if args.quick else 30.0)
    try:
        seeds = parse_seeds(args.seeds) if args.seeds else list(QUICK_SEEDS if args.quick else HELD_OUT_SEEDS)
    except ValueError as exc:
        ap.error(str(exc))
    if set(seeds) & set(TUNE_SEEDS):
        ap.error(f"--seeds {seeds} includes tuning seeds {TUNE_SEEDS}; use --with-tune-seeds to report those apart")
    tune_seeds = list(TUNE_SEEDS) if args.with_tune_seeds else []
    machine = machine_facts()
    print(f"machine: {', '.join(f'{k} {v}' for k, v in machine.items())}", file=sys.stderr)

    paths = [str(ROOT / "scenarios" / f"{f}.yaml") for f in SCENARIOS.values()]
    # The bench scenarios put every window (storm, sale, meltdown) at hours 6-30 and run
    # 4,000 orders a day, so a 30-hour run sees each window open and close.
    jobs = sweep_jobs(paths, list(STRATEGIES), seeds + tune_seeds, horizon_hours=hours)
    jobs += [SweepJob(p, OURS, sd, None, hours, None, None) for p in paths for sd in seeds + tune_seeds]
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        print(f"  {done}/{total} runs ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    results = run_sweep(jobs, executor="local", processes=args.processes, progress=progress)
    elapsed = time.perf_counter() - t0

    kpis, versus = compare(results, seeds)
    print_tables(kpis, versus, seeds)
    verdict = {
        label: {
            base: {"cost": v["cost_pct"]["winner"], "on_time": v["on_time_points"]["winner"]}
            for base, v in row.items()
        }
        for label, row in versus.items()
    }
    beats_nearest = {label: verdict[label]["nearest"] == {"cost": OURS, "on_time": OURS} for label in SCENARIOS}
    lva = learned_vs_analytic(results, seeds)
    print("\noptimizer with the learned delay risk minus with the analytic risk (paired by seed, 95 % interval):")
    for label, v in lva.items():
        print(
            f"  {label:18s} on-time {v['on_time_points']['mean']:+.2f} pts {v['on_time_points']['ci95']} "
            f"({v['on_time_points']['winner']}); vip on-time {v['vip_on_time_points']['mean']:+.2f} pts "
            f"{v['vip_on_time_points']['ci95']} ({v['vip_on_time_points']['winner']}); cost {v['cost_pct']['mean']:+.2f} % "
            f"{v['cost_pct']['ci95']} ({v['cost_pct']['winner']})"
        )
    lva_targets = {
        label: {
            "vip_on_time_up": v["vip_on_time_points"]["winner"] == OURS,
            "on_time_up_1pt": (v["on_time_points"]["ci95"][0] or -1) >= 1.0 if label in ("regional_storm", "carrier_meltdown") else None,
            "cost_at_most_plus_1pct": (v["cost_pct"]["ci95"][1] if v["cost_pct"]["ci95"][1] is not None else 99) <= 1.0,
        }
        for label, v in lva.items()
    }
    print(
        "\noptimizer beats nearest on cost AND on-time, with both intervals excluding 0: "
        + ", ".join(f"{label} {'yes' if ok else 'no'}" for label, ok in beats_nearest.items())
    )
    out = {
        "bench": "strategies",
        "hours": hours,
        "seeds": seeds,
        "held_out_seeds": seeds,
        "tune_seeds": list(TUNE_SEEDS),
        "elapsed_s": round(elapsed, 1),
        "runs": len(jobs),
        "kpis": {s: {t: {m: iv["mean"] for m, iv in k.items()} for t, k in row.items()} for s, row in kpis.items()},
        "kpis_ci95": {s: {t: {m: iv["ci95"] for m, iv in k.items()} for t, k in row.items()} for s, row in kpis.items()},
        "optimizer_vs": versus,
        "winners": verdict,
        "beats_nearest_on_both": beats_nearest,
        "learned_vs_analytic": lva,
        "learned_vs_analytic_targets": lva_targets,
        "all_beaten": all(beats_nearest.values()),
        "no_clear_winner": NO_CLEAR_WINNER,
        "machine": machine,
    }
    if tune_seeds:
        t_kpis, t_versus = compare(results, tune_seeds)
        print("\n--- tuning seeds (the ones the defaults were chosen on; not a held-out figure)")
        print_tables(t_kpis, t_versus, tune_seeds)
        out["tuning_seeds"] = {
            "seeds": tune_seeds,
            "kpis": {s: {t: {m: iv["mean"] for m, iv in k.items()} for t, k in row.items()} for s, row in t_kpis.items()},
            "optimizer_vs": t_versus,
        }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
