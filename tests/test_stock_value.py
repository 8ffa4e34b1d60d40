"""Stock value (shadow prices of stock): the term, its events, its effect on plans, replay."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import TINY, FixedClock, make_order

from router.engine import Router
from router.errors import InvalidEventError
from router.params import StrategyParams
from router.scenario import load_scenario, parse_scenario
from router.state import StateView, StockPrices

# Cost only: the other soft terms weigh 0 so a plan's score is its cost + its stock value.
COST_ONLY = StrategyParams(eta_hour_usd=0.0, late_hour_usd=0.0, late_risk_usd=0.0, load_usd=0.0, split_penalty_usd=0.0)

# two_warehouses_one_carrier with a distance rate of $0.01 per unit-mile. To north (41N):
# WH-A (40N) is 69.09 mi away, WH-B (33N) 552.75 mi (the scenario file's own table), so
# one unit of SKU-1 costs $5 + $1 + $0.6909 = $6.6909 from WH-A and $5 + $1 + $5.5275 =
# $11.5275 from WH-B: WH-B is dearer by 0.01 x 483.66 = $4.8366.
COST_GAP_USD = 4.8366


def _mileage_scenario():
    data = yaml.safe_load((TINY / "two_warehouses_one_carrier.yaml").read_text())
    data["carriers"][0]["services"][0]["cost"]["per_unit_mile_usd"] = 0.01
    return parse_scenario(data)


def _router(tmp_path=None, params=COST_ONLY, name="sv") -> Router:
    ledger = f"sqlite:///{tmp_path / (name + '.sqlite')}" if tmp_path is not None else None
    return Router(_mileage_scenario(), ledger=ledger, params=params, clock=FixedClock())


def _nodes(d) -> list[str]:
    return [leg.node_id for leg in d.plan.legs]


def _factor(d, term: str) -> dict:
    return next(f for f in d.rationale["chosen"]["factors"] if f["term"] == term)


def test_zero_prices_give_a_zero_term_and_the_same_decisions(tiny_router):
    orders = [
        make_order("z1", [("SKU-1", 2)], dest={"region": "north"}),
        make_order("z2", [("SKU-2", 1), ("SKU-3", 1)], dest={"region": "mid"}),
        make_order("z3", [("SKU-1", 1), ("SKU-3", 2)], dest={"region": "south"}),
    ]
    plain = tiny_router("two_warehouses_one_carrier", ledger=None)
    zeroed = tiny_router("two_warehouses_one_carrier", ledger=None)
    zeroed.state.apply(StockPrices(prices={"WH-A": {"SKU-1": 0.0}}))
    zeroed.state.set_stock_prices(np.zeros((2, 3)))
    for order in orders:
        a, b = plain.route(order), zeroed.route(order)
        assert a.record["chosen"] == b.record["chosen"]
        assert a.rationale == b.rationale
        # an unpriced view hashes and serialises exactly as before prices existed
        assert a.record["state"]["hash"] == b.record["state"]["hash"]
        assert "stock_price" not in b.record["inputs"]["view"]
        sv = _factor(b, "stock_value")
        assert sv == {"term": "stock_value", "value": 0.0, "unit": "usd", "weight": 1.0, "contribution": 0.0}


def test_a_price_on_the_nearer_node_moves_the_plan_exactly_past_the_cost_gap():
    r = _router()
    d = r.route(make_order("p0", [("SKU-1", 1)], dest={"region": "north"}))
    assert _nodes(d) == ["WH-A"]
    costs = {c["legs"][0][0]: c["score"] for c in d.record["candidates"]}
    assert costs["WH-B"] - costs["WH-A"] == pytest.approx(COST_GAP_USD, abs=1e-3)

    for price, where in ((COST_GAP_USD - 0.01, "WH-A"), (COST_GAP_USD + 0.01, "WH-B")):
        r = _router()
        r.state.apply(StockPrices(prices={"WH-A": {"SKU-1": price}}))
        d = r.route(make_order("p1", [("SKU-1", 1)], dest={"region": "north"}))
        assert _nodes(d) == [where], price
        sv = _factor(d, "stock_value")
        assert sv["value"] == pytest.approx(price if where == "WH-A" else 0.0)
        assert sv["contribution"] == pytest.approx(sv["value"] * sv["weight"])
        assert sum(f["contribution"] for f in d.rationale["chosen"]["factors"]) == pytest.approx(d.plan.score, abs=1e-5)


def test_the_weight_scales_the_price_and_units_multiply_it():
    # 2 units priced at 1.5 each with weight 2: the term is 3.0 USD of value, 6.0 of score
    r = _router(params=COST_ONLY.model_copy(update={"stock_value_weight": 2.0}))
    r.state.apply(StockPrices(prices={"WH-A": {"SKU-1": 1.5}, "WH-B": {"SKU-1": 1.5}}))
    d = r.route(make_order("w1", [("SKU-1", 2)], dest={"region": "north"}))
    sv = _factor(d, "stock_value")
    assert (sv["value"], sv["weight"], sv["contribution"]) == (3.0, 2.0, 6.0)


def test_prices_reassign_lines_inside_a_split():
    # SKU-2 only at WH-A, SKU-3 only at WH-B: the order must ship from both. SKU-1 rides
    # with WH-A's leg (cheaper by $4.8366) until its price at WH-A exceeds that gap.
    order = make_order("s1", [("SKU-1", 1), ("SKU-2", 1), ("SKU-3", 1)], dest={"region": "north"})

    def leg_of_sku1(price: float) -> str:
        r = _router()
        if price:
            r.state.apply(StockPrices(prices={"WH-A": {"SKU-1": price}}))
        d = r.route(order)
        assert sorted(_nodes(d)) == ["WH-A", "WH-B"]
        return next(leg.node_id for leg in d.plan.legs if any(ln.sku == "SKU-1" for ln in leg.lines))

    assert leg_of_sku1(0.0) == "WH-A"
    assert leg_of_sku1(COST_GAP_USD - 0.01) == "WH-A"
    assert leg_of_sku1(COST_GAP_USD + 0.01) == "WH-B"


def test_cheapest_ignores_prices_and_keeps_the_cost_optimal_split():
    r = _router()
    r.state.apply(StockPrices(prices={"WH-A": {"SKU-1": 100.0}}))
    d = r.route(make_order("c1", [("SKU-1", 1), ("SKU-2", 1), ("SKU-3", 1)], dest={"region": "north"}), strategy="cheapest")
    leg = next(leg.node_id for leg in d.plan.legs if any(ln.sku == "SKU-1" for ln in leg.lines))
    assert leg == "WH-A"


def test_replay_reproduces_a_priced_decision(tmp_path):
    r = _router(tmp_path)
    r.state.apply(StockPrices(prices={"WH-A": {"SKU-1": COST_GAP_USD + 0.5}}))
    d = r.route(make_order("rp", [("SKU-1", 1)], dest={"region": "north"}))
    assert _nodes(d) == ["WH-B"]
    rec = r.ledger.get_decision(d.decision_id)
    view = StateView.from_json(rec["inputs"]["view"])
    assert view.stock_price is not None and view.recompute_hash() == rec["state"]["hash"]
    # prices change afterwards; the replay reads the stored view, not the live state
    r.state.set_stock_prices(np.zeros((2, 3)))
    out = r.replay(d.decision_id)
    assert out.matches, out.differences
    # without its prices the stored view would hash differently: the prices are part of the input
    unpriced = StateView.from_json({k: v for k, v in rec["inputs"]["view"].items() if k != "stock_price"})
    assert unpriced.recompute_hash() != rec["state"]["hash"]
    r.close()


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "stock_prices", "prices": {"WH-Z": {"SKU-1": 1.0}}}, "prices.WH-Z"),
        ({"type": "stock_prices", "prices": {"WH-A": {"SKU-1": 1.0, "SKU-9": 1.0}}}, "prices.WH-A.SKU-9"),
        ({"type": "stock_prices", "prices": {"WH-A": {"SKU-1": -0.5}}}, "prices.WH-A.SKU-1"),
        ({"type": "stock_prices", "prices": {"WH-A": {"SKU-1": float("nan")}}}, "prices.WH-A.SKU-1"),
    ],
)
def test_a_bad_price_event_raises_a_typed_error_naming_the_field_and_changes_nothing(event, field):
    sc = load_scenario(TINY / "two_warehouses_one_carrier.yaml")
    r = Router(sc, ledger=None, clock=FixedClock())
    r.state.apply(StockPrices(prices={"WH-B": {"SKU-3": 2.0}}))
    version, prices, h = r.state.version, r.state.stock_price_usd.copy(), r.state.content_hash()
    with pytest.raises(InvalidEventError) as exc:
        r.state.apply(event)
    # pydantic's errors of a tagged event carry the tag first ("stock_prices.prices..."), as for every event
    assert exc.value.field.removeprefix("stock_prices.") == field
    assert r.state.version == version and r.state.content_hash() == h
    assert np.array_equal(r.state.stock_price_usd, prices)


def test_set_stock_prices_validates_shape_and_sign_atomically():
    sc = load_scenario(TINY / "two_warehouses_one_carrier.yaml")
    r = Router(sc, ledger=None, clock=FixedClock())
    version = r.state.version
    with pytest.raises(InvalidEventError) as exc:
        r.state.set_stock_prices(np.zeros((3, 3)))
    assert exc.value.field == "prices"
    bad = np.zeros((2, 3))
    bad[1, 2] = -1.0
    with pytest.raises(InvalidEventError) as exc:
        r.state.set_stock_prices(bad)
    assert exc.value.field == "prices.WH-B.SKU-3"
    assert r.state.version == version and not r.state.stock_price_usd.any()
    # replace=False changes only the named cells; the default replaces the whole list
    r.state.set_stock_prices(np.ones((2, 3)))
    r.state.apply({"type": "stock_prices", "prices": {"WH-A": {"SKU-2": 3.0}}, "replace": False})
    assert r.state.stock_price_usd.tolist() == [[1.0, 3.0, 1.0], [1.0, 1.0, 1.0]]
    r.state.apply({"type": "stock_prices", "prices": {"WH-A": {"SKU-2": 3.0}}})
    assert r.state.stock_price_usd.tolist() == [[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]
