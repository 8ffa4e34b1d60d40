"""route(): exact, hand-computed costs and ETAs on the tiny scenarios, strategies, exclusions."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from conftest import T0, make_order

from router.state import NodeStatus, WeatherUpdate

MILES_PER_DEGREE = 3958.8 * math.pi / 180.0  # along a meridian: 69.094 mi


def ground_hours(miles: float) -> float:
    # tiny scenarios: 24 x max(1, 1 + miles / 500)
    return 24.0 * max(1.0, 1.0 + miles / 500.0)


def test_single_node_plan_has_the_hand_computed_cost_and_eta(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    d = r.route(make_order("o1", [("SKU-1", 2)], dest={"region": "north"}))
    assert d.status == "routed"
    [leg] = d.plan.legs
    assert leg.node_id == "WH-A"  # 1 degree away, WH-B is 8
    # $5 per shipment + $1 x 2 units, no handling
    assert d.plan.cost_usd == pytest.approx(7.0, abs=1e-9)
    assert leg.shipping_cost_usd == pytest.approx(7.0) and leg.handling_cost_usd == 0.0
    # decided at 00:00 UTC with an empty queue: wait for the 20:00 cut-off, then ground transit
    assert leg.distance_miles == pytest.approx(MILES_PER_DEGREE, abs=1e-3)
    assert d.plan.eta_hours == pytest.approx(20.0 + ground_hours(MILES_PER_DEGREE), abs=1e-5)
    assert d.plan.promise_hours == pytest.approx(120.0)
    assert d.plan.late_risk == 0.0  # no spread and 72 h of slack


def test_the_only_node_with_the_sku_ships_and_the_other_is_excluded_with_its_reason(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    d = r.route(make_order("o2", [("SKU-2", 1)], dest={"region": "south"}))
    assert [leg.node_id for leg in d.plan.legs] == ["WH-A"]
    assert d.plan.cost_usd == pytest.approx(6.0)
    details = [e["detail"] for e in d.rationale["excluded"]]
    assert "WH-B: stock 0 of SKU-2 (need 1)" in details
    assert d.plan.eta_hours == pytest.approx(20.0 + ground_hours(8 * MILES_PER_DEGREE), abs=1e-4)


def test_split_plan_costs_two_shipments_and_pays_the_split_penalty(tiny_router):
    r = tiny_router("split_needed")
    d = r.route(make_order("o3", [("SKU-A", 1), ("SKU-B", 1)], dest={"region": "center"}))
    assert d.plan.kind == "split"
    assert sorted((leg.node_id, leg.lines[0].sku) for leg in d.plan.legs) == [("WH-A", "SKU-A"), ("WH-B", "SKU-B")]
    assert d.plan.cost_usd == pytest.approx(12.0)  # 2 x ($5 + $1)
    factors = {f["term"]: f for f in d.rationale["chosen"]["factors"]}
    assert factors["split"]["value"] == 1.0
    assert factors["split"]["contribution"] == pytest.approx(r.params.split_penalty_usd)
    assert factors["cost"]["contribution"] == pytest.approx(12.0)


def test_an_order_one_node_can_serve_is_not_split(tiny_router):
    r = tiny_router("split_needed")
    d = r.route(make_order("o4", [("SKU-A", 1), ("SKU-C", 2)], dest={"region": "center"}))
    assert d.plan.kind == "single" and d.plan.legs[0].node_id == "WH-A"
    assert d.plan.cost_usd == pytest.approx(8.0)  # $5 + 3 x $1


def test_no_feasible_plan_is_recorded_as_unfulfillable_and_reserves_nothing(tiny_router):
    from router.params import StrategyParams

    r = tiny_router("split_needed", params=StrategyParams(max_splits=1))
    d = r.route(make_order("o5", [("SKU-A", 1), ("SKU-B", 1)], dest={"region": "center"}))
    assert d.status == "unfulfillable" and d.plan is None
    assert "No plan" in d.sentence
    assert int(r.state.reserved.sum()) == 0
    assert r.ledger.get_decision(d.decision_id)["status"] == "unfulfillable"
    assert r.ledger.reservations_for(d.decision_id) == []


def test_reservations_follow_the_plan_and_stock_runs_out(tiny_router):
    r = tiny_router("split_needed")
    decisions = [r.route(make_order(f"o{i}", [("SKU-A", 2)], dest={"region": "center"})) for i in range(3)]
    # WH-A holds 5 SKU-A: two orders of 2 fit, the third cannot be served anywhere
    assert [d.status for d in decisions] == ["routed", "routed", "unfulfillable"]
    ia, ka = r.scenario.node_index["WH-A"], r.scenario.sku_index["SKU-A"]
    assert r.state.reserved[ia, ka] == 4
    assert r.ledger.reserved_totals() == {("WH-A", "SKU-A"): 4}
    assert "WH-A: stock 1 of SKU-A (need 2)" in [e["detail"] for e in decisions[2].rationale["excluded"]]


def test_quantity_larger_than_any_node_goes_to_the_split_solver(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    # 15 units of SKU-1: 10 at WH-A, 10 at WH-B; only a quantity split serves it
    d = r.route(make_order("o6", [("SKU-1", 15)], dest={"region": "mid"}))
    assert d.status == "routed" and d.plan.kind == "split"
    assert sum(leg.lines[0].qty for leg in d.plan.legs) == 15
    assert d.record["solver"]["name"].startswith("mathopt")
    assert d.plan.cost_usd == pytest.approx(2 * 5.0 + 15 * 1.0)
    assert d.record["candidates"][0]["source"] == "split_solver"


def test_closed_node_is_excluded_with_the_disruption_name(tiny_router):
    r = tiny_router("tiers_and_storm")
    r.state.set_clock_hours(1.0)
    d = r.route(make_order("o7", [("SKU-2", 1)], dest={"region": "south"}))
    assert all(leg.node_id != "WH-S" for leg in d.plan.legs)
    assert "WH-S: closed (WH-S power outage)" in [e["detail"] for e in d.rationale["excluded"]]
    r.state.set_clock_hours(25.0)  # the window ends at hour 24
    d2 = r.route(make_order("o8", [("SKU-2", 1)], dest={"region": "south"}), strategy="nearest")
    assert d2.plan.legs[0].node_id == "WH-S"


def test_live_events_close_a_node_and_a_storm_slows_transit(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    calm = r.route(make_order("a", [("SKU-1", 1)], dest={"region": "north"}), strategy="nearest")
    r.state.apply(WeatherUpdate(region="north", severity=1.0))
    stormy = r.route(make_order("b", [("SKU-1", 1)], dest={"region": "north"}), strategy="nearest")
    # weather severity 1 doubles transit; the wait for the cut-off is unchanged
    assert stormy.plan.eta_hours - 20.0 == pytest.approx(2 * (calm.plan.eta_hours - 20.0), abs=1e-4)
    r.state.apply(NodeStatus(node="WH-A", closed=True, reason="fire drill"))
    moved = r.route(make_order("c", [("SKU-1", 1)], dest={"region": "north"}), strategy="nearest")
    assert moved.plan.legs[0].node_id == "WH-B"
    assert "WH-A: fire drill" in [e["detail"] for e in moved.rationale["excluded"]]


def test_strategies_differ_where_they_should(tiny_router):
    r = tiny_router("tiers_and_storm")
    r.state.set_clock_hours(40.0)  # everything open, storm over
    order = make_order("t1", [("SKU-1", 1)], dest={"region": "mid"})
    near = r.route(order, strategy="nearest")
    cheap = r.route(order.model_copy(update={"order_id": "t2"}), strategy="cheapest")
    plus = r.route(make_order("t3", [("SKU-1", 1)], tier="plus", dest={"region": "mid"}), strategy="tier_rules")
    assert near.plan.legs[0].node_id == "ST-M"  # 0 miles away
    # cheapest: budget ground $4 + $0.5 + WH handling $1 = $5.50 beats the store's acme ground $5 + $1 + $2
    assert cheap.plan.cost_usd == pytest.approx(5.5)
    assert cheap.plan.legs[0].carrier_id == "budget" and cheap.plan.legs[0].service == "ground"
    # plus tier prefers WH-S by rule, whatever the distance
    assert plus.plan.legs[0].node_id == "WH-S"


def test_vip_promise_is_met_by_the_optimizer_with_a_faster_service(tiny_router):
    r = tiny_router("tiers_and_storm")
    r.state.set_clock_hours(40.0)
    order = make_order("v1", [("SKU-2", 1)], tier="vip", dest={"region": "north"}, promised_by=(T0 + timedelta(hours=40)).isoformat())
    cheap = r.route(order, strategy="cheapest")
    best = r.route(order.model_copy(update={"order_id": "v2"}), strategy="optimizer")
    assert cheap.plan.eta_hours > 40.0  # budget ground misses the promise
    assert best.plan.eta_hours <= 40.0
    assert best.plan.cost_usd > cheap.plan.cost_usd
    assert "late risk" in best.sentence


def test_route_batch_routes_in_order_and_sees_earlier_reservations(tiny_router):
    r = tiny_router("split_needed")
    ds = r.route_batch([make_order(f"b{i}", [("SKU-B", 2)], dest={"region": "center"}) for i in range(3)])
    assert [d.status for d in ds] == ["routed", "routed", "unfulfillable"]
    assert r.recorded == 3 and r.ledger.count_decisions() == 3


def test_service_level_restricts_the_options(tiny_router):
    r = tiny_router("tiers_and_storm")
    r.state.set_clock_hours(40.0)
    d = r.route(make_order("s1", [("SKU-1", 1)], dest={"region": "south"}, service_level="express"))
    assert {leg.service for leg in d.plan.legs} == {"express"}


def test_demand_generator_is_seeded():
    from conftest import TINY

    from router.demand import generate_orders
    from router.scenario import load_scenario

    sc = load_scenario(TINY / "tiers_and_storm.yaml")
    a = generate_orders(sc, 50, seed=4)
    b = generate_orders(sc, 50, seed=4)
    c = generate_orders(sc, 50, seed=5)
    assert [o.model_dump() for o in a] == [o.model_dump() for o in b]
    assert [o.model_dump() for o in a] != [o.model_dump() for o in c]
    assert all(o.created_at >= sc.start for o in a)
    assert np.all(np.diff([o.created_at.timestamp() for o in a]) >= 0)


def test_a_split_solver_failure_leaves_the_greedy_plan(tiny_router, monkeypatch):
    import router.solver.split as split

    def boom(*args, **kwargs):
        raise split.SplitSolveError("time limit reached with no plan")

    monkeypatch.setattr(split, "solve_split", boom)
    r = tiny_router("two_warehouses_one_carrier")
    d = r.route(make_order("big", [("SKU-1", 15)], dest={"region": "mid"}))  # needs a quantity split
    # the greedy plan is the floor: the order is routed, the MIP's failure is on record
    assert d.status == "routed" and d.plan.kind == "split"
    assert sum(leg.lines[0].qty for leg in d.plan.legs) == 15
    assert d.record["solver"]["name"] == "greedy" and d.record["solver"]["status"] == "heuristic"
    assert d.record["solver"]["error"] == "time limit reached with no plan"
    assert d.record["solver"]["mip_usd"] is None and d.record["solver"]["greedy_usd"] > 0


def test_a_split_solver_failure_without_a_greedy_plan_is_an_unfulfillable_decision_not_an_exception(
    tiny_router, monkeypatch
):
    import router.solver.split as split

    def boom(*args, **kwargs):
        raise split.SplitSolveError("time limit reached with no plan")

    monkeypatch.setattr(split, "solve_split", boom)
    monkeypatch.setattr(split, "greedy_split", lambda *a, **k: None)
    r = tiny_router("two_warehouses_one_carrier")
    d = r.route(make_order("big", [("SKU-1", 15)], dest={"region": "mid"}))
    assert d.status == "unfulfillable" and d.plan is None
    assert d.record["solver"]["status"] == "error"
    assert "split solver: time limit reached with no plan" in [e["detail"] for e in d.rationale["excluded"]]
    assert int(r.state.reserved.sum()) == 0


def test_more_units_than_the_open_network_holds_is_unfulfillable_without_the_solver(tiny_router, monkeypatch):
    import router.solver.split as split

    def must_not_run(*args, **kwargs):
        raise AssertionError("the split MIP ran for an order no plan can cover")

    monkeypatch.setattr(split, "solve_split", must_not_run)
    r = tiny_router("two_warehouses_one_carrier")
    # 10 SKU-1 at WH-A and 10 at WH-B: 21 cannot be covered, whatever the split
    d = r.route(make_order("huge", [("SKU-1", 21)], dest={"region": "mid"}))
    assert d.status == "unfulfillable" and d.plan is None
    assert d.record["solver"] == {"name": "stock-check", "status": "infeasible", "short_lines": 1}
    assert "SKU-1: 20 units at open nodes, the order needs 21" in [e["detail"] for e in d.rationale["excluded"]]
    assert "SKU-1: 20 units at open nodes, the order needs 21" in d.sentence
    assert int(r.state.reserved.sum()) == 0
    # 20 fit exactly: the solver splits them 10 + 10
    monkeypatch.undo()
    d = r.route(make_order("all", [("SKU-1", 20)], dest={"region": "mid"}))
    assert d.status == "routed" and sorted(leg.lines[0].qty for leg in d.plan.legs) == [10, 10]


def test_ship_by_index_equals_the_shipped_event(tiny_router):
    from router.errors import InvalidEventError
    from router.state import Shipped

    a, b = tiny_router("two_warehouses_one_carrier", ledger=None), tiny_router("two_warehouses_one_carrier", ledger=None)
    for r in (a, b):
        r.route(make_order("o", [("SKU-1", 3)], dest={"region": "mid"}))
    n = int(np.flatnonzero(a.state.reserved.sum(axis=1))[0])
    k = a.scenario.sku_index["SKU-1"]
    va = a.state.apply(Shipped(node=a.network.node_ids[n], sku="SKU-1", qty=2))
    vb = b.state.ship(n, k, 2)
    assert va == vb
    assert np.array_equal(a.state.on_hand, b.state.on_hand) and np.array_equal(a.state.reserved, b.state.reserved)
    assert int(b.state.reserved[n, k]) == 1
    # more than is reserved, or no units at all: refused, nothing changes
    before = b.state.on_hand.copy()
    with pytest.raises(InvalidEventError, match="ships 2 but only 1 are reserved"):
        b.state.ship(n, k, 2)
    with pytest.raises(InvalidEventError, match="not a positive number"):
        b.state.ship(n, k, 0)
    assert np.array_equal(b.state.on_hand, before) and b.state.version == vb
