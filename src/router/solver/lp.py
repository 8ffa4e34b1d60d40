"""Linear programs that price stock and bound what any routing policy could achieve.

Two models, both solved with HiGHS through OR-Tools MathOpt:

* :func:`transport_prices` -- the transportation LP of Acimovic & Graves (2015),
  "Making better fulfillment decisions on the fly in an online retail
  environment" (M&SOM 17(1)). Expected remaining demand per city x SKU is served
  from the stock at each node at a per-unit cost, or left unmet at a penalty::

      min  sum_njk c[n,j,k] x[n,j,k] + sum_jk P[j,k] u[j,k]
      s.t. sum_n x[n,j,k] + u[j,k] = d[j,k]        (demand)
           sum_j x[n,j,k] <= s[n,k]                (supply; dual pi[n,k] <= 0)
           x, u >= 0

  ``-pi[n,k]`` is the marginal value of one more unit of SKU k at node n for the
  demand still to come: the opportunity cost of shipping it now. The router
  charges it through the ``stock_value`` score term.

* :func:`fulfilment_lp` -- the order-level model of
  Jasin & Sinha (2015) and Ma (2023) over a known list of orders: ``y[o,k,n]``
  is the share of item k of order o shipped from n, ``z[o,n] >= y[o,k,n]`` the
  package opened at n, each package pays the fixed cost, each unit its per-unit
  cost, each unit left unfulfilled the penalty::

      min  sum_on F z[o,n] + sum_okn c[n,j(o)] y[o,k,n] + sum_ok P[j(o)] u[o,k]
      s.t. sum_n y[o,k,n] + u[o,k] = 1
           y[o,k,n] <= z[o,n]
           sum_(o,k) y[o,k,n] <= s[n,k]
           0 <= y, z, u <= 1              (the MIP: binary)

  Over the realised arrivals its LP relaxation is a lower bound on the cost of
  every policy, online or not; the MIP is the hindsight optimum. Over a sample of
  *future* orders drawn from the demand model, the duals of its supply rows are
  order-level stock prices that also see the value of consolidating packages.

Models are built as one ``ModelProto`` from numpy index arrays (no Python object
per variable): the hindsight model of 5,000 orders has ~10^5 variables.
:func:`fulfilment_prices` solves the same order-level LP through SciPy's HiGHS
(statically linked into SciPy, so it shares a process with OR-Tools' HiGHS),
faster on the small sampled futures a pricing job solves by the dozen.
:func:`track_prices` corrects prices between two solves from how fast the stock is
actually spent.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import numpy as np
from ortools.math_opt import model_pb2
from ortools.math_opt.python import mathopt

__all__ = [
    "FulfilmentCosts",
    "FulfilmentResult",
    "OrderList",
    "TransportPrices",
    "fulfilment_lp",
    "fulfilment_prices",
    "lagrangian_bound",
    "track_prices",
    "transport_prices",
]

# Duals come out of the simplex with float noise; a price below a tenth of a cent is 0.
_PRICE_TOL_USD = 1e-6


@dataclass(frozen=True)
class _Lp:
    """Index arrays of a linear (integer) program, ready for one ModelProto."""

    obj: np.ndarray  # float[V]
    var_ub: np.ndarray  # float[V] (lower bounds are 0)
    rows_lb: np.ndarray  # float[R]
    rows_ub: np.ndarray  # float[R]
    a_row: np.ndarray  # int[nnz]
    a_col: np.ndarray  # int[nnz]
    a_val: np.ndarray  # float[nnz]
    integer: bool = False

    def proto(self) -> model_pb2.ModelProto:
        m = model_pb2.ModelProto(name="lp")
        nv, nr = len(self.obj), len(self.rows_lb)
        m.variables.ids.extend(range(nv))
        m.variables.lower_bounds.extend(np.zeros(nv).tolist())
        m.variables.upper_bounds.extend(self.var_ub.tolist())
        m.variables.integers.extend([self.integer] * nv)
        nz = np.flatnonzero(self.obj)
        m.objective.linear_coefficients.ids.extend(nz.tolist())
        m.objective.linear_coefficients.values.extend(self.obj[nz].tolist())
        m.linear_constraints.ids.extend(range(nr))
        m.linear_constraints.lower_bounds.extend(self.rows_lb.tolist())
        m.linear_constraints.upper_bounds.extend(self.rows_ub.tolist())
        order = np.lexsort((self.a_col, self.a_row))  # the proto wants row-major, sorted
        m.linear_constraint_matrix.row_ids.extend(self.a_row[order].tolist())
        m.linear_constraint_matrix.column_ids.extend(self.a_col[order].tolist())
        m.linear_constraint_matrix.coefficients.extend(self.a_val[order].tolist())
        return m


@dataclass(frozen=True)
class _Solved:
    status: str  # "optimal" | "feasible" | "infeasible" | "no_solution"
    x: np.ndarray | None  # float[V]
    duals: np.ndarray | None  # float[R] (LP only)
    objective: float
    bound: float
    seconds: float


def _solve(lp: _Lp, *, time_limit_s: float, seed: int, barrier: bool = False) -> _Solved:
    """Solve with HiGHS, single-threaded and seeded (the answer must not depend on the machine)."""
    t0 = time.perf_counter()
    model = mathopt.Model.from_model_proto(lp.proto())
    params = mathopt.SolveParameters(time_limit=timedelta(seconds=float(time_limit_s)), random_seed=int(seed))
    params.highs.int_options["threads"] = 1
    params.highs.bool_options["output_flag"] = False
    if lp.integer:
        params.relative_gap_tolerance = 1e-4
    elif barrier:
        # Interior point with crossover: 10x faster than dual simplex on the hindsight LP of
        # 1,000 orders (2.2 s vs 23 s), and crossover still returns a basic (vertex) dual. The
        # transportation LP is the other way round (simplex 0.75 s, barrier 4.7 s).
        params.lp_algorithm = mathopt.LPAlgorithm.BARRIER
    result = mathopt.solve(model, mathopt.SolverType.HIGHS, params=params)
    proto = result.to_proto()
    reason = result.termination.reason
    seconds = time.perf_counter() - t0
    if reason in (mathopt.TerminationReason.INFEASIBLE, mathopt.TerminationReason.INFEASIBLE_OR_UNBOUNDED):
        return _Solved("infeasible", None, None, np.inf, np.inf, seconds)
    bound = float(proto.termination.objective_bounds.dual_bound)
    if not proto.solutions or not proto.solutions[0].HasField("primal_solution"):
        return _Solved("no_solution", None, None, np.inf, bound, seconds)
    sol = proto.solutions[0]
    x = np.zeros(len(lp.obj))
    pv = sol.primal_solution.variable_values
    x[np.asarray(pv.ids, dtype=np.int64)] = np.asarray(pv.values, dtype=float)
    duals = None
    if sol.HasField("dual_solution"):
        duals = np.zeros(len(lp.rows_lb))
        dv = sol.dual_solution.dual_values
        duals[np.asarray(dv.ids, dtype=np.int64)] = np.asarray(dv.values, dtype=float)
    status = "optimal" if reason == mathopt.TerminationReason.OPTIMAL else "feasible"
    objective = float(sol.primal_solution.objective_value)
    if status == "optimal" and not lp.integer:
        bound = objective
    return _Solved(status, x, duals, objective, bound, seconds)


# --------------------------------------------------------------------- transport


@dataclass(frozen=True)
class TransportPrices:
    """The answer of :func:`transport_prices`.

    Attributes
    ----------
    prices_usd : ndarray, float[N, K]
        Shadow price of one unit of SKU k at node n (>= 0; 0 where the node holds none).
    objective_usd : float
        Optimal cost of serving the demand (unmet units at their penalty).
    flow : ndarray, float[N, J, K]
        The optimal shipments.
    unmet : ndarray, float[J, K]
        Demand left unmet.
    status : str
        ``optimal`` (the LP always has a solution: unmet demand is allowed).
    seconds : float
        Build + solve wall time.
    """

    prices_usd: np.ndarray
    objective_usd: float
    flow: np.ndarray
    unmet: np.ndarray
    status: str
    seconds: float


def transport_prices(
    cost_usd: np.ndarray,
    supply: np.ndarray,
    demand: np.ndarray,
    *,
    unmet_usd: float | np.ndarray,
    time_limit_s: float = 60.0,
    seed: int = 0,
) -> TransportPrices:
    """Shadow prices of stock from the transportation LP (Acimovic & Graves 2015).

    Parameters
    ----------
    cost_usd : ndarray
        Cost of serving one unit from node n to city j: float[N, J] (the same for
        every SKU) or float[N, J, K]. Callers choose what a unit "costs" (the papers'
        per-unit rate, or that plus a share of the per-package charge).
    supply : ndarray, float[N, K]
        Units on hand (available) per node and SKU.
    demand : ndarray, float[J, K]
        Expected remaining demand per city and SKU (may be fractional).
    unmet_usd : float or ndarray
        Penalty per unit of demand left unmet: a scalar, float[J] or float[J, K].
        The papers charge 2 x the fixed cost + 2 x the worst per-unit cost. It
        caps every price: a unit is never worth more than the penalty it avoids.
    time_limit_s, seed : float, int
        HiGHS limits; the solve is single-threaded.

    Returns
    -------
    TransportPrices
        ``prices_usd = -dual`` of the supply rows, clipped at 0.

    Notes
    -----
    When supply equals demand exactly (the papers' stocking rule) the LP is
    degenerate and the dual of a supply row is any value between the saving of
    one more unit and the loss of one fewer; the simplex reports one vertex.
    """
    supply = np.asarray(supply, dtype=float)
    demand = np.asarray(demand, dtype=float)
    n_nodes, n_skus = supply.shape
    n_cities = demand.shape[0]
    cost = np.asarray(cost_usd, dtype=float)
    if cost.ndim == 2:
        cost = np.broadcast_to(cost[:, :, None], (n_nodes, n_cities, n_skus))
    if cost.shape != (n_nodes, n_cities, n_skus) or demand.shape != (n_cities, n_skus):
        raise ValueError(
            f"shapes do not fit: cost {cost.shape}, supply {supply.shape}, demand {demand.shape}"
        )
    pen = np.asarray(unmet_usd, dtype=float)
    pen = np.broadcast_to(pen[:, None] if pen.ndim == 1 else pen, (n_cities, n_skus))
    t0 = time.perf_counter()
    d_rows = np.argwhere(demand > 0)  # (j, k), row ids 0..D-1
    s_rows = np.argwhere(supply > 0)  # (n, k), row ids D..D+S-1
    d_id = np.full((n_cities, n_skus), -1, dtype=np.int64)
    d_id[d_rows[:, 0], d_rows[:, 1]] = np.arange(len(d_rows))
    s_id = np.full((n_nodes, n_skus), -1, dtype=np.int64)
    s_id[s_rows[:, 0], s_rows[:, 1]] = len(d_rows) + np.arange(len(s_rows))
    xn, xj, xk = np.nonzero((supply[:, None, :] > 0) & (demand[None, :, :] > 0))
    nx, nd = len(xn), len(d_rows)
    obj = np.concatenate([cost[xn, xj, xk], pen[d_rows[:, 0], d_rows[:, 1]]])
    x_ids = np.arange(nx)
    u_ids = nx + np.arange(nd)
    lp = _Lp(
        obj=obj,
        var_ub=np.full(nx + nd, np.inf),
        rows_lb=np.concatenate([demand[d_rows[:, 0], d_rows[:, 1]], np.full(len(s_rows), -np.inf)]),
        rows_ub=np.concatenate([demand[d_rows[:, 0], d_rows[:, 1]], supply[s_rows[:, 0], s_rows[:, 1]]]),
        a_row=np.concatenate([d_id[xj, xk], s_id[xn, xk], np.arange(nd)]),
        a_col=np.concatenate([x_ids, x_ids, u_ids]),
        a_val=np.ones(2 * nx + nd),
    )
    sol = _solve(lp, time_limit_s=time_limit_s, seed=seed)
    if sol.x is None or sol.duals is None:  # pragma: no cover - the LP is always feasible
        raise RuntimeError(f"transportation LP ended without a solution: {sol.status}")
    prices = np.zeros((n_nodes, n_skus))
    prices[s_rows[:, 0], s_rows[:, 1]] = -sol.duals[len(d_rows) :]
    prices[prices < _PRICE_TOL_USD] = 0.0
    flow = np.zeros((n_nodes, n_cities, n_skus))
    flow[xn, xj, xk] = sol.x[:nx]
    unmet = np.zeros((n_cities, n_skus))
    unmet[d_rows[:, 0], d_rows[:, 1]] = sol.x[nx:]
    return TransportPrices(prices, sol.objective, flow, unmet, sol.status, time.perf_counter() - t0)


# ------------------------------------------------------------------ order level


@dataclass(frozen=True)
class FulfilmentCosts:
    """The papers' cost model: a fixed charge per package, a per-unit rate, a penalty per unit unmet.

    Attributes
    ----------
    fixed_usd : float
        Per package (one node's shipment to one order), e.g. $8.759.
    unit_usd : ndarray, float[N, J]
        Per unit shipped from node n to city j, e.g. $0.423 + $0.000541 x miles.
    unmet_usd : ndarray, float[J]
        Per unit not fulfilled, e.g. 2 x fixed + 2 x the worst per-unit rate to j.
    """

    fixed_usd: float
    unit_usd: np.ndarray
    unmet_usd: np.ndarray


@dataclass(frozen=True)
class OrderList:
    """Orders as arrays: ``city[o]`` and ``items[o, l]`` (SKU indices, -1 pads; 1 unit per item)."""

    city: np.ndarray  # int[O]
    items: np.ndarray  # int[O, L]

    def __len__(self) -> int:
        return int(len(self.city))


@dataclass(frozen=True)
class FulfilmentResult:
    """The answer of :func:`fulfilment_lp`.

    Attributes
    ----------
    objective_usd : float
        Cost of the best solution found (the LP optimum, or the MIP incumbent).
    bound_usd : float
        Proven lower bound (equals ``objective_usd`` when optimal).
    status : str
        ``optimal``, ``feasible`` (MIP stopped at its time limit) or ``no_solution``.
    packages, units_unmet : float
        Sum of z and of u in that solution (fractional for the LP).
    prices_usd : ndarray or None
        float[N, K] shadow prices of stock (-dual of the supply rows, >= 0); LP only.
    seconds : float
        Build + solve wall time.
    """

    objective_usd: float
    bound_usd: float
    status: str
    packages: float
    units_unmet: float
    prices_usd: np.ndarray | None
    seconds: float


@dataclass(frozen=True)
class _OrderModel:
    """The order-level model of :func:`fulfilment_lp` and where its blocks sit."""

    lp: _Lp
    n_lines: int  # cover rows [0, L); u columns last
    n_y: int  # y columns [0, Y); link rows [L, L+Y)
    n_z: int  # z columns [Y, Y+Z)
    s_rows: np.ndarray  # int[S, 2] (node, sku) of supply rows [L+Y, L+Y+S)
    shape: tuple[int, int]  # (nodes, skus)

    def prices(self, duals: np.ndarray) -> np.ndarray:
        """float[N, K]: -dual of the supply rows (minimisation: a <= row's dual is <= 0), noise cut to 0."""
        out = np.zeros(self.shape)
        out[self.s_rows[:, 0], self.s_rows[:, 1]] = -duals[self.n_lines + self.n_y :]
        out[out < _PRICE_TOL_USD] = 0.0
        return out


def _order_model(orders: OrderList, costs: FulfilmentCosts, stock: np.ndarray, *, integer: bool = False) -> _OrderModel:
    """Build the order-level model (see the module docstring) from index arrays."""
    stock = np.asarray(stock, dtype=float)
    n_nodes, n_skus = stock.shape
    items = np.asarray(orders.items, dtype=np.int64)
    city = np.asarray(orders.city, dtype=np.int64)
    lo, ll = np.nonzero(items >= 0)  # one row per (order, line)
    lk = items[lo, ll]
    n_lines = len(lo)
    # y variables: each line at each node that holds its SKU
    yl, yn = np.nonzero(stock[:, lk].T > 0)  # [Y]: line index, node
    n_y = len(yl)
    # z variables: (order, node) pairs that some y of the order uses
    zkey, y_z = np.unique(lo[yl] * n_nodes + yn, return_inverse=True)
    n_z = len(zkey)
    # columns: y [0, Y), z [Y, Y+Z), u [Y+Z, Y+Z+L)
    y_col = np.arange(n_y)
    u_col = n_y + n_z + np.arange(n_lines)
    obj = np.concatenate(
        [costs.unit_usd[yn, city[lo[yl]]], np.full(n_z, float(costs.fixed_usd)), costs.unmet_usd[city[lo]]]
    )
    # rows: cover [0, L) = 1; link [L, L+Y) y - z <= 0; supply [L+Y, L+Y+S) <= stock
    s_rows = np.argwhere(stock > 0)
    s_id = np.full((n_nodes, n_skus), -1, dtype=np.int64)
    s_id[s_rows[:, 0], s_rows[:, 1]] = n_lines + n_y + np.arange(len(s_rows))
    link = n_lines + np.arange(n_y)
    lp = _Lp(
        obj=obj,
        var_ub=np.ones(n_y + n_z + n_lines),
        rows_lb=np.concatenate([np.ones(n_lines), np.full(n_y + len(s_rows), -np.inf)]),
        rows_ub=np.concatenate([np.ones(n_lines), np.zeros(n_y), stock[s_rows[:, 0], s_rows[:, 1]]]),
        a_row=np.concatenate([yl, np.arange(n_lines), link, link, s_id[yn, lk[yl]]]),
        a_col=np.concatenate([y_col, u_col, y_col, n_y + y_z, y_col]),
        a_val=np.concatenate([np.ones(n_y + n_lines), np.ones(n_y), -np.ones(n_y), np.ones(n_y)]),
        integer=integer,
    )
    return _OrderModel(lp, n_lines, n_y, n_z, s_rows, (n_nodes, n_skus))


def fulfilment_lp(
    orders: OrderList,
    costs: FulfilmentCosts,
    stock: np.ndarray,
    *,
    integer: bool = False,
    time_limit_s: float = 120.0,
    seed: int = 0,
) -> FulfilmentResult:
    """The order-level fulfilment model over a list of orders (see the module docstring).

    Parameters
    ----------
    orders : OrderList
        The orders, one unit per item (the papers' setting).
    costs : FulfilmentCosts
        Package, unit and unmet costs.
    stock : ndarray, float[N, K]
        Units available per node and SKU (may be fractional for the LP).
    integer : bool
        Solve the MIP (binary y, z, u) instead of the LP relaxation.
    time_limit_s, seed : float, int
        HiGHS limits; single-threaded.
    """
    t0 = time.perf_counter()
    model = _order_model(orders, costs, stock, integer=integer)
    lp, n_y, n_z = model.lp, model.n_y, model.n_z
    sol = _solve(lp, time_limit_s=time_limit_s, seed=seed, barrier=True)
    if sol.x is None:
        return FulfilmentResult(np.inf, sol.bound, sol.status, np.nan, np.nan, None, time.perf_counter() - t0)
    prices = None
    if not integer and sol.duals is not None:
        prices = model.prices(sol.duals)
    return FulfilmentResult(
        objective_usd=sol.objective,
        bound_usd=sol.bound,
        status=sol.status,
        packages=float(sol.x[n_y : n_y + n_z].sum()),
        units_unmet=float(sol.x[n_y + n_z :].sum()),
        prices_usd=prices,
        seconds=time.perf_counter() - t0,
    )


def fulfilment_prices(orders: OrderList, costs: FulfilmentCosts, stock: np.ndarray) -> FulfilmentResult:
    """The LP relaxation of :func:`fulfilment_lp`, for pricing stock over many small samples.

    The same model and the same answer (objective, packages, ``prices_usd``), solved by
    HiGHS's interior point with crossover through SciPy instead of MathOpt: on a sample
    of 100-400 orders it takes 60-80 % of the time, most of the saving being MathOpt's
    parsing of the solution. A policy that averages the duals of dozens of sampled
    futures per re-solve spends nearly all its time here. Crossover keeps the duals
    basic, like :func:`fulfilment_lp`'s; where the LP is degenerate the two may report
    different vertices of the optimal dual face.
    """
    from scipy.optimize import linprog  # imported here: only pricing jobs need it
    from scipy.sparse import csr_matrix

    t0 = time.perf_counter()
    model = _order_model(orders, costs, stock)
    lp, n_lines, n_y, n_z = model.lp, model.n_lines, model.n_y, model.n_z
    a = csr_matrix((lp.a_val, (lp.a_row, lp.a_col)), shape=(len(lp.rows_ub), len(lp.obj)))
    # rows [0, L) are the cover equalities, the rest (link, supply) are <= rows
    res = linprog(
        lp.obj,
        A_ub=a[n_lines:],
        b_ub=lp.rows_ub[n_lines:],
        A_eq=a[:n_lines],
        b_eq=lp.rows_ub[:n_lines],
        bounds=np.stack([np.zeros(len(lp.obj)), lp.var_ub], axis=1),
        method="highs-ipm",
    )
    if res.status != 0:  # pragma: no cover - every line may go unmet, so the LP is always feasible
        raise RuntimeError(f"order-level LP ended without a solution: {res.message}")
    duals = np.concatenate([res.eqlin.marginals, res.ineqlin.marginals])
    return FulfilmentResult(
        objective_usd=float(res.fun),
        bound_usd=float(res.fun),
        status="optimal",
        packages=float(res.x[n_y : n_y + n_z].sum()),
        units_unmet=float(res.x[n_y + n_z :].sum()),
        prices_usd=model.prices(duals),
        seconds=time.perf_counter() - t0,
    )


def track_prices(
    base_usd: np.ndarray,
    correction_usd: np.ndarray,
    available: np.ndarray,
    used: np.ndarray,
    arrivals_left: int,
    step_usd: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Correct re-solved stock prices between two solves by how fast the stock is actually spent.

    A re-solve prices each unit for the demand to come, but the greedy decisions that
    follow need not spend stock as its plan does: where duals are degenerate, a price
    that makes a node the cheapest sends it every order until the next solve. The
    correction is one step of dual descent per order (Balseiro, Lu & Mirrokni, "The best
    of many worlds: dual mirror descent for online allocation problems", Operations
    Research 71(1) 2023): each (node, SKU) holding stock should be spent at the rate
    ``available / arrivals_left``; each unit used above that rate raises its price by
    ``step_usd``, each unit below lowers it, and the price never goes below 0::

        c <- max(c + step x (used - available / arrivals_left), -base)    where available > 0
        price = base + c

    It uses only the stock and the count of arrivals left, never the arrivals themselves.

    Parameters
    ----------
    base_usd : ndarray, float[N, K]
        The prices of the last solve (>= 0).
    correction_usd : ndarray, float[N, K]
        The correction so far (zeros right after a solve).
    available : ndarray, float[N, K]
        Stock before the order just routed.
    used : ndarray, float[N, K]
        Units that order took.
    arrivals_left : int
        Arrivals still to come, counting the order just routed (>= 1).
    step_usd : float
        USD per unit of deviation from the rate.

    Returns
    -------
    (prices, correction) : tuple of ndarray
        The prices for the next order (>= 0) and the new correction.
    """
    base = np.asarray(base_usd, dtype=float)
    avail = np.asarray(available, dtype=float)
    rate = avail / max(int(arrivals_left), 1)
    step = correction_usd + float(step_usd) * (np.asarray(used, dtype=float) - rate)
    correction = np.where(avail > 0, np.maximum(step, -base), correction_usd)
    return np.maximum(base + correction, 0.0), correction


# ------------------------------------------------------------- Lagrangian bound


@lru_cache(maxsize=64)
def _subsets(n: int, size: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(n), size)), dtype=np.int64).reshape(-1, size)


def _price_orders(orders: OrderList, costs: FulfilmentCosts, stock: np.ndarray, prices: np.ndarray):
    """Each order's cheapest integer plan with stock priced at ``prices`` (supply rows relaxed).

    Returns (sum of plan costs including prices, units used float[N, K]). An order's
    plan is a node subset S (|S| <= its items) and each item goes to its cheapest
    node of S or is left unmet: exact by enumerating subsets, as the engine does.
    """
    # items left-aligned (the -1 pads last), so an order of m items fills columns 0..m-1
    items, city = np.sort(np.asarray(orders.items), axis=1)[:, ::-1], np.asarray(orders.city)
    n_nodes = stock.shape[0]
    size = (items >= 0).sum(axis=1)
    total = 0.0
    usage = np.zeros(stock.shape)
    for m in range(1, items.shape[1] + 1):
        idx = np.flatnonzero(size == m)
        if len(idx) == 0:
            continue
        its = items[idx, :m]  # [O, m] (items fill the first columns)
        j = city[idx]
        # a[o, l, n]: per-unit cost + price of item l from node n; inf where n holds none
        a = costs.unit_usd[:, j].T[:, None, :] + prices[:, its].transpose(1, 2, 0)
        a = np.where(stock[:, its].transpose(1, 2, 0) > 0, a, np.inf)
        pen = costs.unmet_usd[j][:, None]  # [O, 1]
        best = m * pen[:, 0]  # the empty subset: everything unmet
        best_node = np.full((len(idx), m), -1, dtype=np.int64)
        rows = np.arange(len(idx))
        for s in range(1, min(m, n_nodes) + 1):
            sub = _subsets(n_nodes, s)  # [C, s]
            v = a[:, :, sub[:, 0]]  # [O, m, C]
            arg = np.zeros(v.shape, dtype=np.int64)
            for t in range(1, s):
                vt = a[:, :, sub[:, t]]
                lower = vt < v
                v = np.where(lower, vt, v)
                arg = np.where(lower, t, arg)
            use = v < pen[:, :, None]
            tot = costs.fixed_usd * s + np.where(use, v, pen[:, :, None]).sum(axis=1)  # [O, C]
            c = tot.argmin(axis=1)
            tv = tot[rows, c]
            better = tv < best
            if better.any():
                b = rows[better]
                cb = c[better]
                node = sub[cb[:, None], arg[b, :, cb]]  # [B, m]
                best_node[b] = np.where(use[b, :, cb], node, -1)
                best[b] = tv[better]
        total += float(best.sum())
        ok = best_node >= 0
        np.add.at(usage, (best_node[ok], its[ok]), 1.0)
    return total, usage


@dataclass(frozen=True)
class LagrangianBound:
    """The answer of :func:`lagrangian_bound`: the best bound, the prices that gave it, iterations run."""

    bound_usd: float
    prices_usd: np.ndarray
    iterations: int
    seconds: float


def lagrangian_bound(
    orders: OrderList,
    costs: FulfilmentCosts,
    stock: np.ndarray,
    *,
    upper_usd: float,
    start_prices: np.ndarray | None = None,
    iterations: int = 150,
) -> LagrangianBound:
    """A lower bound on the hindsight MIP that is much tighter than its LP relaxation.

    The supply rows are relaxed with multipliers ``pi >= 0``; what remains splits by
    order into tiny integer problems (a node subset of at most 5 of 10 nodes) solved
    exactly by enumeration::

        L(pi) = sum_o min_{integer plan of o} (cost + pi . units) - pi . stock  <=  MIP

    The LP relaxation's weakness is per order: ``z >= y`` lets one package be
    shared fractionally by items at different nodes. Each order's integer hull is
    exact here, so ``L`` at the LP's own duals is already >= the LP bound; a
    subgradient ascent (Polyak steps towards ``upper_usd``, e.g. the best policy's
    cost) raises it further (Held & Karp's scheme; Fisher, Management Sci. 1981).

    Parameters
    ----------
    orders, costs, stock
        As for :func:`fulfilment_lp`.
    upper_usd : float
        A known achievable cost (a policy's), the target of the Polyak step.
    start_prices : ndarray, optional
        float[N, K] starting multipliers; the LP's supply duals are a good start.
    iterations : int
        Subgradient steps.
    """
    t0 = time.perf_counter()
    stock = np.asarray(stock, dtype=float)
    prices = np.zeros(stock.shape) if start_prices is None else np.maximum(np.asarray(start_prices, float), 0.0)
    held = stock > 0
    best, best_p, theta, stall = -np.inf, prices.copy(), 1.0, 0
    it = 0
    for it in range(1, iterations + 1):  # noqa: B007 - `it` is reported after the loop
        value, usage = _price_orders(orders, costs, stock, prices)
        value -= float((prices * stock).sum())
        if value > best + 1e-9:
            best, best_p, stall = value, prices.copy(), 0
        else:
            stall += 1
            if stall >= 5:  # halve the step after 5 steps without progress
                theta, stall = theta / 2.0, 0
        g = np.where(held, usage - stock, 0.0)
        # a cell at price 0 with spare stock cannot go lower: no direction there
        g = np.where((prices <= 0) & (g < 0), 0.0, g)
        norm = float((g * g).sum())
        if norm <= 0 or theta < 1e-4:
            break
        prices = np.maximum(prices + theta * max(upper_usd - value, 0.0) / norm * g, 0.0)
    return LagrangianBound(best, best_p, it, time.perf_counter() - t0)
