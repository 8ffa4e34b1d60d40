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
    "OrderContext",
    "concat",
    "from_units",
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
        for name in (
            "active",
            "n_legs",
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
        ):
            val = getattr(self, name)
            if val is not None:
                setattr(out, name, val[keep])
        return out


def normal_sf(z: np.ndarray) -> np.ndarray:
    """P(Z > z) for a standard normal, via erfc's Abramowitz & Stegun 7.1.26 (abs. error < 1.5e-7).

    numpy has no erf; this keeps the hot path free of scipy imports.
    """
    x = np.abs(z) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erfc = poly * np.exp(-x * x)
    half = 0.5 * erfc
    return np.where(z >= 0, half, 1.0 - half)


def leg_metrics(cs: CandidateSet, net: Network, view: StateView, ctx: OrderContext) -> CandidateSet:
    """Fill the per-leg physics arrays of ``cs`` in place and return it."""
    node = cs.leg_node
    opt = cs.leg_opt
    active = node >= 0
    n = np.where(active, node, 0)
    o = np.where(active, opt, 0)
    units_k = cs.leg_units.astype(float)
    units = units_k.sum(axis=2)
    weight = units_k @ ctx.weight_lb
    volume = units_k @ ctx.volume_cuft
    miles = ctx.dist_miles[n]
    billable = np.maximum(weight, net.dim_factor[o] * volume)
    bounds = net.tier_bounds[o]  # [C, J, T]
    tier_i = np.minimum((bounds < billable[..., None]).sum(axis=-1), bounds.shape[-1] - 1)
    tier_rate = np.where(net.has_tiers[o], net.tier_rates[o, tier_i], 0.0)
    shipping = (
        net.fixed_usd[o]
        + units * (net.per_unit_usd[o] + net.per_unit_mile_usd[o] * miles)
        + net.per_lb_usd[o] * billable
        + tier_rate
    )
    handling = (
        net.handling_ship_usd[n]
        + net.handling_unit_usd[n] * units
        + net.handling_carton_usd[n] * volume / net.carton_volume_cuft[n]
    )
    queue_h = view.queue_orders[n] / view.throughput_per_hour[n]
    ready = ctx.now_hour_utc + queue_h
    wait = np.mod(net.cutoff_hour_utc[n] - ready, 24.0)
    transit_days = np.maximum(net.transit_min_days[o], net.transit_base_days[o] + miles / net.transit_miles_per_day[o])
    transit_h = 24.0 * transit_days * view.congestion[n, o] * (1.0 + view.weather_node[n] + ctx.dest_weather)
    eta = queue_h + wait + transit_h
    sigma = np.maximum(
        np.sqrt((net.transit_sigma_frac[o] * transit_h) ** 2 + (QUEUE_SIGMA_FRAC * queue_h) ** 2), MIN_SIGMA_HOURS
    )
    risk = normal_sf((ctx.promise_hours - eta) / sigma)

    zero = np.zeros_like(units)
    cs.active = active
    cs.n_legs = active.sum(axis=1)
    cs.leg_miles = np.where(active, miles, 0.0)
    cs.leg_weight_lb = np.where(active, weight, 0.0)
    cs.leg_volume_cuft = np.where(active, volume, 0.0)
    cs.leg_billable_lb = np.where(active, billable, 0.0)
    cs.leg_shipping_usd = np.where(active, shipping, zero)
    cs.leg_handling_usd = np.where(active, handling, zero)
    cs.leg_queue_hours = np.where(active, queue_h, zero)
    cs.leg_eta_hours = np.where(active, eta, zero)
    cs.leg_sigma_hours = np.where(active, sigma, zero)
    cs.leg_risk = np.where(active, risk, zero)
    return cs


@lru_cache(maxsize=256)
def _combos(n: int, size: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(n), size)), dtype=np.int64).reshape(-1, size)


def node_exclusions(
    net: Network, view: StateView, ctx: OrderContext, params: StrategyParams, usable: np.ndarray, skus: tuple[str, ...]
) -> tuple[np.ndarray, list[dict]]:
    """Which nodes may ship at all, and why each other node may not.

    Returns a bool[N] mask of nodes that are open, allowed, reachable by a usable
    lane and hold at least one line; plus one structured reason per node that
    is excluded or short of some line (``partial``: it may still ship in a split).
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
    for i in np.flatnonzero(~(ok & all_line)).tolist():
        nid = net.node_ids[i]
        if excluded_param is not None and excluded_param[i]:
            reasons.append({"node": nid, "rule": "excluded", "detail": f"{nid}: excluded by params"})
        elif view.closed[i]:
            reasons.append({"node": nid, "rule": "closed", "detail": f"{nid}: {view.closed_reason[i]}"})
        elif not has_lane[i]:
            reasons.append({"node": nid, "rule": "lane", "detail": f"{nid}: no carrier lane with capacity left today"})
        else:
            short = np.flatnonzero(~line_ok[i])
            k = int(short[0])
            more = f" (+{len(short) - 1} more lines)" if len(short) > 1 else ""
            have = max(int(view.avail[i, k]) - params.safety_stock_units, 0)
            reasons.append(
                {
                    "node": nid,
                    "rule": "stock",
                    "detail": f"{nid}: stock {have} of {skus[int(ctx.sku_idx[k])]} (need {int(ctx.qty[k])}){more}",
                    "partial": bool(any_line[i]),
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
    net: Network, view: StateView, ctx: OrderContext, usable: np.ndarray, line_ok: np.ndarray, excluded: list[dict]
) -> CandidateSet:
    """Every usable option of every node that holds every line, with leg metrics."""
    k = len(ctx.qty)
    full = line_ok.all(axis=1)
    sn, so = np.nonzero(usable & full[:, None])
    cs = CandidateSet(
        sn[:, None].astype(np.int64),
        so[:, None].astype(np.int64),
        np.broadcast_to(ctx.qty, (len(sn), 1, k)).astype(np.int64),
        np.zeros(len(sn), dtype=np.int64),
    )
    cs.excluded = excluded
    leg_metrics(cs, net, view, ctx)
    return drop_over_volume(cs, net)


def _unit_cost_matrix(net: Network, ctx: OrderContext) -> np.ndarray:
    """float[N, O, K]: linear cost of line k's units at node n with option o (tiers excluded)."""
    per_unit = net.per_unit_usd[None, :] + net.per_unit_mile_usd[None, :] * ctx.dist_miles[:, None]  # [N, O]
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
    k = len(ctx.qty)
    partial_nodes = np.flatnonzero(line_ok.any(axis=1))
    parts_node, parts_opt, parts_units, parts_src = [], [], [], []
    if 2 <= size <= k and len(partial_nodes) >= size:
        services = sorted(set(net.option_service))
        serv_of_opt = np.array([services.index(s) for s in net.option_service])
        unit_all = _unit_cost_matrix(net, ctx)  # [N, O, K]
        # The carrier of each leg: the option of that service that is cheapest for the whole order.
        est_order = (
            net.fixed_usd[None, :] + net.handling_ship_usd[:, None] + unit_all.sum(axis=2)
        )  # [N, O]
        rows = np.arange(net.n_nodes)
        for g in range(len(services)):
            est = np.where(usable & (serv_of_opt[None, :] == g), est_order, np.inf)
            best_opt = np.argmin(est, axis=1)
            has_opt = np.isfinite(est[rows, best_opt])
            pool = partial_nodes[has_opt[partial_nodes]]
            if len(pool) < size:
                continue
            bo = best_opt[pool]
            unit_cost = np.where(line_ok[pool], unit_all[pool, bo, :], np.inf)  # [P, K]
            for size in (size,):
                combos = _combos(len(pool), size)  # [M, s]
                lc = unit_cost[combos]  # [M, s, K]
                assign = np.argmin(lc, axis=1)  # [M, K]
                best = lc.min(axis=1)
                feasible = np.isfinite(best).all(axis=1)
                # every node of the subset must ship something, else a smaller subset covers it
                used = (assign[:, :, None] == np.arange(size)[None, None, :]).any(axis=1).all(axis=1)
                keep = feasible & used
                if not keep.any():
                    continue
                combos, assign = combos[keep], assign[keep]
                m = len(combos)
                units = np.zeros((m, size, k), dtype=np.int64)
                mi = np.repeat(np.arange(m), k)
                ki = np.tile(np.arange(k), m)
                units[mi, assign[mi, ki], ki] = ctx.qty[ki]
                parts_node.append(pool[combos])
                parts_opt.append(bo[combos])
                parts_units.append(units)
                parts_src.append(np.ones(m, dtype=np.int64))
    if not parts_node:
        empty = CandidateSet(
            np.zeros((0, 2), dtype=np.int64), np.zeros((0, 2), dtype=np.int64), np.zeros((0, 2, k), dtype=np.int64),
            np.zeros(0, dtype=np.int64),
        )
        empty.excluded = excluded
        return leg_metrics(empty, net, view, ctx)
    cs = _stack(parts_node, parts_opt, parts_units, parts_src, k)
    cs.excluded = excluded
    leg_metrics(cs, net, view, ctx)
    return drop_over_volume(cs, net)


def drop_over_volume(cs: CandidateSet, net: Network) -> CandidateSet:
    """Drop plans with a leg over its lane's per-shipment volume limit."""
    if len(cs) == 0:
        return cs
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


def _stack(parts_node, parts_opt, parts_units, parts_src, k: int) -> CandidateSet:
    j = max([p.shape[1] for p in parts_node] + [1])
    c = sum(p.shape[0] for p in parts_node)
    leg_node = np.full((c, j), -1, dtype=np.int64)
    leg_opt = np.full((c, j), -1, dtype=np.int64)
    leg_units = np.zeros((c, j, k), dtype=np.int64)
    at = 0
    for pn, po, pu in zip(parts_node, parts_opt, parts_units):
        m, s = pn.shape
        leg_node[at : at + m, :s] = pn
        leg_opt[at : at + m, :s] = po
        leg_units[at : at + m, :s, :] = pu
        at += m
    return CandidateSet(leg_node, leg_opt, leg_units, np.concatenate(parts_src) if parts_src else np.zeros(0, int))


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
    for name in (
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
    ):
        setattr(out, name, np.concatenate([pad(getattr(a, name), 0.0), pad(getattr(b, name), 0.0)]))
    out.active = out.leg_node >= 0
    out.n_legs = out.active.sum(axis=1)
    return out
