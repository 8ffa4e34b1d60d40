"""No oversell across processes: the ledger's stock table is the reservation truth.

Several processes, each with its own Router (and so its own in-memory cache of the
stock), route one-unit orders of a scarce SKU against one ledger. Each cache
believes all the stock is there; only the ledger's conditional update in the
decision's transaction knows better. Afterwards: reserved <= on_hand in every
cell, the reservations equal the recorded decisions, every call returned a
recorded decision, and exactly the available units were routed: none oversold,
none lost to a conflict.

Remove the ``on_hand - reserved >= qty`` condition from the ledger's reserve
statement and these tests fail: the table's CHECK constraint then refuses the
write and route() raises (with the constraint removed too, stock is oversold).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import TINY, pg_schema_url

from router.engine import Router
from router.ledger import open_ledger
from router.scenario import load_scenario

WORKER = Path(__file__).parent / "stock_worker.py"
SCENARIO = TINY / "two_warehouses_one_carrier.yaml"  # SKU-1: 10 units at WH-A, 10 at WH-B
STOCK = 20
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)


def _run_workers(url: str, processes: int, orders: int, retries: int = 3) -> list[dict]:
    # The pool is seeded once before the workers start, as a deployment's first router would.
    Router(load_scenario(SCENARIO), ledger=url, clock=lambda: T0).close()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, str(SCENARIO), str(w), str(orders), str(retries)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(processes)
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def _check_ledger(url: str, results: list[dict], processes: int, orders: int) -> None:
    assert all(r["errors"] == 0 for r in results), results  # route() never raised
    routed = sum(r["routed"] for r in results)
    assert routed == STOCK  # every unit sold once: none oversold, none lost to a conflict
    assert sum(r["unfilled"] for r in results) == processes * orders - STOCK
    with open_ledger(url, create=False) as led:
        assert led.count_decisions() == processes * orders  # every call recorded
        levels = led.stock_levels("two_warehouses_one_carrier")
        for (node, sku), (on_hand, reserved) in levels.items():
            assert 0 <= reserved <= on_hand, (node, sku, on_hand, reserved)
        assert levels[("WH-A", "SKU-1")] == (10, 10) and levels[("WH-B", "SKU-1")] == (10, 10)
        # the stock table's reservations are the sum of the decisions' reservation rows
        totals = led.reserved_totals()
        assert {k: v for k, v in totals.items()} == {("WH-A", "SKU-1"): 10, ("WH-B", "SKU-1"): 10}
        assert led.verify().ok


@pytest.mark.postgres
@pytest.mark.slow
def test_four_processes_on_postgresql_never_oversell():
    """4 processes x 500 route calls on PostgreSQL competing for 20 units."""
    with pg_schema_url() as url:
        results = _run_workers(url, processes=4, orders=500)
        _check_ledger(url, results, 4, 500)
        conflicts = sum(r["conflicts"] for r in results)
        print(f"conflict retries: {conflicts}")  # shown with -s; the figure is in the docs


@pytest.mark.slow
def test_two_processes_on_sqlite_never_oversell(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    results = _run_workers(url, processes=2, orders=150)
    _check_ledger(url, results, 2, 150)


def test_a_stale_cache_is_corrected_by_the_ledger_and_the_decision_taken_again(tmp_path):
    """Router B's cache believes WH-A still has stock that router A took: the ledger refuses,
    B refreshes and routes from WH-B; the record counts the retry."""
    url = f"sqlite:///{tmp_path / 'two.sqlite'}"
    sc = load_scenario(SCENARIO)
    a = Router(sc, ledger=url, clock=lambda: T0)
    b = Router(sc, ledger=url, clock=lambda: T0)  # both caches: 10 + 10 of SKU-1
    order = {
        "customer": {"customer_id": "c"},
        "destination": {"region": "north"},  # WH-A is nearer
        "lines": [{"sku": "SKU-1", "qty": 10}],
        "created_at": T0.isoformat(),
    }
    da = a.route({**order, "order_id": "a"})
    assert da.plan.legs[0].node_id == "WH-A"
    db = b.route({**order, "order_id": "b"})
    assert db.status == "routed" and db.plan.legs[0].node_id == "WH-B"
    assert b.reserve_conflicts == 1 and db.record["state"]["reserve_retries"] == 1
    assert int(b.state.reserved[0, 0]) == 10  # B's cache now knows A's reservation
    dc = b.route({**order, "order_id": "c", "lines": [{"sku": "SKU-1", "qty": 1}]})
    assert dc.status == "unfulfillable"
    assert a.ledger.stock_levels("two_warehouses_one_carrier")[("WH-A", "SKU-1")] == (10, 10)
    a.close()
    b.close()


def test_threads_of_one_router_never_oversell(tmp_path):
    r = Router(load_scenario(SCENARIO), ledger=f"sqlite:///{tmp_path / 't.sqlite'}", clock=lambda: T0)
    results: list[str] = []

    def worker(t: int) -> None:
        for i in range(10):
            d = r.route(
                {
                    "order_id": f"t{t}-{i}",
                    "customer": {"customer_id": "c"},
                    "destination": {"region": "mid"},
                    "lines": [{"sku": "SKU-1", "qty": 1}],
                    "created_at": T0.isoformat(),
                }
            )
            results.append(d.status)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("routed") == STOCK and len(results) == 80
    assert r.ledger.stock_levels("two_warehouses_one_carrier")[("WH-A", "SKU-1")] == (10, 10)
    r.close()


def test_stock_events_go_through_the_ledger_first(tmp_path):
    """A receipt, a count and a shipment change the ledger's stock; one it refuses changes nothing."""
    from router.errors import InvalidEventError

    url = f"sqlite:///{tmp_path / 'e.sqlite'}"
    r = Router(load_scenario(SCENARIO), ledger=url, clock=lambda: T0)
    pool = "two_warehouses_one_carrier"
    r.route(
        {
            "order_id": "x",
            "customer": {"customer_id": "c"},
            "destination": {"region": "north"},
            "lines": [{"sku": "SKU-1", "qty": 4}],
            "created_at": T0.isoformat(),
        }
    )
    assert r.ledger.stock_levels(pool)[("WH-A", "SKU-1")] == (10, 4)
    r.state.apply({"type": "stock_adjust", "node": "WH-A", "sku": "SKU-1", "delta": 5})
    assert r.ledger.stock_levels(pool)[("WH-A", "SKU-1")] == (15, 4)
    r.state.apply({"type": "shipped", "node": "WH-A", "sku": "SKU-1", "qty": 3})
    assert r.ledger.stock_levels(pool)[("WH-A", "SKU-1")] == (12, 1)
    # another router (another process) reserves 5 more: this router's cache does not know it
    other = Router(load_scenario(SCENARIO), ledger=url, clock=lambda: T0)
    other.route(
        {
            "order_id": "y",
            "customer": {"customer_id": "c"},
            "destination": {"region": "north"},
            "lines": [{"sku": "SKU-1", "qty": 5}],
            "created_at": T0.isoformat(),
        }
    )
    assert r.ledger.stock_levels(pool)[("WH-A", "SKU-1")] == (12, 6)
    assert int(r.state.reserved[0, 0]) == 1  # the stale cache
    with pytest.raises(InvalidEventError, match="refused by the ledger's stock .* on hand 12, reserved 6"):
        r.state.apply({"type": "stock_set", "node": "WH-A", "sku": "SKU-1", "on_hand": 3})
    assert r.ledger.stock_levels(pool)[("WH-A", "SKU-1")] == (12, 6)
    assert int(r.state.on_hand[0, 0]) == 12  # nothing changed here either
    other.close()
    r.close()
