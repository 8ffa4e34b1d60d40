"""Candidate pools on networks of hundreds of partially stocked stores: what the pool must hold, the greedy
floor under the split MIP, the MIP's time limit counting its build, and compact records."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import yaml
from conftest import SCENARIOS, T0, FixedClock, make_order

from router.demand import generate_orders
from router.engine import Router
from router.engine.router import decision_inputs
from router.legs import nominal_cost_order
from router.rules import node_exclusions, open_nodes, solver_pool, usable_options
from router.scenario import load_scenario, parse_scenario
from router.solver.split import SplitProblem, arc_cost, greedy_split
from router.state import CongestionUpdate, StateView, view_hash


@pytest.fixture(scope="module")
def stores():
    return load_scenario(SCENARIOS / "national_stores.yaml")


def _stream(sc, n, seed, **params):
    """Route ``n`` orders of the scenario's stream; yield (order, decision, router)."""
    p = sc.params.model_copy(update=params) if params else None
    clock = FixedClock(T0)
    r = Router(sc, ledger=None, clock=clock, risk_model=None, params=p)
    for o in generate_orders(sc, n, seed=seed):
        clock.now = o.created_at
        yield o, r.route(o), r


@pytest.mark.parametrize("cap", [1, 3, 12])
def test_the_pool_holds_a_whole_order_node_and_covers_every_line_when_the_allowed_nodes_can(stores, cap):
    checked = whole_outside_nearest = 0
    for _, d, r in _stream(stores, 400, seed=4, max_candidate_nodes=cap):
        inp = decision_inputs(d.record)
        view, ctx, params = inp.view, inp.context, inp.params
        usable = usable_options(r.network, view, ctx)
        pool, _ = node_exclusions(r.network, view, ctx, params, usable, r.network.sku_ids, detail=False)
        line_ok = view.avail - params.safety_stock_units >= ctx.qty[None, :]
        allowed = ~view.closed & usable.any(axis=1) & line_ok.any(axis=1)
        whole = allowed & line_ok.all(axis=1)
        if whole.any():
            assert (pool & whole).any()
            nearest = np.flatnonzero(allowed)[np.argsort(ctx.dist_miles[allowed], kind="stable")][:cap]
            whole_outside_nearest += not whole[nearest].any()
        stock = np.maximum(view.avail - params.safety_stock_units, 0)
        coverable = np.where(allowed[:, None], stock, 0).sum(axis=0) >= ctx.qty
        assert (np.where(pool[:, None], stock, 0).sum(axis=0) >= ctx.qty)[coverable].all()
        # the cap nearest holding a line, nearest and cheapest holding every line, cover
        assert pool.sum() <= max(3 * cap, 2 * cap + len(ctx.qty)) or not whole.any()
        if allowed.sum() > cap:
            # the cap cheapest for a nominal parcel that hold every line are in the pool
            cheap = nominal_cost_order(r.network, ctx.dist_miles)
            assert pool[cheap[whole[cheap]][:cap]].all()
        checked += 1
    assert checked == 400
    if cap < 12:
        assert whole_outside_nearest > 0  # the case the pool exists for did occur


def test_no_order_is_unfulfillable_when_the_open_network_holds_its_lines(stores):
    unfulfillable = 0
    for o, d, r in _stream(stores, 600, seed=9):
        if d.status == "unfulfillable":
            unfulfillable += 1
            inp = decision_inputs(d.record)
            held = np.maximum(inp.view.avail, 0)[open_nodes(r.network, inp.view, inp.params)].sum(axis=0)
            assert (held < inp.context.qty).any(), o.order_id
    assert unfulfillable == 0


def test_solver_pool_adds_the_nearest_nodes_holding_units_of_a_line_no_pool_node_covers():
    sc = load_scenario(SCENARIOS / "tiny" / "two_warehouses_one_carrier.yaml")
    r = Router(sc, ledger=None, clock=FixedClock(T0), risk_model=None)
    o = make_order("big", [("SKU-1", 15)], dest={"region": "mid"})  # 10 units at each warehouse
    ctx = r.contexts.build(o, T0, r.state.weather_at_region)
    view = r.state.view(ctx.sku_idx, 0.0)
    usable = usable_options(r.network, view, ctx)
    pool, _ = node_exclusions(r.network, view, ctx, r.params, usable, r.network.sku_ids)
    assert not pool.any()  # no node holds the whole line
    nodes = solver_pool(r.network, view, ctx, r.params, usable, pool)
    assert nodes.tolist() == [True, True]


# ------------------------------------------------------------ the greedy floor


def _problem(avail, qty=(15,), arc_node=(0, 1), fixed=(5.0, 4.0), unit=(1.0, 2.0), max_nodes=3, allow=True):
    k = len(qty)
    return SplitProblem(
        qty=np.array(qty, dtype=np.int64),
        unit_weight_lb=np.ones(k),
        unit_volume_cuft=np.full(k, 0.1),
        avail=np.array(avail, dtype=np.int64),
        arc_node=np.array(arc_node, dtype=np.int64),
        arc_fixed_usd=np.array(fixed, dtype=float),
        arc_unit_usd=np.array([[u] * k for u in unit], dtype=float),
        arc_per_lb_usd=np.zeros(len(arc_node)),
        arc_dim_factor=np.zeros(len(arc_node)),
        arc_tier_bounds=tuple(np.zeros(0) for _ in arc_node),
        arc_tier_rates=tuple(np.zeros(0) for _ in arc_node),
        arc_max_volume=np.full(len(arc_node), np.inf),
        max_nodes=max_nodes,
        allow_quantity_split=allow,
    )


def test_greedy_takes_units_nearest_first_and_prices_each_leg_exactly():
    p = _problem([[10], [10]])
    sol = greedy_split(p, np.array([1, 0]))  # node 1 is the nearer
    assert sol.units.tolist() == [[5], [10]]
    # node 1: $4 + 10 x $2 = $24; node 0: $5 + 5 x $1 = $10
    assert sol.objective_usd == pytest.approx(24.0 + 10.0)
    assert sol.objective_usd == pytest.approx(sum(arc_cost(p, a, sol.units[a])[0] for a in range(2)))
    assert sol.status == "heuristic" and sol.solver == "greedy"


def test_greedy_repairs_by_coverage_when_nearest_first_needs_too_many_nodes():
    # three nodes nearest first hold 5, 5, 15; two shipments at most: nearest-first fails, coverage finds 15 + nothing
    p = _problem([[5], [5], [15]], arc_node=(0, 1, 2), fixed=(1.0, 1.0, 1.0), unit=(1.0, 1.0, 1.0), max_nodes=2)
    sol = greedy_split(p, np.array([0, 1, 2]))
    assert sol.units[:, 0].tolist() == [0, 0, 15]
    assert greedy_split(_problem([[5], [5], [4]], arc_node=(0, 1, 2), fixed=(1, 1, 1), unit=(1, 1, 1), max_nodes=2),
                        np.array([0, 1, 2])) is None  # fmt: skip


def test_greedy_without_quantity_splits_gives_whole_lines_only():
    p = _problem([[10, 3], [3, 5]], qty=(4, 5), allow=False)
    sol = greedy_split(p, np.array([0, 1]))
    # node 0 holds all 4 of line 0 but only 3 of the 5 of line 1, which node 1 holds whole
    assert sol.units.tolist() == [[4, 0], [0, 5]]
    # with quantity splits node 0 gives 3 of line 1 as well
    assert greedy_split(_problem([[10, 3], [3, 5]], qty=(4, 5)), np.array([0, 1])).units.tolist() == [[4, 3], [0, 2]]


def test_the_mip_plan_never_loses_to_the_greedy_floor(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    d = r.route(make_order("q", [("SKU-1", 15)], dest={"region": "mid"}))
    solver = d.record["solver"]
    assert solver["greedy_usd"] is not None and solver["mip_usd"] is not None
    assert solver["mip_usd"] <= solver["greedy_usd"] + 1e-9
    # both plans were scored; the chosen one scores no worse than any (the greedy's included)
    assert d.record["chosen"]["score"] == min(c["score"] for c in d.record["candidates"])


def test_the_time_limit_counts_the_build(tiny_router, monkeypatch):
    import router.solver.choose as choose
    import router.solver.split as split

    real_build = choose.build_split_problem
    seen = {}

    def slow_build(*a, **k):
        time.sleep(0.3)
        return real_build(*a, **k)

    def spy(problem, *, time_limit_s, seed):
        seen["limit"] = time_limit_s
        raise split.SplitSolveError("stopped by the test")

    monkeypatch.setattr(choose, "build_split_problem", slow_build)
    monkeypatch.setattr(split, "solve_split", spy)
    params = load_scenario(SCENARIOS / "tiny" / "two_warehouses_one_carrier.yaml").params.model_copy(
        update={"solver_time_limit_s": 1.0}
    )
    r = tiny_router("two_warehouses_one_carrier", ledger=None, params=params)
    d = r.route(make_order("q", [("SKU-1", 15)], dest={"region": "mid"}))
    assert seen["limit"] <= 1.0 - 0.3  # what the build left
    assert d.status == "routed" and d.record["solver"]["name"] == "greedy"
    # a build that takes the whole limit leaves the MIP no time at all: the greedy plan stands
    monkeypatch.setattr(choose, "build_split_problem", lambda *a, **k: (time.sleep(1.05), real_build(*a, **k))[1])
    seen.clear()
    r = tiny_router("two_warehouses_one_carrier", ledger=None, params=params)
    d = r.route(make_order("q3", [("SKU-1", 12)], dest={"region": "mid"}))
    assert "limit" not in seen
    assert d.record["solver"]["error"] == "time limit 1 s spent before the MIP could start"
    assert d.status == "routed" and d.record["solver"]["name"] == "greedy"


# --------------------------------------------------------------------- records


def test_views_are_stored_flat_and_older_nested_views_still_read(stores):
    r = Router(stores, ledger=None, risk_model=None)
    v = r.state.view(np.array([0, 3]), 2.0)
    data = v.to_json()
    assert isinstance(data["avail"][0], int) and len(data["avail"]) == 500 * 2
    back = StateView.from_json(data)
    np.testing.assert_array_equal(back.avail, v.avail)
    np.testing.assert_array_equal(back.lane_left, v.lane_left)
    np.testing.assert_array_equal(back.congestion, v.congestion)
    assert back.recompute_hash() == v.state_hash
    nested = dict(data, avail=v.avail.tolist(), congestion=v.congestion.tolist(),
                  lane_left=np.where(np.isinf(v.lane_left), -1.0, v.lane_left).tolist())  # fmt: skip
    old = StateView.from_json(nested)
    assert old.recompute_hash() == v.state_hash


def test_views_store_grids_as_their_non_default_cells_and_hash_what_they_store(stores):
    r = Router(stores, ledger=None, risk_model=None)
    r.state.apply(CongestionUpdate(carrier="ups", service="ground", factor=1.5))
    v = r.state.view(np.array([0, 3]), 2.0)
    data = v.to_json()
    assert data["encoding"] == 2
    cong, lanes = data["congestion"], data["lane_left"]
    # the cells unlike 1.0 (congestion) and unlike "no daily limit" (lane capacity left), by flat index
    assert cong["idx"] == np.flatnonzero(v.congestion.ravel() != 1.0).tolist()
    assert cong["val"] == v.congestion.ravel()[cong["idx"]].tolist() and 1.5 in cong["val"]
    assert lanes["idx"] == np.flatnonzero(np.isfinite(v.lane_left.ravel())).tolist()
    assert len(lanes["idx"]) < v.lane_left.size / 2
    back = StateView.from_json(json.loads(json.dumps(data)))
    np.testing.assert_array_equal(back.congestion, v.congestion)
    np.testing.assert_array_equal(back.lane_left, v.lane_left)
    assert back.recompute_hash() == v.state_hash
    # any stored number changed is caught by the hash
    tampered = json.loads(json.dumps(data))
    tampered["lane_left"]["val"][0] -= 1.0
    assert StateView.from_json(tampered).recompute_hash() != v.state_hash
    # a record written before encoding 2 (dense lists, no "encoding") verifies by the old hash
    dense = dict(data, congestion=v.congestion.ravel().tolist(),
                 lane_left=np.where(np.isinf(v.lane_left), -1.0, v.lane_left).ravel().tolist())  # fmt: skip
    del dense["encoding"]
    old_hash = view_hash(v.avail, v.queue_orders, v.throughput_per_hour, v.closed, v.closed_reason, v.congestion,
                         v.lane_left, v.weather_node, None, v.shipped_today, v.closure_ahead_h)  # fmt: skip
    dense["state_hash"] = old_hash
    old = StateView.from_json(dense)
    assert old.encoding == 1 and old.recompute_hash() == old_hash
    assert old.to_json()["congestion"] == dense["congestion"]  # written back as it was read


def test_nominal_cost_order_ranks_a_farther_node_first_when_it_ships_a_parcel_for_less():
    raw = yaml.safe_load((SCENARIOS / "tiny" / "two_warehouses_one_carrier.yaml").read_text())
    raw["nodes"][0]["handling_per_unit_usd"] = 3.0  # WH-A, nearest to north, picks at $3 a unit
    sc = parse_scenario(raw, source="test")
    r = Router(sc, ledger=None, clock=FixedClock(T0), risk_model=None)
    north = r.network.distances_miles(41.0, -90.0)
    # a parcel: $5 per shipment + $1 per unit + handling ($3 at WH-A, $0 at WH-B)
    assert nominal_cost_order(r.network, north).tolist() == [1, 0]
    assert np.argsort(north).tolist() == [0, 1]  # WH-A is the nearer
    raw["nodes"][0]["handling_per_unit_usd"] = 0.0
    plain = Router(parse_scenario(raw, source="test"), ledger=None, clock=FixedClock(T0), risk_model=None)
    assert nominal_cost_order(plain.network, north).tolist() == [0, 1]  # a tie keeps index order
