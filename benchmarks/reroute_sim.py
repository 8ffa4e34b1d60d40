"""Batch re-routing in simulation: the optimizer with and without the periodic re-routing policy.

Per scenario (the regional storm and the carrier meltdown of benchmarks/strategies.py,
both with their windows at hours 6-30) and seed, two runs on the same seeded world
(common random numbers: the same arrivals, the same transit draws per order and lane):

* ``without``: the optimizer, every order routed once on arrival;
* ``with``: the same, plus the simulator's re-routing policy: every :data:`EVERY_HOURS`
  hours and when a disruption window starts, the open backlog (routed orders none of
  whose legs has started picking) is re-routed jointly (``Router.reroute``, applied).

Reported per scenario and arm: the simulator's true on-time rate and cost per order,
mean over seeds with the 95 % Student-t interval; the paired difference with minus
without per seed (on-time in points, cost per order in %), a winner only where its
interval excludes 0; and the policy's work: runs per simulation, orders open and moved
per run, seconds spent re-routing. The issue's target: better on-time (the on-time
interval above 0) at no higher cost (the cost interval not above 0).

Seeds. ``EVERY_HOURS`` was chosen with ``--tune`` on seeds 1-3 of the two scenarios from
:data:`TUNE_GRID` (the highest mean on-time among the periods whose mean cost per order is
not above the runs without; ties to the shortest period: the most chances to move);
the report runs on seeds 101-105, which no choice looked at. The re-route options are
``RerouteOptions()``'s defaults, untouched.

    python benchmarks/reroute_sim.py            # 30 h of arrivals, storm and meltdown, seeds 101-105
    python benchmarks/reroute_sim.py --quick    # the storm, 7 h (its start at 6 h included), seeds 101-102, one process
    python benchmarks/reroute_sim.py --tune     # choose EVERY_HOURS on seeds 1-3, then stop
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from protocol import NO_CLEAR_WINNER, interval, machine_facts, paired, parse_seeds  # noqa: E402  (benchmarks/protocol)

SCENARIOS = {"regional_storm": "national_storm", "carrier_meltdown": "national_meltdown"}
STRATEGY = "optimizer"
ARMS = ("without", "with")
TUNE_SEEDS = (1, 2, 3)
HELD_OUT_SEEDS = (101, 102, 103, 104, 105)
QUICK_SEEDS = (101, 102)
TUNE_GRID = (2.0, 4.0, 8.0)
# Chosen by --tune on seeds 1-3 (2026-12-02): every period of the grid gave exactly the
# runs without re-routing (nothing was open to move), so the tie went to the shortest.
EVERY_HOURS = 2.0


def run_one(job: tuple[str, int, float, float | None]) -> dict:
    """One simulation: (scenario file stem, seed, hours, re-route period or None for no policy)."""
    from router.scenario import load_scenario
    from router.simulation import kpis, simulate

    stem, seed, hours, every = job
    sc = load_scenario(ROOT / "scenarios" / f"{stem}.yaml")
    t0 = time.perf_counter()
    if every is None:
        r = simulate(sc, STRATEGY, seed=seed, horizon_hours=hours)
    else:
        r = simulate(sc, STRATEGY, seed=seed, horizon_hours=hours, reroute_every_hours=every, reroute_on_disruption=True)
    wall = time.perf_counter() - t0
    k = kpis(r, timing=False)["overall"]
    # every per-order and per-leg figure (the fingerprint also counts the world's queue
    # reports, one more of which a re-route run that moves nothing can add)
    h = hashlib.blake2b(digest_size=12)
    for arr in (r.delivered_hours, r.cost_usd, r.shipments, r.node, *(getattr(r.legs, f) for f in r.legs.__dataclass_fields__)):
        if arr is not None:
            h.update(arr.tobytes())
    rr = r.reroute
    return {
        "scenario": stem, "seed": seed, "every": every, "orders": r.n_orders,
        "on_time_rate": float(k["on_time_rate"] or 0.0), "cost_per_order_usd": float(k["cost_per_order_usd"] or 0.0),
        "fingerprint": r.fingerprint(), "outcomes": h.hexdigest(), "wall_s": round(wall, 2),
        "reroute": {} if not rr else {
            "runs": rr["runs"], "open": rr["open"], "moved": rr["moved"], "unplaced": rr["unplaced"],
            "max_open": max((x["open"] for x in rr["per_run"]), default=0), "seconds": rr["seconds"],
            "all_optimal": rr["all_optimal"],
        },
    }


def run_all(jobs: list, processes: int) -> list[dict]:
    t0 = time.perf_counter()
    out: list[dict] = []
    if processes <= 1:
        for j in jobs:
            out.append(run_one(j))
            print(f"  {len(out)}/{len(jobs)} runs ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        return out
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        for res in pool.map(run_one, jobs):
            out.append(res)
            print(f"  {len(out)}/{len(jobs)} runs ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return out


def tune(processes: int, hours: float) -> dict:
    """EVERY_HOURS on the tuning seeds: see the module docstring."""
    jobs = [(stem, sd, hours, ev) for stem in SCENARIOS.values() for sd in TUNE_SEEDS for ev in (None, *TUNE_GRID)]
    res = run_all(jobs, processes)

    def mean(ev, key):
        vals = [r[key] for r in res if r["every"] == ev]
        return sum(vals) / len(vals)

    base_cost = mean(None, "cost_per_order_usd")
    rows = {ev: {"on_time": mean(ev, "on_time_rate"), "cost": mean(ev, "cost_per_order_usd"),
                 "moved": sum(r["reroute"]["moved"] for r in res if r["every"] == ev)} for ev in TUNE_GRID}
    allowed = [ev for ev in TUNE_GRID if rows[ev]["cost"] <= base_cost + 1e-12]
    best = max(sorted(allowed), key=lambda ev: rows[ev]["on_time"]) if allowed else None  # ties: the first, shortest
    return {"chosen": best, "without": {"on_time": mean(None, "on_time_rate"), "cost": base_cost},
            "grid": {f"{ev:g}": rows[ev] for ev in TUNE_GRID}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the storm only, 7 hours of arrivals, seeds 101-102, one process")
    ap.add_argument("--hours", type=float, default=None, help="hours of arrivals (default 30; --quick 7)")
    ap.add_argument("--seeds", default=None, help="held-out seeds (default 101-105; --quick 101,102)")
    ap.add_argument("--every", type=float, default=EVERY_HOURS, help=f"re-route period in hours (default {EVERY_HOURS:g}, tuned)")
    ap.add_argument("--processes", type=int, default=None, help="worker processes (default 2; --quick 1: no start-up of workers)")
    ap.add_argument("--tune", action="store_true", help="choose the period on seeds 1-3, then stop")
    args = ap.parse_args(argv)
    machine = machine_facts()
    print(f"machine: {', '.join(f'{k} {v}' for k, v in machine.items())}", file=sys.stderr)
    if args.tune:
        t = tune(args.processes or 2, args.hours or 30.0)
        print(json.dumps({"bench": "reroute_sim-tune", "hours": args.hours or 30.0, "tune_seeds": list(TUNE_SEEDS),
                          "every_hours": t, "machine": machine}))
        return 0
    hours = args.hours if args.hours is not None else (7.0 if args.quick else 30.0)
    processes = args.processes if args.processes is not None else (1 if args.quick else 2)
    try:
        seeds = parse_seeds(args.seeds) if args.seeds else list(QUICK_SEEDS if args.quick else HELD_OUT_SEEDS)
    except ValueError as exc:
        ap.error(str(exc))
    if set(seeds) & set(TUNE_SEEDS):
        ap.error(f"--seeds {seeds} includes the tuning seeds {TUNE_SEEDS}")
    scenarios = {"regional_storm": SCENARIOS["regional_storm"]} if args.quick else SCENARIOS
    jobs = [(stem, sd, hours, ev) for stem in scenarios.values() for sd in seeds for ev in (None, args.every)]
    t0 = time.perf_counter()
    res = run_all(jobs, processes)
    elapsed = time.perf_counter() - t0

    def cell(stem: str, arm: str, key: str) -> list[float]:
        ev = None if arm == "without" else args.every
        by = {r["seed"]: r for r in res if r["scenario"] == stem and r["every"] == ev}
        return [by[s][key] for s in seeds]

    kpis: dict = {}
    diff: dict = {}
    work: dict = {}
    target: dict = {}
    for label, stem in scenarios.items():
        kpis[label] = {arm: {m: interval(cell(stem, arm, m), 5) for m in ("on_time_rate", "cost_per_order_usd")} for arm in ARMS}
        on = paired(cell(stem, "with", "on_time_rate"), cell(stem, "without", "on_time_rate"), ("with", "without"),
                    lower_is_better=False, scale=100.0, digits=4)
        cost = paired(cell(stem, "with", "cost_per_order_usd"), cell(stem, "without", "cost_per_order_usd"),
                      ("with", "without"), lower_is_better=True, scale=100.0, relative=True, digits=4)
        diff[label] = {"on_time_points": on, "cost_pct": cost}
        rr = cell(stem, "with", "reroute")
        runs = sum(x["runs"] for x in rr)
        work[label] = {
            "runs_per_simulation": runs / len(rr),
            "open_per_run": round(sum(x["open"] for x in rr) / max(runs, 1), 3),
            "max_open": max(x["max_open"] for x in rr),
            "moved_per_run": round(sum(x["moved"] for x in rr) / max(runs, 1), 4),
            "moved_per_simulation": [x["moved"] for x in rr],
            "unplaced": sum(x["unplaced"] for x in rr),
            "seconds_per_simulation": interval([x["seconds"] for x in rr], 4),
            "all_optimal": all(x["all_optimal"] for x in rr),
            # seeds where every order and leg came out exactly as without re-routing
            "identical_outcomes": sum(a == b for a, b in zip(cell(stem, "with", "outcomes"), cell(stem, "without", "outcomes"))),
        }
        hi = cost["ci95"][1]
        target[label] = {
            "on_time_better": on["winner"] == "with",
            "cost_not_higher": hi is not None and hi <= 0.0,
            "met": on["winner"] == "with" and hi is not None and hi <= 0.0,
        }

    print(f"\n{STRATEGY}, {hours:g} h of arrivals, seeds {seeds}, re-route every {args.every:g} h and at disruption starts")
    print(f"{'scenario':17s} {'arm':8s} {'on-time %':>26s} {'cost/order $':>28s}")
    for label in scenarios:
        for arm in ARMS:
            o, c = kpis[label][arm]["on_time_rate"], kpis[label][arm]["cost_per_order_usd"]
            oci = "" if o["ci95"][0] is None else f"[{100 * o['ci95'][0]:.3f}, {100 * o['ci95'][1]:.3f}]"
            cci = "" if c["ci95"][0] is None else f"[{c['ci95'][0]:.4f}, {c['ci95'][1]:.4f}]"
            print(f"{label:17s} {arm:8s} {100 * o['mean']:8.3f} {oci:>17s} {c['mean']:9.4f} {cci:>18s}")
    print("\nwith minus without, paired per seed (95 % interval): on-time in points, cost per order in %")
    for label in scenarios:
        on, cost, w = diff[label]["on_time_points"], diff[label]["cost_pct"], work[label]
        print(f"{label:17s} on-time {on['mean']:+.4f} {on['ci95']} -> {on['winner']}; cost {cost['mean']:+.4f} % "
              f"{cost['ci95']} -> {cost['winner']}")
        print(f"{'':17s} {w['runs_per_simulation']:g} runs per simulation, {w['open_per_run']:g} orders open and "
              f"{w['moved_per_run']:g} moved per run (at most {w['max_open']} open), moved per simulation "
              f"{w['moved_per_simulation']}, {w['seconds_per_simulation']['mean']:.3f} s re-routing per simulation; "
              f"{w['identical_outcomes']}/{len(seeds)} seeds with every order's and leg's outcome identical to without")
    print("target (better on-time at no higher cost): " + ", ".join(
        f"{label} {'met' if t['met'] else 'not met'}" for label, t in target.items()))
    print(json.dumps({
        "bench": "reroute_sim",
        "strategy": STRATEGY,
        "hours": hours,
        "scenarios": scenarios,
        "seeds": seeds,
        "held_out_seeds": seeds,
        "tune_seeds": list(TUNE_SEEDS),
        "every_hours": args.every,
        "every_hours_tuned": EVERY_HOURS,
        "on_disruption": True,
        "kpis": kpis,
        "with_minus_without": diff,
        "reroute": work,
        "target": target,
        "no_clear_winner": NO_CLEAR_WINNER,
        "runs": len(jobs),
        "elapsed_s": round(elapsed, 1),
        "machine": machine,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
