"""Memory over a long run: does one router's RSS stay flat while it routes a million orders?

One process, one Router on ``national`` with the defaults (the delay-risk champion,
full records, no ledger), fed the scenario's order stream under
``benchmarks/latency.py``'s stream upkeep (clock, queue drain, midnight lane reset,
restock when stock runs low; the stream is drawn in chunks of 5,000 orders with
successive seeds, so it never has to be held whole). The resident set size (RSS,
``/proc/self/statm``) is read after 10,000 orders and then every 100,000, with the
count of objects the garbage collector tracks. Beside it, side by side in the same
process: what the first 10,000 orders cost (RSS before the first order against after
10,000: imports, compiled kernels, caches filling up).

Target (issue 13): RSS after 1M orders within 50 MB of RSS after 10,000.

    python benchmarks/memory.py            # 1,000,000 orders (about 30 minutes on 2 cores)
    python benchmarks/memory.py --quick    # 30,000 orders
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from latency import Clock, advance_stream, restock  # noqa: E402  (benchmarks/latency.py)
from protocol import machine_facts  # noqa: E402  (benchmarks/protocol)

from router.demand import generate_orders  # noqa: E402
from router.engine import Router  # noqa: E402
from router.scenario import load_scenario  # noqa: E402

# Orders are drawn 5,000 at a time. Drawn 50,000 at a time (as this benchmark first did),
# each chunk's ~150 MB of order objects was freed while the router's own allocations sat
# between them, and the process's heap ratcheted up by ~20 MB at every other chunk: the
# stream source's fragmentation, not the router's, yet it was most of the "growth".
CHUNK = 5_000
TARGET_MB = 50.0


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="30,000 orders")
    ap.add_argument("--orders", type=int, default=None, help="orders to route (default 1,000,000)")
    ap.add_argument("--scenario", default="national")
    args = ap.parse_args()
    total = args.orders or (30_000 if args.quick else 1_000_000)
    scenario = load_scenario(ROOT / "scenarios" / f"{args.scenario}.yaml")
    clock = Clock(scenario.start)
    start_rss = rss_mb()
    router = Router(scenario, ledger=None, clock=clock)
    marks: list[dict] = []
    routed = restocks = 0
    last_hours, day = 0.0, 0
    offset = timedelta(0)
    t0 = time.perf_counter()
    seed = 1
    while routed < total:
        orders = generate_orders(scenario, min(CHUNK, total - routed), seed=seed)
        span = orders[-1].created_at - scenario.start
        unfulfilled = 0
        for order in orders:
            # successive chunks continue the clock where the last one ended
            order = order.model_copy(
                update={"order_id": f"{seed}-{order.order_id}", "created_at": order.created_at + offset}
            )
            last_hours, day = advance_stream(router, clock, order.created_at, last_hours, day)
            d = router.route(order)
            routed += 1
            unfulfilled += d.status == "unfulfillable"
            if routed % 250 == 0:
                if unfulfilled > 12:
                    restock(router)
                    restocks += 1
                unfulfilled = 0
            if routed == 10_000 or routed % 100_000 == 0 or routed == total:
                gc.collect()
                marks.append(
                    {"orders": routed, "rss_mb": round(rss_mb(), 1), "gc_objects": len(gc.get_objects()),
                     "elapsed_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
                )
                print(f"{routed:>9,} orders  RSS {marks[-1]['rss_mb']:.1f} MB  {marks[-1]['gc_objects']:,} objects  "
                      f"{marks[-1]['elapsed_s']:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
        offset += span + timedelta(minutes=1)
        seed += 1
    at_10k = next(m for m in marks if m["orders"] == 10_000) if total >= 10_000 else marks[0]
    growth = marks[-1]["rss_mb"] - at_10k["rss_mb"]
    print(
        json.dumps(
            {
                "bench": "memory",
                "scenario": args.scenario,
                "orders": total,
                "rss_before_first_order_mb": round(start_rss, 1),
                "rss_after_10k_mb": at_10k["rss_mb"],
                "rss_end_mb": marks[-1]["rss_mb"],
                "growth_after_10k_mb": round(growth, 1),
                "warm_up_growth_mb": round(at_10k["rss_mb"] - start_rss, 1),
                "target_mb": TARGET_MB,
                "target_met": growth <= TARGET_MB,
                "marks": marks,
                "restocks": restocks,
                "machine": machine_facts(),
            }
        )
    )


if __name__ == "__main__":
    main()
