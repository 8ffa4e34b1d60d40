"""The independent plan validator: one penalised / not-penalised pair per rule, hand-computed
prices, the debug mode of the router, and the validator's independence from the code it checks.

Each case starts from a real routed decision on a tiny scenario (its record's chosen plan,
stored view, context and params) and changes one thing. Where a structural change would
also make the stated numbers stale, the plan is restated (``restate_plan``) so that only
the rule under test is broken.
"""

from __future__ import annotations

import ast
import copy
import math
from dataclasses import dataclass, replace
from pathlib import Path

import nextmv_case as nc
import numpy as np
import pytest
import yaml
from conftest import TINY, FixedClock, make_order

import router.candidates as candidates
from router.engine import DecisionInputs, Router, decision_inputs
from router.engine.records import plan_from_dict
from router.errors import InvalidPlanError, RouterError
from router.network import Network, build_network
from router.params import RouterOptions
from router.scenario import load_scenario, parse_scenario
from router.solver.validate import RULES, Violation, check_plan, price_leg, restate_plan, validate_plan

NORTH = (41.0, -90.0)  # the tiny scenarios' region "north", on the 90 W meridian
CENTER = (39.0, -90.0)  # split_needed's region "center"
# one degree of a great circle, in miles (earth radius 3958.8 mi)
MILES_PER_DEGREE = 3958.8 * math.pi / 180.0


@dataclass
class Case:
    """A routed decision and what the validator needs to check its plan."""

    router: Router
    record: dict
    inputs: DecisionInputs
    destination: tuple[float, float]

    @property
    def plan(self) -> dict:
        """A private copy of the chosen plan, to corrupt."""
        return copy.deepcopy(self.record["chosen"])

    def check(self, plan=None, *, net: Network | None = None, view=None, ctx=None, params=None) -> list[Violation]:
        return validate_plan(
            net or self.router.network,
            view if view is not None else self.inputs.view,
            ctx if ctx is not None else self.inputs.context,
            params if params is not None else self.inputs.params,
            plan if plan is not None else self.record["chosen"],
            destination=self.destination,
        )

    def restated(self, plan: dict) -> dict:
        i = self.inputs
        return restate_plan(self.router.network, i.view, i.context, i.params, plan, destination=self.destination)


def route(name: str, lines, dest=NORTH, *, hours: float = 0.0, **order) -> Case:
    r = Router(load_scenario(TINY / f"{name}.yaml"), ledger=None, clock=FixedClock())
    r.state.set_clock_hours(hours)
    d = r.route(make_order("o1", lines, dest={"lat": dest[0], "lon": dest[1]}, **order))
    assert d.status == "routed"
    return Case(r, d.record, decision_inputs(d.record), dest)


def found(violations: list[Violation]) -> list[tuple[str, int | str]]:
    return [(v.rule, v.where) for v in violations]


def detail(violations: list[Violation], rule: str) -> str:
    return " | ".join(v.detail for v in violations if v.rule == rule)


def tiny_network(name: str, *, lanes=()) -> Network:
    """A tiny scenario's network with extra lanes (the plan is checked against a changed world)."""
    data = yaml.safe_load((TINY / f"{name}.yaml").read_text(encoding="utf-8"))
    data["lanes"] = [*data.get("lanes", []), *lanes]
    return build_network(parse_scenario(data))


@pytest.fixture(scope="module")
def one_leg() -> Case:
    """two_warehouses_one_carrier: 2 x SKU-1 + 1 x SKU-2 to north ship from WH-A ($5 + 3 x $1)."""
    case = route("two_warehouses_one_carrier", [("SKU-1", 2), ("SKU-2", 1)])
    legs = case.record["chosen"]["legs"]
    assert [(leg["node_id"], leg["shipping_cost_usd"]) for leg in legs] == [("WH-A", 8.0)]
    return case


@pytest.fixture(scope="module")
def two_legs() -> Case:
    """split_needed: SKU-A (only at WH-A) + SKU-B (only at WH-B) to center: two legs."""
    case = route("split_needed", [("SKU-A", 1), ("SKU-B", 1)], CENTER)
    assert [leg["node_id"] for leg in case.record["chosen"]["legs"]] == ["WH-A", "WH-B"]
    return case


@pytest.fixture(scope="module")
def quantity_split() -> Case:
    """split_needed: 8 x SKU-C, 5 at each node: the split solver divides the line 5 + 3."""
    case = route("split_needed", [("SKU-C", 8)], CENTER)
    assert case.record["solver"]["name"].startswith("mathopt")
    assert [ln["qty"] for leg in case.record["chosen"]["legs"] for ln in leg["lines"]] == [5, 3]
    return case


# ------------------------------------------------------------------ valid plans


def test_routed_plans_of_every_tiny_scenario_break_no_rule(one_leg, two_legs, quantity_split):
    assert one_leg.check() == []
    assert two_legs.check() == []
    assert quantity_split.check() == []
    # tiers_and_storm: handling, two carriers, the storm on north (hour 13), a vip promise
    storm = route("tiers_and_storm", [("SKU-1", 1), ("SKU-2", 2)], NORTH, hours=13.0, tier="vip")
    assert storm.inputs.view.weather_node.any() or storm.inputs.context.dest_weather > 0
    assert storm.check() == []


def test_every_rule_is_documented():
    names = {
        "format", "coverage", "node", "stock", "max_splits", "quantity_split", "lane", "volume",
        "distance", "shipping", "handling", "eta", "late_risk", "aggregate", "score",
    }
    assert set(RULES) == names
    assert all(text.startswith(("Hard:", "Exact:")) for text in RULES.values())


# --------------------------------------------------------------- hand-computed


def test_hand_computed_cost_and_eta_of_the_smallest_network(one_leg):
    # two_warehouses_one_carrier's rate card: $5 per shipment + $1 per unit, no handling;
    # transit 24 x max(1, 1 + miles / 500) h; WH-A (40N) to north (41N) is one degree.
    miles = MILES_PER_DEGREE
    ship = 5.0 + 3 * 1.0
    # 00:00 UTC, no queue: the parcel waits 20 h for WH-A's 20:00 cut-off, then travels
    eta = 20.0 + 24.0 * (1.0 + miles / 500.0)
    i = one_leg.inputs
    p = price_leg(one_leg.router.network, i.view, i.context, "WH-A", "parcel", "ground", {"SKU-1": 2, "SKU-2": 1},
                  destination=NORTH)
    assert p.shipping_usd == pytest.approx(ship, abs=1e-12) and p.handling_usd == 0.0
    assert p.distance_miles == pytest.approx(miles, abs=1e-9)
    assert p.eta_hours == pytest.approx(eta, abs=1e-9)
    leg = one_leg.record["chosen"]["legs"][0]
    assert leg["shipping_cost_usd"] == ship and leg["eta_hours"] == pytest.approx(eta, abs=1e-6)


RICH = {
    "name": "rich_leg",
    "regions": [{"id": "north", "lat": 41.0, "lon": -90.0}],
    "nodes": [
        {
            "id": "WH-A", "lat": 40.0, "lon": -90.0, "cutoff_hour_utc": 20.0,
            "handling_per_shipment_usd": 1.0, "handling_per_unit_usd": 0.2,
            "handling_per_carton_usd": 0.5, "carton_volume_cuft": 0.5,
        }
    ],
    "carriers": [
        {
            "id": "parcel",
            "dim_weight_factor_lb_per_cuft": 10.0,
            "services": [
                {
                    "name": "ground",
                    "cost": {
                        "fixed_usd": 4.0, "per_unit_usd": 0.5, "per_unit_mile_usd": 0.01, "per_lb_usd": 0.25,
                        "weight_tiers_lb": [2.0, 5.0], "weight_rates_usd": [1.0, 3.0],
                    },
                    "transit": {"base_days": 1.0, "miles_per_day": 500.0, "min_days": 1.0, "sigma_frac": 0.0},
                }
            ],
        }
    ],
    "skus": [
        {"id": "BULKY", "unit_weight_lb": 1.5, "unit_volume_cuft": 0.3},
        {"id": "SMALL", "unit_weight_lb": 0.5, "unit_volume_cuft": 0.05},
    ],
    "stock": {"WH-A": {"BULKY": 10, "SMALL": 10}},
}


@pytest.mark.parametrize(
    "lines, billable_lb, tier_usd",
    [
        # 2 x BULKY: 3 lb actual, 0.6 cuft x 10 lb/cuft = 6 lb dimensional; above the last
        # bound (5 lb) the last rate applies
        ({"BULKY": 2}, 6.0, 3.0),
        # 1 x SMALL: 0.5 lb actual and dimensional; the first tier (<= 2 lb)
        ({"SMALL": 1}, 0.5, 1.0),
    ],
)
def test_hand_computed_cost_with_dim_weight_weight_tiers_per_mile_and_cartons(lines, billable_lb, tier_usd):
    r = Router(parse_scenario(RICH), ledger=None, clock=FixedClock())
    d = r.route(make_order("rich", list(lines.items()), dest={"lat": NORTH[0], "lon": NORTH[1]}))
    (sku, units), = lines.items()
    volume = units * {"BULKY": 0.3, "SMALL": 0.05}[sku]
    miles = MILES_PER_DEGREE
    # fixed + units x (per unit + per unit-mile x miles) + per lb x billable + tier rate
    ship = 4.0 + units * (0.5 + 0.01 * miles) + 0.25 * billable_lb + tier_usd
    # per shipment + per unit x units + per carton x volume / carton volume
    handling = 1.0 + 0.2 * units + 0.5 * volume / 0.5
    i = decision_inputs(d.record)
    p = price_leg(r.network, i.view, i.context, "WH-A", "parcel", "ground", lines, destination=NORTH)
    assert p.billable_lb == pytest.approx(billable_lb) and p.tier_rate_usd == tier_usd
    assert p.shipping_usd == pytest.approx(ship, abs=1e-12)
    assert p.handling_usd == pytest.approx(handling, abs=1e-12)
    # the router's plan states the same figures, and the validator agrees with it
    leg = d.record["chosen"]["legs"][0]
    assert leg["shipping_cost_usd"] == pytest.approx(ship, abs=1e-6)
    assert leg["handling_cost_usd"] == pytest.approx(handling, abs=1e-6)
    assert r.validate_record(d.record) == []


def test_a_weight_on_a_tier_bound_may_be_billed_either_side():
    # 0.1 + 0.2 lb sums to 0.30000000000000004 in floats: on the 0.3 lb bound. The split
    # solver bills it in the 0.3 lb tier; the candidate generator one tier up. Both pass.
    data = copy.deepcopy(RICH)
    data["carriers"][0]["dim_weight_factor_lb_per_cuft"] = 0.0
    data["carriers"][0]["services"][0]["cost"] = {
        "fixed_usd": 1.0, "weight_tiers_lb": [0.3, 1.0], "weight_rates_usd": [1.0, 5.0]
    }
    data["skus"] = [{"id": "P", "unit_weight_lb": 0.1}, {"id": "Q", "unit_weight_lb": 0.2}]
    data["stock"] = {"WH-A": {"P": 5, "Q": 5}}
    r = Router(parse_scenario(data), ledger=None, clock=FixedClock())
    d = r.route(make_order("bound", [("P", 1), ("Q", 1)], dest={"lat": NORTH[0], "lon": NORTH[1]}))
    i = decision_inputs(d.record)
    p = price_leg(r.network, i.view, i.context, "WH-A", "parcel", "ground", {"P": 1, "Q": 1})
    assert (p.shipping_usd, p.shipping_alt_usd) == (pytest.approx(2.0), pytest.approx(6.0))
    assert r.validate_record(d.record) == []
    plan = copy.deepcopy(d.record["chosen"])
    leg = plan["legs"][0]
    plan["cost_usd"] += 4.0 - leg["shipping_cost_usd"]
    leg["shipping_cost_usd"] = 4.0  # neither side of the bound
    assert found(validate_plan(r.network, i.view, i.context, i.params, plan)) == [("shipping", 0), ("score", "plan")]


def test_late_risk_is_the_normal_tail_past_the_promise(one_leg):
    # sigma_frac 0 and no queue: the spread is the half-hour floor. A promise 0.3 h after the
    # ETA leaves z = 0.6: P(Z > 0.6) = 0.274253 (normal table).
    i = one_leg.inputs
    eta = one_leg.record["chosen"]["legs"][0]["eta_hours"]
    ctx = replace(i.context, promise_hours=eta + 0.3)
    p = price_leg(one_leg.router.network, i.view, ctx, "WH-A", "parcel", "ground", {"SKU-1": 2, "SKU-2": 1})
    assert p.sigma_hours == 0.5
    assert p.late_risk == pytest.approx(0.274253, abs=1e-6)


# -------------------------------------------------- penalised / not penalised


def test_coverage_a_dropped_line(one_leg):
    plan = one_leg.plan
    plan["legs"][0]["lines"] = [ln for ln in plan["legs"][0]["lines"] if ln["sku"] != "SKU-2"]
    v = one_leg.check(one_leg.restated(plan))
    assert found(v) == [("coverage", "plan")]
    assert "SKU-2: legs ship 0 units, the order has 1" in detail(v, "coverage")


def test_coverage_a_sku_the_order_does_not_have_and_a_zero_quantity(one_leg):
    plan = one_leg.plan
    plan["legs"][0]["lines"].append({"sku": "SKU-3", "qty": 1})
    v = one_leg.check(plan)
    assert found(v) == [("coverage", 0)]
    assert "WH-A ships 1 of SKU-3, which the order does not have" in detail(v, "coverage")
    plan = one_leg.plan
    plan["legs"][0]["lines"][1]["qty"] = 0
    v = one_leg.check(plan)
    assert found(v)[:2] == [("coverage", 0), ("coverage", "plan")]
    assert "ships 0 units of SKU-2: need a whole number > 0" in detail(v, "coverage")


def test_coverage_not_penalised_when_a_quantity_split_adds_up(quantity_split):
    assert quantity_split.check() == []


def test_stock_more_than_available(one_leg):
    view = one_leg.inputs.view
    avail = view.avail.copy()
    avail[0, 1] = 0  # WH-A holds no SKU-2 any more
    v = one_leg.check(view=replace(view, avail=avail))
    assert found(v) == [("stock", 0)]
    assert detail(v, "stock") == "WH-A ships 1 of SKU-2, may ship 0"


def test_stock_exactly_available_is_not_penalised(one_leg):
    view = one_leg.inputs.view
    avail = view.avail.copy()
    avail[0] = [2, 1]  # exactly the 2 x SKU-1 and 1 x SKU-2 the plan ships
    assert one_leg.check(view=replace(view, avail=avail)) == []


def test_stock_safety_stock_is_never_promised(one_leg):
    params = one_leg.inputs.params
    v = one_leg.check(params=params.model_copy(update={"safety_stock_units": 5}))  # WH-A has 5 x SKU-2
    assert found(v) == [("stock", 0)]
    assert detail(v, "stock") == "WH-A ships 1 of SKU-2, may ship 0 (5 available - safety stock 5)"
    assert one_leg.check(params=params.model_copy(update={"safety_stock_units": 4})) == []


def test_max_splits_too_many_legs(two_legs):
    params = two_legs.inputs.params
    v = two_legs.check(params=params.model_copy(update={"max_splits": 1}))
    assert found(v) == [("max_splits", "plan")]
    assert detail(v, "max_splits") == "2 nodes ship (WH-A, WH-B), params.max_splits is 1"
    assert two_legs.check(params=params.model_copy(update={"max_splits": 2})) == []


def test_max_splits_counts_nodes_not_legs():
    # two carriers' shipments from one node are one node: the split solver may do that
    # when a lane's volume limit demands it
    case = route("tiers_and_storm", [("SKU-1", 1), ("SKU-2", 1)], (37.0, -90.0))
    plan = case.plan
    leg = plan["legs"][0]
    assert leg["node_id"] == "WH-N" and len(leg["lines"]) == 2
    plan["legs"] = [
        {**leg, "carrier_id": "budget", "service": "ground", "lines": [leg["lines"][0]]},
        {**leg, "carrier_id": "acme", "service": "ground", "lines": [leg["lines"][1]]},
    ]
    params = case.inputs.params.model_copy(update={"max_splits": 1})
    assert case.check(case.restated(plan), params=params) == []


def test_quantity_split_when_not_allowed(quantity_split):
    params = quantity_split.inputs.params
    v = quantity_split.check(params=params.model_copy(update={"allow_quantity_split": False}))
    assert found(v) == [("quantity_split", "plan")]
    assert detail(v, "quantity_split") == "SKU-C is divided between legs 0, 1, params.allow_quantity_split is false"
    assert quantity_split.check(params=params.model_copy(update={"allow_quantity_split": True})) == []


def test_lane_an_unknown_carrier_service(one_leg):
    plan = one_leg.plan
    plan["legs"][0]["service"] = "overnight"
    v = one_leg.check(plan)
    assert found(v) == [("lane", 0)]
    assert detail(v, "lane") == "no carrier service 'parcel overnight' in the network"


def test_lane_a_disabled_lane():
    # tiers_and_storm at hour 0: one SKU-1 to mid is cheapest from WH-N with budget ground
    case = route("tiers_and_storm", [("SKU-1", 1)], (37.0, -90.0))
    assert [(leg["node_id"], leg["carrier_id"]) for leg in case.record["chosen"]["legs"]] == [("WH-N", "budget")]
    net = tiny_network("tiers_and_storm", lanes=[{"node": "WH-N", "carrier": "budget", "enabled": False}])
    v = case.check(net=net)
    assert found(v) == [("lane", 0)]
    assert detail(v, "lane") == "no lane WH-N -> budget ground: the carrier does not pick up there (disabled)"
    assert case.check(net=tiny_network("tiers_and_storm")) == []


def test_lane_at_zero_capacity_left(one_leg):
    view = one_leg.inputs.view
    left = np.full_like(view.lane_left, np.inf)
    left[0, 0] = 0.0  # WH-A x parcel ground shipped its daily capacity
    v = one_leg.check(view=replace(view, lane_left=left))
    assert found(v) == [("lane", 0)]
    assert detail(v, "lane") == "lane WH-A -> parcel ground has 0 shipments left today, needs 1"
    left[0, 0] = 1.0  # one shipment left: enough
    assert one_leg.check(view=replace(view, lane_left=left)) == []


def test_lane_a_service_the_order_does_not_allow(one_leg):
    ctx = one_leg.inputs.context
    v = one_leg.check(ctx=replace(ctx, option_allowed=np.zeros_like(ctx.option_allowed)))
    assert found(v) == [("lane", 0)]
    assert detail(v, "lane") == "parcel ground is not a service level the order allows"


def test_lane_used_twice(one_leg):
    plan = one_leg.plan
    leg = plan["legs"][0]
    plan["legs"] = [{**leg, "lines": [leg["lines"][0]]}, {**leg, "lines": [leg["lines"][1]]}]
    v = one_leg.check(one_leg.restated(plan))
    assert found(v) == [("lane", 1)]
    assert detail(v, "lane") == "lane WH-A -> parcel ground is already used by leg 0"


def test_volume_over_the_lanes_limit(one_leg):
    # the plan carries 3 units x 0.1 cuft; a 0.25 cuft limit per shipment is too small
    def capped(cuft: float) -> Network:
        lane = {"node": "WH-A", "carrier": "parcel", "max_shipment_volume_cuft": cuft}
        return tiny_network("two_warehouses_one_carrier", lanes=[lane])

    v = one_leg.check(net=capped(0.25))
    assert found(v) == [("volume", 0)]
    assert detail(v, "volume") == (
        "WH-A -> parcel ground carries 0.3 cuft, the lane takes at most 0.25 cuft per shipment"
    )
    assert one_leg.check(net=capped(0.3)) == []  # 3 x 0.1 cuft fits a 0.3 cuft limit (float noise allowed)


def test_node_closed_in_the_view(one_leg):
    view = one_leg.inputs.view
    closed = view.closed.copy()
    closed[0] = True
    v = one_leg.check(view=replace(view, closed=closed, closed_reason=("closed (power outage)", "")))
    assert found(v) == [("node", 0)]
    assert detail(v, "node") == "WH-A is closed in the view (closed (power outage))"
    closed[:] = [False, True]  # the other node closing changes nothing
    assert one_leg.check(view=replace(view, closed=closed, closed_reason=("", "closed"))) == []


def test_node_excluded_by_params_or_unknown(one_leg):
    params = one_leg.inputs.params
    v = one_leg.check(params=params.model_copy(update={"excluded_nodes": ("WH-A",)}))
    assert found(v) == [("node", 0)] and detail(v, "node") == "WH-A is in params.excluded_nodes"
    assert one_leg.check(params=params.model_copy(update={"excluded_nodes": ("WH-B",)})) == []
    plan = one_leg.plan
    plan["legs"][0]["node_id"] = "WH-Z"
    v = one_leg.check(plan)
    assert found(v) == [("node", 0)] and detail(v, "node") == "unknown node 'WH-Z'"


def test_shipping_off_by_a_cent(one_leg):
    plan = one_leg.plan
    plan["legs"][0]["shipping_cost_usd"] += 0.01
    plan["cost_usd"] += 0.01  # the plan agrees with its leg: only the price is wrong
    v = one_leg.check(plan)
    assert found(v) == [("shipping", 0)]
    assert detail(v, "shipping").startswith("WH-A -> parcel ground: shipping $8.010000, rate card gives $8.000000")


def test_shipping_within_the_six_decimal_rounding_is_not_penalised(one_leg):
    plan = one_leg.plan
    plan["legs"][0]["shipping_cost_usd"] += 5e-7
    plan["cost_usd"] += 5e-7
    assert one_leg.check(plan) == []


def test_handling_off_by_a_cent(two_legs):
    plan = two_legs.plan
    plan["legs"][1]["handling_cost_usd"] += 0.01
    plan["cost_usd"] += 0.01
    v = two_legs.check(plan)
    assert found(v) == [("handling", 1)]
    assert detail(v, "handling").startswith("WH-B: handling $0.010000, recomputed $0.000000")


def test_eta_off_by_an_hour(one_leg):
    plan = one_leg.plan
    plan["legs"][0]["eta_hours"] += 1.0
    plan["eta_hours"] += 1.0
    v = one_leg.check(plan)
    assert found(v) == [("eta", 0)]
    assert detail(v, "eta").endswith(
        "ETA 48.316517 h, recomputed 47.316517 h (queue 0.0000 + cut-off wait 20.0000 + transit 27.3165)"
    )


def test_late_risk_and_distance_restated_wrongly(one_leg):
    plan = one_leg.plan
    plan["legs"][0]["late_risk"] = plan["late_risk"] = 0.01
    v = one_leg.check(plan)
    assert found(v) == [("late_risk", 0)]
    assert "late risk 0.010000, recomputed 0.000000" in detail(v, "late_risk")
    plan = one_leg.plan
    plan["legs"][0]["distance_miles"] += 1.0
    v = one_leg.check(plan)
    assert found(v) == [("distance", 0)]
    assert detail(v, "distance") == "WH-A: distance 70.094 mi, recomputed 69.094 mi"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("cost_usd", 8.5, "cost_usd $8.500000, its legs sum to $8.000000"),
        ("eta_hours", 40.0, "eta_hours 40.000000, its latest leg arrives at 47.316517"),
        ("late_risk", 0.2, "late_risk 0.200000, 1 - prod(1 - leg risk) is 0.000000"),
        ("promise_hours", 96.0, "promise_hours 96.000000, the context promises 120.000000"),
        ("kind", "split", "kind is 'split' but the plan has 1 legs: 'single'"),
    ],
)
def test_aggregate_disagrees_with_the_legs(one_leg, field, value, message):
    plan = one_leg.plan
    plan[field] = value
    v = one_leg.check(plan)
    assert found(v) == [("aggregate", "plan")]
    assert detail(v, "aggregate") == message


def test_aggregates_of_two_legs_are_sums_maxima_and_products(two_legs):
    assert two_legs.check() == []
    plan = two_legs.plan
    plan["kind"] = "single"
    assert found(two_legs.check(plan)) == [("aggregate", "plan")]


def test_score_off_by_a_cent(two_legs):
    plan = two_legs.plan
    plan["score"] += 0.01
    v = two_legs.check(plan)
    assert found(v) == [("score", "plan")]
    # cost $12 + ETA 47.316517 h x $0.02 + one extra shipment x $1
    assert "score 13.956330, recomputed 13.946330 (cost 12.000000, eta 0.946330" in detail(v, "score")
    assert "split 1.000000" in detail(v, "score")


def test_format_a_missing_number_and_not_a_plan(one_leg):
    plan = one_leg.plan
    del plan["legs"][0]["eta_hours"]
    plan["score"] = float("nan")
    v = one_leg.check(plan)
    assert found(v) == [("format", "plan"), ("format", 0)]
    assert "score is nan, not a finite number" in detail(v, "format")
    assert "eta_hours is None, not a finite number" in detail(v, "format")
    assert found(one_leg.check([])) == [("format", "plan"), ("coverage", "plan"), ("coverage", "plan")]


def test_every_violation_is_reported_not_just_the_first(one_leg):
    view = one_leg.inputs.view
    avail = view.avail.copy()
    avail[0] = 0
    plan = one_leg.plan
    plan["legs"][0]["shipping_cost_usd"] += 1.0
    plan["kind"] = "split"
    v = one_leg.check(plan, view=replace(view, avail=avail))
    assert found(v) == [("stock", 0), ("stock", 0), ("shipping", 0), ("aggregate", "plan"), ("aggregate", "plan")]


def test_check_plan_raises_a_typed_error_listing_every_violation(one_leg):
    i = one_leg.inputs
    plan = one_leg.plan
    plan["legs"][0]["eta_hours"] += 1.0
    plan["cost_usd"] = 1.0
    with pytest.raises(InvalidPlanError) as err:
        check_plan(one_leg.router.network, i.view, i.context, i.params, plan, subject="order o1")
    assert isinstance(err.value, RouterError)
    assert [v.rule for v in err.value.violations] == ["eta", "aggregate", "aggregate"]
    message = str(err.value)
    assert message.startswith("order o1 breaks 3 rules of a valid plan:")
    assert "eta (leg 0): WH-A -> parcel ground: ETA 48.316517 h" in message
    assert "aggregate (plan): cost_usd $1.000000, its legs sum to $8.000000" in message
    check_plan(one_leg.router.network, i.view, i.context, i.params, one_leg.record["chosen"])  # valid: no error


def test_a_plan_object_is_checked_like_its_json(one_leg):
    plan = plan_from_dict(one_leg.record["chosen"])
    assert one_leg.check(plan) == []


@pytest.mark.skipif(not nc.data_available(), reason=nc.SKIP_REASON)
def test_the_peer_case_plan_with_weight_tiers_dim_weight_and_volume_caps_is_valid():
    r = Router(parse_scenario(nc.nextmv_scenario_dict()), ledger=None, clock=FixedClock())
    d = r.route(nc.nextmv_order())
    assert d.plan.cost_usd == pytest.approx(9.35, abs=0.01)
    assert r.validate_record(d.record) == []
    # the peer's own published plan, restated from the rate cards, costs 13.46 and is valid too
    i = decision_inputs(d.record)
    labels, skus = nc.nextmv_arc_labels(), list(nc.nextmv_order_qty())
    legs = [
        {"node_id": node, "carrier_id": carrier, "service": service,
         "lines": [{"sku": skus[k], "qty": int(u)} for k, u in enumerate(units) if u]}
        for (node, carrier, service), units in zip(labels, nc.peer_plan_units()) if units.sum()
    ]
    peer = restate_plan(r.network, i.view, i.context, i.params, {"legs": legs})
    assert peer["cost_usd"] == pytest.approx(13.46, abs=0.01)
    assert validate_plan(r.network, i.view, i.context, i.params, peer) == []


def test_two_carriers_at_one_node_pay_the_load_term_once():
    # One node, pick queue 1200 orders at 100/h: load ratio 1200 / 2400 = 0.5, squared 0.25,
    # x load_usd $2 = $0.50 per node used. 8 units of 0.1 cuft do not fit one 0.5 cuft
    # shipment, so the split solver ships 5 + 3 with two carriers from the same node. The
    # score term charges the node twice ($1.00), so the validator finds the score $0.50 high.
    data = {
        "name": "one_node_two_carriers",
        "regions": [{"id": "north", "lat": 41.0, "lon": -90.0}],
        "nodes": [{"id": "WH-A", "lat": 40.0, "lon": -90.0, "initial_queue_orders": 1200, "pick_capacity_per_hour": 100}],
        "carriers": [
            {"id": "c", "services": [{"name": "ground", "cost": {"fixed_usd": 2.0}}]},
            {"id": "d", "services": [{"name": "ground", "cost": {"fixed_usd": 3.0}}]},
        ],
        "lanes": [
            {"node": "WH-A", "carrier": "c", "max_shipment_volume_cuft": 0.5},
            {"node": "WH-A", "carrier": "d", "max_shipment_volume_cuft": 0.5},
        ],
        "skus": [{"id": "P", "unit_volume_cuft": 0.1}],
        "stock": {"WH-A": {"P": 20}},
    }
    r = Router(parse_scenario(data), ledger=None, clock=FixedClock())
    d = r.route(make_order("load", [("P", 8)], dest={"lat": NORTH[0], "lon": NORTH[1]}))
    assert [(leg.node_id, leg.carrier_id) for leg in d.plan.legs] == [("WH-A", "c"), ("WH-A", "d")]
    assert r.validate_record(d.record) == []


# ------------------------------------------------------------------ debug mode


def test_debug_mode_passes_normal_decisions_and_split_solver_plans(tmp_path):
    for name, lines, dest in [
        ("two_warehouses_one_carrier", [("SKU-1", 2), ("SKU-2", 1)], NORTH),
        ("split_needed", [("SKU-C", 8)], CENTER),
        ("tiers_and_storm", [("SKU-1", 1), ("SKU-2", 2)], NORTH),
    ]:
        r = Router(load_scenario(TINY / f"{name}.yaml"), ledger=f"sqlite:///{tmp_path / name}.sqlite",
                   clock=FixedClock(), options=RouterOptions(check_plans=True))
        d = r.route(make_order("dbg", lines, dest={"lat": dest[0], "lon": dest[1]}))
        assert d.status == "routed"
        assert r.validate_record(r.ledger.get_decision(d.decision_id)) == []
        r.close()


def test_debug_mode_catches_a_broken_price_before_reserving(monkeypatch):
    real = candidates.single_leg_metrics

    def one_dollar_more(cs, *args, **kwargs):
        real(cs, *args, **kwargs)
        cs.leg_shipping_usd = cs.leg_shipping_usd + 1.0  # a pricing bug in the hot path

    monkeypatch.setattr(candidates, "single_leg_metrics", one_dollar_more)
    order = make_order("bug", [("SKU-1", 2), ("SKU-2", 1)], dest={"lat": NORTH[0], "lon": NORTH[1]})
    # without debug mode the bug goes through: the record agrees with itself
    plain = Router(load_scenario(TINY / "two_warehouses_one_carrier.yaml"), ledger=None, clock=FixedClock())
    assert plain.route(order).plan.legs[0].shipping_cost_usd == 9.0
    # with it, route() raises, names the leg and both numbers, and reserves nothing
    r = Router(load_scenario(TINY / "two_warehouses_one_carrier.yaml"), ledger="sqlite://", clock=FixedClock(),
               options=RouterOptions(check_plans=True))
    with pytest.raises(InvalidPlanError) as err:
        r.route(order)
    assert [(v.rule, v.where) for v in err.value.violations] == [("shipping", 0), ("score", "plan")]
    assert "order 'bug': the plan chosen by optimizer breaks 2 rules" in str(err.value)
    assert "WH-A -> parcel ground: shipping $9.000000, rate card gives $8.000000" in str(err.value)
    assert int(r.state.reserved.sum()) == 0 and r.recorded == 0
    r.close()


def test_debug_mode_catches_a_broken_eta_on_split_plans(monkeypatch):
    real = candidates.leg_metrics

    def an_hour_early(cs, *args, **kwargs):
        out = real(cs, *args, **kwargs)
        out.leg_eta_hours = out.leg_eta_hours - 1.0
        return out

    monkeypatch.setattr(candidates, "leg_metrics", an_hour_early)
    r = Router(load_scenario(TINY / "split_needed.yaml"), ledger=None, clock=FixedClock(), options=RouterOptions(check_plans=True))
    with pytest.raises(InvalidPlanError) as err:
        r.route(make_order("bug", [("SKU-C", 8)], dest={"lat": CENTER[0], "lon": CENTER[1]}))
    assert [(v.rule, v.where) for v in err.value.violations] == [("eta", 0), ("eta", 1), ("score", "plan")]
    assert "ETA 46.316517 h, recomputed 47.316517 h" in str(err.value)


def test_debug_mode_is_off_by_default_and_lean_records_cannot_be_validated():
    r = Router(load_scenario(TINY / "two_warehouses_one_carrier.yaml"), ledger=None, clock=FixedClock())
    assert r.options.check_plans is False
    d = r.route(make_order("lean", [("SKU-1", 1)]), explain=False)
    with pytest.raises(RouterError, match="stores no inputs"):
        r.validate_record(d.record)


def test_an_unfulfillable_decision_has_no_plan_to_break(tiny_router):
    params = load_scenario(TINY / "split_needed.yaml").params.model_copy(update={"max_splits": 1})
    r = tiny_router("split_needed", params=params)
    d = r.route(make_order("none", [("SKU-A", 1), ("SKU-B", 1)], dest={"region": "center"}))
    assert d.status == "unfulfillable" and r.validate_record(d.record) == []


# --------------------------------------------------------------- independence


def test_the_validator_imports_neither_the_generator_nor_a_solver():
    path = Path(__file__).resolve().parents[1] / "src" / "router" / "solver" / "validate.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            type_only |= {id(n) for n in ast.walk(node)}
    imported = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append(node.module or "")
    assert not [m for m in imported if m.split(".")[0] in {"ortools", "scipy", "numba"}]
    assert not [m for m in imported if m in {"router.candidates", "router.kernels", "router.scoring"}
                or m.startswith("router.solver.")]
