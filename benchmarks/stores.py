"""Ship-from-store scale: route() on 12, 500 and 2,000 nodes side by side, and the pool against an uncapped search.

Networks: ``national`` (12 nodes), ``national_stores`` (500: national plus 488
ship-from-store nodes, each holding 40 % of the SKUs at 2-10 units; total stock
unchanged) and ``national_stores_2000`` (the same builder at 2,000 nodes, built in
memory by ``scripts/build_scenarios.py``). Each network routes the same kind of
stream (``generate_orders(scenario, N, seed=1)``) with the optimizer on the analytic
late risk (no delay-risk model is trained for the store networks, so national uses
the analytic risk too: like for like), no ledger, in a fresh process per run (its
peak RSS is the run's peak memory), under ``benchmarks/latency.py``'s stream upkeep
(clock, queue drain, midnight lane reset, restock; never timed) and its warm-up of
200 untimed routes. Runs alternate between the networks (``--repeats`` rounds);
medians over rounds are reported.

Per run: p50, p99 and max of route() in ms, routes over 50 ms, orders reported
unfulfillable, and of those the ones the open network could have covered (a line's
units at open nodes together at least the order's: zero is the bar), cost per order
and the estimated on-time rate (1 - mean late risk of the chosen plans).

Uncapped, paired: the first ``--uncapped-orders`` orders of the 500-node stream are
routed with the pool, and each is decided once more on the same inputs (its record's
view and context, reserving nothing) with ``max_candidate_nodes = 500``: every node
holding one of the order's lines is in the pool (the search the pool approximates;
it takes up to seconds per order). Reported: cost per order in % and estimated on-time
in points, pooled minus uncapped, with 95 % intervals over orders, and how many
orders got another plan. Paired on identical state because two separately routed
streams drift apart in stock within a few hundred orders, which moves cost per order
by tenths of a percent either way (the first version of this benchmark did that).

Targets (issue 13): at 500 nodes p50 <= 2x and p99 <= 5x the 12-node figures, no
route over 50 ms, none unfulfillable that could be covered; pooled within 0.2 % cost
and 0.2 points on-time of uncapped; 2,000 nodes p99 < 10x the 12-node p99.

    python benchmarks/stores.py            # 3,000 timed orders per run, 3 rounds, uncapped on 800
    python benchmarks/stores.py --quick    # 400 timed orders, 1 round, uncapped on 150
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = ("national", "national_stores", "national_stores_2000")


def load(name: str):
    from router.scenario import load_scenario, parse_scenario

    if name == "national_stores_2000":
        import yaml

        sys.path.insert(0, str(ROOT / "scripts"))
        from build_scenarios import build_national_stores

        return parse_scenario(yaml.safe_load(build_national_stores(2000).text), source="national_stores_2000")
    return load_scenario(ROOT / "scenarios" / f"{name}.yaml")


def one_run(name: str, orders_n: int, cap: int | None, paired_cap: int | None = None) -> dict:
    """Route the stream in this process; the figures of one run.

    ``paired_cap``: after each timed route (outside the timer), decide the same order
    once more on the same inputs (the stored view and context) with
    ``max_candidate_nodes = paired_cap``, reserving nothing, and keep both plans' cost and
    late risk: the pool against the uncapped search on identical state.
    """
    from latency import WARMUP, Clock, advance_stream, restock

    from router.demand import generate_orders
    from router.engine import Router
    from router.rules import open_nodes

    t_load = time.perf_counter()
    scenario = load(name)
    load_s = time.perf_counter() - t_load
    params = scenario.params if cap is None else scenario.params.model_copy(update={"max_candidate_nodes": cap})
    orders = generate_orders(scenario, orders_n + WARMUP, seed=1)
    clock = Clock(scenario.start)
    router = Router(scenario, ledger=None, clock=clock, risk_model=None, params=params)
    lat, cost, risk = [], [], []
    pairs: list[tuple[float, float, float, float]] = []  # pooled cost, uncapped cost, pooled risk, uncapped risk
    wide = None if paired_cap is None else params.model_copy(update={"max_candidate_nodes": paired_cap})
    unfulfillable = coverable = restocks = 0
    last_hours, day = 0.0, 0
    for i, order in enumerate(orders):
        last_hours, day = advance_stream(router, clock, order.created_at, last_hours, day)
        t0 = time.perf_counter_ns()
        d = router.route(order)
        dt = time.perf_counter_ns() - t0
        if i < WARMUP:
            continue
        lat.append(dt / 1e6)
        if d.status == "unfulfillable":
            unfulfillable += 1
            view = d.record["inputs"]
            if view:
                from router.engine.router import decision_inputs

                inp = decision_inputs(d.record)
                held = np.maximum(inp.view.avail, 0)[open_nodes(router.network, inp.view, inp.params)].sum(axis=0)
                coverable += bool((held >= inp.context.qty).all())
        else:
            cost.append(d.record["chosen"]["cost_usd"])
            risk.append(d.record["chosen"]["late_risk"])
            if wide is not None:
                from router.engine.router import decision_inputs

                inp = decision_inputs(d.record)
                out = router.decide(inp.view, inp.context, "optimizer", params=wide, seed=inp.seed, risk=None)
                if len(out.ranking):
                    plan = router.records.plan_dict(out, inp.context, int(out.ranking[0]))
                    pairs.append((cost[-1], plan["cost_usd"], risk[-1], plan["late_risk"]))
        if (i + 1) % 250 == 0 and unfulfillable > 0.05 * (i + 1 - WARMUP):
            restock(router)
            restocks += 1
    ms = np.asarray(lat)
    return {
        "network": name,
        "nodes": router.network.n_nodes,
        "cap": params.max_candidate_nodes,
        "timed": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "max_ms": round(float(ms.max()), 3),
        "over_50ms": int((ms > 50.0).sum()),
        "unfulfillable": unfulfillable,
        "unfulfillable_but_coverable": coverable,
        "cost_per_order": float(np.mean(cost)),
        "est_on_time": float(1.0 - np.mean(risk)),
        "restocks": restocks,
        "scenario_load_s": round(load_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "pairs": pairs,
    }


def spawn(name: str, orders_n: int, cap: int | None = None, paired_cap: int | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--orders", str(orders_n)]
    if cap is not None:
        cmd += ["--cap", str(cap)]
    if paired_cap is not None:
        cmd += ["--paired-cap", str(paired_cap)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"stores: the {name} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="400 timed orders, 1 round, uncapped on 150 orders")
    ap.add_argument("--orders", type=int, default=None, help="timed orders per run (default 3,000)")
    ap.add_argument("--repeats", type=int, default=None, help="rounds, networks alternated (default 3)")
    ap.add_argument("--uncapped-orders", type=int, default=None, help="orders of the uncapped comparison (default 800)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process: one run, one JSON line
    ap.add_argument("--cap", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--paired-cap", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        print(json.dumps(one_run(args.one, args.orders, args.cap, args.paired_cap)))
        return

    from protocol import machine_facts  # benchmarks/protocol

    n = args.orders or (400 if args.quick else 3000)
    repeats = args.repeats or (1 if args.quick else 3)
    n_uncapped = args.uncapped_orders or (150 if args.quick else 800)
    t0 = time.perf_counter()
    runs: dict[str, list[dict]] = {k: [] for k in NETWORKS}
    for r in range(repeats):
        for name in NETWORKS:
            res = spawn(name, n)
            runs[name].append(res)
            print(
                f"round {r + 1} {name:22s} {res['nodes']:5d} nodes  p50 {res['p50_ms']:.3f} ms  p99 {res['p99_ms']:.3f} ms  "
                f"max {res['max_ms']:.1f} ms  >50ms {res['over_50ms']}  unfulfillable {res['unfulfillable']} "
                f"(coverable {res['unfulfillable_but_coverable']})  peak RSS {res['peak_rss_mb']:.0f} MB",
                file=sys.stderr,
                flush=True,
            )
    med = {
        name: {k: statistics.median(r[k] for r in rs) for k in ("p50_ms", "p99_ms", "max_ms", "peak_rss_mb")}
        for name, rs in runs.items()
    }
    for name, rs in runs.items():
        med[name].update(
            over_50ms=max(r["over_50ms"] for r in rs),
            unfulfillable=rs[0]["unfulfillable"],
            unfulfillable_but_coverable=max(r["unfulfillable_but_coverable"] for r in rs),
            nodes=rs[0]["nodes"],
        )
    base = med["national"]
    ratios = {
        name: {"p50_x": round(m["p50_ms"] / base["p50_ms"], 2), "p99_x": round(m["p99_ms"] / base["p99_ms"], 2)}
        for name, m in med.items()
    }
    for rs in runs.values():
        for r in rs:
            r.pop("pairs", None)
    # Paired: every order of the 500-node stream decided by the pool (routed) and by the
    # uncapped search on the same inputs. Two separately routed streams drift apart in
    # stock after a few hundred orders, which moves cost per order by tenths of a percent
    # either way and would hide the pool's own effect.
    paired = spawn("national_stores", n_uncapped, paired_cap=500)
    pc, uc, pr, ur = (np.asarray(c, dtype=float) for c in zip(*paired.pop("pairs")))
    cost_pct = float(100.0 * (pc.mean() - uc.mean()) / uc.mean())
    on_time_pts = float(100.0 * (ur.mean() - pr.mean()))  # on-time = 1 - risk
    half_cost = float(1.96 * 100.0 * (pc - uc).std(ddof=1) / np.sqrt(len(pc)) / uc.mean())
    half_ot = float(1.96 * 100.0 * (ur - pr).std(ddof=1) / np.sqrt(len(pc)))
    differ = int(((np.abs(pc - uc) > 1e-9) | (np.abs(pr - ur) > 1e-12)).sum())
    print(
        f"pooled vs uncapped on the same inputs, {len(pc)} orders of the 500-node stream: cost {cost_pct:+.3f} % "
        f"[{cost_pct - half_cost:+.3f}, {cost_pct + half_cost:+.3f}], estimated on-time {on_time_pts:+.3f} points "
        f"[{on_time_pts - half_ot:+.3f}, {on_time_pts + half_ot:+.3f}]; {differ} orders with another plan",
        file=sys.stderr,
    )
    s500, s2000 = ratios["national_stores"], ratios["national_stores_2000"]
    targets = {
        "p50_500_within_2x": s500["p50_x"] <= 2.0,
        "p99_500_within_5x": s500["p99_x"] <= 5.0,
        "none_over_50ms_500": med["national_stores"]["over_50ms"] == 0,
        "none_coverable_unfulfillable": all(m["unfulfillable_but_coverable"] == 0 for m in med.values()),
        "cost_within_0.2pct_of_uncapped": bool(abs(cost_pct) <= 0.2),
        "on_time_within_0.2pts_of_uncapped": bool(abs(on_time_pts) <= 0.2),
        "p99_2000_under_10x": s2000["p99_x"] < 10.0,
    }
    line = {
        "bench": "stores",
        "orders": n,
        "repeats": repeats,
        "medians": med,
        "ratios_to_12_nodes": ratios,
        "runs": runs,
        "uncapped": {
            "orders": len(pc),
            "paired": "same inputs per order",
            "pooled_cost_per_order": round(float(pc.mean()), 4),
            "uncapped_cost_per_order": round(float(uc.mean()), 4),
            "pooled_est_on_time": round(float(1.0 - pr.mean()), 6),
            "uncapped_est_on_time": round(float(1.0 - ur.mean()), 6),
            "cost_pct": round(cost_pct, 4),
            "cost_pct_ci95": [round(cost_pct - half_cost, 4), round(cost_pct + half_cost, 4)],
            "est_on_time_points": round(on_time_pts, 4),
            "est_on_time_points_ci95": [round(on_time_pts - half_ot, 4), round(on_time_pts + half_ot, 4)],
            "orders_with_another_plan": differ,
            "run": paired,
        },
        "targets": targets,
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "machine": machine_facts(),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
