"""Stock pricing for online policies (router.solver.lp): fulfilment_prices and track_prices."""

from __future__ import annotations

import numpy as np
import pytest

from router.solver.lp import FulfilmentCosts, OrderList, fulfilment_lp, fulfilment_prices, track_prices

# Two nodes (A, B), one city. Unit cost A $1, B $2; $5 per package; $20 per unit unmet.
# Item 0: A holds 1, B holds 5; item 1: only A holds 1. Four single-item orders: two of
# item 0, two of item 1.
#   item 0: one order ships from A (5 + 1), the other from B (5 + 2). One more unit at A
#           would save the B order 2 - 1 = $1; one fewer would cost it. B's 4 spare
#           units are worth 0.
#   item 1: one order ships from A (5 + 1), the other is unmet ($20). One more unit at A
#           would save 20 - 6 = $14.
# Total 6 + 7 + 6 + 20 = $39. Each price is the same both ways (the duals are unique).
COSTS = FulfilmentCosts(5.0, np.array([[1.0], [2.0]]), np.array([20.0]))
STOCK = np.array([[1.0, 1.0], [5.0, 0.0]])
ORDERS = OrderList(np.zeros(4, dtype=np.int64), np.array([[0], [0], [1], [1]]))


@pytest.mark.parametrize("solve", [fulfilment_lp, fulfilment_prices])
def test_order_lp_prices_are_the_hand_computed_marginal_values(solve):
    r = solve(ORDERS, COSTS, STOCK)
    assert r.status == "optimal"
    assert r.objective_usd == pytest.approx(39.0)
    assert r.packages == pytest.approx(3.0)
    assert r.units_unmet == pytest.approx(1.0)
    assert r.prices_usd == pytest.approx(np.array([[1.0, 14.0], [0.0, 0.0]]), abs=1e-7)


def test_fulfilment_prices_solves_the_same_lp_as_fulfilment_lp():
    rng = np.random.default_rng(5)
    n_nodes, n_cities, n_items = 4, 6, 8
    stock = np.where(rng.random((n_nodes, n_items)) < 0.6, rng.integers(1, 4, (n_nodes, n_items)), 0).astype(float)
    items = np.full((30, 3), -1, dtype=np.int64)
    for o in range(30):
        k = rng.integers(1, 4)
        items[o, :k] = rng.choice(n_items, size=k, replace=False)
    orders = OrderList(rng.integers(0, n_cities, 30), items)
    unit = 0.4 + rng.random((n_nodes, n_cities))
    costs = FulfilmentCosts(3.0, unit, 2 * 3.0 + 2 * unit.max(axis=0))
    a, b = fulfilment_lp(orders, costs, stock), fulfilment_prices(orders, costs, stock)
    assert b.objective_usd == pytest.approx(a.objective_usd, rel=1e-7)
    assert b.units_unmet == pytest.approx(a.units_unmet, abs=1e-6)
    assert (b.prices_usd >= 0).all()
    assert (b.prices_usd[stock == 0] == 0).all()  # no row, no price
    # a price is a marginal value: it never exceeds the penalty a unit could avoid
    assert b.prices_usd.max() <= costs.unmet_usd.max() + 1e-7


def test_track_prices_raises_overused_stock_and_lowers_idle_stock_but_never_below_zero():
    base = np.array([[2.0, 2.0, 0.5], [1.0, 0.0, 0.0]])
    avail = np.array([[10.0, 20.0, 10.0], [0.0, 5.0, 5.0]])
    used = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    prices, corr = track_prices(base, np.zeros_like(base), avail, used, 10, 0.5)
    # rates avail / 10: [1, 2, 1], [0, 0.5, 0.5]
    # (0,0) used 3 at rate 1: +0.5 x 2 = +1; (0,1) idle at rate 2: -1; (0,2) idle at rate 1:
    # -0.5, floored at -base (0.5); (1,0) holds nothing: unchanged; (1,1) used 2 at rate
    # 0.5: +0.75; (1,2) idle at price 0: stays 0 (no reserve below 0 to climb out of).
    assert prices == pytest.approx(np.array([[3.0, 1.0, 0.0], [1.0, 0.75, 0.0]]))
    assert corr == pytest.approx(np.array([[1.0, -1.0, -0.5], [0.0, 0.75, 0.0]]))
    # one over-use from price 0 raises it at once: the floor kept no negative reserve
    again, _ = track_prices(base, corr, avail, np.array([[0.0, 0.0, 2.0], [0.0, 0.0, 0.0]]), 10, 0.5)
    assert again[0, 2] == pytest.approx(0.5 + (-0.5) + 0.5 * (2.0 - 1.0))


def test_track_prices_keeps_the_base_when_stock_is_spent_at_its_rate():
    base = np.array([[4.0, 0.0]])
    avail = np.array([[6.0, 3.0]])
    prices, corr = track_prices(base, np.zeros_like(base), avail, np.array([[2.0, 1.0]]), 3, 1.0)
    assert prices == pytest.approx(base)
    assert corr == pytest.approx(np.zeros_like(base))
