"""The generalized assignment problem (GAP): the assignment core of batch re-routing.

Each job (an open order) goes to exactly one agent (one of its candidate plans' node or
plan), each agent has a capacity in some resource, and the total cost is minimised.
Re-routing a backlog under warehouse capacity has this core, and the GAP has public
instances with known optima (``../shared/data/gap``), so the solver is measured on them
before it routes anything (``benchmarks/gap.py``).

:func:`solve_gap` runs, within one wall-clock limit:

1. **Lagrangian relaxation** of the capacity rows with subgradient steps: a lower bound,
   and at every step the relaxed assignment repaired into a feasible one (jobs by
   regret, each to its cheapest agent with room under the reduced costs), then
   improved by shift and swap moves. Fast, and good from the first second.
2. **CP-SAT** on the exact model, hinted with the best heuristic assignment: it
   proves optimality on small instances and closes most of the gap on large ones.

The answer is the best assignment found, its cost, the best lower bound of the two
(Lagrangian or CP-SAT's) and the gap between them. Infeasible instances (no assignment
fits the capacities) return ``assign = None`` with ``status = "infeasible"`` when that
is proven, or the least overloaded assignment found otherwise.

Costs may be any finite numbers: CP-SAT takes integers, so non-integer costs are scaled
by ``COST_SCALE`` and rounded for it (the reported cost is always recomputed from the
original costs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

__all__ = ["COST_SCALE", "GapProblem", "GapSolution", "read_gap_file", "solve_gap", "solve_gap_highs"]

#: Non-integer costs are multiplied by this and rounded for CP-SAT.
COST_SCALE = 10_000


@dataclass(frozen=True)
class GapProblem:
    """``cost[i, j]`` of job j at agent i, ``resource[i, j]`` it uses there, ``capacity[i]``.

    Minimisation. ``allowed[i, j]`` (default all) forbids pairs.
    """

    cost: np.ndarray
    resource: np.ndarray
    capacity: np.ndarray
    allowed: np.ndarray | None = None

    @property
    def n_agents(self) -> int:
        return int(self.cost.shape[0])

    @property
    def n_jobs(self) -> int:
        return int(self.cost.shape[1])

    def validate(self) -> None:
        m, n = self.cost.shape
        if self.resource.shape != (m, n) or self.capacity.shape != (m,):
            raise ValueError(f"cost {self.cost.shape}, resource {self.resource.shape}, capacity {self.capacity.shape}")
        if self.allowed is not None and self.allowed.shape != (m, n):
            raise ValueError(f"allowed {self.allowed.shape} is not {(m, n)}")
        if not np.isfinite(self.cost).all() or (self.resource < 0).any() or (self.capacity < 0).any():
            raise ValueError("costs must be finite, resources and capacities >= 0")

    def objective(self, assign: np.ndarray) -> float:
        return float(self.cost[assign, np.arange(self.n_jobs)].sum())

    def load(self, assign: np.ndarray) -> np.ndarray:
        return np.bincount(assign, weights=self.resource[assign, np.arange(self.n_jobs)], minlength=self.n_agents)

    def feasible(self, assign: np.ndarray) -> bool:
        ok = bool((assign >= 0).all()) and bool((self.load(assign) <= self.capacity + 1e-9).all())
        if self.allowed is not None:
            ok = ok and bool(self.allowed[assign, np.arange(self.n_jobs)].all())
        return ok


@dataclass
class GapSolution:
    assign: np.ndarray | None  # int[n]: the agent of each job; None when none was found
    objective: float  # cost of assign (inf when None)
    bound: float  # a proven lower bound of the optimum
    status: str  # "optimal", "feasible", "infeasible", "unknown"
    method: str  # which stage found the assignment
    seconds: float
    stages: dict = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """(objective - bound) / objective; 0 when proven optimal, inf without an assignment."""
        if self.assign is None or not np.isfinite(self.objective):
            return float("inf")
        if self.status == "optimal":
            return 0.0
        if self.objective == 0:
            return 0.0 if self.bound >= 0 else float("inf")
        return max(0.0, (self.objective - self.bound) / abs(self.objective))


def read_gap_file(path) -> GapProblem:
    """An OR-Library / Yagiura GAP file: ``m n``, cost (m x n), resource (m x n), capacity (m)."""
    with open(path) as fh:
        nums = np.array(fh.read().split(), dtype=np.int64)
    m, n = int(nums[0]), int(nums[1])
    cost = nums[2 : 2 + m * n].reshape(m, n).astype(float)
    res = nums[2 + m * n : 2 + 2 * m * n].reshape(m, n)
    cap = nums[2 + 2 * m * n : 2 + 2 * m * n + m]
    if len(cap) != m:
        raise ValueError(f"{path}: {len(nums)} numbers do not make an {m} x {n} GAP instance")
    return GapProblem(cost, res.astype(np.int64), cap.astype(np.int64))


# ------------------------------------------------------------------ heuristics
def _repair(p: GapProblem, score: np.ndarray) -> np.ndarray | None:
    """Jobs by regret under ``score`` (largest first), each to its best agent with room."""
    m, n = score.shape
    res, cap = p.resource, p.capacity.astype(float)
    s = np.where(p.allowed, score, np.inf) if p.allowed is not None else score
    fits = res <= cap[:, None]
    s = np.where(fits, s, np.inf)
    two = np.partition(s, 1, axis=0)[:2] if m > 1 else np.vstack([s[0], np.full(n, np.inf)])
    regret = np.where(np.isfinite(two[1]), two[1] - two[0], 1e18)
    order = np.argsort(-regret, kind="stable")
    left = cap.copy()
    assign = np.full(n, -1, dtype=np.int64)
    for j in order.tolist():
        col = np.where(res[:, j] <= left + 1e-9, s[:, j], np.inf)
        i = int(np.argmin(col))
        if not np.isfinite(col[i]):
            return None
        assign[j] = i
        left[i] -= res[i, j]
    return assign


def _improve(p: GapProblem, assign: np.ndarray, deadline: float) -> np.ndarray:
    """Shift and swap moves that lower the cost and keep every capacity, until none is left."""
    m, n = p.cost.shape
    cost, res = p.cost, p.resource
    allowed = p.allowed if p.allowed is not None else np.ones((m, n), dtype=bool)
    left = p.capacity - p.load(assign)
    jobs = np.arange(n)
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        # shifts: every job to its best agent with room
        cur = cost[assign, jobs]
        gain = cur[None, :] - cost  # [m, n]
        room = (res <= left[:, None] + 1e-9) & allowed
        gain = np.where(room & (np.arange(m)[:, None] != assign[None, :]), gain, 0.0)
        for j in np.argsort(-gain.max(axis=0)).tolist():
            i = int(np.argmax(np.where(res[:, j] <= left + 1e-9, cost[assign[j], j] - cost[:, j], 0.0) * allowed[:, j]))
            if cost[i, j] < cost[assign[j], j] - 1e-12 and res[i, j] <= left[i] + 1e-9 and allowed[i, j] and i != assign[j]:
                left[assign[j]] += res[assign[j], j]
                left[i] -= res[i, j]
                assign[j] = i
                improved = True
        # swaps: two jobs on different agents exchange places
        if time.perf_counter() >= deadline:
            break
        a = assign
        ca = cost[a, jobs]
        for j in range(n):
            ij = a[j]
            # job k takes j's agent, j takes k's agent
            ik = a
            delta = cost[ik, j] + cost[ij, jobs] - ca[j] - ca
            ok = (
                (ik != ij)
                & (delta < -1e-9)
                & allowed[ik, j]
                & allowed[ij, jobs]
                & (res[ij, jobs] - res[ij, j] <= left[ij] + 1e-9)
                & (res[ik, j] - res[ik, jobs] <= left[ik] + 1e-9)
            )
            if ok.any():
                k = int(np.argmin(np.where(ok, delta, np.inf)))
                ik_ = int(a[k])
                left[ij] += res[ij, j] - res[ij, k]
                left[ik_] += res[ik_, k] - res[ik_, j]
                a[j], a[k] = ik_, ij
                ca[j], ca[k] = cost[ik_, j], cost[ij, k]
                improved = True
            if time.perf_counter() >= deadline:
                break
    return assign


def lagrangian(p: GapProblem, *, seconds: float, iterations: int = 400) -> tuple[float, np.ndarray | None, float]:
    """(lower bound, best feasible assignment or None, its cost) by subgradient on the capacity rows."""
    t_end = time.perf_counter() + seconds
    m, n = p.cost.shape
    cost = np.where(p.allowed, p.cost, 1e18) if p.allowed is not None else p.cost
    res, cap = p.resource.astype(float), p.capacity.astype(float)
    u = np.zeros(m)
    best_lb, best, best_cost = -np.inf, None, np.inf
    first = _repair(p, cost)
    if first is not None:
        best = _improve(p, first, t_end)
        best_cost = p.objective(best)
    lam = 2.0
    since = 0
    jobs = np.arange(n)
    for _ in range(iterations):
        if time.perf_counter() >= t_end:
            break
        red = cost + u[:, None] * res
        a = np.argmin(red, axis=0)
        lb = float(red[a, jobs].sum() - u @ cap)
        if lb > best_lb + 1e-9:
            best_lb, since = lb, 0
        else:
            since += 1
            if since >= 20:
                lam, since = lam / 2.0, 0
        g = np.bincount(a, weights=res[a, jobs], minlength=m) - cap
        if (g <= 0).all():  # the relaxed assignment fits: it is optimal for the relaxation and feasible
            c = p.objective(a)
            if c < best_cost:
                best, best_cost = a.copy(), c
            if abs(c - lb) < 1e-9:
                break
        cand = _repair(p, red)
        if cand is not None:
            c = p.objective(cand)
            if c < best_cost * 1.02 or best is None:
                cand = _improve(p, cand, min(t_end, time.perf_counter() + 0.05))
                c = p.objective(cand)
                if c < best_cost:
                    best, best_cost = cand, c
        target = best_cost if np.isfinite(best_cost) else abs(best_lb) * 1.05 + 1.0
        norm = float(g @ g)
        if norm <= 0 or lam < 1e-6:
            break
        u = np.maximum(0.0, u + lam * (target - lb) / norm * g)
    return best_lb, best, best_cost


# --------------------------------------------------------------------- exact
def _cpsat(p: GapProblem, hint: np.ndarray | None, seconds: float, workers: int, seed: int):
    from ortools.sat.python import cp_model

    m, n = p.cost.shape
    integral = np.allclose(p.cost, np.round(p.cost))
    scale = 1 if integral else COST_SCALE
    c = np.round(p.cost * scale).astype(np.int64)
    model = cp_model.CpModel()
    allowed = p.allowed if p.allowed is not None else np.ones((m, n), dtype=bool)
    x = {}
    for i in range(m):
        for j in range(n):
            if allowed[i, j] and p.resource[i, j] <= p.capacity[i]:
                x[i, j] = model.new_bool_var(f"x{i}_{j}")
    for j in range(n):
        model.add_exactly_one([x[i, j] for i in range(m) if (i, j) in x])
    for i in range(m):
        terms = [(x[i, j], int(p.resource[i, j])) for j in range(n) if (i, j) in x]
        if terms:
            model.add(sum(v * r for v, r in terms) <= int(p.capacity[i]))
    model.minimize(sum(int(c[i, j]) * v for (i, j), v in x.items()))
    if hint is not None:
        for (i, j), v in x.items():
            model.add_hint(v, bool(hint[j] == i))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, seconds)
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    name = solver.status_name(status)
    assign = None
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        assign = np.full(n, -1, dtype=np.int64)
        for (i, j), v in x.items():
            if solver.value(v):
                assign[j] = i
    bound = -np.inf
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # rounding moved each job's cost by at most 0.5 / scale: a bound of the rounded
        # problem, less that much per job, bounds the original one
        bound = solver.best_objective_bound / scale - (0.0 if integral else 0.5 * n / scale)
    if name == "OPTIMAL" and not integral:
        name = "FEASIBLE"  # optimal for the rounded costs only
    return assign, name, bound


def lns(
    p: GapProblem, assign: np.ndarray, *, seconds: float, seed: int = 0, agents: int = 3, patience: int = 60
) -> tuple[np.ndarray, int]:
    """Large-neighbourhood search: free every job of a few agents and reassign them exactly (CP-SAT).

    Each step picks ``agents`` agents (one at random, the others those whose jobs it could
    take most cheaply), solves the small GAP of their jobs and capacities to optimality
    (under a second), and keeps the result when it costs less. Returns the assignment and
    the number of improving steps. Stops after ``patience`` steps in a row without one:
    the exact stage then gets the time.
    """
    rng = np.random.default_rng(seed)
    stale = 0
    t_end = time.perf_counter() + seconds
    m, n = p.cost.shape
    k = min(agents, m)
    best = assign.copy()
    wins = 0
    while time.perf_counter() < t_end - 0.05 and m > 1 and stale < patience:
        stale += 1
        first = int(rng.integers(m))
        # the agents that the first one's jobs could move to at the least extra cost
        jobs0 = np.flatnonzero(best == first)
        if len(jobs0):
            extra = (p.cost[:, jobs0] - p.cost[first, jobs0]).mean(axis=1)
            extra[first] = np.inf
            near = np.argsort(extra + rng.uniform(0.0, 1e-6 + extra[np.isfinite(extra)].std(), m), kind="stable")
            chosen = [first] + near[: k - 1].tolist()
        else:
            chosen = rng.choice(m, size=k, replace=False).tolist()
        rows = np.asarray(sorted(set(chosen)), dtype=np.int64)
        jobs = np.flatnonzero(np.isin(best, rows))
        if len(jobs) == 0:
            continue
        sub = GapProblem(
            p.cost[np.ix_(rows, jobs)],
            p.resource[np.ix_(rows, jobs)],
            p.capacity[rows],
            None if p.allowed is None else p.allowed[np.ix_(rows, jobs)],
        )
        hint = np.searchsorted(rows, best[jobs])
        got, name, _ = _cpsat(sub, hint, min(1.0, t_end - time.perf_counter()), 1, int(rng.integers(1 << 30)))
        if got is not None and (got >= 0).all():
            new = best.copy()
            new[jobs] = rows[got]
            if p.objective(new) < p.objective(best) - 1e-9 and p.feasible(new):
                best, wins, stale = new, wins + 1, 0
    return best, wins


def solve_gap(
    problem: GapProblem,
    *,
    time_limit_s: float = 30.0,
    seed: int = 0,
    workers: int = 2,
    lagrangian_share: float = 0.05,
    lns_share: float = 0.25,
) -> GapSolution:
    """The best assignment within ``time_limit_s`` (wall clock, all stages), with a bound and a gap.

    Stages: the Lagrangian relaxation (``lagrangian_share`` of the time), large-neighbourhood
    search from its best assignment (``lns_share``), then the exact MIP in HiGHS, started
    from the best assignment so far, for what is left: branch and cut proves the small
    instances optimal in seconds, and on the tight ones the start saves it the search for
    a first good solution (d20200 at 10 s: 12,327 hinted against 12,351 without). With
    ``workers >= 2`` a second thread runs HiGHS on the plain model for the whole limit
    beside these stages (a portfolio on two cores), and the better answer is kept.
    """
    problem.validate()
    t0 = time.perf_counter()
    # With a second core, HiGHS also runs on the untouched model for the whole limit, from the
    # start (MathOpt releases the GIL while it solves): where plain branch and cut beats the
    # heuristics' head start, the portfolio keeps its answer. One worker: no portfolio.
    plain: dict[str, Any] = {}
    runner = None
    if workers >= 2:
        import threading

        def run_plain() -> None:
            plain["result"] = _highs(problem, None, time_limit_s)

        runner = threading.Thread(target=run_plain, name="gap-highs", daemon=True)
        runner.start()
    lb, heur, heur_cost = lagrangian(problem, seconds=max(0.05, lagrangian_share * time_limit_s))
    t_lag = time.perf_counter() - t0
    stages: dict[str, dict[str, Any]] = {"lagrangian": {"bound": lb, "objective": heur_cost, "seconds": round(t_lag, 3)}}
    if heur is not None and lb < heur_cost - 1e-9 * max(1.0, abs(heur_cost)):
        t1 = time.perf_counter()
        heur, wins = lns(problem, heur, seconds=lns_share * time_limit_s, seed=seed)
        stages["lns"] = {"objective": problem.objective(heur), "improvements": wins, "seconds": round(time.perf_counter() - t1, 3)}
    left = time_limit_s - (time.perf_counter() - t0)
    method = "lns" if "lns" in stages and stages["lns"]["improvements"] else "lagrangian"
    assign, bound, status = heur, lb, "feasible" if heur is not None else "unknown"

    def keep(name: str, result: tuple[np.ndarray | None, str, float]) -> bool:
        """Take a HiGHS run's answer and bound if better; True when it proved the instance infeasible."""
        nonlocal assign, bound, status, method
        got, reason, got_bound = result
        stages[name].update(status=reason, bound=got_bound)
        if got is not None and problem.feasible(got):
            c = problem.objective(got)
            stages[name]["objective"] = c
            if assign is None or c < problem.objective(assign) - 1e-9:
                assign, method = got, name
        if reason == "INFEASIBLE":
            return True
        bound = max(bound, got_bound)
        if reason == "OPTIMAL":
            status = "optimal"
        elif assign is not None and status != "optimal":
            status = "feasible"
        return False

    infeasible = False
    if left > 0.05:
        stages["highs"] = {}
        infeasible = keep("highs", _highs(problem, heur, left))
        stages["highs"]["seconds"] = round(time.perf_counter() - t0, 3)
    if runner is not None:
        runner.join()  # when the hinted run proved infeasibility, the plain run does as fast
        stages["highs_plain"] = {}
        infeasible = keep("highs_plain", plain["result"]) or infeasible
    if infeasible:
        return GapSolution(None, float("inf"), float("inf"), "infeasible", "highs", time.perf_counter() - t0, stages)
    obj = problem.objective(assign) if assign is not None else float("inf")
    if assign is not None and abs(obj - bound) <= 1e-9 * max(1.0, abs(obj)):
        status = "optimal"
    return GapSolution(assign, obj, bound, status, method, time.perf_counter() - t0, stages)


def _highs(problem: GapProblem, hint: np.ndarray | None, seconds: float) -> tuple[np.ndarray | None, str, float]:
    """HiGHS through MathOpt on the exact MIP; ``hint`` (an assignment) as a starting solution."""
    from ortools.math_opt.python import mathopt

    m, n = problem.cost.shape
    allowed = problem.allowed if problem.allowed is not None else np.ones((m, n), dtype=bool)
    model = mathopt.Model(name="gap")
    x = {(i, j): model.add_binary_variable() for i in range(m) for j in range(n) if allowed[i, j]}
    for j in range(n):
        model.add_linear_constraint(sum(x[i, j] for i in range(m) if (i, j) in x) == 1)
    for i in range(m):
        model.add_linear_constraint(
            sum(float(problem.resource[i, j]) * x[i, j] for j in range(n) if (i, j) in x) <= float(problem.capacity[i])
        )
    model.minimize(sum(float(problem.cost[i, j]) * v for (i, j), v in x.items()))
    model_params = None
    if hint is not None:
        values = {v: float(hint[j] == i) for (i, j), v in x.items()}
        model_params = mathopt.ModelSolveParameters(solution_hints=[mathopt.SolutionHint(variable_values=values)])
    params = mathopt.SolveParameters(time_limit=timedelta(seconds=max(0.1, seconds)))
    result = mathopt.solve(model, mathopt.SolverType.HIGHS, params=params, model_params=model_params)
    assign = None
    if result.has_primal_feasible_solution():
        vals = result.variable_values()
        assign = np.full(n, -1, dtype=np.int64)
        for (i, j), v in x.items():
            if vals[v] > 0.5:
                assign[j] = i
    return assign, result.termination.reason.name, float(result.termination.objective_bounds.dual_bound)


def solve_gap_highs(problem: GapProblem, *, time_limit_s: float = 30.0) -> GapSolution:
    """The exact MIP given straight to HiGHS (through MathOpt) with its default settings: the baseline."""
    t0 = time.perf_counter()
    assign, reason, bound = _highs(problem, None, time_limit_s)
    obj = problem.objective(assign) if assign is not None else float("inf")
    return GapSolution(assign, obj, bound, reason.lower(), "highs", time.perf_counter() - t0)
