"""Leg physics: what one shipment from a node with a carrier option costs, and when it arrives.

One definition of every leg number, used by every path that prices a plan:

* :func:`lane_metrics` -- per (node, option) lane for one order and view: pick
  queue wait, wait for the carrier's cut-off, transit x congestion x weather, the
  ETA's spread and the late risk (the analytic estimate: queue and transit as
  normals, ``risk_model.version = analytic-normal-v1``; a learned delay-risk
  model (:class:`LaneRisk`) replaces the risk behind the same arrays);
* :func:`leg_metrics` -- per leg of a candidate set: units, weight, volume,
  billable weight, shipping (fixed + per unit + per unit-mile + per billable lb
  + weight tier) and handling (per shipment + per unit + per carton);
* :func:`single_leg_metrics` -- the same numbers for single-node plans, gathered
  from per-option and per-node arrays (bit-identical, fewer numpy calls);
* :func:`unit_cost_matrix` -- the linear part of the leg cost per line, which the
  split enumeration, its compiled kernel, its bounds and the split MIP price with;
  together with ``Network.per_shipment_usd`` it is the leg cost when billable
  weight equals actual weight and no weight tier applies.

``tests/test_legs.py`` checks that every path gives the same cost for the same leg.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

import numpy as np

from router.network import Network
from router.state import StateView

if TYPE_CHECKING:  # pragma: no cover
    from router.candidates import CandidateSet
    from router.context import OrderContext

__all__ = [
    "ANALYTIC_RISK_VERSION",
    "LaneRisk",
    "METRIC_FIELDS",
    "arc_unit_usd",
    "MIN_SIGMA_HOURS",
    "QUEUE_SIGMA_FRAC",
    "LaneMetrics",
    "destination_lanes",
    "lane_metrics",
    "leg_metrics",
    "normal_sf",
    "single_leg_metrics",
    "unit_cost_matrix",
]

# Why the spread of the pick queue is 25 % of its expected wait: picking rates
# fluctuate with labour and wave planning; a quarter is a conservative default
# until a fitted model replaces this analytic estimate.
QUEUE_SIGMA_FRAC = 0.25
MIN_SIGMA_HOURS = 0.5

#: The risk model version of the analytic estimate (queue and transit as normals).
ANALYTIC_RISK_VERSION = "analytic-normal-v1"


class LaneRisk(Protocol):
    """A learned late-risk estimate of every lane of an order (``router.risk.LaneRiskModel``)."""

    version: str

    def __call__(self, net: Network, view: StateView, ctx: OrderContext, lanes: LaneMetrics) -> np.ndarray:
        """float[N*O] P(late) per lane, given the analytic lane metrics (features are built from them)."""
        ...

METRIC_FIELDS = (
    "leg_miles",
    "leg_weight_lb",
    "leg_volume_cuft",
    "leg_billable_lb",
    "leg_shipping_usd",
    "leg_handling_usd",
    "leg_queue_hours",
    "leg_eta_hours",
    "leg_sigma_hours",
    "leg_risk",
)


def normal_sf(z: np.ndarray) -> np.ndarray:
    """P(Z > z) for a standard normal: scipy's ``ndtr(-z)``, one compiled ufunc.

    It replaced a 17-operation numpy polynomial (Abramowitz & Stegun 7.1.26, error
    < 1.5e-7) that cost 9 us of every decision's 0.3 ms; ndtr is exact to double
    precision and takes about 1 us on the 96 lanes of the national network.
    """
    return _ndtr()(-np.asarray(z, dtype=float))


@lru_cache(maxsize=1)
def _ndtr():
    # imported on first use: scipy.special adds ~0.3 s to `import router`, which
    # commands that never route (verify, strategies) should not pay
    from scipy.special import ndtr

    return ndtr


@dataclass(frozen=True, eq=False)
class LaneMetrics:
    """The physics of every (node, option) lane for one order: what a leg's ETA and risk need.

    A leg's queue wait, ETA, its spread and its late risk depend only on its
    (node, option), not on the units it carries, so they are computed once per
    order on the N x O grid (a few dozen numpy calls) instead of once per
    candidate chunk; legs then gather them by flat index ``node * O + option``.
    Every element is computed by the same expression, in the same order, as the
    per-leg formula it replaces, so the values are bit-identical.
    """

    queue_h: np.ndarray  # float[N] pick queue / throughput
    eta: np.ndarray  # float[N*O] expected hours to delivery (flat)
    sigma: np.ndarray  # float[N*O] spread of the ETA (flat)
    risk: np.ndarray  # float[N*O] P(leg arrives after the promise) (flat)
    per_unit_usd: np.ndarray  # float[N*O] per_unit + per_unit_mile x miles (flat)
    n_options: int
    risk_version: str = ANALYTIC_RISK_VERSION  # who estimated ``risk``
    # why a learned model's estimate was not used (the analytic risk stands in); None when it was
    risk_fallback: str | None = None

    def risk_info(self) -> dict:
        """``{"version", "fallback"?}``: the record's ``risk_model`` entry."""
        out: dict = {"version": self.risk_version}
        if self.risk_fallback is not None:
            out["fallback"] = self.risk_fallback
        return out



def destination_lanes(net: Network, miles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(transit days [N, O], per-unit rate [N, O]) of every lane to one destination.

    They depend on the distances alone, not on the state or the order's lines, so a
    router caches them per destination (``OrderContext.dest_lanes``).
    """
    transit_days = np.maximum(
        net.transit_min_days[None, :], net.transit_base_days[None, :] + miles[:, None] / net.transit_miles_per_day[None, :]
    )
    per_unit = net.per_unit_usd[None, :] + net.per_unit_mile_usd[None, :] * miles[:, None]
    return transit_days, per_unit


def nominal_cost_order(net: Network, miles: np.ndarray, per_unit: np.ndarray | None = None) -> np.ndarray:
    """Node indices cheapest first for a nominal parcel to one destination (ties by index).

    The parcel is one unit of the network's median SKU weight and volume, sent by the
    node's cheapest lane: per-shipment charges, the lane's per-unit rate at this
    distance, per-lb charge and node handling. Stores pick at higher cost than
    distribution centres, so the nearest nodes are not always the cheapest; candidate
    pools take the cheapest few that hold the whole order beside the nearest
    (:func:`router.rules.node_exclusions`). Depends on the destination only, so a
    router caches it per destination.
    """
    if per_unit is None:
        per_unit = destination_lanes(net, miles)[1]
    weight = float(np.median(net.sku_weight_lb))
    volume = float(np.median(net.sku_volume_cuft))
    parcel = (
        net.per_shipment_usd
        + per_unit
        + net.handling_unit_usd[:, None]
        + (net.handling_carton_usd / net.carton_volume_cuft)[:, None] * volume
        + net.per_lb_usd[None, :] * weight
    )
    return np.argsort(np.where(net.lane_ok, parcel, np.inf).min(axis=1), kind="stable")


def lane_metrics(
    net: Network, view: StateView, ctx: OrderContext, risk: LaneRisk | None = None, nodes: np.ndarray | None = None
) -> LaneMetrics:
    """ETA, spread, late risk and per-unit rate of every lane, for this order and view.

    With a learned ``risk`` model the late risk is the model's (its features read
    the analytic numbers); if the model fails or returns something that is not a
    probability per lane, the analytic risk stands and ``risk_fallback`` says why.
    ``nodes`` (bool[N], the order's candidate pool) computes the analytic numbers of
    those nodes' lanes only, NaN elsewhere: on a network of hundreds of stores an
    order reads a few dozen; every node (or None) gives every lane.
    """
    analytic = _analytic_lanes(net, view, ctx, None if nodes is None or nodes.all() else nodes)
    if risk is None:
        return analytic
    try:
        learned = np.asarray(risk(net, view, ctx, analytic), dtype=float)
        if learned.shape != analytic.risk.shape:
            raise ValueError(f"returned shape {learned.shape}, expected {analytic.risk.shape}")
        if not bool(((learned >= 0.0) & (learned <= 1.0)).all()):
            raise ValueError("returned values outside [0, 1]")
    except Exception as exc:  # noqa: BLE001 - a failing model must not stop routing: the analytic risk stands
        return replace(analytic, risk_fallback=f"risk model {risk.version} failed: {type(exc).__name__}: {exc}")
    return replace(analytic, risk=learned, risk_version=risk.version)


def _analytic_lanes(net: Network, view: StateView, ctx: OrderContext, nodes: np.ndarray | None = None) -> LaneMetrics:
    if nodes is not None:
        return _analytic_lanes_of(net, view, ctx, np.flatnonzero(nodes))
    transit_days, per_unit = ctx.dest_lanes or destination_lanes(net, ctx.dist_miles)
    queue_h = view.queue_orders / view.throughput_per_hour
    ready = ctx.now_hour_utc + queue_h
    wait = np.mod(net.cutoff_hour_utc - ready, 24.0)
    transit_h = 24.0 * transit_days * view.congestion * (1.0 + view.weather_node + ctx.dest_weather)[:, None]
    eta = (queue_h + wait)[:, None] + transit_h
    sigma = np.maximum(
        np.sqrt((net.transit_sigma_frac[None, :] * transit_h) ** 2 + ((QUEUE_SIGMA_FRAC * queue_h) ** 2)[:, None]),
        MIN_SIGMA_HOURS,
    )
    risk = normal_sf((ctx.promise_hours - eta) / sigma)
    return LaneMetrics(queue_h, eta.ravel(), sigma.ravel(), risk.ravel(), per_unit.ravel(), net.n_options)


def _analytic_lanes_of(net: Network, view: StateView, ctx: OrderContext, rows: np.ndarray) -> LaneMetrics:
    """:func:`_analytic_lanes` computed for the nodes ``rows`` only (the same expressions, row by row), NaN elsewhere."""
    transit_days, per_unit = ctx.dest_lanes or destination_lanes(net, ctx.dist_miles)
    queue_h = view.queue_orders / view.throughput_per_hour
    q = queue_h[rows]
    ready = ctx.now_hour_utc + q
    wait = np.mod(net.cutoff_hour_utc[rows] - ready, 24.0)
    transit_h = 24.0 * transit_days[rows] * view.congestion[rows] * (1.0 + view.weather_node[rows] + ctx.dest_weather)[:, None]
    eta_r = (q + wait)[:, None] + transit_h
    sigma_r = np.maximum(
        np.sqrt((net.transit_sigma_frac[None, :] * transit_h) ** 2 + ((QUEUE_SIGMA_FRAC * q) ** 2)[:, None]),
        MIN_SIGMA_HOURS,
    )
    risk_r = normal_sf((ctx.promise_hours - eta_r) / sigma_r)
    shape = (net.n_nodes, net.n_options)
    eta, sigma, risk = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    eta[rows], sigma[rows], risk[rows] = eta_r, sigma_r, risk_r
    return LaneMetrics(queue_h, eta.ravel(), sigma.ravel(), risk.ravel(), per_unit.ravel(), net.n_options)


def leg_metrics(
    cs: CandidateSet, net: Network, view: StateView, ctx: OrderContext, lanes: LaneMetrics | None = None
) -> CandidateSet:
    """Fill the per-leg physics arrays of ``cs`` in place and return it.

    ``lanes`` (from :func:`lane_metrics`) is shared by every chunk of one order;
    only the unit-dependent parts (weight, volume, shipping, handling) are
    computed per leg here.
    """
    if lanes is None:
        lanes = lane_metrics(net, view, ctx)
    node = cs.leg_node
    opt = cs.leg_opt
    active = node >= 0
    # Generated chunks (single, split of one size, solver) have no padded legs; only
    # concatenated sets do. Skipping the masking there saves a dozen array passes.
    dense = bool(active.all())
    if dense:
        n, o = node, opt
    else:
        n = np.where(active, node, 0)
        o = np.where(active, opt, 0)
    flat = n * lanes.n_options + o
    units_k = cs.leg_units.astype(float)
    units = units_k.sum(axis=2)
    weight = units_k @ ctx.weight_lb
    volume = units_k @ ctx.volume_cuft
    miles = ctx.dist_miles[n]
    billable = np.maximum(weight, net.dim_factor[o] * volume)
    shipping = net.fixed_usd[o] + units * lanes.per_unit_usd[flat] + net.per_lb_usd[o] * billable
    if net.any_weight_tiers:  # without tiers the rate is 0.0 and adding it changes nothing
        bounds = net.tier_bounds[o]  # [C, J, T]
        tier_i = np.minimum((bounds < billable[..., None]).sum(axis=-1), bounds.shape[-1] - 1)
        shipping = shipping + np.where(net.has_tiers[o], net.tier_rates[o, tier_i], 0.0)
    handling = (
        net.handling_ship_usd[n]
        + net.handling_unit_usd[n] * units
        + net.handling_carton_usd[n] * volume / net.carton_volume_cuft[n]
    )
    queue_h = lanes.queue_h[n]
    eta = lanes.eta[flat]
    sigma = lanes.sigma[flat]
    risk = lanes.risk[flat]

    cs.active = active
    if dense:
        cs.n_legs = np.empty(len(node), dtype=np.int64)
        cs.n_legs.fill(node.shape[1])
        cs.leg_miles = miles
        cs.leg_weight_lb = weight
        cs.leg_volume_cuft = volume
        cs.leg_billable_lb = billable
        cs.leg_shipping_usd = shipping
        cs.leg_handling_usd = handling
        cs.leg_queue_hours = queue_h
        cs.leg_eta_hours = eta
        cs.leg_sigma_hours = sigma
        cs.leg_risk = risk
        return cs
    cs.n_legs = active.sum(axis=1)
    cs.leg_miles = np.where(active, miles, 0.0)
    cs.leg_weight_lb = np.where(active, weight, 0.0)
    cs.leg_volume_cuft = np.where(active, volume, 0.0)
    cs.leg_billable_lb = np.where(active, billable, 0.0)
    cs.leg_shipping_usd = np.where(active, shipping, 0.0)
    cs.leg_handling_usd = np.where(active, handling, 0.0)
    cs.leg_queue_hours = np.where(active, queue_h, 0.0)
    cs.leg_eta_hours = np.where(active, eta, 0.0)
    cs.leg_sigma_hours = np.where(active, sigma, 0.0)
    cs.leg_risk = np.where(active, risk, 0.0)
    return cs


def single_leg_metrics(
    cs: CandidateSet, net: Network, ctx: OrderContext, lanes: LaneMetrics, sn: np.ndarray, so: np.ndarray
) -> None:
    """:func:`leg_metrics` for single-node plans, computed per option / per node and gathered.

    Every single plan ships the whole order, so its units, weight and volume are
    the same scalars for all candidates: billable weight and tier rate are per
    option, handling per node, shipping per lane. Each value is produced by the
    same expression as in :func:`leg_metrics` (weight and volume by the same
    matmul on one [1, 1, K] row), so the arrays are bit-identical; it is about
    half the numpy calls of the generic path, on arrays of O or N elements.
    """
    c = len(sn)
    if c == 0:
        # no candidates: the generic path fills empty arrays (lanes given, so the view is not read)
        leg_metrics(cs, net, None, ctx, lanes)  # type: ignore[arg-type]
        return
    # Weight and volume by the very matmul of leg_metrics on the same [C, 1, K] array:
    # numpy picks BLAS or its own loop by memory layout, and the two round differently
    # in the last bit, so a "cheaper" [K] dot product would not be bit-identical.
    units_k = cs.leg_units.astype(float)
    weight_c = units_k @ ctx.weight_lb  # [C, 1], every row equal
    volume_c = units_k @ ctx.volume_cuft
    units = units_k[0, 0].sum()
    weight = weight_c[0, 0]
    volume = volume_c[0, 0]
    billable_o = np.maximum(weight, net.dim_factor * volume)  # [O]
    ship_o = net.per_lb_usd * billable_o
    flat = (sn * lanes.n_options + so)[:, None]  # [C, 1]
    n = sn[:, None]
    # Per candidate lane, the same element-wise expressions as over the whole [N, O] grid
    # (so the same bits): on a network of hundreds of nodes an order has a few dozen lanes.
    shipping = net.fixed_usd[so] + units * lanes.per_unit_usd[flat[:, 0]] + ship_o[so]
    if net.any_weight_tiers:
        bounds = net.tier_bounds
        tier_i = np.minimum((bounds < billable_o[:, None]).sum(axis=-1), bounds.shape[-1] - 1)
        tier_o = np.where(net.has_tiers, net.tier_rates[np.arange(net.n_options), tier_i], 0.0)
        shipping = shipping + tier_o[so]
    handling = (
        net.handling_ship_usd[sn]
        + net.handling_unit_usd[sn] * units
        + net.handling_carton_usd[sn] * volume / net.carton_volume_cuft[sn]
    )
    cs.active = np.ones((c, 1), dtype=bool)
    cs.n_legs = np.ones(c, dtype=np.int64)
    cs.leg_miles = ctx.dist_miles[n]
    cs.leg_weight_lb = weight_c
    cs.leg_volume_cuft = volume_c
    cs.leg_billable_lb = billable_o[so[:, None]]
    cs.leg_shipping_usd = shipping[:, None]
    cs.leg_handling_usd = handling[:, None]
    cs.leg_queue_hours = lanes.queue_h[n]
    cs.leg_eta_hours = lanes.eta[flat]
    cs.leg_sigma_hours = lanes.sigma[flat]
    cs.leg_risk = lanes.risk[flat]


def unit_cost_matrix(net: Network, ctx: OrderContext, rows: np.ndarray | None = None) -> np.ndarray:
    """float[N, O, K]: linear cost of line k's units at node n with option o (tiers excluded).

    With ``rows`` (node indices) only those rows are computed, by the same element-wise
    expressions (the same bits), and every other row is 0.
    """
    per_unit = ctx.dest_lanes[1] if ctx.dest_lanes is not None else destination_lanes(net, ctx.dist_miles)[1]  # [N, O]
    if rows is not None:
        out = np.zeros((net.n_nodes, net.n_options, len(ctx.qty)))
        pu = per_unit[rows]
        handling_unit = net.handling_unit_usd[rows][:, None] + 0.0 * pu
        carton = (net.handling_carton_usd[rows] / net.carton_volume_cuft[rows])[:, None, None] * ctx.volume_cuft[None, None, :]
        out[rows] = (
            (pu + handling_unit)[:, :, None] + net.per_lb_usd[None, :, None] * ctx.weight_lb[None, None, :] + carton
        ) * ctx.qty[None, None, :]
        return out
    handling_unit = net.handling_unit_usd[:, None] + 0.0 * per_unit  # [N, O]
    carton = (net.handling_carton_usd / net.carton_volume_cuft)[:, None, None] * ctx.volume_cuft[None, None, :]
    return (
        (per_unit + handling_unit)[:, :, None]
        + net.per_lb_usd[None, :, None] * ctx.weight_lb[None, None, :]
        + carton
    ) * ctx.qty[None, None, :]


def arc_unit_usd(net: Network, ctx: OrderContext, arc_node: np.ndarray, arc_opt: np.ndarray) -> np.ndarray:
    """float[A, K]: per-unit cost of line k on arc (node, option), billable weight excluded.

    The split MIP's linear price of a unit: carrier per unit and per unit-mile,
    node handling per unit and per carton volume. The per-lb charge, billable
    (dimensional) weight and weight tiers are modelled by the MIP itself.
    :func:`unit_cost_matrix` is this plus the per-lb charge on actual weight,
    times the line's units.
    """
    n, o = arc_node, arc_opt
    dist = ctx.dist_miles[n]
    return (
        (net.per_unit_usd[o] + net.per_unit_mile_usd[o] * dist + net.handling_unit_usd[n])[:, None]
        + (net.handling_carton_usd[n] / net.carton_volume_cuft[n])[:, None] * ctx.volume_cuft[None, :]
    )
