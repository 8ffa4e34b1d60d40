"""Exact split solver for one order: which node x carrier-service arcs ship how many units.

The router calls this only when no enumerated plan covers the order (see
:mod:`router.solver.choose`): a line larger than any single node's stock, which only a
quantity split can ship, or lanes whose volume caps no whole-line plan fits. The
enumeration (:mod:`router.splits`) covers every other split, priced exactly by
:mod:`router.legs`. The API is pure arrays (numpy in, numpy out) so that the caller decides how
node handling, distance and score terms become per-arc costs, and so that the solver
never sees a pydantic object.

Cost of one arc ``l`` shipping ``units[k]`` of each line ``k`` (0 when it ships nothing)::

    fixed[l] + sum_k unit[l, k] * units[k] + per_lb[l] * billable + tier_rate_l(billable)
    billable = max(sum_k weight[k] * units[k], dim_factor[l] * sum_k volume[k] * units[k])

where ``tier_rate_l(b)`` is the rate of the first tier whose bound is >= b, the last rate
above the last bound, and 0 when the arc has no tiers. :func:`arc_cost` is the one
place this formula is evaluated; :func:`solve_split` re-prices its answer with it so
that the reported objective never carries the MIP solver's float tolerances.

The MIP (HiGHS through OR-Tools MathOpt) is::

    min  sum_l fixed_l y_l + sum_lk unit_lk x_lk + sum_l per_lb_l b_l + sum_lt rate_lt z_lt
         + sum_l eps_l y_l                                   (tie-break: fewer arcs)
    s.t. sum_l x_lk = qty_k                                  (every line covered)
         sum_{l at n} x_lk <= avail_nk                       (node stock)
         x_lk <= ub_lk y_l,  u_n >= y_l,  sum_n u_n <= max_nodes
         sum_k vol_k x_lk <= max_volume_l
         b_l >= sum_k w_k x_lk,  b_l >= dim_l sum_k vol_k x_lk
         sum_t z_lt = y_l,  b_l <= sum_t bound_lt z_lt + M_l z_l,open
         (no quantity split: x_lk = qty_k w_lk, sum_l w_lk = 1)

The tier choice uses one aggregated constraint per arc (``b <= bound of the chosen tier``)
rather than one big-M row per tier: with ``sum_t z = y`` it says the same and its LP
relaxation is tighter. That formulation is exact when rates do not fall as the bound
rises (every carrier rate card we know); for a card whose rates do fall somewhere the
model adds lower tier bounds and an exact ``b = max(actual, dim)`` so that a shipment
cannot be pushed into a cheaper, heavier tier.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import numpy as np
from ortools.math_opt.python import mathopt

__all__ = [
    "TIER_TOL_LB",
    "SplitProblem",
    "SplitSolution",
    "SplitSolveError",
    "arc_cost",
    "greedy_split",
    "plan_cost",
    "solve_split",
    "split_violations",
]

#: A billable weight at most this far above a tier bound counts as on the bound. Float
#: sums such as 1.2 + 0.8 + 1.5 + 6.5 land a hair above 10.0; the carrier bills 10 lb.
#: The MIP uses the same allowance so that it and :func:`arc_cost` agree on every tier.
TIER_TOL_LB = 1e-6

# Tie-break per arc used, in USD. Large enough to be above the MIP gap we ask for
# (absolute 1e-7, relative 1e-9 x objective), small enough that even 100 arcs
# (1e-3 USD) cannot make a cheaper plan lose by a reportable cent. The per-arc
# ramp (1 + l / L) breaks ties between equally many arcs by arc order, so the
# same input always gives the same answer, not just the same cost.
_EPS_ARC_USD = 1e-5
_SOLVER_NAME = "mathopt-highs"


class SplitSolveError(RuntimeError):
    """The solver stopped without a plan and without proving there is none (time limit).

    The order is then recorded unfulfillable with this message as the reason (any other
    failure of the solver is a stage failure, and walks the strategy's fallback chain).
    """


@dataclass(frozen=True)
class SplitProblem:
    """One order, the nodes that could ship it and the usable node x carrier-service arcs.

    Attributes
    ----------
    qty : numpy.ndarray
        int[K] units ordered per line.
    unit_weight_lb, unit_volume_cuft : numpy.ndarray
        float[K] weight and volume of one unit of each line.
    avail : numpy.ndarray
        int[N, K] units each node may ship, already net of reservations and safety stock.
    arc_node : numpy.ndarray
        int[L] node index of each arc (an arc is a usable node x carrier-service pair).
    arc_fixed_usd : numpy.ndarray
        float[L] cost paid once if the arc ships anything (carrier fixed, node per-shipment
        handling, per-shipment score terms the caller adds).
    arc_unit_usd : numpy.ndarray
        float[L, K] cost per unit of line k on arc l (carrier per unit and per unit-mile,
        node handling per unit and per carton share, per-unit score terms).
    arc_per_lb_usd : numpy.ndarray
        float[L] cost per billable lb.
    arc_dim_factor : numpy.ndarray
        float[L] lb per cuft; billable = max(actual lb, factor x cuft). 0 = actual weight.
    arc_tier_bounds, arc_tier_rates : tuple of numpy.ndarray
        Per arc, float[T_l] strictly ascending bounds (lb) and their flat rates (USD); may be
        empty. The rate is that of the first tier whose bound is >= billable; above the last
        bound, the last rate.
    arc_max_volume : numpy.ndarray
        float[L] most cuft one shipment on the arc may hold; ``np.inf`` = no limit.
    max_nodes : int
        At most this many distinct nodes ship.
    allow_quantity_split : bool
        False: all units of a line go through one arc.
    """

    qty: np.ndarray
    unit_weight_lb: np.ndarray
    unit_volume_cuft: np.ndarray
    avail: np.ndarray
    arc_node: np.ndarray
    arc_fixed_usd: np.ndarray
    arc_unit_usd: np.ndarray
    arc_per_lb_usd: np.ndarray
    arc_dim_factor: np.ndarray
    arc_tier_bounds: tuple[np.ndarray, ...]
    arc_tier_rates: tuple[np.ndarray, ...]
    arc_max_volume: np.ndarray
    max_nodes: int
    allow_quantity_split: bool = True

    @property
    def n_lines(self) -> int:
        return int(np.asarray(self.qty).shape[0])

    @property
    def n_arcs(self) -> int:
        return int(np.asarray(self.arc_node).shape[0])

    @property
    def n_nodes(self) -> int:
        return int(np.asarray(self.avail).shape[0])

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first array whose shape or values do not fit.

        Cheap (shape checks and a few vector comparisons); :func:`solve_split` calls it so
        that a caller's indexing bug is an error here, not a wrong plan later.
        """
        K, L, N = self.n_lines, self.n_arcs, self.n_nodes
        shapes = {
            "unit_weight_lb": (np.shape(self.unit_weight_lb), (K,)),
            "unit_volume_cuft": (np.shape(self.unit_volume_cuft), (K,)),
            "avail": (np.shape(self.avail), (N, K)),
            "arc_fixed_usd": (np.shape(self.arc_fixed_usd), (L,)),
            "arc_unit_usd": (np.shape(self.arc_unit_usd), (L, K)),
            "arc_per_lb_usd": (np.shape(self.arc_per_lb_usd), (L,)),
            "arc_dim_factor": (np.shape(self.arc_dim_factor), (L,)),
            "arc_max_volume": (np.shape(self.arc_max_volume), (L,)),
        }
        for name, (got, want) in shapes.items():
            if got != want:
                raise ValueError(f"SplitProblem.{name} has shape {got}, expected {want} (K={K}, L={L}, N={N})")
        if len(self.arc_tier_bounds) != L or len(self.arc_tier_rates) != L:
            raise ValueError(
                f"arc_tier_bounds/arc_tier_rates need one array per arc ({L}), got "
                f"{len(self.arc_tier_bounds)}/{len(self.arc_tier_rates)}"
            )
        for l, (bounds, rates) in enumerate(zip(self.arc_tier_bounds, self.arc_tier_rates)):
            if np.shape(bounds) != np.shape(rates) or np.ndim(bounds) != 1:
                raise ValueError(f"arc {l}: tier bounds {np.shape(bounds)} and rates {np.shape(rates)} must pair up")
            if np.any(np.diff(bounds) <= 0):
                raise ValueError(f"arc {l}: tier bounds must be strictly ascending, got {list(bounds)}")
        if L and (np.min(self.arc_node) < 0 or np.max(self.arc_node) >= N):
            raise ValueError(f"arc_node must index the {N} nodes, got values in [{np.min(self.arc_node)}, {np.max(self.arc_node)}]")
        if np.any(np.asarray(self.qty) < 0) or np.any(np.asarray(self.avail) < 0):
            raise ValueError("qty and avail must be >= 0")
        if self.max_nodes < 1:
            raise ValueError(f"max_nodes must be >= 1, got {self.max_nodes}")


@dataclass(frozen=True)
class SplitSolution:
    """The chosen units per arc and line, priced with :func:`arc_cost`.

    Attributes
    ----------
    units : numpy.ndarray
        int[L, K] units of line k shipped on arc l.
    objective_usd : float
        Sum of :func:`arc_cost` over the arcs, recomputed from ``units`` (no tie-break, no
        solver tolerance).
    status : str
        ``"optimal"`` (proved within the gap) or ``"feasible"`` (time limit hit with a plan).
    solver : str
        Which engine answered, e.g. ``"mathopt-highs"``.
    solve_ms : float
        Wall time of model building and solving.
    """

    units: np.ndarray
    objective_usd: float
    status: str
    solver: str
    solve_ms: float

    @property
    def arcs_used(self) -> np.ndarray:
        """int[] indices of the arcs that ship at least one unit."""
        return np.flatnonzero(self.units.sum(axis=1) > 0)


def _tier_rate(bounds: np.ndarray, rates: np.ndarray, billable: float) -> tuple[float, int]:
    """Rate and tier index for a billable weight; (0, -1) when the arc has no tiers."""
    if len(bounds) == 0:
        return 0.0, -1
    # First bound >= billable, allowing the float slack: billable 10.000000000000002 is 10.
    t = int(np.searchsorted(bounds, billable - TIER_TOL_LB, side="left"))
    t = min(t, len(bounds) - 1)  # above the last bound the last rate applies
    return float(rates[t]), t


def arc_cost(problem: SplitProblem, l: int, units_k: np.ndarray) -> tuple[float, dict]:
    """Exact cost of shipping ``units_k`` on arc ``l``.

    Parameters
    ----------
    problem : SplitProblem
        The arrays the costs come from.
    l : int
        Arc index.
    units_k : numpy.ndarray
        int[K] units of each line on this arc.

    Returns
    -------
    usd : float
        fixed + unit + per-lb x billable + tier rate(billable); 0 when nothing is shipped.
    breakdown : dict
        ``fixed_usd``, ``unit_usd``, ``weight_usd`` (per-lb part), ``tier_rate_usd``,
        ``tier_index`` (-1 without tiers or shipment), ``actual_lb``, ``dim_lb``,
        ``billable_lb``, ``volume_cuft``, ``max_volume_cuft``, ``within_volume``, ``units``,
        ``usd``. The router and the tests read the parts from here so that every plan is
        priced one way.
    """
    units = np.asarray(units_k, dtype=np.int64)
    n_units = int(units.sum())
    actual = float(units @ np.asarray(problem.unit_weight_lb, dtype=float))
    volume = float(units @ np.asarray(problem.unit_volume_cuft, dtype=float))
    dim = float(problem.arc_dim_factor[l]) * volume
    max_vol = float(problem.arc_max_volume[l])
    if n_units == 0:
        return 0.0, {
            "fixed_usd": 0.0, "unit_usd": 0.0, "weight_usd": 0.0, "tier_rate_usd": 0.0,
            "tier_index": -1, "actual_lb": 0.0, "dim_lb": 0.0, "billable_lb": 0.0,
            "volume_cuft": 0.0, "max_volume_cuft": max_vol, "within_volume": True,
            "units": 0, "usd": 0.0,
        }
    billable = max(actual, dim)
    fixed = float(problem.arc_fixed_usd[l])
    unit = float(units @ np.asarray(problem.arc_unit_usd[l], dtype=float))
    weight = float(problem.arc_per_lb_usd[l]) * billable
    rate, t = _tier_rate(np.asarray(problem.arc_tier_bounds[l], float), np.asarray(problem.arc_tier_rates[l], float), billable)
    usd = fixed + unit + weight + rate
    return usd, {
        "fixed_usd": fixed, "unit_usd": unit, "weight_usd": weight, "tier_rate_usd": rate,
        "tier_index": t, "actual_lb": actual, "dim_lb": dim, "billable_lb": billable,
        "volume_cuft": volume, "max_volume_cuft": max_vol,
        "within_volume": volume <= max_vol + 1e-9, "units": n_units, "usd": usd,
    }


def plan_cost(problem: SplitProblem, units: np.ndarray) -> float:
    """Sum of :func:`arc_cost` over all arcs of a plan ``units[L, K]``."""
    return float(sum(arc_cost(problem, l, units[l])[0] for l in range(problem.n_arcs)))


def split_violations(problem: SplitProblem, units: np.ndarray) -> list[str]:
    """Every rule of the problem that ``units[L, K]`` breaks, as plain sentences.

    Empty means the plan is feasible. :func:`solve_split` runs it on its own answer
    because a rounded MIP solution must be checked, not trusted.
    """
    out: list[str] = []
    units = np.asarray(units)
    qty = np.asarray(problem.qty)
    if units.shape != (problem.n_arcs, problem.n_lines):
        return [f"units has shape {units.shape}, expected {(problem.n_arcs, problem.n_lines)}"]
    if np.any(units < 0):
        out.append("negative units")
    shipped = units.sum(axis=0)
    for k in np.flatnonzero(shipped != qty):
        out.append(f"line {k}: {shipped[k]} units shipped, {qty[k]} ordered")
    per_node = np.zeros_like(np.asarray(problem.avail))
    np.add.at(per_node, np.asarray(problem.arc_node), units)
    for n, k in zip(*np.nonzero(per_node > np.asarray(problem.avail))):
        out.append(f"node {n} line {k}: ships {per_node[n, k]}, may ship {problem.avail[n, k]}")
    vol = units @ np.asarray(problem.unit_volume_cuft, float)
    for l in np.flatnonzero(vol > np.asarray(problem.arc_max_volume, float) + 1e-9):
        out.append(f"arc {l}: {vol[l]:.6g} cuft over its {problem.arc_max_volume[l]:.6g} cuft limit")
    used_nodes = np.unique(np.asarray(problem.arc_node)[units.sum(axis=1) > 0])
    if len(used_nodes) > problem.max_nodes:
        out.append(f"{len(used_nodes)} nodes used, at most {problem.max_nodes} allowed")
    if not problem.allow_quantity_split:
        for k in np.flatnonzero((units > 0).sum(axis=0) > 1):
            out.append(f"line {k}: split over {(units[:, k] > 0).sum()} arcs, quantity split not allowed")
    return out

def _arc_tiers(problem: SplitProblem, l: int, big_m: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """Tiers of arc ``l`` that a shipment of at most ``big_m`` billable lb can reach.

    Returns bounds, rates and whether the rates fall somewhere. Tiers after the first
    bound >= ``big_m`` can never be "the first tier whose bound >= billable" and are
    dropped; otherwise an open-ended tier (bound ``big_m`` + 1, the last rate) is added.
    With non-falling rates a tier whose rate equals the next one's is dropped too: the
    next tier takes the same shipments at the same price, so the choice is moot.
    """
    bounds = np.asarray(problem.arc_tier_bounds[l], dtype=float)
    rates = np.asarray(problem.arc_tier_rates[l], dtype=float)
    if len(bounds) == 0:
        return bounds, rates, False
    last = int(np.searchsorted(bounds, big_m - TIER_TOL_LB, side="left"))
    if last < len(bounds):
        bounds, rates = bounds[: last + 1], rates[: last + 1]
    else:
        bounds, rates = np.append(bounds, big_m + 1.0), np.append(rates, rates[-1])
    falling = bool(np.any(np.diff(rates) < 0))
    if not falling and len(bounds) > 1:
        keep = np.append(rates[:-1] < rates[1:], True)
        bounds, rates = bounds[keep], rates[keep]
    return bounds, rates, falling


def _row(model: mathopt.Model, terms: list[tuple[mathopt.Variable, float]], lb: float, ub: float) -> None:
    # Setting coefficients on an empty row avoids building Python expression trees,
    # which is most of the model-building time at this size.
    c = model.add_linear_constraint(lb=lb, ub=ub)
    for var, coef in terms:
        c.set_coefficient(var, coef)


def greedy_split(problem: SplitProblem, node_order: np.ndarray) -> SplitSolution | None:
    """A quick plan that covers the order by taking units node by node, or None.

    Two passes, the cheaper plan kept: nodes nearest first (``node_order``: node
    indices in order of preference), each giving what it holds of what is still
    missing; then, as a repair when that needs more than ``max_nodes`` nodes, the node
    that covers the most missing units first. Each node ships on its cheapest arc
    within the lane's volume limit (:func:`arc_cost`). Without quantity splits a node
    gives a line only when it holds all of it. It is the split solver's floor: the
    router keeps it beside the MIP's plan, so an order that some nodes can cover is
    never reported unfulfillable for want of solver time.
    """
    t0 = time.perf_counter()
    qty = np.asarray(problem.qty, dtype=np.int64)
    avail = np.asarray(problem.avail, dtype=np.int64)
    arc_node = np.asarray(problem.arc_node, dtype=np.int64)
    nodes = [int(n) for n in node_order if (arc_node == n).any()]
    best: tuple[float, np.ndarray] | None = None
    for by_coverage in (False, True):
        left = qty.copy()
        taken: list[tuple[int, np.ndarray]] = []
        pending = list(nodes)
        while left.any() and len(taken) < problem.max_nodes and pending:
            give = np.minimum(avail[pending], left[None, :])  # [P, K]
            if not problem.allow_quantity_split:
                give = np.where(avail[pending] >= left[None, :], left[None, :], 0)
            pick = int(np.argmax(give.sum(axis=1))) if by_coverage else int(np.argmax(give.sum(axis=1) > 0))
            if give[pick].sum() == 0:
                break
            taken.append((pending.pop(pick), give[pick]))
            left = left - give[pick]
        if left.any():
            continue
        units = np.zeros((problem.n_arcs, problem.n_lines), dtype=np.int64)
        total = 0.0
        for n, u in taken:
            arcs = np.flatnonzero(arc_node == n)
            priced = [(arc_cost(problem, int(a), u), int(a)) for a in arcs]
            fits = [(usd, a) for (usd, info), a in priced if info["within_volume"]]
            if not fits:
                break
            usd, a = min(fits)
            units[a] = u
            total += usd
        else:
            if best is None or total < best[0] - 1e-9:
                best = (total, units)
    if best is None:
        return None
    return SplitSolution(best[1], best[0], "heuristic", "greedy", (time.perf_counter() - t0) * 1000.0)


def solve_split(problem: SplitProblem, *, time_limit_s: float = 2.0, seed: int = 0) -> SplitSolution | None:
    """Cheapest assignment of the order's units to arcs, by MIP (HiGHS via MathOpt).

    Parameters
    ----------
    problem : SplitProblem
        The order and its arcs; see the class for units and meaning.
    time_limit_s : float
        Wall-clock limit of the solve. Determinism holds when the solve ends before it
        (the answer then does not depend on machine speed).
    seed : int
        HiGHS random seed; the solve is single-threaded.

    Returns
    -------
    SplitSolution or None
        ``None`` when no plan exists (not enough stock, volume limits or ``max_nodes`` too
        tight). Otherwise the units per arc and line with the objective re-priced by
        :func:`arc_cost`.

    Raises
    ------
    SplitSolveError
        The time limit ended the solve before any plan was found, or the solver failed.
    ValueError
        The arrays do not fit together (see :meth:`SplitProblem.validate`).
    """
    t0 = time.perf_counter()
    problem.validate()
    K, L = problem.n_lines, problem.n_arcs
    qty = np.asarray(problem.qty, dtype=np.int64)
    avail = np.asarray(problem.avail, dtype=np.int64)
    arc_node = np.asarray(problem.arc_node, dtype=np.int64)
    w_lb = np.asarray(problem.unit_weight_lb, dtype=float)
    v_cf = np.asarray(problem.unit_volume_cuft, dtype=float)
    max_vol = np.asarray(problem.arc_max_volume, dtype=float)
    dim_f = np.asarray(problem.arc_dim_factor, dtype=float)
    per_lb = np.asarray(problem.arc_per_lb_usd, dtype=float)
    fixed = np.asarray(problem.arc_fixed_usd, dtype=float)
    unit_usd = np.asarray(problem.arc_unit_usd, dtype=float)

    # Upper bound of x[l, k]: the order, the node's stock, and what fits the arc's volume
    # on its own. Tight bounds make the x <= ub * y links strong and drop dead arcs.
    ub = np.minimum(qty[None, :], avail[arc_node, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = np.where(v_cf[None, :] > 0, np.floor(max_vol[:, None] / v_cf[None, :] + 1e-9), np.inf)
    # Clip in float first: casting inf (no volume limit) to int is undefined.
    ub = np.minimum(ub.astype(float), fit).astype(np.int64)
    ub = np.maximum(ub, 0)
    if not problem.allow_quantity_split:
        # A line goes whole or not at all on an arc.
        ub = np.where(ub >= qty[None, :], qty[None, :], 0)
    lines = np.flatnonzero(qty > 0)

    if lines.size == 0:
        units = np.zeros((L, K), dtype=np.int64)
        return SplitSolution(units, 0.0, "optimal", _SOLVER_NAME, (time.perf_counter() - t0) * 1e3)
    # Cheap infeasibility proof before building anything: some line cannot be covered
    # even ignoring volume sharing and max_nodes (a node ships at most its stock, over
    # all of its arcs together).
    node_cap = np.zeros((problem.n_nodes, K), dtype=np.int64)
    np.add.at(node_cap, arc_node, ub)
    node_cap = np.minimum(node_cap, avail)
    if np.any(node_cap[:, lines].sum(axis=0) < qty[lines]):
        return None

    split_ok = problem.allow_quantity_split
    live = [l for l in range(L) if ub[l, lines].sum() > 0]
    model = mathopt.Model(name="split")
    obj = model.objective
    y: dict[int, mathopt.Variable] = {}
    # x[(l, k)] is the integer units variable, or without quantity split the binary w
    # with units = qty_k * w; `scale` turns either into units in every row below.
    x: dict[tuple[int, int], mathopt.Variable] = {}
    arc_terms: dict[int, list[tuple[mathopt.Variable, float, int]]] = {}
    for i, l in enumerate(live):
        y[l] = yl = model.add_binary_variable(name=f"y{l}")
        obj.set_linear_coefficient(yl, fixed[l] + _EPS_ARC_USD * (1.0 + i / len(live)))
        terms = arc_terms[l] = []
        for k in lines:
            k = int(k)  # type: ignore[assignment]
            u = int(ub[l, k])
            if u <= 0:
                continue
            if split_ok:
                xv = model.add_integer_variable(lb=0, ub=u, name=f"x{l}_{k}")
                _row(model, [(xv, 1.0), (yl, -float(u))], -math.inf, 0.0)
                scale = 1.0
            else:
                xv = model.add_binary_variable(name=f"w{l}_{k}")
                _row(model, [(xv, 1.0), (yl, -1.0)], -math.inf, 0.0)
                scale = float(qty[k])
            x[(l, k)] = xv  # type: ignore[index]
            obj.set_linear_coefficient(xv, unit_usd[l, k] * scale)
            terms.append((xv, scale, k))  # type: ignore[arg-type]

    for k in lines:
        k = int(k)  # type: ignore[assignment]
        # sum_l x_lk = qty_k; without quantity split sum_l w_lk = 1
        rhs = float(qty[k]) if split_ok else 1.0
        _row(model, [(x[(l, k)], 1.0) for l in live if (l, k) in x], rhs, rhs)  # type: ignore[index]
        if split_ok:
            # One arc's bound already respects the stock; a row is needed only where the
            # arcs of one node could together ship more than it has. (Without quantity
            # split one arc takes the whole line and its bound fits the stock.)
            for n in np.unique(arc_node[[l for l in live if (l, k) in x]]):
                at_n = [l for l in live if (l, k) in x and arc_node[l] == n]
                if len(at_n) > 1 and int(ub[at_n, k].sum()) > avail[n, k]:
                    _row(model, [(x[(l, k)], 1.0) for l in at_n], -math.inf, float(avail[n, k]))  # type: ignore[index]

    used_nodes = sorted({int(arc_node[l]) for l in live})
    if problem.max_nodes < len(used_nodes):
        u_var = {n: model.add_binary_variable(name=f"u{n}") for n in used_nodes}
        for l in live:
            _row(model, [(u_var[int(arc_node[l])], 1.0), (y[l], -1.0)], 0.0, math.inf)
        _row(model, [(v, 1.0) for v in u_var.values()], -math.inf, float(problem.max_nodes))

    for l in live:
        terms = arc_terms[l]
        # Largest volume / weight the arc could carry given the x bounds: sizes the big-M.
        vol_hi = float(sum(v_cf[k] * ub[l, k] for _, _, k in terms))
        wt_hi = float(sum(w_lb[k] * ub[l, k] for _, _, k in terms))
        vol_row = [(v, sc * v_cf[k]) for v, sc, k in terms if v_cf[k] > 0]
        if np.isfinite(max_vol[l]) and vol_hi > max_vol[l] + 1e-9:
            _row(model, vol_row, -math.inf, float(max_vol[l]))

        bounds = np.asarray(problem.arc_tier_bounds[l], dtype=float)
        if per_lb[l] <= 0 and len(bounds) == 0:
            continue  # billable weight costs nothing on this arc: no b, no tiers
        big_m = max(wt_hi, dim_f[l] * min(vol_hi, max_vol[l]))
        b = model.add_variable(lb=0.0, ub=big_m + 1.0, name=f"b{l}")
        obj.set_linear_coefficient(b, per_lb[l])
        wt_row = [(v, -sc * w_lb[k]) for v, sc, k in terms if w_lb[k] > 0]
        dim_row = [(v, -c * dim_f[l]) for v, c in vol_row]
        _row(model, [(b, 1.0)] + wt_row, 0.0, math.inf)  # b >= actual lb
        if dim_f[l] > 0:
            _row(model, [(b, 1.0)] + dim_row, 0.0, math.inf)  # b >= dim lb
        if len(bounds) == 0:
            continue
        t_bounds, t_rates, falling = _arc_tiers(problem, l, big_m)
        z = [model.add_binary_variable(name=f"z{l}_{t}") for t in range(len(t_bounds))]
        for zt, rate in zip(z, t_rates):
            obj.set_linear_coefficient(zt, float(rate))
        _row(model, [(zt, 1.0) for zt in z] + [(y[l], -1.0)], 0.0, 0.0)  # one tier iff used
        # b <= bound of the chosen tier, with the same float allowance as arc_cost
        _row(model, [(b, 1.0)] + [(zt, -(float(bt) + TIER_TOL_LB)) for zt, bt in zip(z, t_bounds)], -math.inf, 0.0)
        if falling:
            # Falling rates: the solver could otherwise inflate b into a cheaper, heavier
            # tier. Tier t then needs b above the previous bound, and b is pinned to
            # max(actual, dim) by a selector s (s = 0: b <= actual; s = 1: b <= dim).
            lows = np.concatenate([[0.0], t_bounds[:-1] + TIER_TOL_LB])
            _row(model, [(b, 1.0)] + [(zt, -float(lo)) for zt, lo in zip(z, lows)], 0.0, math.inf)
            s = model.add_binary_variable(name=f"s{l}")
            big = big_m + 1.0
            _row(model, [(b, 1.0), (s, -big)] + wt_row, -math.inf, 0.0)
            _row(model, [(b, 1.0), (s, big)] + dim_row, -math.inf, big)

    params = mathopt.SolveParameters(
        time_limit=timedelta(seconds=float(time_limit_s)),
        random_seed=int(seed),
        # The gap must sit below the per-arc tie-break, or "optimal" could stop at a
        # plan with one arc too many.
        relative_gap_tolerance=1e-9,
        absolute_gap_tolerance=1e-7,
    )
    # HiGHS rejects MathOpt's generic `threads`; its own option pins one thread.
    params.highs.int_options["threads"] = 1
    params.highs.bool_options["output_flag"] = False
    try:
        result = mathopt.solve(model, mathopt.SolverType.HIGHS, params=params)
    except Exception as exc:  # pybind status errors have no common base worth naming
        raise SplitSolveError(f"HiGHS failed on the split model: {exc!r}") from exc

    reason = result.termination.reason
    if reason in (mathopt.TerminationReason.INFEASIBLE, mathopt.TerminationReason.INFEASIBLE_OR_UNBOUNDED):
        return None
    if not result.has_primal_feasible_solution():
        raise SplitSolveError(
            f"no plan within {time_limit_s} s: {reason.name} ({result.termination.detail})"
        )
    status = "optimal" if reason == mathopt.TerminationReason.OPTIMAL else "feasible"

    keys = list(x)
    vals = result.variable_values([x[key] for key in keys])
    units = np.zeros((L, K), dtype=np.int64)
    for (l, k), v in zip(keys, vals):  # type: ignore[assignment]
        units[l, k] = int(round(v)) * (1 if problem.allow_quantity_split else int(qty[k]))
    bad = split_violations(problem, units)
    if bad:
        raise SplitSolveError(f"rounded MIP solution breaks the problem: {'; '.join(bad)}")
    objective = plan_cost(problem, units)
    return SplitSolution(units, objective, status, _SOLVER_NAME, (time.perf_counter() - t0) * 1e3)


@lru_cache(maxsize=1)
def warm_up() -> float:
    """Solve one tiny split MIP, once per process; returns the seconds it took.

    The first MIP of a process pays for loading OR-Tools and starting HiGHS: about
    0.5 s and 25 MB. Without this that lands on whichever order first needs the MIP,
    hours into a run (one route far over its usual milliseconds, and resident memory
    that steps up long after start). A :class:`~router.engine.Router` calls this when
    it is built, so a running router pays its one-time costs before its first order.
    """
    t0 = time.perf_counter()
    two = np.array([0, 1], dtype=np.int64)
    problem = SplitProblem(
        qty=np.array([2], dtype=np.int64),
        unit_weight_lb=np.ones(1),
        unit_volume_cuft=np.full(1, 0.1),
        avail=np.array([[1], [1]], dtype=np.int64),
        arc_node=two,
        arc_fixed_usd=np.array([5.0, 6.0]),
        arc_unit_usd=np.array([[1.0], [1.0]]),
        arc_per_lb_usd=np.zeros(2),
        arc_dim_factor=np.zeros(2),
        arc_tier_bounds=(np.zeros(0), np.zeros(0)),
        arc_tier_rates=(np.zeros(0), np.zeros(0)),
        arc_max_volume=np.full(2, np.inf),
        max_nodes=2,
    )
    solve_split(problem, time_limit_s=10.0)
    return time.perf_counter() - t0
