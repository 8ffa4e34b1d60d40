"""Property tests: for random valid worlds and orders, the invariants of every decision hold."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router import Order
from router.engine import Router
from router.scenario import parse_scenario

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)


@st.composite
def worlds(draw):
    n_nodes = draw(st.integers(2, 4))
    n_skus = draw(st.integers(1, 4))
    skus = [f"S{k}" for k in range(n_skus)]
    nodes = [
        {
            "id": f"N{i}",
            "lat": draw(st.floats(30.0, 45.0)),
            "lon": draw(st.floats(-120.0, -75.0)),
            "handling_per_shipment_usd": draw(st.sampled_from([0.0, 0.5, 1.5])),
            "handling_per_unit_usd": draw(st.sampled_from([0.0, 0.25])),
            "pick_capacity_per_hour": draw(st.sampled_from([20.0, 100.0])),
            "initial_queue_orders": draw(st.sampled_from([0.0, 50.0, 600.0])),
            "cutoff_hour_utc": draw(st.sampled_from([14.0, 20.0])),
        }
        for i in range(n_nodes)
    ]
    services = [
        {
            "name": "ground",
            "cost": {"fixed_usd": draw(st.sampled_from([2.0, 6.0])), "per_unit_usd": 0.5, "per_unit_mile_usd": 0.001},
            "transit": {"base_days": 1.0, "miles_per_day": 500.0, "sigma_frac": 0.2},
        }
    ]
    if draw(st.booleans()):
        services.append(
            {
                "name": "express",
                "cost": {"fixed_usd": 12.0, "per_lb_usd": 0.8, "weight_tiers_lb": [2, 10], "weight_rates_usd": [1.0, 3.0]},
                "transit": {"base_days": 0.5, "miles_per_day": 2000.0, "sigma_frac": 0.1},
            }
        )
    stock = {
        n["id"]: {s: draw(st.integers(0, 6)) for s in skus if draw(st.booleans())} for n in nodes
    }
    spec = {
        "name": "random",
        "regions": [{"id": "R", "lat": 38.0, "lon": -95.0}],
        "nodes": nodes,
        "carriers": [{"id": "c", "dim_weight_factor_lb_per_cuft": 10.0, "services": services}],
        "skus": [{"id": s, "unit_weight_lb": draw(st.sampled_from([0.5, 2.0, 7.0])), "unit_volume_cuft": 0.2} for s in skus],
        "stock": stock,
        "tiers": [{"name": "standard", "promise_hours": 96}, {"name": "vip", "promise_hours": 40, "lateness_multiplier": 4}],
        "params": {"max_splits": draw(st.integers(1, 3))},
        # one region stands for the whole box the destinations are drawn from (up to
        # ~1,500 mi from its centroid): these worlds test plans, not the boundary
        "boundary": {"max_region_distance_miles": 2000},
    }
    orders = []
    for i in range(draw(st.integers(1, 6))):
        chosen = draw(st.lists(st.sampled_from(skus), min_size=1, max_size=n_skus, unique=True))
        orders.append(
            Order.model_validate(
                {
                    "order_id": f"o{i}",
                    "customer": {"customer_id": f"c{i}", "tier": draw(st.sampled_from(["standard", "vip"]))},
                    "destination": {"lat": draw(st.floats(28.0, 47.0)), "lon": draw(st.floats(-122.0, -72.0))},
                    "lines": [{"sku": s, "qty": draw(st.integers(1, 4))} for s in chosen],
                    "created_at": (T0 + timedelta(minutes=i)).isoformat(),
                }
            )
        )
    return spec, orders


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.sampled_from(["optimizer", "cheapest", "nearest", "tier_rules"]))
def test_every_decision_covers_each_line_never_oversells_and_explains_itself(world, strategy):
    spec, orders = world
    sc = parse_scenario(spec)
    router = Router(sc, ledger="sqlite://", clock=lambda: T0, strategy=strategy)
    on_hand = router.state.on_hand.copy()
    for order in orders:
        before = router.state.available().copy()
        d = router.route(order)
        if d.plan is None:
            assert d.status == "unfulfillable"
            assert np.array_equal(router.state.available(), before)
            continue
        # every line covered exactly once: units per SKU equal the order
        assert d.plan.units_by_sku() == {ln.sku: ln.qty for ln in order.lines}
        assert len({leg.node_id for leg in d.plan.legs}) == len(d.plan.legs) <= sc.params.max_splits or any(
            r["source"] == "split_solver" for r in d.record["candidates"][:1]
        )
        # no node ships more than it had available when the decision was taken
        for leg in d.plan.legs:
            n = sc.node_index[leg.node_id]
            for line in leg.lines:
                assert line.qty <= before[n, sc.sku_index[line.sku]]
        # rationale numbers: value x weight = contribution, contributions sum to the score
        factors = d.rationale["chosen"]["factors"]
        for f in factors:
            # both are rounded to 6 decimals, so the product may differ by weight x 5e-7
            assert abs(f["contribution"] - f["value"] * f["weight"]) <= 1e-6 * (1.0 + f["weight"])
        assert abs(sum(f["contribution"] for f in factors) - d.plan.score) < 1e-4
        assert abs(next(f["value"] for f in factors if f["term"] == "cost") - d.plan.cost_usd) < 1e-6
        if d.strategy == "optimizer":
            assert all(sum(f["contribution"] for f in ru["factors"]) >= d.plan.score - 1e-4
                       for ru in d.rationale["runners_up"])
        # replay from the stored inputs gives the same decision
        assert router.replay(d.decision_id).matches
    # reservations never exceed on-hand, and the ledger agrees with the live state
    assert np.all(router.state.reserved <= on_hand)
    totals = router.ledger.reserved_totals()
    for (node, sku), qty in totals.items():
        assert router.state.reserved[sc.node_index[node], sc.sku_index[sku]] == qty
    assert sum(totals.values()) == int(router.state.reserved.sum())
    router.close()
