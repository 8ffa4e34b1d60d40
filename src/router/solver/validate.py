"""The independent plan validator: the specification of a valid plan, written a second time.

Given the network, the :class:`~router.state.StateView` a decision read, the order
context, the :class:`~router.params.StrategyParams` and a plan (the JSON of a
:class:`~router.domain.Plan`, as a decision record stores it under ``chosen``),
:func:`validate_plan` returns every rule the plan breaks, and :func:`check_plan`
raises :class:`~router.errors.InvalidPlanError` listing them.

Why a second implementation: the candidate generator (``router.candidates``) prices
every leg once, and the record's plan, scores and rationale are all read off those
arrays, so comparing them with each other cannot catch a wrong price. The CP-SAT
Primer's advice for optimisation code is a solution checker written apart from the
model: it is the specification, and the model is tested against it. This module
therefore imports nothing that computes from ``router.candidates`` (only the
``OrderContext`` type, for annotations), no solver and no OR-Tools. The formulas are
written again, leg by leg in plain Python floats, from the definitions in
``router.domain`` (``CostModel``, ``TransitModel``, ``Node``, ``Lane``), the flat
arrays of ``router.network`` and docs/scenarios.md; a bug in the vectorised hot path
shows up here as a disagreement. It sits in ``solver/`` because that is where the
design puts the check of any plan, next to the solvers whose answers it checks.

The rules (``Violation.rule``), each a small function below:

==============  ==========================================================================
rule            a valid plan ...
==============  ==========================================================================
format          is a mapping with legs; every leg and plan number is present and finite
coverage        ships every order line's quantity exactly, nothing else, in whole units > 0
node            ships only from known nodes that are open in the view and not excluded
stock           ships per node and SKU at most ``avail - safety_stock_units`` of the view
max_splits      ships from at most ``params.max_splits`` distinct nodes
quantity_split  divides a line between legs only if ``params.allow_quantity_split``
lane            uses existing, enabled lanes with capacity left today, of a service the
                order allows, each (node, carrier, service) once
volume          keeps each shipment within its lane's ``max_shipment_volume_cuft``
distance        states each leg's great-circle miles to the destination (3 decimals)
shipping        states each leg's carrier charge as the rate card prices it
handling        states each leg's node handling charge
eta             states each leg's expected hours to delivery
late_risk       states each leg's probability of missing the promise (analytic model)
aggregate       has plan totals that agree with its legs, and ``kind`` with their count
score           has the score the strategy params give its recomputed terms
==============  ==========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from router.errors import InvalidPlanError
from router.network import EARTH_RADIUS_MILES, Network
from router.params import StrategyParams
from router.state import StateView

if TYPE_CHECKING:
    from router.candidates import OrderContext

__all__ = [
    "ABS_TOL",
    "DISTANCE_ABS_TOL",
    "REL_TOL",
    "RULES",
    "TIER_TOL_LB",
    "LegPrice",
    "Violation",
    "check_plan",
    "great_circle_miles",
    "price_leg",
    "restate_plan",
    "validate_plan",
]

#: One line per rule: what it demands (the names ``Violation.rule`` takes).
RULES: dict[str, str] = {
    "format": "Hard: the plan is a mapping with legs; every number it states is present and finite.",
    "coverage": "Hard: legs ship every order line's quantity exactly, no other SKU, whole units > 0.",
    "node": "Hard: every leg ships from a known node, open in the view and not in params.excluded_nodes.",
    "stock": "Hard: per node and SKU, units shipped <= view avail - params.safety_stock_units.",
    "max_splits": "Hard: at most params.max_splits distinct nodes ship.",
    "quantity_split": "Hard: a line is divided between legs only if params.allow_quantity_split.",
    "lane": "Hard: each leg's lane exists, has capacity left today, its service is allowed, used once.",
    "volume": "Hard: each leg's volume is within its lane's per-shipment volume limit.",
    "distance": "Exact: a leg's distance is the great-circle miles from its node to the destination.",
    "shipping": "Exact: a leg's shipping cost is the carrier service's rate card applied to it.",
    "handling": "Exact: a leg's handling cost is the node's per shipment + per unit + per carton.",
    "eta": "Exact: a leg's ETA is pick queue + wait for the cut-off + transit x congestion x weather.",
    "late_risk": "Exact: a leg's late risk is P(normal arrival > promise) of the analytic model.",
    "aggregate": "Exact: plan cost, ETA, late risk, promise and kind agree with its legs and context.",
    "score": "Exact: the plan's score is the params-weighted sum of its recomputed terms.",
}

# Tolerances. Stored numbers are rounded to 6 decimals (distances to 3), so a correct
# number is within 5e-7 (5e-4) of its exact value; the rest is float noise from
# computing the same formula in another order (numpy vectors vs Python floats,
# ndtr vs erfc), ~1e-15 relative. 1e-6 absolute + 1e-6 relative keeps every correct
# plan quiet and still catches a cent on any leg below $10,000 and an hour on any ETA.
REL_TOL = 1e-6
ABS_TOL = 1e-6
DISTANCE_ABS_TOL = 6e-4
# A volume may exceed a lane's limit by float noise only (the generator's allowance).
VOLUME_TOL_CUFT = 1e-9
#: A billable weight at most this far above a tier bound is on the bound: 0.1 + 0.2 lb
#: sums to 0.30000000000000004 in floats, and the carrier bills 0.3 lb. The rate of the
#: next tier up is accepted too, since which side of the bound float noise falls on is
#: not a pricing error (the split solver bills the bound's tier, the candidate generator
#: the next one).
TIER_TOL_LB = 1e-6

# Constants of the analytic late-risk model (risk model version analytic-normal-v1):
# the pick queue's spread is a quarter of its expected wait (picking rates vary with
# labour and waves), and no ETA is known to better than half an hour.
QUEUE_SIGMA_FRAC = 0.25
MIN_SIGMA_HOURS = 0.5
HOURS_PER_DAY = 24.0


@dataclass(frozen=True)
class Violation:
    """One broken rule of a plan.

    Attributes
    ----------
    rule : str
        A key of :data:`RULES`, e.g. ``"stock"``.
    where : int or str
        Index of the leg that breaks it, or ``"plan"`` for the plan as a whole.
    detail : str
        One sentence naming the numbers, e.g. ``"WH-A ships 6 of SKU-1, may ship 5"``.
    """

    rule: str
    where: int | str
    detail: str

    def __str__(self) -> str:
        at = f"leg {self.where}" if isinstance(self.where, int) else str(self.where)
        return f"{self.rule} ({at}): {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "where": self.where, "detail": self.detail}


@dataclass(frozen=True)
class LegPrice:
    """A leg priced from the definitions: what its stored numbers should be.

    Attributes
    ----------
    distance_miles : float
        Miles from the node to the destination.
    units : int
        Units the leg carries.
    weight_lb, volume_cuft : float
        Actual weight and volume shipped.
    billable_lb : float
        ``max(weight_lb, carrier dim factor x volume_cuft)``.
    tier_rate_usd : float
        Flat rate of the weight tier the billable weight falls in (0 without tiers).
    shipping_usd : float
        ``fixed + units x (per_unit + per_unit_mile x miles) + per_lb x billable + tier rate``.
    shipping_alt_usd : float or None
        The shipping charge one tier up, when the billable weight lies on a tier bound
        within :data:`TIER_TOL_LB` (either figure is accepted); None otherwise.
    handling_usd : float
        ``per shipment + per unit x units + per carton x volume / carton volume``.
    queue_hours, wait_hours, transit_hours : float
        Pick queue / throughput; hours from ready to the node's cut-off; door-to-door
        transit after congestion and weather.
    eta_hours : float
        ``queue_hours + wait_hours + transit_hours``.
    sigma_hours : float
        Spread of the ETA (normal).
    late_risk : float
        P(arrival after the promise).
    """

    distance_miles: float
    units: int
    weight_lb: float
    volume_cuft: float
    billable_lb: float
    tier_rate_usd: float
    shipping_usd: float
    shipping_alt_usd: float | None
    handling_usd: float
    queue_hours: float
    wait_hours: float
    transit_hours: float
    eta_hours: float
    sigma_hours: float
    late_risk: float


def great_circle_miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine miles between two points in degrees, earth radius 3958.8 miles (docs/scenarios.md)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dphi = p2 - p1
    dlam = math.radians(lon2) - math.radians(lon1)
    a = math.sin(dphi / 2.0) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlam / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_MILES * math.asin(math.sqrt(min(a, 1.0)))


def _normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal, from the complementary error function."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _tier_rates(net: Network, o: int, billable_lb: float) -> tuple[float, float | None]:
    """(rate, rate one tier up or None) of option ``o``'s weight tiers for ``billable_lb``.

    CostModel: the rate of the first tier whose bound is >= the billable weight, the
    last rate above the last bound, nothing without tiers. The network pads the
    bounds with +inf and the rates with the last rate; the card is its finite part.
    """
    if not bool(net.has_tiers[o]):
        return 0.0, None
    bounds = [float(b) for b in net.tier_bounds[o] if math.isfinite(b)]
    rates = [float(r) for r in net.tier_rates[o][: len(bounds)]]
    t = next((i for i, b in enumerate(bounds) if billable_lb - TIER_TOL_LB <= b), len(bounds) - 1)
    alt = None
    if billable_lb > bounds[t] and t + 1 < len(bounds):  # on the bound, a hair above it
        alt = rates[t + 1]
    return rates[t], alt


def _price(
    net: Network,
    view: StateView,
    ctx: OrderContext,
    n: int,
    o: int,
    units_k: Sequence[int],
    miles: float,
) -> LegPrice:
    """Price ``units_k`` (units per order line) shipped from node ``n`` with option ``o``."""
    units = int(sum(units_k))
    weight = 0.0
    volume = 0.0
    for k, u in enumerate(units_k):
        if u:
            s = int(ctx.sku_idx[k])
            # the catalogue's unit weight and volume, not the context's copy of them
            weight += u * float(net.sku_weight_lb[s])
            volume += u * float(net.sku_volume_cuft[s])
    # CostModel: billable weight is the larger of actual and dimensional weight
    billable = max(weight, float(net.dim_factor[o]) * volume)
    rate, alt = _tier_rates(net, o, billable)
    linear = (
        float(net.fixed_usd[o])
        + units * (float(net.per_unit_usd[o]) + float(net.per_unit_mile_usd[o]) * miles)
        + float(net.per_lb_usd[o]) * billable
    )
    shipping = linear + rate
    # Node: per shipment + per unit + per carton, cartons = volume / carton volume (fractional)
    handling = (
        float(net.handling_ship_usd[n])
        + float(net.handling_unit_usd[n]) * units
        + float(net.handling_carton_usd[n]) * volume / float(net.carton_volume_cuft[n])
    )
    # ETA: the order waits for the pick queue, then for the node's daily cut-off (a
    # parcel leaves at the cut-off: picked after it, the next day's), then travels.
    queue_h = float(view.queue_orders[n]) / float(view.throughput_per_hour[n])
    ready_hour = float(ctx.now_hour_utc) + queue_h
    wait_h = (float(net.cutoff_hour_utc[n]) - ready_hour) % HOURS_PER_DAY
    # TransitModel: 24 x max(min_days, base_days + miles / miles_per_day), times the lane's
    # congestion and (1 + weather severity at the node's region + at the destination)
    days = max(
        float(net.transit_min_days[o]), float(net.transit_base_days[o]) + miles / float(net.transit_miles_per_day[o])
    )
    weather = 1.0 + float(view.weather_node[n]) + float(ctx.dest_weather)
    transit_h = HOURS_PER_DAY * days * float(view.congestion[n, o]) * weather
    eta = queue_h + wait_h + transit_h
    # Spread: transit sd = sigma_frac x transit, queue sd = a quarter of the queue wait,
    # independent, and never below half an hour.
    sigma = max(math.hypot(float(net.transit_sigma_frac[o]) * transit_h, QUEUE_SIGMA_FRAC * queue_h), MIN_SIGMA_HOURS)
    risk = _normal_sf((float(ctx.promise_hours) - eta) / sigma)
    return LegPrice(
        distance_miles=miles,
        units=units,
        weight_lb=weight,
        volume_cuft=volume,
        billable_lb=billable,
        tier_rate_usd=rate,
        shipping_usd=shipping,
        shipping_alt_usd=None if alt is None else linear + alt,
        handling_usd=handling,
        queue_hours=queue_h,
        wait_hours=wait_h,
        transit_hours=transit_h,
        eta_hours=eta,
        sigma_hours=sigma,
        late_risk=risk,
    )


def _option_index(net: Network, carrier_id: str, service: str) -> int | None:
    for o, (c, s) in enumerate(zip(net.option_carrier, net.option_service)):
        if c == carrier_id and s == service:
            return o
    return None


def _leg_miles(net: Network, ctx: OrderContext, n: int, destination: tuple[float, float] | None) -> float:
    if destination is None:
        return float(ctx.dist_miles[n])
    return great_circle_miles(float(net.node_lat[n]), float(net.node_lon[n]), destination[0], destination[1])


def price_leg(
    net: Network,
    view: StateView,
    ctx: OrderContext,
    node_id: str,
    carrier_id: str,
    service: str,
    lines: Mapping[str, int],
    *,
    skus: Sequence[str] | None = None,
    destination: tuple[float, float] | None = None,
) -> LegPrice:
    """Price one leg from the definitions, without the candidate generator.

    Parameters
    ----------
    net : Network
        Nodes, carrier services (rate cards, transit models) and lanes.
    view : StateView
        Pick queues, throughput, congestion and weather the decision read.
    ctx : OrderContext
        The order: its lines, distances, promise, hour of day, destination weather.
    node_id, carrier_id, service : str
        The leg's node and carrier service.
    lines : mapping of str to int
        Units per SKU id; every SKU must be a line of the order.
    skus : sequence of str, optional
        SKU ids by catalogue index; defaults to ``net.sku_ids``.
    destination : (lat, lon), optional
        When given, miles are recomputed from coordinates; otherwise the context's.

    Returns
    -------
    LegPrice
        Distance, weights, shipping, handling, ETA, its spread and the late risk.

    Raises
    ------
    ValueError
        An unknown node or carrier service, or a SKU that is not a line of the order.
    """
    skus = tuple(skus) if skus is not None else net.sku_ids
    if node_id not in net.node_ids:
        raise ValueError(f"unknown node {node_id!r}")
    n = net.node_ids.index(node_id)
    o = _option_index(net, carrier_id, service)
    if o is None:
        raise ValueError(f"unknown carrier service {carrier_id!r} {service!r}")
    line_of = {skus[int(s)]: k for k, s in enumerate(ctx.sku_idx.tolist())}
    units_k = [0] * len(line_of)
    for sku, qty in lines.items():
        if sku not in line_of:
            raise ValueError(f"{sku!r} is not a line of the order")
        units_k[line_of[sku]] += int(qty)
    return _price(net, view, ctx, n, o, units_k, _leg_miles(net, ctx, n, destination))


# ---------------------------------------------------------------------- parsing


@dataclass
class _Leg:
    """One leg of the plan as read, with the indices the rules need (None when unknown)."""

    j: int
    node_id: str
    carrier_id: str
    service: str
    lines: list[tuple[str, Any]]
    numbers: dict[str, float | None]
    n: int | None = None
    o: int | None = None
    units_k: list[int] | None = None  # units per order line; None when a line is not in the order
    price: LegPrice | None = None
    # the shipping charge the score is recomputed with: the price one tier up when the
    # plan states that one for a weight on a tier bound (both are accepted)
    shipping_usd: float | None = None


_LEG_NUMBERS = ("distance_miles", "shipping_cost_usd", "handling_cost_usd", "eta_hours", "late_risk")
_PLAN_NUMBERS = ("cost_usd", "eta_hours", "promise_hours", "late_risk", "score")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _close(got: float, want: float, abs_tol: float = ABS_TOL) -> bool:
    return abs(got - want) <= abs_tol + REL_TOL * abs(want)


def _parse(plan: Any, out: list[Violation]) -> tuple[list[_Leg], dict[str, Any], int]:
    """Legs, plan numbers and the number of legs stated; what is malformed becomes a format violation."""
    if hasattr(plan, "model_dump"):  # a router.domain.Plan
        plan = plan.model_dump(mode="json")
    if not isinstance(plan, Mapping):
        out.append(Violation("format", "plan", f"a plan is a mapping, got {type(plan).__name__}"))
        return [], {}, 0
    raw_legs = plan.get("legs")
    if not isinstance(raw_legs, Sequence) or isinstance(raw_legs, (str, bytes)) or not raw_legs:
        out.append(Violation("format", "plan", f"a plan needs a non-empty list of legs, got {raw_legs!r}"))
        raw_legs = []
    numbers: dict[str, Any] = {}
    for key in _PLAN_NUMBERS:
        numbers[key] = _number(plan.get(key))
        if numbers[key] is None:
            out.append(Violation("format", "plan", f"{key} is {plan.get(key)!r}, not a finite number"))
    numbers["kind"] = plan.get("kind")
    legs = []
    for j, raw in enumerate(raw_legs):
        if not isinstance(raw, Mapping):
            out.append(Violation("format", j, f"a leg is a mapping, got {type(raw).__name__}"))
            continue
        ids = [raw.get(key) for key in ("node_id", "carrier_id", "service")]
        if not all(isinstance(x, str) for x in ids):
            out.append(Violation("format", j, f"node_id, carrier_id and service must be strings, got {ids}"))
            continue
        lines = []
        for line in raw.get("lines") or []:
            if isinstance(line, Mapping) and isinstance(line.get("sku"), str):
                lines.append((line["sku"], line.get("qty")))
            else:
                out.append(Violation("format", j, f"a line is {{sku, qty}}, got {line!r}"))
        leg_numbers = {}
        for key in _LEG_NUMBERS:
            leg_numbers[key] = _number(raw.get(key))
            if leg_numbers[key] is None:
                out.append(Violation("format", j, f"{key} is {raw.get(key)!r}, not a finite number"))
        legs.append(_Leg(j, ids[0], ids[1], ids[2], lines, leg_numbers))  # type: ignore[arg-type]
    return legs, numbers, len(raw_legs)


# ------------------------------------------------------------------------ rules


def _coverage(legs: list[_Leg], ctx: OrderContext, skus: Sequence[str]) -> list[Violation]:
    """Hard: every order line's quantity is shipped exactly; nothing else; whole units > 0.

    Also fills each leg's units per order line (``units_k``) for the rules after it.
    """
    out = []
    names = [skus[int(s)] for s in ctx.sku_idx.tolist()]
    qty = [int(q) for q in ctx.qty.tolist()]
    line_of = {name: k for k, name in enumerate(names)}
    shipped = [0] * len(names)
    for leg in legs:
        if not leg.lines:
            out.append(Violation("coverage", leg.j, f"{leg.node_id} ships no lines"))
        units_k: list[int] | None = [0] * len(names)
        seen: set[str] = set()
        for sku, q in leg.lines:
            if sku in seen:
                out.append(Violation("coverage", leg.j, f"{leg.node_id} lists {sku} twice in one leg"))
            seen.add(sku)
            if isinstance(q, bool) or not isinstance(q, int) or q <= 0:
                why = f"{leg.node_id} ships {q!r} units of {sku}: need a whole number > 0"
                out.append(Violation("coverage", leg.j, why))
                continue
            if sku not in line_of:
                why = f"{leg.node_id} ships {q} of {sku}, which the order does not have"
                out.append(Violation("coverage", leg.j, why))
                units_k = None
                continue
            shipped[line_of[sku]] += q
            if units_k is not None:
                units_k[line_of[sku]] += q
        leg.units_k = units_k
    for k, name in enumerate(names):
        if shipped[k] != qty[k]:
            out.append(Violation("coverage", "plan", f"{name}: legs ship {shipped[k]} units, the order has {qty[k]}"))
    return out


def _nodes(legs: list[_Leg], net: Network, view: StateView, params: StrategyParams) -> list[Violation]:
    """Hard: every leg ships from a known node, open in the view and not excluded by params.

    Also fills each leg's node index ``n`` for known nodes.
    """
    out = []
    index = {nid: i for i, nid in enumerate(net.node_ids)}
    for leg in legs:
        leg.n = index.get(leg.node_id)
        if leg.n is None:
            out.append(Violation("node", leg.j, f"unknown node {leg.node_id!r}"))
            continue
        if bool(view.closed[leg.n]):
            reason = view.closed_reason[leg.n] or "closed"
            out.append(Violation("node", leg.j, f"{leg.node_id} is closed in the view ({reason})"))
        if leg.node_id in params.excluded_nodes:
            out.append(Violation("node", leg.j, f"{leg.node_id} is in params.excluded_nodes"))
    return out


def _stock(
    legs: list[_Leg], net: Network, view: StateView, ctx: OrderContext, params: StrategyParams, skus: Sequence[str]
) -> list[Violation]:
    """Hard: per node and SKU, the units all legs ship <= view avail - safety stock."""
    out = []
    by_node: dict[int, list[_Leg]] = {}
    for leg in legs:
        if leg.n is not None and leg.units_k is not None:
            by_node.setdefault(leg.n, []).append(leg)
    safety = params.safety_stock_units
    for n, at in by_node.items():
        for k in range(len(ctx.qty)):
            units = sum(leg.units_k[k] for leg in at)  # type: ignore[index, misc]
            have = int(view.avail[n, k])
            # only what is shipped counts: a node short of a line it does not ship is fine
            if units > 0 and units > have - safety:
                where: int | str = at[0].j if len(at) == 1 else "plan"
                sku = skus[int(ctx.sku_idx[k])]
                extra = f" ({have} available - safety stock {safety})" if safety else ""
                may = max(have - safety, 0)
                why = f"{net.node_ids[n]} ships {units} of {sku}, may ship {may}{extra}"
                out.append(Violation("stock", where, why))
    return out


def _max_splits(legs: list[_Leg], params: StrategyParams) -> list[Violation]:
    """Hard: at most ``params.max_splits`` distinct nodes ship (the split solver's rule:
    it may use two carriers at one node when a lane's volume limit demands it)."""
    nodes = list(dict.fromkeys(leg.node_id for leg in legs))
    if len(nodes) > params.max_splits:
        return [
            Violation(
                "max_splits",
                "plan",
                f"{len(nodes)} nodes ship ({', '.join(nodes)}), params.max_splits is {params.max_splits}",
            )
        ]
    return []


def _quantity_split(legs: list[_Leg], params: StrategyParams) -> list[Violation]:
    """Hard: one line's units are divided between legs only if ``params.allow_quantity_split``."""
    if params.allow_quantity_split:
        return []
    legs_of: dict[str, list[int]] = {}
    for leg in legs:
        for sku in dict.fromkeys(sku for sku, _ in leg.lines):
            legs_of.setdefault(sku, []).append(leg.j)
    return [
        Violation(
            "quantity_split",
            "plan",
            f"{sku} is divided between legs {', '.join(map(str, js))}, params.allow_quantity_split is false",
        )
        for sku, js in legs_of.items()
        if len(js) > 1
    ]


def _lanes(legs: list[_Leg], net: Network, view: StateView, ctx: OrderContext) -> list[Violation]:
    """Hard: each leg's (node, carrier, service) lane exists and is enabled, has a shipment
    left today, offers a service the order allows, and no two legs share a lane.

    Also fills each leg's option index ``o`` for known carrier services.
    """
    out = []
    first_on: dict[tuple[int, int], int] = {}
    for leg in legs:
        leg.o = _option_index(net, leg.carrier_id, leg.service)
        label = f"{leg.carrier_id} {leg.service}"
        if leg.o is None:
            out.append(Violation("lane", leg.j, f"no carrier service {label!r} in the network"))
            continue
        if not bool(ctx.option_allowed[leg.o]):
            out.append(Violation("lane", leg.j, f"{label} is not a service level the order allows"))
        if leg.n is None:
            continue
        lane = f"{leg.node_id} -> {label}"
        if not bool(net.lane_ok[leg.n, leg.o]):
            out.append(Violation("lane", leg.j, f"no lane {lane}: the carrier does not pick up there (disabled)"))
        left = float(view.lane_left[leg.n, leg.o])
        if left < 1.0:
            out.append(Violation("lane", leg.j, f"lane {lane} has {left:g} shipments left today, needs 1"))
        key = (leg.n, leg.o)
        if key in first_on:
            out.append(Violation("lane", leg.j, f"lane {lane} is already used by leg {first_on[key]}"))
        else:
            first_on[key] = leg.j
    return out


def _volume(legs: list[_Leg], net: Network, ctx: OrderContext) -> list[Violation]:
    """Hard: each leg's volume is within its lane's per-shipment volume limit."""
    out = []
    for leg in legs:
        if leg.n is None or leg.o is None or leg.units_k is None:
            continue
        cap = float(net.lane_max_volume_cuft[leg.n, leg.o])
        volume = sum(u * float(net.sku_volume_cuft[int(ctx.sku_idx[k])]) for k, u in enumerate(leg.units_k))
        if volume > cap + VOLUME_TOL_CUFT:
            out.append(
                Violation(
                    "volume",
                    leg.j,
                    f"{leg.node_id} -> {leg.carrier_id} {leg.service} carries {volume:.6g} cuft, "
                    f"the lane takes at most {cap:.6g} cuft per shipment",
                )
            )
    return out


def _prices(
    legs: list[_Leg],
    net: Network,
    view: StateView,
    ctx: OrderContext,
    destination: tuple[float, float] | None,
    check_risk: bool,
) -> list[Violation]:
    """Exact: each leg's distance, shipping, handling, ETA and late risk, recomputed.

    Also fills each leg's ``price`` for the score.
    """
    out = []
    for leg in legs:
        if leg.n is None or leg.o is None or leg.units_k is None:
            continue  # reported by coverage / node / lane; nothing to price
        p = leg.price = _price(net, view, ctx, leg.n, leg.o, leg.units_k, _leg_miles(net, ctx, leg.n, destination))
        got = leg.numbers
        if got["distance_miles"] is not None and not _close(got["distance_miles"], p.distance_miles, DISTANCE_ABS_TOL):
            why = f"{leg.node_id}: distance {got['distance_miles']:.3f} mi, recomputed {p.distance_miles:.3f} mi"
            out.append(Violation("distance", leg.j, why))
        ship = got["shipping_cost_usd"]
        leg.shipping_usd = p.shipping_usd
        # a weight on a tier bound may be billed either side of it (see TIER_TOL_LB)
        alt = p.shipping_alt_usd
        if ship is not None and alt is not None and not _close(ship, p.shipping_usd) and _close(ship, alt):
            leg.shipping_usd = alt
        if ship is not None and not _close(ship, leg.shipping_usd):
            out.append(
                Violation(
                    "shipping",
                    leg.j,
                    f"{leg.node_id} -> {leg.carrier_id} {leg.service}: shipping ${ship:.6f}, rate card gives "
                    f"${p.shipping_usd:.6f} ({p.units} units, {p.distance_miles:.3f} mi, "
                    f"billable {p.billable_lb:.6g} lb, tier rate ${p.tier_rate_usd:.2f})",
                )
            )
        hand = got["handling_cost_usd"]
        if hand is not None and not _close(hand, p.handling_usd):
            out.append(
                Violation(
                    "handling",
                    leg.j,
                    f"{leg.node_id}: handling ${hand:.6f}, recomputed ${p.handling_usd:.6f} "
                    f"({p.units} units, {p.volume_cuft:.6g} cuft)",
                )
            )
        eta = got["eta_hours"]
        if eta is not None and not _close(eta, p.eta_hours):
            out.append(
                Violation(
                    "eta",
                    leg.j,
                    f"{leg.node_id} -> {leg.carrier_id} {leg.service}: ETA {eta:.6f} h, recomputed {p.eta_hours:.6f} h "
                    f"(queue {p.queue_hours:.4f} + cut-off wait {p.wait_hours:.4f} + transit {p.transit_hours:.4f})",
                )
            )
        risk = got["late_risk"]
        if check_risk and risk is not None and not _close(risk, p.late_risk):
            out.append(
                Violation(
                    "late_risk",
                    leg.j,
                    f"{leg.node_id} -> {leg.carrier_id} {leg.service}: late risk {risk:.6f}, "
                    f"recomputed {p.late_risk:.6f} (ETA {p.eta_hours:.4f} h, sd {p.sigma_hours:.4f} h, "
                    f"promise {float(ctx.promise_hours):.4f} h)",
                )
            )
    return out


def _aggregates(legs: list[_Leg], numbers: dict[str, Any], ctx: OrderContext, n_raw_legs: int) -> list[Violation]:
    """Exact: plan totals agree with the stated legs; the promise with the context; kind with the count.

    cost = sum of shipping + handling, ETA = the latest leg's, late risk = 1 - prod(1 - leg risk)
    (legs miss independently). Each stated leg number is rounded, so the allowance grows by
    one rounding step per leg.
    """
    out = []
    kind = numbers.get("kind")
    want_kind = "single" if n_raw_legs == 1 else "split"
    if n_raw_legs and kind != want_kind:
        why = f"kind is {kind!r} but the plan has {n_raw_legs} legs: {want_kind!r}"
        out.append(Violation("aggregate", "plan", why))
    promise = numbers.get("promise_hours")
    if promise is not None and not _close(promise, float(ctx.promise_hours)):
        why = f"promise_hours {promise:.6f}, the context promises {float(ctx.promise_hours):.6f}"
        out.append(Violation("aggregate", "plan", why))
    if not legs or len(legs) != n_raw_legs or any(v is None for leg in legs for v in leg.numbers.values()):
        return out  # malformed legs are reported by format; totals over them mean nothing
    tol = ABS_TOL * (1 + 2 * len(legs))
    stated = [leg.numbers for leg in legs]
    cost = sum(x["shipping_cost_usd"] + x["handling_cost_usd"] for x in stated)  # type: ignore[misc, operator]
    if numbers.get("cost_usd") is not None and not _close(numbers["cost_usd"], cost, tol):
        out.append(Violation("aggregate", "plan", f"cost_usd ${numbers['cost_usd']:.6f}, its legs sum to ${cost:.6f}"))
    eta = max(leg.numbers["eta_hours"] for leg in legs)  # type: ignore[type-var]
    if numbers.get("eta_hours") is not None and not _close(numbers["eta_hours"], eta, tol):  # type: ignore[arg-type]
        why = f"eta_hours {numbers['eta_hours']:.6f}, its latest leg arrives at {eta:.6f}"
        out.append(Violation("aggregate", "plan", why))
    stay = 1.0
    for leg in legs:
        stay *= 1.0 - leg.numbers["late_risk"]  # type: ignore[operator]
    risk = 1.0 - stay
    if numbers.get("late_risk") is not None and not _close(numbers["late_risk"], risk, tol):
        why = f"late_risk {numbers['late_risk']:.6f}, 1 - prod(1 - leg risk) is {risk:.6f}"
        out.append(Violation("aggregate", "plan", why))
    return out


def _score_terms(
    legs: Sequence[tuple[int, Sequence[int], LegPrice, float]],
    view: StateView,
    ctx: OrderContext,
    params: StrategyParams,
) -> dict[str, float]:
    """Contribution of every score term for legs given as (node, units per line, price, shipping).

    cost_weight x cost + eta_hour_usd x ETA + late_hour_usd x tier x hours past the promise
    + late_risk_usd x tier x P(some leg is late) + load_usd x sum over the nodes used of
    (queue / a day's throughput)^2 + split_penalty_usd x (shipments - 1)
    + stock_value_weight x units x shadow price (router.scoring's terms, as documented).
    """
    cost = sum(ship + p.handling_usd for _, _, p, ship in legs)
    eta = max(p.eta_hours for _, _, p, _ in legs)
    stay = 1.0
    for _, _, p, _ in legs:
        stay *= 1.0 - p.late_risk  # legs miss independently
    load = 0.0
    for n in dict.fromkeys(n for n, _, _, _ in legs):
        ratio = float(view.queue_orders[n]) / (float(view.throughput_per_hour[n]) * HOURS_PER_DAY)
        load += ratio * ratio
    stock_value = 0.0
    if view.stock_price is not None:
        for n, units_k, _, _ in legs:
            stock_value += sum(u * float(view.stock_price[n, k]) for k, u in enumerate(units_k))
    tier = float(ctx.tier_multiplier)
    return {
        "cost": params.cost_weight * cost,
        "eta": params.eta_hour_usd * eta,
        "lateness": params.late_hour_usd * tier * max(eta - float(ctx.promise_hours), 0.0),
        "late_risk": params.late_risk_weight(tier, view.late_risk_usd) * (1.0 - stay),
        "load": params.load_usd * load,
        "split": params.split_penalty_usd * (len(legs) - 1),
        "stock_value": params.stock_value_weight * stock_value,
    }


def _score(
    legs: list[_Leg],
    numbers: dict[str, Any],
    view: StateView,
    ctx: OrderContext,
    params: StrategyParams,
    check_risk: bool,
) -> list[Violation]:
    """Exact: the score is the params-weighted sum of the plan's terms, from recomputed legs.

    Skipped when a leg could not be priced, or when the risk model is not the analytic
    one (then the risk term is not ours to recompute).
    """
    stated = numbers.get("score")
    if stated is None or not legs or not check_risk or any(leg.price is None for leg in legs):
        return []
    terms = _score_terms(
        [(leg.n, leg.units_k, leg.price, leg.shipping_usd) for leg in legs],  # type: ignore[misc]
        view,
        ctx,
        params,
    )
    total = sum(terms.values())
    if _close(stated, total, ABS_TOL * len(terms)):
        return []
    parts = ", ".join(f"{name} {value:.6f}" for name, value in terms.items())
    return [Violation("score", "plan", f"score {stated:.6f}, recomputed {total:.6f} ({parts})")]


# -------------------------------------------------------------------------- API


def validate_plan(
    net: Network,
    view: StateView,
    ctx: OrderContext,
    params: StrategyParams,
    plan: Mapping[str, Any] | Any,
    *,
    skus: Sequence[str] | None = None,
    destination: tuple[float, float] | None = None,
    check_risk: bool = True,
) -> list[Violation]:
    """Every rule of a valid plan that ``plan`` breaks; an empty list when it is valid.

    Parameters
    ----------
    net : Network
        The scenario's network: nodes, carrier services, lanes, catalogue.
    view : StateView
        The slice of live state the decision read (a record's ``inputs.view``).
    ctx : OrderContext
        The order's context (a record's ``inputs.context``).
    params : StrategyParams
        The params the decision used (a record's ``strategy.params``).
    plan : mapping or Plan
        The plan as JSON (a record's ``chosen``) or a :class:`~router.domain.Plan`.
    skus : sequence of str, optional
        SKU ids by catalogue index; defaults to ``net.sku_ids``.
    destination : (lat, lon), optional
        The order's destination. When given, every leg's distance is recomputed from
        coordinates (and priced with it); otherwise the context's distances are taken
        as given.
    check_risk : bool
        Recompute late risks (and the score) with the analytic model. Pass False for a
        decision whose risk came from another model.

    Returns
    -------
    list of Violation
        In rule order (see the module docstring), each naming the leg and the numbers.
    """
    skus = tuple(skus) if skus is not None else net.sku_ids
    out: list[Violation] = []
    legs, numbers, n_raw_legs = _parse(plan, out)
    out += _coverage(legs, ctx, skus)
    out += _nodes(legs, net, view, params)
    out += _stock(legs, net, view, ctx, params, skus)
    out += _max_splits(legs, params)
    out += _quantity_split(legs, params)
    out += _lanes(legs, net, view, ctx)
    out += _volume(legs, net, ctx)
    out += _prices(legs, net, view, ctx, destination, check_risk)
    out += _aggregates(legs, numbers, ctx, n_raw_legs)
    out += _score(legs, numbers, view, ctx, params, check_risk)
    return out


def check_plan(
    net: Network,
    view: StateView,
    ctx: OrderContext,
    params: StrategyParams,
    plan: Mapping[str, Any] | Any,
    *,
    skus: Sequence[str] | None = None,
    destination: tuple[float, float] | None = None,
    check_risk: bool = True,
    subject: str = "plan",
) -> None:
    """:func:`validate_plan`, raising when anything is broken.

    Parameters
    ----------
    net, view, ctx, params, plan, skus, destination, check_risk
        As for :func:`validate_plan`.
    subject : str
        How the error message names the plan, e.g. ``"order o1's plan"``.

    Raises
    ------
    InvalidPlanError
        Listing every violation; ``err.violations`` holds them.
    """
    found = validate_plan(net, view, ctx, params, plan, skus=skus, destination=destination, check_risk=check_risk)
    if found:
        raise InvalidPlanError(found, subject=subject)


def restate_plan(
    net: Network,
    view: StateView,
    ctx: OrderContext,
    params: StrategyParams,
    plan: Mapping[str, Any] | Any,
    *,
    skus: Sequence[str] | None = None,
    destination: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """``plan`` with every number it states recomputed from the definitions.

    The structure is kept as given (legs, their nodes, carrier services and lines); each
    leg's distance (3 decimals), shipping, handling, ETA and late risk, and the plan's
    cost, ETA, promise, late risk, score (6 decimals) and kind are written afresh, as a
    decision record rounds them. A plan built or edited by hand (a test corrupting one
    rule, a reviewer's override) then breaks only the rules its structure breaks.

    Parameters
    ----------
    net, view, ctx, params, plan, skus, destination
        As for :func:`validate_plan`.

    Returns
    -------
    dict
        The plan as JSON.

    Raises
    ------
    ValueError
        A leg names an unknown node or carrier service, or a SKU that is not a line of
        the order: such a leg has no price.
    """
    if hasattr(plan, "model_dump"):
        plan = plan.model_dump(mode="json")
    skus = tuple(skus) if skus is not None else net.sku_ids
    line_of = {skus[int(s)]: k for k, s in enumerate(ctx.sku_idx.tolist())}
    legs_out, priced = [], []
    for leg in plan["legs"]:
        units_k = [0] * len(line_of)
        for line in leg["lines"]:
            if line["sku"] not in line_of:
                raise ValueError(f"{line['sku']!r} is not a line of the order")
            units_k[line_of[line["sku"]]] += int(line["qty"])
        p = price_leg(
            net,
            view,
            ctx,
            leg["node_id"],
            leg["carrier_id"],
            leg["service"],
            {sku: units_k[k] for sku, k in line_of.items() if units_k[k]},
            skus=skus,
            destination=destination,
        )
        priced.append((net.node_ids.index(leg["node_id"]), units_k, p, p.shipping_usd))
        legs_out.append(
            {
                **leg,
                "lines": [dict(line) for line in leg["lines"]],
                "distance_miles": round(p.distance_miles, 3),
                "shipping_cost_usd": round(p.shipping_usd, 6),
                "handling_cost_usd": round(p.handling_usd, 6),
                "eta_hours": round(p.eta_hours, 6),
                "late_risk": round(p.late_risk, 6),
            }
        )
    terms = _score_terms(priced, view, ctx, params) if priced else {}
    stay = 1.0
    for _, _, p, _ in priced:
        stay *= 1.0 - p.late_risk
    return {
        **plan,
        "legs": legs_out,
        "cost_usd": round(sum(ship + p.handling_usd for _, _, p, ship in priced), 6),
        "eta_hours": round(max((p.eta_hours for _, _, p, _ in priced), default=0.0), 6),
        "promise_hours": round(float(ctx.promise_hours), 6),
        "late_risk": round(1.0 - stay, 6),
        "score": round(sum(terms.values()), 6),
        "kind": "single" if len(legs_out) == 1 else "split",
    }
