"""The peer's single-order case, side by side: our route() plan vs the peer's published plan.

Both plans are priced with the same parcel accounting (billable weight = max(actual,
dim factor x volume), weight-tier flat rates, handling per carton of volume, an unused
node-carrier pair costs nothing). Reads ../shared/data/nextmv_order_fulfillment in place.

    python benchmarks/nextmv.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the case's mapping onto our model lives with the tests

import nextmv_case as nc  # noqa: E402
from protocol import machine_facts  # noqa: E402  (benchmarks/protocol)

from router import Router  # noqa: E402
from router.scenario import parse_scenario  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repetition instead of 20")
    args = ap.parse_args()
    if not nc.data_available():
        print(json.dumps({"bench": "nextmv", "skipped": "../shared/data/nextmv_order_fulfillment is absent",
                          "machine": machine_facts()}))
        return
    sc = parse_scenario(nc.nextmv_scenario_dict())
    order = nc.nextmv_order()
    times = []
    for _ in range(1 if args.quick else 20):
        router = Router(sc, ledger=None, clock=lambda: order.created_at)  # decided when placed
        t0 = time.perf_counter()
        d = router.route(order)
        times.append((time.perf_counter() - t0) * 1000.0)
    delivery = sum(leg.shipping_cost_usd for leg in d.plan.legs)
    handling = sum(leg.handling_cost_usd for leg in d.plan.legs)
    peer_delivery, peer_handling = nc.cost_parts(nc.nextmv_problem(), nc.peer_plan_units())
    print(f"{'':12}{'ours':>10}{'peer':>10}")
    print(f"{'delivery':12}{delivery:10.2f}{peer_delivery:10.2f}")
    print(f"{'handling':12}{handling:10.2f}{peer_handling:10.2f}")
    print(f"{'total':12}{d.plan.cost_usd:10.2f}{peer_delivery + peer_handling:10.2f}")
    print(f"{'shipments':12}{len(d.plan.legs):10d}{int((nc.peer_plan_units().sum(axis=1) > 0).sum()):10d}")
    times.sort()
    print(
        json.dumps(
            {
                "bench": "nextmv",
                "ours_usd": round(d.plan.cost_usd, 2),
                "peer_plan_usd": round(peer_delivery + peer_handling, 2),
                "peer_reported_usd": nc.peer_reported().get("value"),
                "saving_pct": round(100 * (1 - d.plan.cost_usd / (peer_delivery + peer_handling)), 1),
                "route_ms_median": round(times[len(times) // 2], 2),
                "solver": d.record["solver"]["name"],
                "repeats": len(times),
                "machine": machine_facts(),
            }
        )
    )


if __name__ == "__main__":
    main()
