"""Hard rules: which nodes, lanes and plans may not ship an order, as masks with reasons.

Every hard rule of routing lives here, each as one function that returns a mask
(what passes) and, when a rationale will be written, one structured reason per
exclusion (``{"node", "rule", "detail"}``; ``detail`` is the sentence a reviewer reads):

* :func:`usable_options` -- Hard: the lane exists, has capacity left today, and its
  service is the one the order asked for;
* :func:`node_exclusions` -- Hard: the node is open, not excluded by the params,
  reachable by a usable lane, holds at least one line (beyond safety stock), and is
  among the ``max_candidate_nodes`` nearest such nodes;
* :func:`line_feasibility` -- Hard: the node holds every unit of the line;
* :func:`drop_over_volume` -- Hard: no leg over its lane's per-shipment volume limit;
* :func:`open_nodes` / :func:`stock_shortfall` -- Hard: a line with fewer units at all
  open nodes together than the order asks for cannot be covered by any plan.

The split MIP (:mod:`router.solver.split`) receives these masks as its arcs and
stock bounds, and the state's check-and-reserve enforces stock once more at the
moment of reservation; the rules are defined once, here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from router.legs import nominal_cost_order
from router.network import Network
from router.params import StrategyParams
from router.state import StateView

if TYPE_CHECKING:  # pragma: no cover
    from router.candidates import CandidateSet
    from router.context import OrderContext

__all__ = [
    "DETAIL_NEAREST",
    "drop_over_volume",
    "line_feasibility",
    "node_exclusions",
    "open_nodes",
    "solver_pool",
    "stock_shortfall",
    "usable_options",
]


#: Per-node exclusion reasons are written for the nearest this many nodes (and every node of
#: the pool); farther nodes are counted in one summary reason. A network of hundreds of
#: stores would otherwise write hundreds of sentences per decision that nobody reads.
DETAIL_NEAREST = 12


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
    """Which nodes may ship at all (the order's candidate pool), and why each other node may not.

    A node may ship when it is open, allowed, reachable by a usable lane and holds at
    least one line. Of those the pool keeps, nearest first:

    * the ``max_candidate_nodes`` nearest;
    * the ``max_candidate_nodes`` nearest that hold every line, so a node that can ship
      the whole order alone is always in the pool when one exists;
    * the ``max_candidate_nodes`` that hold every line and are cheapest for a nominal
      parcel to the destination (:func:`router.legs.nominal_cost_order`);
    * when the pool's stock still falls short of some line that all the allowed nodes
      together hold, the nearest further nodes holding that line until it is covered.

    On a network no larger than ``max_candidate_nodes`` every allowed node is in the pool.
    Returns the bool[N] pool mask and one structured reason per node excluded or short of
    some line (``partial``: it may still ship in a split); beyond the nearest
    :data:`DETAIL_NEAREST` nodes, excluded nodes are counted in one summary reason.

    ``detail=False`` skips the reasons of closed, lane-less and short nodes (the mask is
    the same): only a record's rationale reads them.
    """
    excluded_param = np.isin(np.asarray(net.node_ids), params.excluded_nodes) if params.excluded_nodes else None
    line_ok = view.avail - params.safety_stock_units >= ctx.qty[None, :]
    any_line = np.asarray(line_ok.any(axis=1))
    all_line = np.asarray(line_ok.all(axis=1))
    has_lane = np.asarray(usable.any(axis=1))
    ok = ~view.closed & has_lane & any_line
    if excluded_param is not None:
        ok &= ~excluded_param
    n_nodes = len(ok)
    cap = params.max_candidate_nodes
    near: np.ndarray | None = None
    if n_nodes > min(cap, DETAIL_NEAREST):
        near = ctx.node_order if ctx.node_order is not None else np.argsort(ctx.dist_miles, kind="stable")
    # Which nodes get a sentence of their own: all of them on a small network
    listed = None
    if near is not None and n_nodes > DETAIL_NEAREST:
        listed = np.zeros(n_nodes, dtype=bool)
        listed[near[:DETAIL_NEAREST]] = True
    pool = ok
    beyond = np.zeros(0, dtype=np.int64)
    if int(ok.sum()) > cap:
        assert near is not None
        ranked = near[ok[near]]  # allowed nodes, nearest first (ties by index, as a stable sort)
        pool = np.zeros(n_nodes, dtype=bool)
        pool[ranked[:cap]] = True
        whole = ranked[all_line[ranked]]
        pool[whole[:cap]] = True
        # ... and as many of the cheapest for a nominal parcel that hold every line: a
        # distribution centre farther away often ships for less than a nearby store
        cheap = ctx.node_cost_order
        if cheap is None:
            cheap = nominal_cost_order(net, ctx.dist_miles, None if ctx.dest_lanes is None else ctx.dest_lanes[1])
        pool[cheap[(ok & all_line)[cheap]][:cap]] = True
        _cover(pool, ranked, view, ctx, params)
        beyond = ranked[~pool[ranked]]
        if listed is not None:
            listed |= pool
    reasons: list[dict] = []
    bad = ~(ok & all_line)
    if detail and bad.any():
        shown = bad if listed is None else bad & listed
        rows = np.flatnonzero(shown)
        # Per-node facts of the listed nodes as Python lists once (not a handful of numpy
        # calls per node): the first line each is short of and how many, its stock of it.
        k_all = line_ok.shape[1]
        first_short = dict(zip(rows.tolist(), np.argmin(line_ok[rows], axis=1).tolist()))  # first False of the row
        n_short = dict(zip(rows.tolist(), (k_all - line_ok[rows].sum(axis=1)).tolist()))
        avail = dict(zip(rows.tolist(), view.avail[rows].tolist()))
        sku_idx, qty = ctx.sku_idx.tolist(), ctx.qty.tolist()
        closed, lane, any_l = view.closed, has_lane, any_line
        ss = params.safety_stock_units
        for i in rows.tolist():
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
                        "partial": bool(any_l[i]),
                    }
                )
        unlisted = int((bad & ~shown & ~(ok & ~pool)).sum())
        if unlisted:
            reasons.append(
                {
                    "node": "*",
                    "rule": "farther",
                    "detail": f"{unlisted} more nodes beyond the nearest {DETAIL_NEAREST} cannot ship the whole "
                    "order (closed, no lane, or short of some line); not listed one by one",
                }
            )
    # Allowed nodes left out of the pool: the nearest few by name, the rest counted.
    for i in beyond[:DETAIL_NEAREST].tolist():
        nid = net.node_ids[i]
        reasons.append(
            {
                "node": nid,
                "rule": "distance",
                "detail": f"{nid}: {ctx.dist_miles[i]:.0f} mi, not among the "
                f"{cap} nearest nodes with stock",
            }
        )
    if len(beyond) > DETAIL_NEAREST:
        reasons.append(
            {
                "node": "*",
                "rule": "distance",
                "detail": f"{len(beyond) - DETAIL_NEAREST} more nodes with stock, farther than "
                f"{ctx.dist_miles[beyond[DETAIL_NEAREST - 1]]:.0f} mi, not in the pool",
            }
        )
    return pool, reasons


def solver_pool(
    net: Network, view: StateView, ctx: OrderContext, params: StrategyParams, usable: np.ndarray, pool: np.ndarray
) -> np.ndarray:
    """The nodes the quantity-split search may draw from: the pool, plus the nearest nodes holding units it lacks.

    The pool (:func:`node_exclusions`) holds only nodes with every unit of some line; a
    quantity split also takes part of a line from a node. When the pool's stock falls
    short of a line, the nearest open, allowed, reachable nodes holding any unit of it
    are added until the line is covered (or every such node is in).
    """
    cand = open_nodes(net, view, params) & usable.any(axis=1) & (view.avail - params.safety_stock_units > 0).any(axis=1)
    out = pool & cand
    near = ctx.node_order if ctx.node_order is not None else np.argsort(ctx.dist_miles, kind="stable")
    _cover(out, near[cand[near]], view, ctx, params)
    return out


def _cover(pool: np.ndarray, ranked: np.ndarray, view: StateView, ctx: OrderContext, params: StrategyParams) -> None:
    """Add the nearest allowed nodes holding a line the pool is short of, until every coverable line is covered.

    In place on ``pool``. A line that all the allowed nodes together cannot cover is
    left alone (no plan exists; the split solver's stock check says so).
    """
    stock = np.maximum(view.avail[ranked] - params.safety_stock_units, 0)  # [R, K], nearest first
    have = stock[pool[ranked]].sum(axis=0)
    short = (have < ctx.qty) & (stock.sum(axis=0) >= ctx.qty)
    if not short.any():
        return
    for r in range(len(ranked)):
        i = ranked[r]
        if pool[i] or not (stock[r, short] > 0).any():
            continue
        pool[i] = True
        have = have + stock[r]
        short &= have < ctx.qty
        if not short.any():
            return


def usable_options(net: Network, view: StateView, ctx: OrderContext) -> np.ndarray:
    """bool[N, O]: lane exists, has capacity left today, and the service is allowed."""
    return net.lane_ok & (view.lane_left >= 1.0) & ctx.option_allowed[None, :]


def line_feasibility(view: StateView, ctx: OrderContext, params: StrategyParams, node_ok: np.ndarray) -> np.ndarray:
    """bool[N, K]: the node may ship all units of line k."""
    return (view.avail - params.safety_stock_units >= ctx.qty[None, :]) & node_ok[:, None]


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


def open_nodes(net: Network, view: StateView, params: StrategyParams) -> np.ndarray:
    """bool[N]: open in the view and not excluded by the params (stock aside)."""
    if not params.excluded_nodes:
        return ~view.closed
    return ~view.closed & ~np.isin(np.asarray(net.node_ids), params.excluded_nodes)


def stock_shortfall(
    view: StateView, ctx: OrderContext, params: StrategyParams, node_open: np.ndarray, skus: tuple[str, ...]
) -> dict | None:
    """The reason no plan can cover the order's stock, or None when open nodes hold enough of every line.

    A line with fewer units at all open nodes together than the order asks for
    cannot be covered by any plan: saying so needs no MIP (building and
    validating one is about a millisecond, and a stocked-out network sees this often).
    """
    in_stock = np.where(node_open[:, None], np.maximum(view.avail - params.safety_stock_units, 0), 0).sum(axis=0)
    short = np.flatnonzero(in_stock < ctx.qty)
    if not len(short):
        return None
    k = int(short[0])
    more = f" (+{len(short) - 1} more lines)" if len(short) > 1 else ""
    detail = (
        f"{skus[int(ctx.sku_idx[k])]}: {int(in_stock[k])} units at open nodes, "
        f"the order needs {int(ctx.qty[k])}{more}"
    )
    return {"node": "*", "rule": "stock", "detail": detail, "short_lines": int(len(short))}
