"""LP pricing and hindsight bounds (router.solver.lp) and a smoke run of the academic benchmark."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import ROOT

from router.solver.lp import (
    FulfilmentCosts,
    OrderList,
    fulfilment_lp,
    lagrangian_bound,
    transport_prices,
)

sys.path.insert(0, str(ROOT / "benchmarks"))

import jasin_sinha as js  # noqa: E402

# Two nodes x two cities x one item. Per-unit cost c[n, j]:
#            city 1  city 2
#   node A      1       3
#   node B      2       2
COST = np.array([[1.0, 3.0], [2.0, 2.0]])


def test_transport_prices_spare_stock_is_free_and_scarce_stock_is_worth_the_detour():
    # supply A 1, B 2; demand 1.5 and 1. A serves 1 unit of city 1, B the other 0.5 and
    # city 2, 0.5 of B is spare: B's price is 0. City 1's marginal unit comes from B at 2,
    # so a unit at A saves 2 - 1 = 1. Non-degenerate basis: the duals are unique.
    r = transport_prices(COST, np.array([[1.0], [2.0]]), np.array([[1.5], [1.0]]), unmet_usd=10.0)
    assert r.prices_usd.ravel().tolist() == pytest.approx([1.0, 0.0], abs=1e-7)
    assert r.objective_usd == pytest.approx(1.0 + 0.5 * 2.0 + 2.0)
    assert r.unmet.sum() == pytest.approx(0.0)


def test_transport_prices_under_shortage_are_capped_by_the_penalty():
    # supply A 1, B 0.5; demand 0.8 and 1; unmet costs 10. City 2 is short: 0.3 unmet.
    # Its marginal unit is worth 10, so a unit at B (cost 2 to city 2) is worth 10 - 2 = 8
    # and at A (cost 3 to city 2) 10 - 3 = 7.
    r = transport_prices(COST, np.array([[1.0], [0.5]]), np.array([[0.8], [1.0]]), unmet_usd=10.0)
    assert r.prices_usd.ravel().tolist() == pytest.approx([7.0, 8.0], abs=1e-7)
    assert r.objective_usd == pytest.approx(0.8 * 1 + 0.2 * 3 + 0.5 * 2 + 0.3 * 10)
    assert r.unmet.ravel().tolist() == pytest.approx([0.0, 0.3])


def test_transport_prices_accepts_per_item_costs_and_rejects_bad_shapes():
    cost = np.stack([COST, COST + 1.0], axis=2)  # [N, J, K]: item 2 costs 1 more everywhere
    r = transport_prices(cost, np.ones((2, 2)), np.ones((2, 2)) * 0.5, unmet_usd=np.array([10.0, 10.0]))
    assert r.objective_usd == pytest.approx((0.5 * 1 + 0.5 * 2) + (0.5 * 2 + 0.5 * 3))
    with pytest.raises(ValueError, match="shapes"):
        transport_prices(COST, np.ones((3, 1)), np.ones((2, 1)), unmet_usd=10.0)


# Three nodes; item 0 at nodes {0, 1}, item 1 at {1, 2}, item 2 at {0, 2}; one order of
# all three; $1 per package, units free. Any integer plan needs 2 packages ($2). The LP
# ships every item half from each of its nodes: every z is 0.5, 1.5 packages ($1.5).
TRIANGLE_STOCK = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
TRIANGLE_COSTS = FulfilmentCosts(1.0, np.zeros((3, 1)), np.array([50.0]))
TRIANGLE = OrderList(np.array([0]), np.array([[0, 1, 2]]))


def test_hindsight_lp_is_below_the_mip_by_the_hand_computed_integrality_gap():
    lp = fulfilment_lp(TRIANGLE, TRIANGLE_COSTS, TRIANGLE_STOCK)
    mip = fulfilment_lp(TRIANGLE, TRIANGLE_COSTS, TRIANGLE_STOCK, integer=True, time_limit_s=10)
    assert lp.status == "optimal" and lp.objective_usd == pytest.approx(1.5)
    assert lp.packages == pytest.approx(1.5)
    assert mip.status == "optimal" and mip.objective_usd == pytest.approx(2.0)
    # the order-by-order integer (Lagrangian) bound closes this gap: it is the MIP here
    lag = lagrangian_bound(TRIANGLE, TRIANGLE_COSTS, TRIANGLE_STOCK, upper_usd=2.0, start_prices=lp.prices_usd)
    assert lp.objective_usd - 1e-9 <= lag.bound_usd <= mip.objective_usd + 1e-9
    assert lag.bound_usd == pytest.approx(2.0)


def test_hindsight_with_scarce_stock_prices_the_shortage_and_bounds_every_plan():
    # Two orders to city 0 want item 0; one unit exists (node 0). Unit cost c = [1, 2]
    # (node 0, node 1), package $5, unmet $20. Order 0 = {item 0, item 1}, order 1 = {item 0}.
    # Item 1 at node 0 and node 1. Best: order 0 takes item 0 and item 1 from node 0 in one
    # package (5 + 1 + 1), order 1 goes unmet (20): $27. Giving item 0 to order 1 instead
    # costs 5 + 1 (order 1) + 5 + 1 + 20 (order 0: item 1 alone, item 0 unmet) = $32.
    costs = FulfilmentCosts(5.0, np.array([[1.0], [2.0]]), np.array([20.0]))
    stock = np.array([[1.0, 1.0], [0.0, 1.0]])
    orders = OrderList(np.array([0, 0]), np.array([[0, 1], [0, -1]]))
    lp = fulfilment_lp(orders, costs, stock)
    mip = fulfilment_lp(orders, costs, stock, integer=True, time_limit_s=10)
    assert mip.objective_usd == pytest.approx(27.0)
    assert mip.units_unmet == pytest.approx(1.0)
    assert lp.objective_usd <= mip.objective_usd + 1e-9
    for policy_cost in (27.0, 32.0):  # every plan's cost is at least the MIP's
        assert mip.objective_usd <= policy_cost + 1e-9


def test_benchmark_world_follows_the_protocol():
    w = js.build_world(3, 1000)
    assert w.stock.shape == (10, 100)
    assert (w.stock.sum(axis=0) == 30).all()  # expected demand: 1,000 x 3 / 100 per item
    assert ((w.stock > 0).sum(axis=0) >= 1).all()  # every item somewhere
    assert 0.35 < (w.stock > 0).mean() < 0.65  # carried with probability 0.5
    sizes = (w.arrivals.items >= 0).sum(axis=1)
    assert sizes.min() == 1 and sizes.max() == 5
    for row, s in zip(w.arrivals.items, sizes):
        assert len(set(row[:s].tolist())) == s  # distinct items
    assert w.costs.unmet_usd == pytest.approx(2 * 8.759 + 2 * w.costs.unit_usd.max(axis=0))
    # same seed, same world
    w2 = js.build_world(3, 1000)
    assert np.array_equal(w.stock, w2.stock) and np.array_equal(w.arrivals.items, w2.arrivals.items)


def test_benchmark_smoke_one_seed_of_200_arrivals():
    policies = [
        js.Policy("myopic", "cheapest"),
        js.Policy("dual-once", "optimizer", js.dual_prices(0.0)),
        js.Policy("dual-resolve", "optimizer", js.dual_prices(0.0), 50),
        js.Policy("order-lp-resolve", "optimizer", js.order_lp_prices(), 50),
        js.Policy(
            "order-lp-track", "optimizer", js.smoothed(js.order_lp_prices(5, 50, fast=True), 0.3), 20, track=0.25
        ),
    ]
    res = js.run_seed(1, 200, policies=policies)
    lp = res["hindsight_lp"]["cost_per_order"]
    for name, p in res["policies"].items():
        assert lp <= p["cost_per_order"] + 1e-9, name
        assert -1.0 <= p["gap_share"] <= 1.5, name
        assert p["fallbacks"] == 0
        # policies ship whenever stock exists, so each leaves the same units unfulfilled
        assert p["units_unmet"] == res["policies"]["myopic"]["units_unmet"]
    assert res["policies"]["myopic"]["gap_share"] == 0.0


def test_benchmark_cli_runs_only_the_named_policies_and_reports_the_machine(capsys):
    js.main(
        ["--arrivals", "60", "--seeds", "1", "--samples", "2", "--track-every", "20", "--policies", "order-lp-track"]
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(summary["cost_per_order"]) == ["myopic", "order-lp-track", "hindsight_lp", "lagrangian_bound"]
    assert summary["track_every"] == 20
    assert summary["machine"]["logical cores"]
    assert summary["target_met"] == bool(summary["target_met_by"])
    with pytest.raises(SystemExit):
        js.main(["--arrivals", "60", "--seeds", "1", "--policies", "no-such-policy"])
