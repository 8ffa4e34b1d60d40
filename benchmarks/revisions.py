"""This checkout against an earlier revision, side by side in one run: route() latency and simulation speed.

A refactoring must not cost speed. This script checks out ``--base`` (default: the
commit before the core was reshaped) into a temporary git worktree and times the
same work with both code bases, alternating them round by round so that the
machine's noise falls on both alike:

* ``route()`` latency, optimizer, no ledger, full rationale (``explain=True``), on
  ``national`` and ``us_jasin_sinha``: the same seeded order stream, each order
  decided at its own arrival time, the stream's clock, queues and daily lane
  capacity moved between calls (untimed), the first 200 calls untimed;
* simulation speed: ``simulate(national, optimizer, seed=1)`` over the first
  ``--sim-hours`` hours, orders per second of routing + world (the simulator's own
  timers, order generation excluded).

Each measurement runs in a fresh process with ``PYTHONPATH`` set to the code base
under test. Reported: the median over rounds of each figure and the ratio new/old
(below 1 is faster). Ends with ONE JSON line.

    python benchmarks/revisions.py --quick        # 1 round, 1,500 orders, 3 simulated hours
    python benchmarks/revisions.py                # 5 rounds, 6,000 orders, 12 simulated hours
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from protocol import machine_facts  # noqa: E402  (benchmarks/protocol)

# The last commit before the core was reshaped (engine package, legs, rules, splits).
DEFAULT_BASE = "cc809b8"

# Runs inside the measured code base: only APIs that both revisions have.
_PROBE = r'''
import json, sys, time
from datetime import datetime
import numpy as np
from router.demand import generate_orders
from router.scenario import load_scenario
from router.engine import Router

kind, path, n, warmup = sys.argv[1], sys.argv[2], int(float(sys.argv[3])), 200
sc = load_scenario(path)
if kind == "latency":
    orders = generate_orders(sc, n + warmup, seed=1)
    class Clock:
        now = sc.start
        def __call__(self):
            return self.now
    clock = Clock()
    r = Router(sc, ledger=None, clock=clock)
    lat, last, day = [], 0.0, 0
    for i, o in enumerate(orders):
        hours = (o.created_at - sc.start).total_seconds() / 3600.0
        if hours > last:
            r.state.drain(hours - last)
            last = hours
        if int(hours // 24) != day:
            day = int(hours // 24)
            r.state.new_day()
        r.state.set_clock_hours(hours)
        clock.now = o.created_at
        t0 = time.perf_counter_ns()
        r.route(o)
        dt = time.perf_counter_ns() - t0
        if i >= warmup:
            lat.append(dt / 1e6)
    print(json.dumps({"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}))
else:
    from router.simulation import simulate
    res = simulate(sc, "optimizer", seed=1, horizon_hours=float(sys.argv[3]))
    t = res.timings
    busy = t["routing_s"] + t["world_s"]
    print(json.dumps({"orders_per_s": res.n_orders / busy, "orders": res.n_orders}))
'''


def _measure(src: Path, kind: str, scenario: str, n: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, kind, str(ROOT / "scenarios" / f"{scenario}.yaml"), str(n)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"measuring {kind} on {src} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 round, 1,500 orders, 3 simulated hours (CI smoke)")
    ap.add_argument("--base", default=DEFAULT_BASE, help=f"the revision to compare with (default {DEFAULT_BASE})")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--orders", type=int, default=None)
    ap.add_argument("--sim-hours", type=float, default=None)
    args = ap.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    n = args.orders or (1500 if args.quick else 6000)
    sim_hours = args.sim_hours or (3.0 if args.quick else 12.0)

    tmp = Path(tempfile.mkdtemp(prefix="router-base-"))
    base_dir = tmp / "base"
    made = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_dir), args.base],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        print(json.dumps({"bench": "revisions", "skipped": f"cannot check out {args.base}: {made.stderr.strip()}"}))
        return 0
    sides = {"old": base_dir / "src", "new": ROOT / "src"}
    figures: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    try:
        for r in range(rounds):
            for side in (("old", "new") if r % 2 == 0 else ("new", "old")):
                src = sides[side]
                for scenario in ("national", "us_jasin_sinha"):
                    got = _measure(src, "latency", scenario, n)
                    for k, v in got.items():
                        figures[side].setdefault(f"{scenario}_{k}", []).append(v)
                got = _measure(src, "simulation", "national", sim_hours)
                figures[side].setdefault("sim_orders_per_s", []).append(got["orders_per_s"])
                print(f"round {r + 1}/{rounds} {side}: done", file=sys.stderr)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_dir)], capture_output=True)

    med = {side: {k: statistics.median(v) for k, v in figs.items()} for side, figs in figures.items()}
    print(f"{'figure':<34}{'old':>12}{'new':>12}{'new/old':>10}")
    ratios = {}
    for k in med["new"]:
        ratios[k] = med["new"][k] / med["old"][k]
        print(f"{k:<34}{med['old'][k]:>12.4f}{med['new'][k]:>12.4f}{ratios[k]:>10.3f}")
    summary = {
        "bench": "revisions",
        "base": args.base,
        "rounds": rounds,
        "orders": n,
        "sim_hours": sim_hours,
        "old": {k: round(v, 4) for k, v in med["old"].items()},
        "new": {k: round(v, 4) for k, v in med["new"].items()},
        "new_over_old": {k: round(v, 3) for k, v in ratios.items()},
        "machine": machine_facts(),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
