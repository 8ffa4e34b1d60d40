"""A separate process that routes one-unit orders against a shared ledger (tests/test_concurrency.py).

Usage: python stock_worker.py LEDGER_URL SCENARIO_FILE WORKER_ID N_ORDERS RETRIES

Prints one JSON line: how many orders it routed, how many came back unfulfillable,
how many conflicts the ledger reported and whether any route() call raised.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

from router.engine import Router
from router.params import RouterOptions
from router.scenario import load_scenario

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)


def main() -> None:
    url, scenario, worker, n, retries = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    router = Router(
        load_scenario(scenario), ledger=url, clock=lambda: T0, options=RouterOptions(reserve_retries=retries)
    )
    routed = unfilled = errors = 0
    for i in range(n):
        order = {
            "order_id": f"w{worker}-{i}",
            "customer": {"customer_id": f"c{i}"},
            "destination": {"region": ("north", "south")[i % 2]},
            "lines": [{"sku": "SKU-1", "qty": 1}],
            "created_at": T0.isoformat(),
        }
        try:
            d = router.route(order)
        except Exception as exc:  # noqa: BLE001 - counted: the test requires none
            errors += 1
            print(f"route raised: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if d.status == "routed":
            routed += 1
        else:
            unfilled += 1
    print(json.dumps({"routed": routed, "unfilled": unfilled, "errors": errors, "conflicts": router.reserve_conflicts}))
    router.close()


if __name__ == "__main__":
    main()
