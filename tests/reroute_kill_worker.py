"""A separate process that applies one large re-route to a ledger, for the kill test (tests/test_order_states.py).

Usage: python reroute_kill_worker.py LEDGER_URL N_ORDERS

The ledger must hold what :func:`seed` wrote. Prints ``started`` just before it calls
``apply_reroute`` (one transaction moving every order from ``WH-<k>`` to ``ST-<k>``), then
``done <seconds>`` once it returned. The test kills it in between.
"""

from __future__ import annotations

import sys
import time

from router.ledger import SqlLedger, open_ledger

POOL = "kill"
SKUS = [f"SKU-{k}" for k in range(10)]
T0 = "2026-12-02T09:00:00+00:00"
T1 = "2026-12-02T10:00:00+00:00"


def record(decision_id: str, order_id: str, node: str, created_at: str) -> dict:
    """A decision record with a plan of two legs and some bulk, as real records have."""
    return {
        "decision_id": decision_id,
        "order_id": order_id,
        "created_at": created_at,
        "strategy": {"name": "optimizer", "version": "1"},
        "status": "routed",
        "chosen": {"legs": [{"node_id": node, "carrier": "parcel", "service": "ground"}]},
        "notes": [f"{order_id} candidate {c} scored {c * 1.25:.2f}" for c in range(40)],
    }


def rows(i: int, node_prefix: str) -> list[tuple[str, str, int]]:
    """Order ``i`` holds 1 of one SKU and 2 of the next, at node ``<prefix>-<i % 2>``."""
    node = f"{node_prefix}-{i % 2}"
    return [(node, SKUS[i % 10], 1), (node, SKUS[(i + 1) % 10], 2)]


def seed(ledger: SqlLedger, n: int) -> None:
    """Stock for every cell and ``n`` routed orders ``o<i>`` held by decisions ``d<i>`` at the WH nodes."""
    cells = {(f"{p}-{k}", sku): 3 * n for p in ("WH", "ST") for k in (0, 1) for sku in SKUS}
    ledger.open_stock(POOL, cells)
    ledger.append_decisions(
        [(record(f"d{i}", f"o{i}", f"WH-{i % 2}", T0), rows(i, "WH")) for i in range(n)], pool=POOL
    )


def moves(n: int) -> list[tuple[str, dict, list, list]]:
    """Every order from its WH node to the ST node of the same number, under decision ``r<i>``."""
    return [(f"d{i}", record(f"r{i}", f"o{i}", f"ST-{i % 2}", T1), rows(i, "WH"), rows(i, "ST")) for i in range(n)]


def main() -> None:
    url, n = sys.argv[1], int(sys.argv[2])
    planned = moves(n)
    with open_ledger(url, create=False) as ledger:
        print("started", flush=True)
        began = time.perf_counter()
        ledger.apply_reroute(POOL, planned, created_at=T1)
        print(f"done {time.perf_counter() - began:.3f}", flush=True)


if __name__ == "__main__":
    main()
