"""Candidate plans for one order, as arrays.

A candidate set holds C plans of at most J legs each. Leg ``j`` of plan ``c``
ships ``leg_units[c, j, :]`` units of the order's K lines from node
``leg_node[c, j]`` with option (carrier x service) ``leg_opt[c, j]``; -1 pads
unused legs. Candidates come from three generators:

* single node: every usable (node, option) pair whose node holds every line;
* line splits: for each subset of 2..max_splits nodes and each service level,
  each line goes to the subset's node where it is cheapest per unit -- the
  exact optimum of the line-to-node assignment for that subset when costs are
  linear, enumerated as arrays (no Python object per candidate);
* the OR-Tools split solver (router.solver.split) for what neither covers: a
  line larger than any single node's stock, weight-tier billing (the engine
  merges its answer with :func:`from_units`).

Leg physics (shipping and handling cost, ETA, its spread) are computed here
once for all legs; score terms in router.scoring aggregate them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from router.network import Network
from router.params import StrategyParams
from router.state import StateView

__all__ = [
    "CandidateSet",
    "LaneMetrics",
    "OrderContext",
    "SplitSearch",
    "concat",
    "concat_all",
    "destination_lanes",
    "from_units",
    "lane_metrics",
    "leg_metrics",
    "line_feasibility",
    "node_exclusions",
    "normal_sf",
    "single_candidates",
    "split_candidates",
    "split_cost_lower_bound",
    "usable_options",
]

# Why the spread of the pick queue is 25 % of its expected wait: picking rates
# fluctuate with labour and wave planning; a quarter is a conservative default
# until a fitted model (router.risk) replaces this analytic estimate.
QUEUE_SIGMA_FRAC = 0.25
MIN_SIGMA_HOURS = 0.5


@dataclass(frozen=True, eq=False)
class OrderContext:
    """What the candidate generator and scores need to know about one order."""

    sku_idx: np.ndarray  # int[K] index into the scenario catalogue
    qty: np.ndarray  # int[K]
    weight_lb: np.ndarray  # float[K] per unit
    volume_cuft: np.ndarray  # float[K] per unit
    dist_miles: np.ndarray  # float[N] node -> destination
    dest_region: int
    dest_weather: float
    promise_hours: float  # from the decision time to the promise
    now_hour_utc: float  # hour of day at decision time
    tier: str
    tier_multiplier: float
    tier_node_rank: np.ndarray  # int[N] position in the tier's node_priority (len = not listed)
    option_allowed: np.ndarray  # bool[O] (service level requested)
    # destination_lanes(net, dist_miles) when the caller caches it per destination;
    # None computes it here (the same expressions, so the same bits)
    dest_lanes: tuple[np.ndarray, np.ndarray] | None = None


@dataclass(eq=False)
class CandidateSet:
    leg_node: np.ndarray  # int[C, J]
    leg_opt: np.ndarray  # int[C, J]
    leg_units: np.ndarray  # int[C, J, K]
    source: np.ndarray  # int[C]: 0 single, 1 line split, 2 split solver
    excluded: list[dict] = field(default_factory=list)
    solver: dict = field(default_factory=dict)
    # leg metrics, filled by leg_metrics()
    active: np.ndarray | None = None
    n_legs: np.ndarray | None = None
    leg_miles: np.ndarray | None = None
    leg_weight_lb: np.ndarray | None = None
    leg_volume_cuft: np.ndarray | None = None
    leg_billable_lb: np.ndarray | None = None
    leg_shipping_usd: np.ndarray | None = None
    leg_handling_usd: np.ndarray | None = None
    leg_queue_hours: np.ndarray | None = None
    leg_eta_hours: np.ndarray | None = None
    leg_sigma_hours: np.ndarray | None = None
    leg_risk: np.ndarray | None = None

    SOURCES = ("single", "split", "split_solver")

    def __len__(self) -> int:
        return int(self.leg_node.shape[0])

    def take(self, keep: np.ndarray) -> CandidateSet:
        """The candidates where ``keep`` is true (metrics included)."""
        out = CandidateSet(
            self.leg_node[keep], self.leg_opt[keep], self.leg_units[keep], self.source[keep], self.excluded, self.solver
        )
        for name in ("active", "n_legs", *_METRIC_FIELDS):
            val = getattr(self, name)
            if val is not None:
                setattr(out, name, val[keep])
        return out


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

    def at(self, arr: np.ndarray, node: np.ndarray, opt: np.ndarray) -> np.ndarray:
        """Gather a flat lane array at legs (node, option)."""
        return arr[node * self.n_options + opt]


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


def lane_metrics(net: Network, view: StateView, ctx: OrderContext) -> LaneMetrics:
    """ETA, spread, late risk and per-unit rate of every lane, for this order and view."""
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


@lru_cache(maxsize=256)
def _combos(n: int, size: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(n), size)), dtype=np.int64).reshape(-1, size)


def node_exclusions(
    net: Network,
    view: StateView,
    ctx: OrderContext,
    params: StrategyParams,
    usable: np.ndarray,
    skus: tuple[str, ...],
    *,
    detail: bool = True,
) -> tuple[np.ndarray, list[dict]]:
    """Which nodes may ship at all, and why each other node may not.

    Returns a bool[N] mask of nodes that are open, allowed, reachable by a usable
    lane and hold at least one line; plus one structured reason per node that
    is excluded or short of some line (``partial``: it may still ship in a split).

    ``detail=False`` skips the per-node reasons of closed, lane-less and short nodes
    (the mask is the same): only a record's rationale reads them, and writing five
    sentences per order is a tenth of a decision's time when nothing is recorded.
    """
    excluded_param = np.isin(np.asarray(net.node_ids), params.excluded_nodes) if params.excluded_nodes else None
    line_ok = view.avail - params.safety_stock_units >= ctx.qty[None, :]
    any_line = line_ok.any(axis=1)
    all_line = line_ok.all(axis=1)
    has_lane = usable.any(axis=1)
    ok = ~view.closed & has_lane & any_line
    if excluded_param is not None:
        ok &= ~excluded_param
    reasons: list[dict] = []
    bad = ~(ok & all_line)
    if detail and bad.any():
        # Per-node facts as Python lists once (not a handful of numpy calls per node):
        # the first line each node is short of and how many, its stock of that line.
        k_all = line_ok.shape[1]
        first_short = np.argmin(line_ok, axis=1).tolist()  # first False of the row
        n_short = (k_all - line_ok.sum(axis=1)).tolist()
        avail = view.avail.tolist()
        sku_idx, qty = ctx.sku_idx.tolist(), ctx.qty.tolist()
        closed, lane, any_l = view.closed.tolist(), has_lane.tolist(), any_line.tolist()
        ss = params.safety_stock_units
        for i in np.flatnonzero(bad).tolist():
            nid = net.node_ids[i]
            if excluded_param is not None and excluded_param[i]:
                reasons.append({"node": nid, "rule": "excluded", "detail": f"{nid}: excluded by params"})
            elif closed[i]:
                reasons.append({"node": nid, "rule": "closed", "detail": f"{nid}: {view.closed_reason[i]}"})
            elif not lane[i]:
                reasons.append({"node": nid, "rule": "lane", "detail": f"{nid}: no carrier lane with capacity left today"})
            else:
                k = first_short[i]
                more = f" (+{n_short[i] - 1} more lines)" if n_short[i] > 1 else ""
                have = max(avail[i][k] - ss, 0)
                reasons.append(
                    {
                        "node": nid,
                        "rule": "stock",
                        "detail": f"{nid}: stock {have} of {skus[sku_idx[k]]} (need {qty[k]}){more}",
                        "partial": any_l[i],
                    }
                )
    # Keep the nearest max_candidate_nodes of the remaining nodes; the network prunes the rest.
    idx = np.flatnonzero(ok)
    if len(idx) > params.max_candidate_nodes:
        order = idx[np.argsort(ctx.dist_miles[idx], kind="stable")]
        for i in order[params.max_candidate_nodes :].tolist():
            ok[i] = False
            nid = net.node_ids[i]
            reasons.append(
                {
                    "node": nid,
                    "rule": "distance",
                    "detail": f"{nid}: {ctx.dist_miles[i]:.0f} mi, not among the "
                    f"{params.max_candidate_nodes} nearest nodes with stock",
                }
            )
    return ok, reasons


def usable_options(net: Network, view: StateView, ctx: OrderContext) -> np.ndarray:
    """bool[N, O]: lane exists, has capacity left today, and the service is allowed."""
    return net.lane_ok & (view.lane_left >= 1.0) & ctx.option_allowed[None, :]


def line_feasibility(view: StateView, ctx: OrderContext, params: StrategyParams, node_ok: np.ndarray) -> np.ndarray:
    """bool[N, K]: the node may ship all units of line k."""
    return (view.avail - params.safety_stock_units >= ctx.qty[None, :]) & node_ok[:, None]


def single_candidates(
    net: Network,
    view: StateView,
    ctx: OrderContext,
    usable: np.ndarray,
    line_ok: np.ndarray,
    excluded: list[dict],
    lanes: LaneMetrics | None = None,
) -> CandidateSet:
    """Every usable option of every node that holds every line, with leg metrics."""
    k = len(ctx.qty)
    full = line_ok.all(axis=1)
    sn, so = np.nonzero(usable & full[:, None])
    units = np.empty((len(sn), 1, k), dtype=np.int64)
    units[...] = ctx.qty  # one broadcast copy (broadcast_to + astype made two arrays)
    cs = CandidateSet(
        sn[:, None].astype(np.int64, copy=False),
        so[:, None].astype(np.int64, copy=False),
        units,
        np.zeros(len(sn), dtype=np.int64),
    )
    cs.excluded = excluded
    if lanes is None:
        lanes = lane_metrics(net, view, ctx)
    _single_metrics(cs, net, ctx, lanes, sn, so)
    return drop_over_volume(cs, net)


def _single_metrics(
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
        return leg_metrics(cs, net, None, ctx, lanes)  # type: ignore[arg-type] - lanes given, view unused
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
    shipping = net.fixed_usd[None, :] + units * lanes.per_unit_usd.reshape(-1, net.n_options) + ship_o[None, :]
    if net.any_weight_tiers:
        bounds = net.tier_bounds
        tier_i = np.minimum((bounds < billable_o[:, None]).sum(axis=-1), bounds.shape[-1] - 1)
        tier_o = np.where(net.has_tiers, net.tier_rates[np.arange(net.n_options), tier_i], 0.0)
        shipping = shipping + tier_o[None, :]
    handling = net.handling_ship_usd + net.handling_unit_usd * units + net.handling_carton_usd * volume / net.carton_volume_cuft
    flat = (sn * lanes.n_options + so)[:, None]  # [C, 1]
    n = sn[:, None]
    cs.active = np.ones((c, 1), dtype=bool)
    cs.n_legs = np.ones(c, dtype=np.int64)
    cs.leg_miles = ctx.dist_miles[n]
    cs.leg_weight_lb = weight_c
    cs.leg_volume_cuft = volume_c
    cs.leg_billable_lb = billable_o[so[:, None]]
    cs.leg_shipping_usd = shipping.ravel()[flat]
    cs.leg_handling_usd = handling[n]
    cs.leg_queue_hours = lanes.queue_h[n]
    cs.leg_eta_hours = lanes.eta[flat]
    cs.leg_sigma_hours = lanes.sigma[flat]
    cs.leg_risk = lanes.risk[flat]


def _unit_cost_matrix(net: Network, ctx: OrderContext) -> np.ndarray:
    """float[N, O, K]: linear cost of line k's units at node n with option o (tiers excluded)."""
    per_unit = ctx.dest_lanes[1] if ctx.dest_lanes is not None else destination_lanes(net, ctx.dist_miles)[1]  # [N, O]
    handling_unit = net.handling_unit_usd[:, None] + 0.0 * per_unit  # [N, O]
    carton = (net.handling_carton_usd / net.carton_volume_cuft)[:, None, None] * ctx.volume_cuft[None, None, :]
    return (
        (per_unit + handling_unit)[:, :, None]
        + net.per_lb_usd[None, :, None] * ctx.weight_lb[None, None, :]
        + carton
    ) * ctx.qty[None, None, :]


def split_cost_lower_bound(
    net: Network, ctx: OrderContext, usable: np.ndarray, line_ok: np.ndarray, size: int = 2
) -> float:
    """A lower bound on the shipping + handling cost of any plan with ``size`` or more shipments.

    Each shipment pays at least the cheapest per-shipment charge (carrier fixed +
    node handling) among usable lanes, and each line at least its cheapest linear
    per-unit cost anywhere; weight tiers and billable weight only add. When this
    bound cannot beat the best single-node plan, enumerating splits is wasted work.
    """
    if not usable.any():
        return np.inf
    per_ship = net.fixed_usd[None, :] + net.handling_ship_usd[:, None]
    f_min = float(per_ship[usable].min())
    unit = _unit_cost_matrix(net, ctx)
    unit = np.where((usable[:, :, None] & line_ok[:, None, :]), unit, np.inf)
    line_min = unit.min(axis=(0, 1))
    return size * f_min + float(line_min.sum())


def split_candidates(
    net: Network,
    view: StateView,
    ctx: OrderContext,
    params: StrategyParams,
    usable: np.ndarray,
    line_ok: np.ndarray,
    excluded: list[dict],
    size: int,
) -> CandidateSet:
    """Line-level splits over node subsets of exactly ``size`` nodes, one service level per plan."""
    return SplitSearch(net, view, ctx, params, usable, line_ok).candidates(size, excluded)


@lru_cache(maxsize=64)
def _upper(n: int) -> np.ndarray:
    """bool[n, n]: i < j (each unordered pair once, in combinations order)."""
    out = np.triu(np.ones((n, n), dtype=bool), 1)
    out.setflags(write=False)
    return out


def _empty_set(k: int, excluded: list[dict]) -> CandidateSet:
    """No candidates, with (empty) leg metrics: what leg_metrics would fill, without its ~40 us."""
    node, opt, units, source, active, n_legs, metric = _empty_arrays(k)
    cs = CandidateSet(node, opt, units, source)
    cs.excluded = excluded
    cs.active = active
    cs.n_legs = n_legs
    for name in _METRIC_FIELDS:
        setattr(cs, name, metric)
    return cs


@lru_cache(maxsize=64)
def _empty_arrays(k: int):
    # Zero-size arrays hold nothing to write, so every empty set may share them
    # (most orders that reach the split search end with an empty chunk).
    return (
        np.zeros((0, 2), dtype=np.int64),
        np.zeros((0, 2), dtype=np.int64),
        np.zeros((0, 2, k), dtype=np.int64),
        np.zeros(0, dtype=np.int64),
        np.zeros((0, 2), dtype=bool),
        np.zeros(0, dtype=np.int64),
        np.zeros((0, 2)),
    )


class SplitSearch:
    """Line-split enumeration for one order, size by size, with what the sizes share computed once.

    For each subset of ``size`` nodes and each service level, every line goes to
    the subset's node where it is cheapest per unit (the carrier of each leg is
    the option of that service cheapest for the whole order at that node).

    Two kinds of lower bounds let the engine skip work that cannot change any
    registered strategy's choice (``nearest``, ``tier_rules``, ``cheapest``,
    ``optimizer``). The rule strategies rank fewer shipments first, so once a
    plan with fewer legs exists they never pick a plan of ``size`` legs; what
    remains is cost (``cheapest``) and total score (``optimizer``):

    * :meth:`cost_lower_bound` -- the original per-size cost bound;
    * :meth:`size_bound` -- a tighter bound on cost and on score of every plan
      with ``size`` or more legs at distinct nodes: the ``size`` cheapest
      per-shipment charges of distinct nodes plus each line's cheapest per-unit
      cost; for the score also the split penalty, the ``size`` smallest load
      terms, and the smallest ETA + lateness + late-risk of any usable lane (a
      plan's ETA is its latest leg's and its risk at least any leg's);
    * per subset, in :meth:`candidates` with ``bound``: the subset's exact
      linear cost (billable weight and weight tiers only add) and its exact
      ETA, risk, load and split terms.

    A plan is dropped only when it is worse than the best plan found so far on
    cost AND on score by more than a tolerance far above rounding error, so
    no strategy above could ever rank it first.
    """

    # Bounds and actual values are computed in different orders; 1e-6 USD (relative
    # to the magnitude) is far above the ~1e-13 rounding differences, far below any
    # difference that matters, and keeps `cheapest` (cost rounded to 9 decimals) safe.
    TOL = 1e-6

    def __init__(
        self,
        net: Network,
        view: StateView,
        ctx: OrderContext,
        params: StrategyParams,
        usable: np.ndarray,
        line_ok: np.ndarray,
        lanes: LaneMetrics | None = None,
    ) -> None:
        self.net, self.view, self.ctx, self.params = net, view, ctx, params
        self.usable, self.line_ok = usable, line_ok
        self.lanes = lanes if lanes is not None else lane_metrics(net, view, ctx)
        self.unit_all = _unit_cost_matrix(net, ctx)  # [N, O, K]
        self.partial_mask = line_ok.any(axis=1)  # nodes that hold at least one line
        self.partial_nodes = np.flatnonzero(self.partial_mask)
        # The compiled enumeration (router.kernels) applies every subset's own bounds, so
        # the size-level bounds below are not needed; with stock prices the numpy path
        # also offers the priced line assignment of each subset.
        self.compiled = COMPILED_SPLITS and (view.stock_price is None or params.stock_value_weight <= 0)
        if self.compiled:
            self.f_min = self.line_min_sum = np.nan  # unused on the compiled path
        elif usable.any():
            self.f_min = float(net.per_shipment_usd[usable].min())
            unit = np.where((usable[:, :, None] & line_ok[:, None, :]), self.unit_all, np.inf)
            self.line_min_sum = float(unit.min(axis=(0, 1)).sum())
        else:
            self.f_min = self.line_min_sum = np.inf
        self._groups: list | None = None
        self._tight: tuple | None = None
        self._grid: tuple | None = None

    # ------------------------------------------------------------------ bounds
    def cost_lower_bound(self, size: int) -> float:
        """:func:`split_cost_lower_bound` from the cached pieces (the same float expression)."""
        if not np.isfinite(self.f_min):
            return np.inf
        return size * self.f_min + self.line_min_sum

    def _score_weights(self):
        p, ctx = self.params, self.ctx
        return (
            p.cost_weight,
            p.eta_hour_usd,
            p.late_hour_usd * ctx.tier_multiplier,
            p.late_risk_usd * ctx.tier_multiplier,
            p.load_usd,
            p.split_penalty_usd,
        )

    def _load_ratio2(self) -> np.ndarray:
        view = self.view
        ratio = view.queue_orders / (view.throughput_per_hour * 24.0)
        return ratio * ratio

    def size_bound(self, size: int) -> tuple[float, float]:
        """(cost, score) lower bounds of every plan with ``size`` or more legs; inf when none exists.

        Each piece is non-decreasing in ``size``, so the bound holds for larger plans too.
        """
        if self._tight is None:
            net, ctx, usable = self.net, self.ctx, self.usable
            nodes = self.partial_nodes
            per_ship = np.sort(np.where(usable, net.per_shipment_usd, np.inf).min(axis=1)[nodes])
            cw, ew, lw, rw, loadw, sp = self._score_weights()
            eta = self.lanes.eta.reshape(usable.shape)
            risk = self.lanes.risk.reshape(usable.shape)
            g = ew * eta + lw * np.maximum(eta - ctx.promise_hours, 0.0) + rw * risk
            g_node = np.sort(np.where(usable, g, np.inf).min(axis=1)[nodes])
            load = np.sort(self._load_ratio2()[nodes])
            self._tight = (np.cumsum(per_ship), g_node, np.cumsum(load))
        ship_cum, g_node, load_cum = self._tight
        if size > len(ship_cum) or not np.isfinite(ship_cum[size - 1]) or not np.isfinite(self.line_min_sum):
            return np.inf, np.inf
        cw, ew, lw, rw, loadw, sp = self._score_weights()
        cost = float(ship_cum[size - 1]) + self.line_min_sum
        score = cw * cost + float(g_node[size - 1]) + loadw * float(load_cum[size - 1]) + sp * (size - 1)
        return cost, score

    @classmethod
    def beaten(cls, lb: np.ndarray | float, best: float) -> np.ndarray | bool:
        """True where a lower bound is worse than ``best`` by more than the tolerance."""
        return lb > best + cls.TOL * max(1.0, abs(best))

    # -------------------------------------------------------------- candidates
    def _service_groups(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per service level: the pool of nodes, each node's option, and the per-line unit costs."""
        if self._groups is None:
            net, usable, line_ok = self.net, self.usable, self.line_ok
            unit_all = self.unit_all
            est_order = net.per_shipment_usd + unit_all.sum(axis=2)  # [N, O]
            rows = np.arange(net.n_nodes)
            groups = []
            for g in range(len(net.services)):
                est = np.where(usable & (net.option_service_idx[None, :] == g), est_order, np.inf)
                best_opt = np.argmin(est, axis=1)
                has_opt = np.isfinite(est[rows, best_opt])
                pool = self.partial_nodes[has_opt[self.partial_nodes]]
                bo = best_opt[pool]
                unit_cost = np.where(line_ok[pool], unit_all[pool, bo, :], np.inf)  # [P, K]
                groups.append((pool, bo, unit_cost))
            self._groups = groups
        return self._groups

    def _subset_bounds(self, nodes: np.ndarray, opts: np.ndarray, line_cost: np.ndarray):
        """Exact linear cost and score lower bound of subsets (rows of nodes / opts [M, s])."""
        net, lanes, ctx = self.net, self.lanes, self.ctx
        cw, ew, lw, rw, loadw, sp = self._score_weights()
        s = nodes.shape[1]
        flat = nodes * lanes.n_options + opts
        per_ship, ratio2 = net.per_shipment_usd.ravel(), self._load_ratio2()
        # leg by leg (s is 2..5): cheaper than gathering [M, s] blocks and reducing them
        f = flat[:, 0]
        cost = per_ship[f]
        eta = lanes.eta[f]
        stay = 1.0 - lanes.risk[f]
        load = ratio2[nodes[:, 0]]
        for j in range(1, s):
            f = flat[:, j]
            cost = cost + per_ship[f]
            eta = np.maximum(eta, lanes.eta[f])
            stay = stay * (1.0 - lanes.risk[f])
            load = load + ratio2[nodes[:, j]]
        cost = cost + line_cost.sum(axis=1)
        risk = 1.0 - stay
        score = (
            cw * cost + ew * eta + lw * np.maximum(eta - ctx.promise_hours, 0.0) + rw * risk + loadw * load + sp * (s - 1)
        )
        return cost, score

    def _priced_assignments(self, nodes: np.ndarray, opts: np.ndarray, lc: np.ndarray, assign: np.ndarray):
        """Add, per subset, the line assignment that minimises cost + stock value when it differs.

        With shadow prices on stock (the ``stock_value`` term) the best line-to-node
        assignment of a subset is the argmin of ``cost_weight`` x cost + weight x
        units x price, not of cost alone. Both are kept: the cost-optimal plan for
        ``cheapest``, the priced one for the optimizer; the priced rows follow all
        cost rows, so unpriced views generate exactly the candidates they did before.
        Every bound of this class stays valid: prices are >= 0 and the bounds omit them.
        """
        p, ctx = self.params, self.ctx
        price = self.view.stock_price[nodes] * ctx.qty  # [M, s, K] USD of the line's units at each leg
        finite = np.isfinite(lc)
        priced = np.where(finite, p.cost_weight * np.where(finite, lc, 0.0) + p.stock_value_weight * price, np.inf)
        assign_v = np.argmin(priced, axis=1)
        differ = (assign_v != assign).any(axis=1)
        if not differ.any():
            return nodes, opts, assign
        return (
            np.concatenate([nodes, nodes[differ]]),
            np.concatenate([opts, opts[differ]]),
            np.concatenate([assign, assign_v[differ]]),
        )

    def _assign(self, nodes: np.ndarray, opts: np.ndarray, lc: np.ndarray, size: int):
        """Each line to its cheapest node of the subset; subsets where a node ships nothing are dropped."""
        assign = np.argmin(lc, axis=1)  # [M, K]
        if self.view.stock_price is not None and self.params.stock_value_weight > 0:
            nodes, opts, assign = self._priced_assignments(nodes, opts, lc, assign)
        # every node of the subset must ship something, else a smaller subset covers it
        used = (assign[:, :, None] == np.arange(size)[None, None, :]).any(axis=1).all(axis=1)
        if not used.all():
            nodes, opts, assign = nodes[used], opts[used], assign[used]
        return nodes, opts, assign

    def _group_nodes(self):
        """Per service level and node: its option (cheapest for the whole order), and whether
        the node is in the level's pool; shared by the pair path and the triple bound.

        Returns (bo int[G, N], ok bool[G, N], uc float[G, N, K] per-unit line costs at
        that option, inf where the node cannot ship the whole line).
        """
        if self._grid is None:
            net, usable, line_ok, unit_all = self.net, self.usable, self.line_ok, self.unit_all
            g_n = len(net.services)
            est_order = net.per_shipment_usd + unit_all.sum(axis=2)  # [N, O]
            in_g = usable[None, :, :] & net.service_option_mask[:, None, :]
            est = np.where(in_g, est_order[None, :, :], np.inf)  # [G, N, O]
            bo = np.argmin(est, axis=2)  # [G, N]
            rows = np.arange(net.n_nodes)[None, :]
            ok = np.isfinite(est[np.arange(g_n)[:, None], rows, bo]) & self.partial_mask[None, :]
            # the compiled enumeration reads unit_all itself; the numpy paths need uc
            uc = None if self.compiled else np.where(line_ok[None, :, :], unit_all[rows, bo], np.inf)  # [G, N, K]
            self._grid = (bo, ok, uc)
        return self._grid

    def triple_beaten(self, best_cost: float, best_score: float) -> bool:
        """True when no plan of exactly three shipments can beat (best_cost, best_score).

        Per service level, a three-node plan costs at least its three per-shipment
        charges plus each line's cheapest per-unit cost in the level's pool, and
        scores at least that (x cost weight) + the three nodes' load terms + the
        largest of their ETA / lateness / risk values + two split penalties. The
        minimum over all triples is found without listing them: for each node m
        taken as the one with the largest of those values, add the two smallest
        per-node terms among nodes ranked before it. :meth:`size_bound` takes each
        minimum from a different node; coupling them here rules out about half of
        the orders that would otherwise enumerate triples (220 per level on a
        12-node network), and nearly all of those triples would lose anyway.
        """
        net, ctx, usable = self.net, self.ctx, self.usable
        bo, ok, uc = self._group_nodes()
        if (ok.sum(axis=1) < 3).all():
            return True
        cw, ew, lw, rw, loadw, sp = self._score_weights()
        flat = np.arange(net.n_nodes)[None, :] * net.n_options + bo  # [G, N]
        eta = self.lanes.eta[flat]
        g = ew * eta + lw * np.maximum(eta - ctx.promise_hours, 0.0) + rw * self.lanes.risk[flat]
        g = np.where(ok, g, np.inf)
        ps = np.where(ok, net.per_shipment_usd.ravel()[flat], np.inf)
        a = cw * ps + loadw * self._load_ratio2()[None, :]  # additive per-node score part
        lmin = np.where(ok[:, :, None], uc, np.inf).min(axis=1).sum(axis=1)  # [G]
        n = g.shape[1]
        # j ranks before m: smaller g, ties broken by index (each triple counted with its max node)
        before = (g[:, None, :] < g[:, :, None]) | (
            (g[:, None, :] == g[:, :, None]) & (np.arange(n)[None, :] < np.arange(n)[:, None])[None, :, :]
        )  # [G, m, j]
        two = np.partition(np.where(before & ok[:, None, :], a[:, None, :], np.inf), 1, axis=2)[:, :, :2].sum(axis=2)
        score = (a + g + two).min(axis=1) + cw * lmin + 2.0 * sp  # [G]
        cost = np.sort(ps, axis=1)[:, :3].sum(axis=1) + lmin
        cost = np.where(np.isfinite(score), cost, np.inf)
        return bool((self.beaten(cost, best_cost) & self.beaten(score, best_score)).all())

    def _pairs(self, bound: tuple[float, float] | None):
        """(nodes [M, 2], opts [M, 2], lc [M, 2, K]) of the two-node subsets that can cover the
        order and are not pruned by ``bound``, in the order of the general path.

        The same subsets, options and bounds as the general path of :meth:`candidates`
        for ``size`` 2, computed on [service, node, node] grids (a few hundred cells)
        instead of gathering and concatenating a list of pairs: about four orders in
        ten reach this point and three quarters of those find no pair worth
        materialising, so this test is most of what they pay.
        """
        net, ctx, line_ok, unit_all = self.net, self.ctx, self.line_ok, self.unit_all
        n_nodes = net.n_nodes
        rows = np.arange(n_nodes)[None, :]
        # each node's option per service: the one cheapest for the whole order (as _service_groups)
        bo, ok, uc = self._group_nodes()
        # per pair, each line at the cheaper of the two nodes, summed: inf when some line
        # is held by neither (costs are finite or +inf, so the sum is finite iff all are)
        lines = np.minimum(uc[:, :, None, :], uc[:, None, :, :]).sum(axis=3)  # [G, N, N]
        keep = np.isfinite(lines) & ok[:, :, None] & ok[:, None, :] & _upper(n_nodes)[None, :, :]
        if bound is not None and keep.any():
            cw, ew, lw, rw, loadw, sp = self._score_weights()
            flat = rows * net.n_options + bo  # [G, N]
            ps = net.per_shipment_usd.ravel()[flat]
            eta = self.lanes.eta[flat]
            stay = 1.0 - self.lanes.risk[flat]
            load = self._load_ratio2()
            # the expressions of _subset_bounds, leg 0 = the lower node index
            cost = ps[:, :, None] + ps[:, None, :]
            eta2 = np.maximum(eta[:, :, None], eta[:, None, :])
            risk = 1.0 - stay[:, :, None] * stay[:, None, :]
            load2 = load[:, None] + load[None, :]
            cost = cost + lines
            score = (
                cw * cost + ew * eta2 + lw * np.maximum(eta2 - ctx.promise_hours, 0.0) + rw * risk + loadw * load2 + sp
            )
            keep &= ~(self.beaten(cost, bound[0]) & self.beaten(score, bound[1]))
        if not keep.any():
            return None, None, None
        gi, ii, jj = np.nonzero(keep)  # service-major, then pairs in combinations order
        nodes = np.stack((ii, jj), axis=1)
        opts = np.stack((bo[gi, ii], bo[gi, jj]), axis=1)
        lc = np.where(line_ok[nodes], unit_all[nodes, opts], np.inf)  # [M, 2, K]
        return nodes, opts, lc

    def candidates(
        self, size: int, excluded: list[dict], bound: tuple[float, float] | None = None
    ) -> CandidateSet:
        """Line-level splits over node subsets of exactly ``size`` nodes, with leg metrics.

        With ``bound`` = (best cost, best score) of plans with fewer legs, subsets
        that lose on both (see the class docstring) are not materialised.
        """
        net, ctx = self.net, self.ctx
        k = len(ctx.qty)
        nodes = None
        if self.compiled and 2 <= size <= k and len(self.partial_nodes) >= size:
            from router.kernels import subset_plans

            bo, ok, _ = self._group_nodes()
            nodes, opts, assign = subset_plans(
                size,
                ok,
                bo,
                self.unit_all,
                self.line_ok,
                net.per_shipment_usd.ravel(),
                self.lanes.eta,
                self.lanes.risk,
                self._load_ratio2(),
                self._score_weights(),
                ctx.promise_hours,
                bound,
                self.TOL,
            )
            if not len(nodes):
                nodes = None
        elif size == 2 and 2 <= k and len(self.partial_nodes) >= 2:
            nodes, opts, lc = self._pairs(bound)
            if nodes is not None:
                nodes, opts, assign = self._assign(nodes, opts, lc, size)
            else:
                nodes = None
        elif 2 <= size <= k and len(self.partial_nodes) >= size:
            # All service levels at once: the subsets of every level's node pool, in the
            # original order (level by level, subsets in combinations order), so one pass of
            # array operations replaces one pass per service level.
            parts_n, parts_o = [], []
            for pool, bo, _ in self._service_groups():
                if len(pool) >= size:
                    combos = _combos(len(pool), size)  # [M, s]
                    parts_n.append(pool[combos])
                    parts_o.append(bo[combos])
            if parts_n:
                nodes = parts_n[0] if len(parts_n) == 1 else np.concatenate(parts_n)
                opts = parts_o[0] if len(parts_o) == 1 else np.concatenate(parts_o)
                # per-line unit cost at each leg (inf where the node cannot ship the whole line):
                # the same numbers as the per-level unit_cost[P, K] gathered by subset
                lc = np.where(self.line_ok[nodes], self.unit_all[nodes, opts], np.inf)  # [M, s, K]
                # min over the s legs as s-1 elementwise minimums: a reduction along a middle
                # axis of length 2..5 costs several times more in numpy
                best = lc[:, 0]
                for j in range(1, size):
                    best = np.minimum(best, lc[:, j])  # [M, K]
                keep = np.isfinite(best).all(axis=1)
                if bound is not None and keep.any():
                    # Bound first: most subsets lose here, before the argmin and the
                    # "every node ships something" test are paid for them.
                    idx = np.flatnonzero(keep)
                    cost_lb, score_lb = self._subset_bounds(nodes[idx], opts[idx], best[idx])
                    keep[idx] = ~(self.beaten(cost_lb, bound[0]) & self.beaten(score_lb, bound[1]))
                if keep.any():
                    nodes, opts, assign = self._assign(nodes[keep], opts[keep], lc[keep], size)
                else:
                    nodes = None
        if nodes is None or len(nodes) == 0:
            return _empty_set(k, excluded)
        m = len(nodes)
        units = np.zeros((m, size, k), dtype=np.int64)
        mi = np.repeat(np.arange(m), k)
        ki = np.tile(np.arange(k), m)
        units[mi, assign[mi, ki], ki] = ctx.qty[ki]
        cs = CandidateSet(nodes, opts, units, np.ones(m, dtype=np.int64))
        cs.excluded = excluded
        leg_metrics(cs, net, self.view, ctx, self.lanes)
        return drop_over_volume(cs, net)


def drop_over_volume(cs: CandidateSet, net: Network) -> CandidateSet:
    """Drop plans with a leg over its lane's per-shipment volume limit."""
    if len(cs) == 0 or not net.any_volume_limit:
        return cs  # with no per-shipment volume limit on any lane nothing can be over
    if cs.leg_node.min() >= 0:  # no padded legs (every generated chunk)
        over = cs.leg_volume_cuft > net.lane_max_volume_cuft[cs.leg_node, cs.leg_opt] + 1e-9
    else:
        n = np.where(cs.active, cs.leg_node, 0)
        o = np.where(cs.active, cs.leg_opt, 0)
        over = (cs.leg_volume_cuft > net.lane_max_volume_cuft[n, o] + 1e-9) & cs.active
    if over.any():
        bad = over.any(axis=1)
        cs.excluded.append(
            {
                "node": "*",
                "rule": "lane_volume",
                "detail": f"{int(bad.sum())} plans exceed a lane's per-shipment volume limit",
            }
        )
        return cs.take(~bad)
    return cs


def from_units(
    arc_node: np.ndarray, arc_opt: np.ndarray, units: np.ndarray, net: Network, view: StateView, ctx: OrderContext
) -> CandidateSet:
    """One candidate from a solver's units[L, K] over arcs (node, option); arcs that ship nothing are dropped."""
    used = units.sum(axis=1) > 0
    legs = np.flatnonzero(used)
    cs = CandidateSet(
        arc_node[legs][None, :].astype(np.int64),
        arc_opt[legs][None, :].astype(np.int64),
        units[legs][None, :, :].astype(np.int64),
        np.array([2], dtype=np.int64),
    )
    return leg_metrics(cs, net, view, ctx)


# Enumerate splits with the compiled loop of router.kernels (the numpy path stays for
# priced stock and as the reference the tests compare it with).
COMPILED_SPLITS = True

_METRIC_FIELDS = (
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


def concat_all(parts: list[CandidateSet]) -> CandidateSet:
    """The candidates of every part in order, legs padded to the widest part, in one copy.

    Same result as folding :func:`concat` over the parts, without re-copying the
    growing set once per part.
    """
    if len(parts) == 1:
        return parts[0]
    j = max(p.leg_node.shape[1] for p in parts)
    c = sum(len(p) for p in parts)
    k = parts[0].leg_units.shape[2]
    first = parts[0]
    out = CandidateSet(
        np.full((c, j), -1, dtype=np.int64),
        np.full((c, j), -1, dtype=np.int64),
        np.zeros((c, j, k), dtype=np.int64),
        np.concatenate([p.source for p in parts]),
        first.excluded,
        {key: val for p in parts for key, val in p.solver.items()},
    )
    metrics = {name: np.zeros((c, j)) for name in _METRIC_FIELDS}
    at = 0
    for p in parts:
        m, s = p.leg_node.shape
        if m == 0:
            continue
        out.leg_node[at : at + m, :s] = p.leg_node
        out.leg_opt[at : at + m, :s] = p.leg_opt
        out.leg_units[at : at + m, :s] = p.leg_units
        for name, arr in metrics.items():
            arr[at : at + m, :s] = getattr(p, name)
        at += m
    for name, arr in metrics.items():
        setattr(out, name, arr)
    out.active = out.leg_node >= 0
    out.n_legs = out.active.sum(axis=1)
    return out


def concat(a: CandidateSet, b: CandidateSet) -> CandidateSet:
    """Append the candidates of ``b`` to ``a`` (legs padded to the wider of the two)."""
    j = max(a.leg_node.shape[1], b.leg_node.shape[1])

    def pad(x: np.ndarray, fill) -> np.ndarray:
        if x.shape[1] == j:
            return x
        out = np.full((x.shape[0], j) + x.shape[2:], fill, dtype=x.dtype)
        out[:, : x.shape[1]] = x
        return out

    out = CandidateSet(
        np.concatenate([pad(a.leg_node, -1), pad(b.leg_node, -1)]),
        np.concatenate([pad(a.leg_opt, -1), pad(b.leg_opt, -1)]),
        np.concatenate([pad(a.leg_units, 0), pad(b.leg_units, 0)]),
        np.concatenate([a.source, b.source]),
        a.excluded,
        {**a.solver, **b.solver},
    )
    for name in _METRIC_FIELDS:
        setattr(out, name, np.concatenate([pad(getattr(a, name), 0.0), pad(getattr(b, name), 0.0)]))
    out.active = out.leg_node >= 0
    out.n_legs = out.active.sum(axis=1)
    return out
