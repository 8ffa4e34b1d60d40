"""Build, complete and score the candidate set of one order, stage by stage.

The array generators cover single-node plans (:mod:`router.candidates`) and
line-level splits (:mod:`router.splits`). When they find nothing (a line larger
than any node's stock, or lanes too small for the whole order) the exact split
solver (:mod:`router.solver.split`, OR-Tools MathOpt + HiGHS) looks for a plan
that divides units of a line between nodes; its answer joins the set and is
scored by the very same term functions, so every plan is priced one way.

Each stage runs under :class:`stage`, which turns any failure into a
:class:`~router.errors.StageError` naming the stage (rules, legs, candidates,
scoring, splits, split_solver), so the engine's fallback chain can record where
a decision failed and why.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np

from router.candidates import CandidateSet, concat_all, from_units, single_candidates
from router.context import OrderContext
from router.errors import StageError
from router.legs import LaneRisk, arc_unit_usd, lane_metrics
from router.network import Network
from router.params import StrategyParams
from router.rules import line_feasibility, node_exclusions, open_nodes, solver_pool, stock_shortfall, usable_options
from router.scoring import Scores, concat_scores, score_candidates
from router.splits import SplitSearch
from router.state import StateView

__all__ = ["STAGES", "build_split_problem", "scored_candidates", "single_node_candidates", "stage"]

#: The stages of a decision's pipeline, in order (route() adds context, reserve and record).
STAGES = ("rules", "legs", "candidates", "scoring", "splits", "split_solver")


class stage:  # noqa: N801 - used as a context manager, reads as a label
    """``with stage("splits"): ...`` re-raises any failure inside as StageError("splits", exc).

    A plain class rather than ``contextlib.contextmanager``: it wraps every
    stage of every decision, and a generator-based manager costs several times more.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        if exc is not None and isinstance(exc, Exception) and not isinstance(exc, StageError):
            raise StageError(self.name, exc) from exc
        return False


def build_split_problem(net: Network, view: StateView, ctx: OrderContext, params: StrategyParams, node_ok: np.ndarray):
    """The order as a :class:`router.solver.split.SplitProblem` over usable (node, option) arcs."""
    from router.solver.split import SplitProblem

    usable = usable_options(net, view, ctx) & node_ok[:, None]
    arc_node, arc_opt = np.nonzero(usable)
    n, o = arc_node, arc_opt
    bounds, rates = [], []
    for oi in o:
        if net.has_tiers[oi]:
            finite = np.isfinite(net.tier_bounds[oi])
            bounds.append(net.tier_bounds[oi][finite])
            rates.append(net.tier_rates[oi][finite])
        else:
            bounds.append(np.zeros(0))
            rates.append(np.zeros(0))
    avail = np.maximum(view.avail - params.safety_stock_units, 0)
    avail = np.where(node_ok[:, None], avail, 0)
    problem = SplitProblem(
        qty=ctx.qty.astype(np.int64),
        unit_weight_lb=ctx.weight_lb,
        unit_volume_cuft=ctx.volume_cuft,
        avail=avail.astype(np.int64),
        arc_node=n.astype(np.int64),
        # the split penalty is paid per shipment, so it belongs to the arc's fixed cost
        arc_fixed_usd=net.fixed_usd[o] + net.handling_ship_usd[n] + params.split_penalty_usd,
        arc_unit_usd=arc_unit_usd(net, ctx, n, o),
        arc_per_lb_usd=net.per_lb_usd[o],
        arc_dim_factor=net.dim_factor[o],
        arc_tier_bounds=tuple(bounds),
        arc_tier_rates=tuple(rates),
        arc_max_volume=net.lane_max_volume_cuft[n, o],
        max_nodes=params.max_splits,
        allow_quantity_split=params.allow_quantity_split,
    )
    return problem, arc_node, arc_opt


def single_node_candidates(
    net: Network, view: StateView, ctx: OrderContext, params: StrategyParams, skus: tuple[str, ...]
) -> tuple[CandidateSet, Scores]:
    """Single-node plans only, scored: the engine's last resort when the full pipeline failed."""
    cs, scores, (_, _, lanes, _, _) = _singles(net, view, ctx, params, skus, explain=False)
    cs.solver = {"name": "single-node"}
    cs.risk_model = lanes.risk_info()
    return cs, scores


def _singles(net, view, ctx, params, skus, *, explain: bool, risk: LaneRisk | None = None):
    """The stages every plan starts from: rules, leg physics, single-node plans and their scores.

    Returns (candidates, scores, (usable, line_ok, lanes, excluded, pool)) for the split search
    and the split solver (``pool``: the nodes that may ship, see :func:`~router.rules.node_exclusions`).
    """
    with stage("rules"):
        usable = usable_options(net, view, ctx)
        node_ok, excluded = node_exclusions(net, view, ctx, params, usable, skus, detail=explain)
        line_ok = line_feasibility(view, ctx, params, node_ok)
    with stage("legs"):
        # the pool's lanes only when there is no learned model (whose features, and the
        # rows it scores, cover every lane; on the networks it is trained for that is all of them)
        lanes = lane_metrics(net, view, ctx, risk, nodes=node_ok if risk is None else None)
    with stage("candidates"):
        cs = single_candidates(net, view, ctx, usable, line_ok, excluded, lanes)
    with stage("scoring"):
        scores = score_candidates(cs, view, ctx, params)
    return cs, scores, (usable, line_ok, lanes, excluded, node_ok)


def scored_candidates(
    net: Network,
    view: StateView,
    ctx: OrderContext,
    params: StrategyParams,
    skus: tuple[str, ...],
    *,
    seed: int = 0,
    explain: bool = True,
    compiled_splits: bool = True,
    risk: LaneRisk | None = None,
) -> tuple[CandidateSet, Scores]:
    """All candidates of the order worth ranking, with every score term; may be empty.

    Split plans are enumerated only when no single node can serve the order or
    when a lower bound on a split's cost could still beat the best plan so far
    on cost (the ``cheapest`` strategy) or on score (the optimizer); rule
    strategies prefer fewer shipments, so they never pick a pruned split. See
    :class:`~router.candidates.SplitSearch` for the bounds: a whole size is
    skipped when its bound loses, and within a size, subsets whose own exact
    linear cost and score bound lose are never materialised.

    Each chunk (singles, then one chunk per split size) is scored once on its
    own and the chunks are concatenated once at the end: scores are
    per-candidate, so this equals re-scoring the growing set after every size.

    ``explain=False`` leaves out the per-node exclusion reasons (see
    :func:`~router.rules.node_exclusions`); candidates and scores are the same.
    ``compiled_splits`` chooses the compiled split enumeration (the default) or
    its numpy reference; both list the same plans.

    Raises
    ------
    StageError
        A stage failed; ``stage`` names it and ``cause`` is the original error.
    """
    cs, scores, (usable, line_ok, lanes, excluded, pool) = _singles(
        net, view, ctx, params, skus, explain=explain, risk=risk
    )
    info: dict = {"name": "array-enumeration"}
    max_legs = min(params.max_splits, len(ctx.qty))
    if max_legs >= 2:
        cs, scores, info = _with_splits(
            net, view, ctx, params, usable, line_ok, lanes, excluded, cs, scores, info, max_legs, compiled_splits
        )
    cs.solver = info
    if len(cs) == 0:
        cs, scores = _split_solver(net, view, ctx, params, skus, excluded, cs, scores, seed, lanes, pool, usable)
    cs.risk_model = lanes.risk_info()
    return cs, scores


def _with_splits(net, view, ctx, params, usable, line_ok, lanes, excluded, cs, scores, info, max_legs, compiled):
    """Add the enumerated split plans that could still win to the single-node set (stage "splits")."""
    with stage("splits"):
        enumerated = []
        chunks, chunk_scores = [cs], [scores]
        have = len(cs)
        best_cost = float(scores.term("cost").values.min()) if have else np.inf
        best_score = float(scores.total.min()) if have else np.inf
        search = SplitSearch(net, view, ctx, params, usable, line_ok, lanes, compiled=compiled)
        for size in range(2, max_legs + 1):
            # The compiled enumeration bounds every subset itself, faster than the size-level
            # tests below; the numpy path needs them.
            if not search.compiled:
                # A plan of `size` shipments costs at least lb; skip the size when that cannot
                # beat the best plan so far on cost (cheapest) nor on score (optimizer).
                lb = search.cost_lower_bound(size)
                if not np.isfinite(lb):
                    break
                if have:
                    if lb >= best_cost and params.cost_weight * lb + params.split_penalty_usd * (size - 1) >= best_score:
                        break
                    # The tighter bound (distinct nodes, ETA, risk, load) prunes most remaining sizes.
                    cost_lb, score_lb = search.size_bound(size)
                    if search.beaten(cost_lb, best_cost) and search.beaten(score_lb, best_score):
                        break
                    if size == 3 and search.triple_beaten(best_cost, best_score):
                        continue  # no triple can win; larger plans are judged by their own bounds
            extra = search.candidates(size, excluded, (best_cost, best_score) if have else None)
            enumerated.append(size)
            if len(extra):
                with stage("scoring"):
                    extra_scores = score_candidates(extra, view, ctx, params)
                chunks.append(extra)
                chunk_scores.append(extra_scores)
                have += len(extra)
                best_cost = min(best_cost, float(extra_scores.term("cost").values.min()))
                best_score = min(best_score, float(extra_scores.total.min()))
        if len(chunks) > 1:
            if len(chunks[0]) == 0:  # no single-node plan: the set starts with the first split chunk
                chunks, chunk_scores = chunks[1:], chunk_scores[1:]
            cs = concat_all(chunks)
            cs.excluded = excluded
            scores = concat_scores(chunk_scores)
        info["split_sizes_enumerated"] = enumerated
    return cs, scores, info


def _split_solver(net, view, ctx, params, skus, excluded, cs, scores, seed, lanes, pool, usable):
    """Quantity splits when no enumerated plan covers the order (stage "split_solver").

    Over the order's pool and the nearest nodes holding units it lacks
    (:func:`~router.rules.solver_pool`): a greedy plan first
    (:func:`~router.solver.split.greedy_split`), then the exact MIP within what is
    left of ``solver_time_limit_s`` (the limit counts building both). Both plans join
    the candidates and are scored alike, so the greedy plan is the floor of what the
    MIP may give: a MIP that runs out of time or fails leaves the order routed.
    """
    with stage("split_solver"):
        t0 = time.perf_counter()
        node_open = open_nodes(net, view, params)
        short = stock_shortfall(view, ctx, params, node_open, skus) if node_open.any() else None
        if short is not None:
            cs.excluded = [*excluded, {k: v for k, v in short.items() if k != "short_lines"}]
            cs.solver = {"name": "stock-check", "status": "infeasible", "short_lines": short["short_lines"]}
        elif node_open.any():
            from router.solver.split import SplitSolveError, greedy_split, solve_split

            nodes = solver_pool(net, view, ctx, params, usable, pool)
            if bool(np.isnan(lanes.eta.reshape(net.n_nodes, -1)[nodes]).any()):
                lanes = lane_metrics(net, view, ctx, None, nodes=nodes | pool)  # nodes added beyond the pool
            problem, arc_node, arc_opt = build_split_problem(net, view, ctx, params, nodes)
            near = ctx.node_order if ctx.node_order is not None else np.argsort(ctx.dist_miles, kind="stable")
            greedy = greedy_split(problem, near[nodes[near]]) if len(arc_node) else None
            mip, error, mip_ms = None, None, None
            if len(arc_node):
                left = params.solver_time_limit_s - (time.perf_counter() - t0)
                if left <= 0.0:
                    error = f"time limit {params.solver_time_limit_s:g} s spent before the MIP could start"
                else:
                    t1 = time.perf_counter()
                    try:
                        mip = solve_split(problem, time_limit_s=left, seed=seed)
                    except SplitSolveError as exc:
                        # No plan within the time limit (or HiGHS found none): the greedy plan,
                        # if any, stands. Any other failure is a stage failure.
                        error = str(exc)
                    mip_ms = round((time.perf_counter() - t1) * 1000.0, 3)
            plans = [p for p in (mip, greedy) if p is not None]
            if len(plans) == 2 and np.array_equal(plans[0].units, plans[1].units):
                plans = plans[:1]
            info = {
                "name": plans[0].solver if plans else "mathopt-highs",
                "status": plans[0].status if plans else ("error" if error else "infeasible"),
                "ms": round((time.perf_counter() - t0) * 1000.0, 3),
                "arcs": int(len(arc_node)),
                "pool_nodes": int(nodes.sum()),
                "greedy_usd": None if greedy is None else round(greedy.objective_usd, 6),
                "mip_usd": None if mip is None else round(mip.objective_usd, 6),
            }
            if mip_ms is not None:
                info["mip_ms"] = mip_ms
            if error:
                info["error"] = error
                if not plans:
                    excluded = [*excluded, {"node": "*", "rule": "split_solver", "detail": f"split solver: {error}"}]
            if plans:
                parts = [from_units(arc_node, arc_opt, p.units, net, view, ctx, lanes) for p in plans]
                extra = parts[0] if len(parts) == 1 else concat_all(parts)
                extra.excluded = excluded
                cs = extra
                with stage("scoring"):
                    scores = score_candidates(cs, view, ctx, params)
            cs.excluded = excluded
            cs.solver = info
    return cs, scores
