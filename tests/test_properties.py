"""Property tests: for random valid worlds and orders, the invariants of every decision hold.

The independent plan validator (router.solver.validate) is the oracle for prices: it
re-prices every chosen leg from the rate cards, so a wrong number in the candidate
generator fails here even when the record agrees with itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router import Order
from router.engine import Router
from router.params import RouterOptions
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
        # the independent validator, re-pricing every leg from the rate cards against the
        # record's own stored view, context and params, finds nothing wrong
        assert router.validate_record(router.ledger.get_decision(d.decision_id)) == []
        # replay from the stored inputs gives the same decision
        assert router.replay(d.decision_id).matches
    # reservations never exceed on-hand, and the ledger agrees with the live state
    assert np.all(router.state.reserved <= on_hand)
    totals = router.ledger.reserved_totals()
    for (node, sku), qty in totals.items():
        assert router.state.reserved[sc.node_index[node], sc.sku_index[sku]] == qty
    assert sum(totals.values()) == int(router.state.reserved.sum())
    router.close()


@st.composite
def rough_worlds(draw):
    """Worlds with everything that bends a price or a rule: weight tiers, dimensional
    weight, per-mile and per-carton charges, lane volume caps and daily capacities, a
    disabled lane, congestion, weather, a closure, safety stock, excluded nodes, stock
    prices, requested service levels and (not) allowed quantity splits."""
    n_nodes = draw(st.integers(2, 4))
    n_skus = draw(st.integers(1, 3))
    skus = [f"S{k}" for k in range(n_skus)]
    nodes = [
        {
            "id": f"N{i}",
            "lat": draw(st.floats(30.0, 45.0)),
            "lon": draw(st.floats(-120.0, -75.0)),
            "region": draw(st.sampled_from(["R", "Q"])),
            "handling_per_shipment_usd": draw(st.sampled_from([0.0, 1.5])),
            "handling_per_unit_usd": draw(st.sampled_from([0.0, 0.25])),
            "handling_per_carton_usd": draw(st.sampled_from([0.0, 0.3])),
            "carton_volume_cuft": draw(st.sampled_from([0.5, 2.0])),
            "pick_capacity_per_hour": draw(st.sampled_from([20.0, 100.0])),
            "initial_queue_orders": draw(st.sampled_from([0.0, 80.0, 600.0])),
            "cutoff_hour_utc": draw(st.sampled_from([8.0, 20.0])),
        }
        for i in range(n_nodes)
    ]
    carriers = [
        {
            "id": "c",
            "dim_weight_factor_lb_per_cuft": draw(st.sampled_from([0.0, 10.0])),
            "services": [
                {
                    "name": "ground",
                    "cost": {"fixed_usd": 4.0, "per_unit_usd": 0.5, "per_unit_mile_usd": 0.001, "per_lb_usd": 0.2},
                    "transit": {"base_days": 1.0, "miles_per_day": 500.0, "sigma_frac": 0.2},
                },
                {
                    "name": "express",
                    "cost": {"fixed_usd": 9.0, "weight_tiers_lb": [1.5, 4, 9], "weight_rates_usd": [1.0, 2.5, 6.0]},
                    "transit": {"base_days": 0.5, "miles_per_day": 2000.0, "min_days": 0.5, "sigma_frac": 0.1},
                },
            ],
        },
        {
            "id": "d",
            "dim_weight_factor_lb_per_cuft": 8.0,
            "services": [
                {
                    "name": "ground",
                    "cost": {"fixed_usd": 3.0, "per_lb_usd": 0.4, "weight_tiers_lb": [2, 6], "weight_rates_usd": [0.5, 1.5]},
                    "transit": {"base_days": 2.0, "miles_per_day": 400.0, "min_days": 2.0, "sigma_frac": 0.3},
                }
            ],
        },
    ]
    lanes = []
    for node in nodes:
        if draw(st.booleans()):
            lanes.append(
                {
                    "node": node["id"],
                    "carrier": draw(st.sampled_from(["c", "d"])),
                    "daily_capacity_shipments": draw(st.sampled_from([None, 1, 3])),
                    "max_shipment_volume_cuft": draw(st.sampled_from([None, 0.5, 1.2])),
                    "congestion": draw(st.sampled_from([1.0, 1.4])),
                }
            )
    if draw(st.booleans()):  # carrier d does not pick up at the first node
        lanes = [ln for ln in lanes if not (ln["node"] == "N0" and ln["carrier"] == "d")]
        lanes.append({"node": "N0", "carrier": "d", "enabled": False})
    # sampled_from shrinks to its first value: a stocked node, not an empty world
    stock = {n["id"]: {s: draw(st.sampled_from([6, 0, 2, 12])) for s in skus} for n in nodes}
    disruptions = []
    if draw(st.booleans()):
        disruptions.append({"kind": "weather", "region": draw(st.sampled_from(["R", "Q"])), "severity": 0.5, "start_hour": 0, "end_hour": 48})
    if draw(st.booleans()):
        disruptions.append({"kind": "lane_slowdown", "carrier": "c", "factor": 1.5, "start_hour": 0, "end_hour": 48})
    if draw(st.booleans()):
        disruptions.append({"kind": "node_closure", "node": f"N{n_nodes - 1}", "start_hour": 0, "end_hour": 48})
    spec = {
        "name": "rough",
        "regions": [{"id": "R", "lat": 38.0, "lon": -95.0}, {"id": "Q", "lat": 33.0, "lon": -84.0}],
        "nodes": nodes,
        "carriers": carriers,
        "lanes": lanes,
        "skus": [
            {"id": s, "unit_weight_lb": draw(st.sampled_from([0.3, 1.1, 4.0])), "unit_volume_cuft": draw(st.sampled_from([0.1, 0.35]))}
            for s in skus
        ],
        "stock": stock,
        "disruptions": disruptions,
        "tiers": [{"name": "standard", "promise_hours": 96}, {"name": "vip", "promise_hours": 30, "lateness_multiplier": 4}],
        # these worlds test plans, not the boundary (one region stands for the whole box)
        "boundary": {"max_region_distance_miles": 3000},
        "params": {
            "max_splits": draw(st.sampled_from([3, 2, 1])),
            "safety_stock_units": draw(st.sampled_from([0, 1])),
            "excluded_nodes": draw(st.sampled_from([[], ["N1"]])),
            "allow_quantity_split": draw(st.sampled_from([True, False])),
        },
    }
    orders = []
    for i in range(draw(st.integers(1, 5))):
        chosen = draw(st.lists(st.sampled_from(skus), min_size=1, max_size=n_skus, unique=True))
        dest = draw(
            st.one_of(
                st.builds(lambda la, lo: {"lat": la, "lon": lo}, st.floats(28.0, 47.0), st.floats(-122.0, -72.0)),
                st.sampled_from([{"region": "R"}, {"region": "Q"}]),
            )
        )
        orders.append(
            Order.model_validate(
                {
                    "order_id": f"o{i}",
                    "customer": {"customer_id": f"c{i}", "tier": draw(st.sampled_from(["standard", "vip"]))},
                    "destination": dest,
                    "lines": [{"sku": s, "qty": draw(st.integers(1, 4))} for s in chosen],
                    "created_at": (T0 + timedelta(minutes=i)).isoformat(),
                    "service_level": draw(st.sampled_from([None, None, "ground", "express"])),
                }
            )
        )
    prices = draw(st.sampled_from([None, {"N0": {"S0": 2.5}}]))
    return spec, orders, prices


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rough_worlds())
def test_every_strategy_chooses_plans_the_independent_validator_accepts(world):
    spec, orders, prices = world
    sc = parse_scenario(spec)
    for strategy in ("nearest", "cheapest", "tier_rules", "optimizer"):
        # check_plans: the router itself runs the validator before it reserves a plan
        # and raises InvalidPlanError naming every violation
        router = Router(sc, ledger="sqlite://", clock=lambda: T0, strategy=strategy, options=RouterOptions(check_plans=True))
        router.state.set_clock_hours(5.0)
        if prices is not None:
            router.state.apply({"type": "stock_prices", "prices": prices})
        for order in orders:
            d = router.route(order)
            if d.plan is not None:
                assert router.validate_record(router.ledger.get_decision(d.decision_id)) == []
        router.close()
