"""Batch re-routing as a model: one column (candidate plan) per open order, under shared capacities.

The engine (:mod:`router.engine.reroute`) builds a :class:`BatchProblem` from the same
candidate generator and score terms as ``route()``; this module only sees arrays:

* ``cost`` float[O, K]: the score of order o's column k plus the cost of moving it (its
  current plan pays no move); ``inf`` where an order has fewer than K columns;
* ``usage`` (scipy CSR, rows x O*K): what each column takes of each capacity row
  (stock per node and SKU, lane shipments per day, picks per node and hour bucket);
* ``capacity`` float[rows];
* ``keep`` int[O]: a column that always fits (the order's current reservation held as
  it is, priced with a penalty): the model is never infeasible, and an order left on
  that column is reported as *unplaced* with the rows that stopped it.

Choose exactly one column per order, every row within its capacity, minimum total cost.

Solvers, all within one wall-clock limit (:func:`solve_batch`):

* ``"lagrangian"`` (any size): the capacity rows are relaxed with multipliers moved by
  subgradient steps; every relaxed solution gives a lower bound (the best one equals the
  LP relaxation's at convergence, and is never above it), and every few steps the
  reduced costs drive a construction (orders by regret, each to its best column that
  fits, :func:`router.solver.batch_kernel.fill`) followed by 1-opt passes on the true
  costs. 100,000 orders x 8 columns run a few hundred steps in seconds.
* ``"mip"``: the exact model in MathOpt with HiGHS, hinted with the heuristic's answer;
  its dual bound proves the gap. For backlogs up to ``MIP_MAX_COLUMNS`` columns.
* ``"cpsat"``: the exact model in CP-SAT (integer usages, costs scaled by 1,000), hinted
  with the Lagrangian answer: for small, tight assignment cores (few columns fit).
* ``"auto"`` (default): Lagrangian first; then, when the model is small enough and the
  gap is still open, the MIP for the rest of the limit.

:func:`lp_bound` solves the LP relaxation with HiGHS (for reports at sizes that fit).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from scipy import sparse

from router.solver.batch_kernel import fill

__all__ = ["MIP_MAX_COLUMNS", "BatchProblem", "BatchSolution", "check_choice", "greedy_sequential", "lp_bound", "solve_batch"]

#: Above this many columns the MIP is not attempted by ``"auto"``: on 10,000-order backlogs (57,000
#: columns) HiGHS had not finished its root node (no dual bound) within the seconds left, and
#: the Lagrangian and ejection chains make better use of them.
MIP_MAX_COLUMNS = 20_000


@dataclass(frozen=True)
class BatchProblem:
    cost: np.ndarray  # float[O, K]
    usage: sparse.csr_matrix  # [R, O*K]
    capacity: np.ndarray  # float[R]
    keep: np.ndarray  # int[O]
    row_names: tuple[str, ...] = ()

    @property
    def n_orders(self) -> int:
        return int(self.cost.shape[0])

    @property
    def width(self) -> int:
        return int(self.cost.shape[1])

    @property
    def n_rows(self) -> int:
        return int(self.capacity.shape[0])

    def validate(self) -> None:
        o, k = self.cost.shape
        if self.usage.shape != (len(self.capacity), o * k):
            raise ValueError(f"usage {self.usage.shape} is not ({len(self.capacity)}, {o * k})")
        if self.keep.shape != (o,) or ((self.keep < 0) | (self.keep >= k)).any():
            raise ValueError("keep must name one column per order")
        if not np.isfinite(self.cost[np.arange(o), self.keep]).all():
            raise ValueError("every order's keep column must have a finite cost")
        if np.isnan(self.cost).any() or (self.capacity < 0).any():
            raise ValueError("costs must not be NaN, capacities must be >= 0")

    def flat(self, choice: np.ndarray) -> np.ndarray:
        return np.arange(self.n_orders) * self.width + choice

    def load(self, choice: np.ndarray) -> np.ndarray:
        x = np.zeros(self.n_orders * self.width)
        x[self.flat(choice)] = 1.0
        return self.usage @ x

    def objective(self, choice: np.ndarray) -> float:
        return float(self.cost[np.arange(self.n_orders), choice].sum())

    def violations(self, choice: np.ndarray) -> np.ndarray:
        """Rows over capacity under ``choice`` (indices)."""
        return np.flatnonzero(self.load(choice) > self.capacity + 1e-6)


@dataclass
class BatchSolution:
    choice: np.ndarray  # int[O] the column of each order
    objective: float
    bound: float  # a proven lower bound of the optimum
    status: str  # "optimal" | "feasible"
    method: str  # which solver found ``choice``
    seconds: float
    stages: dict = field(default_factory=dict)
    duals: np.ndarray | None = None  # the Lagrangian multipliers of the capacity rows, where that ran

    @property
    def gap(self) -> float:
        """(objective - bound) / |objective|: 0 when proven optimal."""
        if self.status == "optimal":
            return 0.0
        if self.objective == 0:
            return 0.0 if self.bound >= 0 else float("inf")
        return max(0.0, (self.objective - self.bound) / abs(self.objective))


def check_choice(problem: BatchProblem, choice: np.ndarray) -> list[str]:
    """Problems of ``choice`` against the model (empty: one real column per order, every row within capacity)."""
    out = []
    if choice.shape != (problem.n_orders,):
        return [f"choice has shape {choice.shape}, not ({problem.n_orders},)"]
    if ((choice < 0) | (choice >= problem.width)).any():
        out.append("a column index is out of range")
        return out
    bad = ~np.isfinite(problem.cost[np.arange(problem.n_orders), choice])
    if bad.any():
        out.append(f"{int(bad.sum())} orders on a column that does not exist")
    load = problem.load(choice)
    for r in np.flatnonzero(load > problem.capacity + 1e-6)[:20].tolist():
        name = problem.row_names[r] if problem.row_names else f"row {r}"
        out.append(f"{name}: {load[r]:g} > capacity {problem.capacity[r]:g}")
    return out


class _Fill:
    """The CSC arrays :func:`fill` walks, built once per problem."""

    def __init__(self, problem: BatchProblem) -> None:
        csc = problem.usage.tocsc()
        csc.sort_indices()
        self.indptr = csc.indptr.astype(np.int64)
        self.rows = csc.indices.astype(np.int64)
        self.vals = csc.data.astype(np.float64)
        self.p = problem

    def run(self, seq: np.ndarray, score: np.ndarray, choice: np.ndarray) -> tuple[np.ndarray, int]:
        """Re-choose the orders of ``seq`` by ``score`` starting from the feasible ``choice``."""
        p = self.p
        choice = choice.copy()
        left = p.capacity - p.load(choice)
        changed = fill(seq, score, self.indptr, self.rows, self.vals, left, choice, True)
        return choice, changed

    def polish(self, choice: np.ndarray, deadline: float, passes: int = 6) -> np.ndarray:
        """1-opt passes on the true costs until none moves an order (or the deadline)."""
        p = self.p
        seq = np.arange(p.n_orders)
        for _ in range(passes):
            choice, changed = self.run(seq, p.cost, choice)
            if changed == 0 or time.perf_counter() >= deadline:
                break
        return choice


def greedy_sequential(problem: BatchProblem, seq: np.ndarray | None = None, *, skip_keep: bool = False) -> np.ndarray:
    """Order-by-order re-routing from empty: each order in ``seq`` (default: as given) takes its cheapest
    column that fits what the earlier ones left; -1 where none fits. The baseline joint solving is measured against.

    ``skip_keep`` leaves out the keep columns (an order that fits nowhere stays -1).
    """
    p = problem
    seq = np.arange(p.n_orders) if seq is None else np.asarray(seq, dtype=np.int64)
    cost = p.cost.copy()
    if skip_keep:
        cost[np.arange(p.n_orders), p.keep] = np.inf
    fl = _Fill(p)
    choice = np.full(p.n_orders, -1, dtype=np.int64)
    left = p.capacity.astype(float).copy()
    fill(seq, cost, fl.indptr, fl.rows, fl.vals, left, choice, release=False)
    return choice


def eject(problem: BatchProblem, choice: np.ndarray, deadline: float, *, all_orders: bool = False) -> tuple[np.ndarray, int]:
    """Move orders to cheaper columns by moving the orders that block them (depth-1 ejection chains).

    For an order, each of its columns cheaper than the one it holds, cheapest first: the
    rows it does not fit are freed by moving orders that use them to their cheapest other
    column that fits (and needs none of those rows); the chain is kept when the moves and
    the new column cost less than the column the order held, else undone. 1-opt passes
    cannot do this: the order alone never fits, and the blockers alone gain nothing by
    moving. By default only orders left on their keep column (stuck) are tried; with
    ``all_orders`` every order that holds a column dearer than its cheapest, largest
    possible gain first. Returns the improved choice and the number of orders moved.
    """
    p = problem
    w = p.width
    choice = choice.copy()
    csc = p.usage.tocsc()
    csr = p.usage.tocsr()
    left = p.capacity - p.load(choice)
    cost = p.cost
    eps = 1e-9

    def col_use(c: int) -> tuple[np.ndarray, np.ndarray]:
        return csc.indices[csc.indptr[c]:csc.indptr[c + 1]], csc.data[csc.indptr[c]:csc.indptr[c + 1]]

    def fits(c: int, rows_out: set[int]) -> bool:
        r, v = col_use(c)
        return bool((v <= left[r] + eps).all()) and not (rows_out & set(r.tolist()))

    if all_orders:
        held = cost[np.arange(p.n_orders), choice]
        gain = held - np.where(np.isfinite(cost), cost, np.inf).min(axis=1)
        todo = np.flatnonzero(gain > 1e-9)
        todo = todo[np.argsort(-gain[todo], kind="stable")]
    else:
        todo = np.flatnonzero((choice == p.keep) & (np.isfinite(cost).sum(axis=1) > 1))
    placed = 0
    for i in todo.tolist():
        if time.perf_counter() >= deadline:
            break
        now_j = int(choice[i])
        keep_c = i * w + now_j
        kr, kv = col_use(keep_c)
        left[kr] += kv  # the order's own column given back while it looks
        done = False
        for j in np.argsort(cost[i]).tolist():
            if j == now_j or not np.isfinite(cost[i, j]) or cost[i, j] >= cost[i, now_j]:
                continue
            c = i * w + j
            r, v = col_use(c)
            short = r[v > left[r] + eps]
            budget = cost[i, now_j] - cost[i, j]
            moved: list[tuple[int, int, int]] = []  # (order, old column, new column)
            spent = 0.0
            ok = True
            for row in short.tolist():
                need = float(v[r == row][0])
                users = csr.indices[csr.indptr[row]:csr.indptr[row + 1]]
                users = users[choice[users // w] == users % w]
                # blockers by what moving them costs at best
                options = []
                for uc in users.tolist():
                    k = uc // w
                    if k == i or any(m[0] == k for m in moved):
                        continue
                    cur = int(choice[k])
                    options.append((k, cur))
                while left[row] + eps < need and options and ok:
                    best = None
                    for k, cur in options:
                        ur, uv = col_use(k * w + cur)
                        left[ur] += uv
                        for jj in np.argsort(cost[k]).tolist():
                            if jj == cur or not np.isfinite(cost[k, jj]):
                                continue
                            d = cost[k, jj] - cost[k, cur]
                            if best is not None and d >= best[0]:
                                break
                            if fits(k * w + jj, set(short.tolist())):
                                best = (d, k, cur, jj)
                                break
                        left[ur] -= uv
                    if best is None or spent + best[0] >= budget:
                        ok = False
                        break
                    d, k, cur, jj = best
                    ur, uv = col_use(k * w + cur)
                    left[ur] += uv
                    nr, nv = col_use(k * w + jj)
                    left[nr] -= nv
                    choice[k] = jj
                    moved.append((k, cur, jj))
                    spent += d
                    options = [(a, b) for a, b in options if a != k]
                if left[row] + eps < need:
                    ok = False
                if not ok:
                    break
            if ok and bool((v <= left[r] + eps).all()) and spent < budget:
                left[r] -= v
                choice[i] = j
                placed += 1
                done = True
                break
            for k, cur, jj in reversed(moved):  # undo the chain
                nr, nv = col_use(k * w + jj)
                left[nr] += nv
                ur, uv = col_use(k * w + cur)
                left[ur] -= uv
                choice[k] = cur
        if not done:
            left[kr] -= kv
    return choice, placed


def _regret_order(score: np.ndarray) -> np.ndarray:
    """Orders by regret (second best minus best score), largest first: those with most to lose choose first."""
    if score.shape[1] < 2:
        return np.arange(score.shape[0])
    two = np.partition(score, 1, axis=1)[:, :2]
    regret = np.where(np.isfinite(two[:, 1]), two[:, 1] - two[:, 0], 1e18)
    return np.argsort(-regret, kind="stable")


def lagrangian(problem: BatchProblem, *, seconds: float, iterations: int = 3000, construct_every: int = 10,
               start: np.ndarray | None = None, u0: np.ndarray | None = None, duals: dict | None = None):
    """(best lower bound, best feasible choice, its cost, steps) by subgradient on the capacity rows.

    ``start``: a feasible choice to begin from (a warm start), else every order on its keep column.
    ``u0``: multipliers to begin from (those of an earlier solve of a model with the same
    rows: any ``u >= 0`` gives a valid bound, and good ones save the first hundred steps).
    ``duals``: a dict that receives the best multipliers found, as ``duals["u"]``.
    """
    p = problem
    t_start = time.perf_counter()
    t_final = t_start + seconds
    # the last quarter of the limit goes to ejection chains on the best answer
    t_end = t_start + 0.75 * seconds
    o, k = p.cost.shape
    rows_of = p.usage
    cap = p.capacity
    fl = _Fill(p)
    # start: everyone on the column that always fits, then 1-opt on the true costs
    finite = np.isfinite(p.cost)
    # the bound with every multiplier at 0 (each order's cheapest column), before anything can run out of time
    best_lb = float(np.where(finite, p.cost, np.inf).min(axis=1).sum())
    first = p.keep.astype(np.int64).copy() if start is None or check_choice(p, start) else start.astype(np.int64).copy()
    best = fl.polish(first, t_end)
    best_cost = p.objective(best)
    cost = np.where(finite, p.cost, 0.0)
    at = rows_of.T  # [O*K, R], a transposed view: its products need no copy
    u = np.zeros(p.n_rows)
    lam = 2.0
    if u0 is not None and len(u0) == p.n_rows:
        # a warm start is near the optimum already: a smaller first stride keeps it there
        u, lam = np.maximum(0.0, np.asarray(u0, dtype=np.float64)), 0.5
    best_u = u
    since, steps, restarts = 0, 0, 0
    idx = np.arange(o)
    x = np.zeros(o * k)
    for it in range(iterations):
        if time.perf_counter() >= t_end:
            break
        steps += 1
        red = cost + (at @ u).reshape(o, k)
        red = np.where(finite, red, np.inf)
        a = np.argmin(red, axis=1)
        lb = float(red[idx, a].sum() - u @ cap)
        if lb > best_lb + 1e-9 * max(1.0, abs(lb)):
            best_lb, best_u, since = lb, u, 0
        else:
            since += 1
            if since >= 25:
                lam, since = lam / 2.0, 0
        x[:] = 0.0
        x[idx * k + a] = 1.0
        g = rows_of @ x - cap
        if (g <= 1e-9).all():
            c = p.objective(a)
            if c < best_cost:
                best, best_cost = a.astype(np.int64), c
            if c - lb <= 1e-9 * max(1.0, abs(c)):
                break
        if it % construct_every == 0:
            cand, _ = fl.run(_regret_order(red), red, best)
            cand = fl.polish(cand, t_end, passes=3)
            if (cand == p.keep).any() and it % (construct_every * 5) == 0:
                cand, placed = eject(p, cand, min(t_end, time.perf_counter() + 0.25 * seconds))
                if placed:
                    cand = fl.polish(cand, t_end, passes=3)
            c = p.objective(cand)
            if c < best_cost - 1e-9:
                best, best_cost = cand, c
        # the step: Polyak's rule towards the best known cost, on the rows that bind or are violated
        gg = np.where((u > 0) | (g > 0), g, 0.0)
        norm = float(gg @ gg)
        if norm <= 0:
            break
        if lam < 1e-4:
            # the steps have shrunk to nothing: start again from the best multipliers with a smaller stride
            restarts += 1
            if restarts > 4:
                break
            u, lam, since = best_u.copy(), 0.5 / restarts, 0
            continue
        u = np.maximum(0.0, u + lam * max(best_cost - lb, 1e-6) / norm * gg)
    while time.perf_counter() < t_final and best_cost - best_lb > 1e-9 * max(1.0, abs(best_cost)):
        cand, moved = eject(p, best, t_final, all_orders=True)
        if not moved:
            break
        cand = fl.polish(cand, t_final, passes=3)
        c = p.objective(cand)
        if c >= best_cost - 1e-9:
            break
        best, best_cost = cand, c
    if np.isfinite(best_lb):
        best_lb = min(best_lb, best_cost)
    if duals is not None:
        duals["u"] = best_u
    return best_lb, best, best_cost, steps


def _mip(problem: BatchProblem, hint: np.ndarray | None, seconds: float, relax: bool = False):
    """The exact model (or its LP relaxation) in MathOpt with HiGHS: (choice or None, status, objective, bound)."""
    from ortools.math_opt.python import mathopt

    t0 = time.perf_counter()
    p = problem
    o, k = p.cost.shape
    model = mathopt.Model(name="batch_reroute")
    cols = np.flatnonzero(np.isfinite(p.cost.ravel()))
    if relax:
        xs = [model.add_variable(lb=0.0, ub=1.0) for _ in range(len(cols))]
    else:
        xs = [model.add_binary_variable() for _ in range(len(cols))]
    var_of = dict(zip(cols.tolist(), xs))
    flat_cost = p.cost.ravel()
    for i in range(o):
        model.add_linear_constraint(
            mathopt.fast_sum(var_of[c] for c in range(i * k, (i + 1) * k) if c in var_of) == 1
        )
    usage = p.usage.tocsr()
    for r in range(p.n_rows):
        start, end = usage.indptr[r], usage.indptr[r + 1]
        if start == end:
            continue
        terms = [float(v) * var_of[int(c)] for c, v in zip(usage.indices[start:end], usage.data[start:end]) if int(c) in var_of]
        # a row no choice can overload adds nothing
        if sum(float(v) for v in usage.data[start:end]) <= p.capacity[r]:
            continue
        model.add_linear_constraint(mathopt.fast_sum(terms) <= float(p.capacity[r]))
    model.minimize(mathopt.fast_sum(float(flat_cost[c]) * v for c, v in var_of.items()))
    model_params = None
    if hint is not None and not relax:
        chosen = set((np.arange(o) * k + hint).tolist())
        values = {v: float(c in chosen) for c, v in var_of.items()}
        model_params = mathopt.ModelSolveParameters(solution_hints=[mathopt.SolutionHint(variable_values=values)])
    # building the model counts against the limit (for 60,000 columns it takes seconds)
    params = mathopt.SolveParameters(time_limit=timedelta(seconds=max(0.1, seconds - (time.perf_counter() - t0))), random_seed=0)
    result = mathopt.solve(model, mathopt.SolverType.HIGHS, params=params, model_params=model_params)
    bound = float(result.termination.objective_bounds.dual_bound)
    status = result.termination.reason.name.lower()
    if relax:
        obj = float(result.objective_value()) if result.has_primal_feasible_solution() else float("nan")
        return None, status, obj, bound
    if not result.has_primal_feasible_solution():
        return None, status, float("inf"), bound
    vals = result.variable_values()
    choice = p.keep.astype(np.int64).copy()
    for c, v in var_of.items():
        if vals[v] > 0.5:
            choice[c // k] = c % k
    return choice, status, p.objective(choice), bound


def _cpsat(problem: BatchProblem, hint: np.ndarray | None, seconds: float, seed: int = 0):
    """The exact model in CP-SAT (costs scaled to integers): (choice or None, status, objective, bound).

    Capacities and usages are whole numbers here (units, shipments, picks), which is
    what CP-SAT needs; a tight assignment core (few columns fit) is where it shines.
    """
    from ortools.sat.python import cp_model

    p = problem
    o, k = p.cost.shape
    flat = p.cost.ravel()
    cols = np.flatnonzero(np.isfinite(flat))
    m = cp_model.CpModel()
    x = {int(c): m.new_bool_var(f"x{c}") for c in cols}
    for i in range(o):
        m.add_exactly_one(x[c] for c in range(i * k, (i + 1) * k) if c in x)
    usage = p.usage.tocsr()
    for r in range(p.n_rows):
        a, b = usage.indptr[r], usage.indptr[r + 1]
        if a == b or usage.data[a:b].sum() <= p.capacity[r]:
            continue
        m.add(sum(int(round(v)) * x[int(c)] for c, v in zip(usage.indices[a:b], usage.data[a:b]) if int(c) in x)
              <= int(np.floor(p.capacity[r] + 1e-9)))
    scale = 1000.0
    m.minimize(sum(int(round(flat[c] * scale)) * v for c, v in x.items()))
    if hint is not None:
        chosen = set((np.arange(o) * k + hint).tolist())
        for c, v in x.items():
            m.add_hint(v, c in chosen)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, seconds)
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    status = solver.solve(m)
    name = solver.status_name(status).lower()
    bound = solver.best_objective_bound / scale
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, name, float("inf"), bound
    choice = p.keep.astype(np.int64).copy()
    for c, v in x.items():
        if solver.value(v):
            choice[c // k] = c % k
    # the rounding of costs to 1/1000 can move the bound by at most half a unit per order
    return choice, name, p.objective(choice), bound - 0.5 * o / scale


def lp_bound(problem: BatchProblem, *, time_limit_s: float = 120.0) -> tuple[float, str]:
    """The LP relaxation's optimum (HiGHS) and its termination: the bound the gap is reported against."""
    _, status, obj, bound = _mip(problem, None, time_limit_s, relax=True)
    return (obj if status == "optimal" else bound), status


def solve_batch(
    problem: BatchProblem, *, time_limit_s: float = 10.0, method: str = "auto", seed: int = 0,
    start: np.ndarray | None = None, duals: np.ndarray | None = None,
) -> BatchSolution:
    """The best choice found within ``time_limit_s``, its cost, a lower bound and the gap.

    ``method``: ``"auto"``, ``"lagrangian"`` or ``"mip"`` (see the module docstring).
    Deterministic for a given problem apart from where the time limit cuts. ``start``: a
    feasible choice to improve on (a warm start); ``duals``: the Lagrangian multipliers
    of an earlier solve of a model with the same rows (the solution's ``duals`` carries
    this solve's).
    """
    if method not in ("auto", "lagrangian", "mip", "cpsat"):
        raise ValueError(f"method must be auto, lagrangian, mip or cpsat, got {method!r}")
    if not time_limit_s > 0:
        raise ValueError(f"time_limit_s must be > 0, got {time_limit_s!r}")
    problem.validate()
    t0 = time.perf_counter()
    stages: dict = {}
    if method == "cpsat":
        lb, hint, hobj, _ = lagrangian(problem, seconds=time_limit_s * 0.2, start=start)
        choice, status, obj, bound = _cpsat(problem, hint, time_limit_s * 0.8, seed)
        if choice is None or obj > hobj:
            choice, obj = hint, hobj
        stages["cpsat"] = {"status": status, "objective": obj, "bound": bound}
        bound = max(bound, lb)
        return BatchSolution(choice, obj, min(bound, obj), "optimal" if status == "optimal" else "feasible", "cpsat",
                             time.perf_counter() - t0, stages)
    if method == "mip":
        choice, status, obj, bound = _mip(problem, None, time_limit_s)
        if choice is None:
            choice, obj = problem.keep.astype(np.int64).copy(), problem.objective(problem.keep)
        stages["mip"] = {"status": status, "objective": obj, "bound": bound}
        return BatchSolution(choice, obj, bound, "optimal" if status == "optimal" else "feasible", "mip",
                             time.perf_counter() - t0, stages)
    small = int(np.isfinite(problem.cost).sum()) <= MIP_MAX_COLUMNS
    lag_share = 0.4 if (method == "auto" and small) else 1.0
    got: dict = {}
    lb, choice, obj, steps = lagrangian(problem, seconds=time_limit_s * lag_share, start=start, u0=duals, duals=got)
    stages["lagrangian"] = {"bound": lb, "objective": obj, "steps": steps, "seconds": round(time.perf_counter() - t0, 3)}
    bound, status, used = lb, "feasible", "lagrangian"
    if obj - lb <= 1e-7 * max(1.0, abs(obj)):
        status = "optimal"
    elif method == "auto" and small:
        left = time_limit_s - (time.perf_counter() - t0)
        if left > 0.2:
            mchoice, mstatus, mobj, mbound = _mip(problem, choice, left)
            stages["mip"] = {"status": mstatus, "objective": mobj, "bound": mbound}
            if np.isfinite(mbound):
                bound = max(bound, mbound)
            if mchoice is not None and not check_choice(problem, mchoice) and mobj < obj - 1e-9:
                choice, obj, used = mchoice, mobj, "mip"
            if mstatus == "optimal" and mchoice is not None:
                status, bound = "optimal", min(obj, max(bound, mbound))
    return BatchSolution(choice, obj, min(bound, obj), status, used, time.perf_counter() - t0, stages, got.get("u"))
