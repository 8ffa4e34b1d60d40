"""Score terms, one by one, on hand-built candidate sets with hand-computed values.

Three nodes, one option, the order's two SKUs. Node load (queue / 24 h of throughput):
node 0: 480 / (10 x 24) = 2.0, node 1: 600 / (100 x 24) = 0.25, node 2: 36 / (3 x 24) = 0.5.
Stock prices (USD per unit of the order's SKUs): node 0 (1.5, 0), node 1 (2, 3), node 2 (0.5, 4).

TWO_LEG: three candidates of up to two legs (-1 pads a leg)
  c0  node 0: 2 x SKU a                      ship 6 + handle 1,  eta 30 h, risk 0.1
  c1  node 0: 1 x a | node 1: 1 x a, 1 x b  ship 5 + 0.5 | 7 + 1.5, eta 20 | 40, risk 0.2 | 0.5
  c2  node 1: 2 x a, 1 x b                   ship 9 + 0,  eta 50 h, risk 0.3
ONE_LEG: two single-leg candidates
  c0  node 0: 1 x a, 1 x b                   ship 4 + 2,  eta 10 h, risk 0.25
  c1  node 2: 3 x b                          ship 8 + 0,  eta 60 h, risk 0.75
The order is vip (lateness x4) with a promise 35 h away.
"""

from __future__ import annotations

import numpy as np
import pytest

from router.candidates import CandidateSet, OrderContext
from router.params import StrategyParams
from router.scoring import (
    TERMS,
    Scores,
    concat_scores,
    cost_term,
    eta_term,
    late_risk_term,
    lateness_term,
    load_term,
    score_candidates,
    split_term,
    stock_value_term,
)
from router.state import StateView

# every weight differs from 1 and from the others, so a dropped or swapped weight shows
P = StrategyParams(
    cost_weight=2.0,
    eta_hour_usd=0.25,
    late_hour_usd=0.5,
    late_risk_usd=8.0,
    load_usd=3.0,
    split_penalty_usd=1.5,
    stock_value_weight=0.5,
)
PRICES = np.array([[1.5, 0.0], [2.0, 3.0], [0.5, 4.0]])


def view(prices: np.ndarray | None = None) -> StateView:
    n, o = 3, 1
    return StateView(
        avail=np.full((n, 2), 10, dtype=np.int64),
        queue_orders=np.array([480.0, 600.0, 36.0]),
        throughput_per_hour=np.array([10.0, 100.0, 3.0]),
        closed=np.zeros(n, dtype=bool),
        closed_reason=("",) * n,
        congestion=np.ones((n, o)),
        lane_left=np.full((n, o), np.inf),
        weather_node=np.zeros(n),
        version=1,
        stock_price=prices,
    )


def context(tier: str = "vip", multiplier: float = 4.0, promise_hours: float = 35.0) -> OrderContext:
    return OrderContext(
        sku_idx=np.array([0, 1]),
        qty=np.array([2, 1]),
        weight_lb=np.ones(2),
        volume_cuft=np.full(2, 0.1),
        dist_miles=np.array([100.0, 200.0, 300.0]),
        dest_region=0,
        dest_weather=0.0,
        promise_hours=promise_hours,
        now_hour_utc=0.0,
        tier=tier,
        tier_multiplier=multiplier,
        tier_node_rank=np.zeros(3, dtype=np.int64),
        option_allowed=np.ones(1, dtype=bool),
    )


def candidate_set(node, units, shipping, handling, eta, risk) -> CandidateSet:
    node = np.array(node, dtype=np.int64)
    cs = CandidateSet(
        leg_node=node,
        leg_opt=np.where(node >= 0, 0, -1),
        leg_units=np.array(units, dtype=np.int64),
        source=np.zeros(len(node), dtype=np.int64),
    )
    cs.active = node >= 0
    cs.n_legs = cs.active.sum(axis=1)
    cs.leg_shipping_usd = np.array(shipping, dtype=float)
    cs.leg_handling_usd = np.array(handling, dtype=float)
    cs.leg_eta_hours = np.array(eta, dtype=float)
    cs.leg_risk = np.array(risk, dtype=float)
    return cs


def two_leg() -> CandidateSet:
    return candidate_set(
        node=[[0, -1], [0, 1], [1, -1]],
        units=[[[2, 0], [0, 0]], [[1, 0], [1, 1]], [[2, 1], [0, 0]]],
        shipping=[[6.0, 0.0], [5.0, 7.0], [9.0, 0.0]],
        handling=[[1.0, 0.0], [0.5, 1.5], [0.0, 0.0]],
        eta=[[30.0, 0.0], [20.0, 40.0], [50.0, 0.0]],
        risk=[[0.1, 0.0], [0.2, 0.5], [0.3, 0.0]],
    )


def one_leg() -> CandidateSet:
    return candidate_set(
        node=[[0], [2]],
        units=[[[1, 1]], [[0, 3]]],
        shipping=[[4.0], [8.0]],
        handling=[[2.0], [0.0]],
        eta=[[10.0], [60.0]],
        risk=[[0.25], [0.75]],
    )


def padded(cs: CandidateSet, legs: int) -> CandidateSet:
    """The same candidates with padding legs added, as concat_all pads them."""
    extra = legs - cs.leg_node.shape[1]

    def pad(a, fill):
        width = [(0, 0), (0, extra)] + [(0, 0)] * (a.ndim - 2)
        return np.pad(a, width, constant_values=fill)

    return candidate_set(
        node=pad(cs.leg_node, -1),
        units=pad(cs.leg_units, 0),
        shipping=pad(cs.leg_shipping_usd, 0.0),
        handling=pad(cs.leg_handling_usd, 0.0),
        eta=pad(cs.leg_eta_hours, 0.0),
        risk=pad(cs.leg_risk, 0.0),
    )


def check(term, name, unit, values, weight):
    assert (term.name, term.unit) == (name, unit)
    assert term.weight == weight
    assert isinstance(term.justification, str) and term.justification  # every term says how it is computed
    np.testing.assert_allclose(term.values, values, rtol=1e-12, atol=0)
    np.testing.assert_allclose(term.contributions, np.asarray(values) * weight, rtol=1e-12, atol=0)


# ----------------------------------------------------------------- one per term


@pytest.mark.parametrize(
    ("cs", "expected"),
    [(two_leg, [7.0, 14.0, 9.0]), (one_leg, [6.0, 8.0])],
)
def test_cost_is_shipping_plus_handling_summed_over_legs(cs, expected):
    check(cost_term(cs(), view(), context(), P), "cost", "usd", expected, 2.0)


@pytest.mark.parametrize(
    ("cs", "expected"),
    [(two_leg, [30.0, 40.0, 50.0]), (one_leg, [10.0, 60.0])],
)
def test_eta_is_the_latest_leg(cs, expected):
    check(eta_term(cs(), view(), context(), P), "eta", "hours", expected, 0.25)


@pytest.mark.parametrize(
    ("cs", "expected"),
    [(two_leg, [0.0, 5.0, 15.0]), (one_leg, [0.0, 25.0])],
)
def test_lateness_is_hours_past_the_promise_times_the_tier_multiplier(cs, expected):
    t = lateness_term(cs(), view(), context(), P)
    # vip: 0.5 USD per hour x 4; the first plan arrives before the promise and pays nothing
    check(t, "lateness", "hours", expected, 2.0)
    assert "promise 35.0 h" in t.justification and "tier vip x4" in t.justification
    # the standard tier pays the base rate for the same hours
    std = lateness_term(cs(), view(), context("standard", 1.0), P)
    check(std, "lateness", "hours", expected, 0.5)
    assert "tier standard x1" in std.justification


def test_lateness_at_exactly_the_promise_is_zero():
    t = lateness_term(two_leg(), view(), context(promise_hours=40.0), P)
    assert t.values.tolist() == [0.0, 0.0, 10.0]


def test_late_risk_of_a_plan_is_one_minus_the_product_of_its_legs_on_time():
    t = late_risk_term(two_leg(), view(), context(), P)
    # padding legs have risk 0: they multiply by 1 - 0
    expected = [1.0 - 0.9, 1.0 - 0.8 * 0.5, 1.0 - 0.7]
    check(t, "late_risk", "probability", expected, 32.0)
    assert "tier vip x4" in t.justification
    # a single leg: its own risk (exact for these binary fractions)
    one = late_risk_term(one_leg(), view(), context("standard", 1.0), P)
    assert one.values.tolist() == [0.25, 0.75] and one.weight == 8.0
    assert one.contributions.tolist() == [2.0, 6.0]


@pytest.mark.parametrize(
    ("cs", "expected"),
    # c1 of TWO_LEG uses nodes 0 and 1: 2.0^2 + 0.25^2; its padding legs add nothing
    [(two_leg, [4.0, 4.0625, 0.0625]), (one_leg, [4.0, 0.25])],
)
def test_load_is_the_squared_load_ratio_summed_over_the_nodes_used(cs, expected):
    check(load_term(cs(), view(), context(), P), "load", "load_ratio^2", expected, 3.0)


def test_split_counts_shipments_beyond_the_first():
    check(split_term(two_leg(), view(), context(), P), "split", "extra_shipments", [0.0, 1.0, 0.0], 1.5)
    check(split_term(one_leg(), view(), context(), P), "split", "extra_shipments", [0.0, 0.0], 1.5)


@pytest.mark.parametrize(
    ("cs", "expected"),
    # c1: 1 x 1.5 at node 0 + (1 x 2 + 1 x 3) at node 1
    [(two_leg, [3.0, 6.5, 7.0]), (one_leg, [1.5, 12.0])],
)
def test_stock_value_is_units_times_the_shadow_price_at_the_node(cs, expected):
    check(stock_value_term(cs(), view(PRICES), context(), P), "stock_value", "usd", expected, 0.5)


def test_stock_value_without_prices_is_zero_for_every_plan():
    t = stock_value_term(two_leg(), view(None), context(), P)
    check(t, "stock_value", "usd", [0.0, 0.0, 0.0], 0.5)
    assert t.values.shape == (3,)


# --------------------------------------------------------------------- the total


def test_the_total_is_the_sum_of_every_terms_contribution():
    s = score_candidates(two_leg(), view(PRICES), context(), P)
    assert [t.name for t in s.terms] == ["cost", "eta", "lateness", "late_risk", "load", "split", "stock_value"]
    assert [t.name for t in s.terms] == [fn(two_leg(), view(), context(), P).name for fn in TERMS]
    # cost + eta + lateness + late_risk + load + split + stock_value, candidate by candidate
    expected = [
        14.0 + 7.5 + 0.0 + 32 * (1 - 0.9) + 12.0 + 0.0 + 1.5,
        28.0 + 10.0 + 10.0 + 32 * (1 - 0.8 * 0.5) + 12.1875 + 1.5 + 3.25,
        18.0 + 12.5 + 30.0 + 32 * (1 - 0.7) + 0.1875 + 0.0 + 3.5,
    ]
    np.testing.assert_allclose(s.total, expected, rtol=1e-12)
    np.testing.assert_array_equal(s.total, s.contributions_matrix.sum(axis=0))
    # the first term's contributions are not the running total (a copy is summed into)
    np.testing.assert_array_equal(s.term("cost").contributions, [14.0, 28.0, 18.0])
    assert s.values_matrix.shape == s.contributions_matrix.shape == (7, 3)
    np.testing.assert_array_equal(s.values_matrix[4], s.term("load").values)
    np.testing.assert_array_equal(s.contributions_matrix[5], s.term("split").contributions)


def test_a_chosen_list_of_terms_scores_only_those():
    s = score_candidates(two_leg(), view(), context(), P, terms=[split_term, cost_term])
    assert [t.name for t in s.terms] == ["split", "cost"]
    assert s.total.tolist() == [14.0, 29.5, 18.0]
    with pytest.raises(KeyError, match="eta"):
        s.term("eta")


def test_scores_without_terms_have_empty_matrices():
    s = Scores((), np.zeros(4))
    assert s.values_matrix.shape == s.contributions_matrix.shape == (0, 4)


# -------------------------------------------------------------------- concat


def test_scoring_chunks_and_concatenating_equals_scoring_the_padded_whole():
    two, one = two_leg(), one_leg()
    whole = CandidateSet(
        leg_node=np.concatenate([two.leg_node, padded(one, 2).leg_node]),
        leg_opt=np.concatenate([two.leg_opt, padded(one, 2).leg_opt]),
        leg_units=np.concatenate([two.leg_units, padded(one, 2).leg_units]),
        source=np.zeros(5, dtype=np.int64),
    )
    for name in ("active", "n_legs", "leg_shipping_usd", "leg_handling_usd", "leg_eta_hours", "leg_risk"):
        setattr(whole, name, np.concatenate([getattr(two, name), getattr(padded(one, 2), name)]))
    v, ctx = view(PRICES), context()
    joined = concat_scores([score_candidates(two, v, ctx, P), score_candidates(one, v, ctx, P)])
    direct = score_candidates(whole, v, ctx, P)
    assert [(t.name, t.unit, t.weight, t.justification) for t in joined.terms] == [
        (t.name, t.unit, t.weight, t.justification) for t in direct.terms
    ]
    for a, b in zip(joined.terms, direct.terms):
        np.testing.assert_array_equal(a.values, b.values, err_msg=a.name)  # bit-identical
        np.testing.assert_array_equal(a.contributions, b.contributions, err_msg=a.name)
    np.testing.assert_array_equal(joined.total, direct.total)


def test_concat_of_one_part_is_that_part_and_of_three_is_in_order():
    v, ctx = view(), context()
    s = score_candidates(one_leg(), v, ctx, P)
    single = concat_scores([s])
    np.testing.assert_array_equal(single.total, s.total)
    assert [t.name for t in single.terms] == [t.name for t in s.terms]
    parts = [score_candidates(cs, v, ctx, P) for cs in (two_leg(), one_leg(), two_leg())]
    joined = concat_scores(parts)
    np.testing.assert_array_equal(joined.total, np.concatenate([p.total for p in parts]))
    np.testing.assert_array_equal(joined.term("eta").values, [30.0, 40.0, 50.0, 10.0, 60.0, 30.0, 40.0, 50.0])
