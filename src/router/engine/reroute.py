"""Batch re-routing: re-optimise a backlog of open orders jointly, then apply the moves atomically.

:func:`plan_reroute` (behind :meth:`router.engine.Router.reroute`):

1. **Snapshot.** A detached copy of the live state with the backlog's own reservations
   given back (stock, lane shipments, pick queue): every order may keep or leave what
   it holds. The live router keeps routing meanwhile; the apply step checks again.
2. **Columns.** For each open order, the same candidate generator and score terms as
   ``route()`` on the snapshot (:meth:`Router.decide`): its ``top_k`` ranked plans, its
   current plan (found among the generated candidates, so it is priced exactly like
   them; a current plan that is no longer allowed, e.g. its node closed, is not a
   column) and a *keep* column: the current reservation held as it is, priced with
   ``unplaced_penalty_usd`` (so the model is never infeasible; an order left there is
   reported as unplaced with the rows that stopped it).
3. **Rows.** Stock per node and SKU (what is free plus the backlog's own units), lane
   shipments per day (what is left plus the backlog's own), picks per node and hour
   bucket over ``horizon_hours``: cumulative, earliest deadline first -- the legs whose
   pick must finish by the end of bucket b (promise minus the leg's transit) must fit
   the node's throughput up to then, after the queue that is not in the backlog.
4. **Solve** (:func:`router.solver.batch.solve_batch`), optionally per partition of
   destination regions on Dask with capacity shares, stitched and polished.
5. **Move plan.** Each moved order: from plan, to plan, the score delta term by term
   and one sentence; KPIs before and after; bound and gap; what was skipped and why.

:func:`apply_moves` writes one new decision per moved order (the same record as a
routing decision, with ``reroute`` naming the job and the decision it supersedes) and
swaps the reservations, all in one ledger transaction; nothing changes when any of it
fails (another writer took the units, an order was released meanwhile, the process died).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from router.context import OrderContext
from router.domain import Order
from router.engine.decide import Ranked
from router.errors import RouterError, _FieldError
from router.solver.batch import BatchProblem, BatchSolution, check_choice, solve_batch
from router.state import LiveState

if TYPE_CHECKING:  # pragma: no cover
    from router.engine.router import Router

__all__ = [
    "InvalidRerouteError",
    "Move",
    "OpenOrder",
    "RerouteConflict",
    "RerouteOptions",
    "ReroutePlan",
    "apply_moves",
    "check_reroute",
    "plan_reroute",
]


class InvalidRerouteError(_FieldError):
    """The re-route request is not one that can run (the field and the reason are named); nothing changed."""


class RerouteConflict(RouterError):
    """The move plan no longer fits (stock taken, an order released or shipped meanwhile); nothing changed."""


@dataclass(frozen=True)
class OpenOrder:
    """An order that is routed and not yet released to picking: what re-routing may move."""

    order: Order
    decision_id: str
    plan: dict  # the plan it holds now: {"legs": [{node_id, carrier_id, service, lines: [{sku, qty}]}], ...}


@dataclass(frozen=True)
class RerouteOptions:
    top_k: int = 6  # ranked plans per order, besides its current plan
    extra_columns: int = 4  # room per order for plans generated again on what the solution leaves (repricing)
    reprice_rounds: int = 2
    move_cost_usd: float = 0.5  # what moving an order costs (re-work, a changed promise to the warehouse)
    unplaced_penalty_usd: float = 10_000.0
    horizon_hours: float = 24.0
    bucket_hours: float = 4.0
    time_limit_s: float = 10.0
    method: str = "auto"
    partitions: int = 1  # > 1: columns generated per partition of destination regions (in parallel with a mapper)
    solve_partitions: bool = False  # also solve per partition under capacity shares, stitched (else one joint solve)
    # processes that generate the columns of one (unpartitioned) backlog: None picks one per core
    # for backlogs of at least PARALLEL_MIN_ORDERS where processes can be forked, else 1
    workers: int | None = None

    def check(self) -> None:
        if not (isinstance(self.time_limit_s, int | float) and math.isfinite(self.time_limit_s) and self.time_limit_s > 0):
            raise InvalidRerouteError("time_limit_s", f"must be a number of seconds > 0, got {self.time_limit_s!r}")
        if self.extra_columns < 0 or self.reprice_rounds < 0:
            raise InvalidRerouteError("extra_columns", "extra_columns and reprice_rounds must be >= 0")
        if self.top_k < 1:
            raise InvalidRerouteError("top_k", f"must be >= 1, got {self.top_k!r}")
        if self.move_cost_usd < 0 or not math.isfinite(self.move_cost_usd):
            raise InvalidRerouteError("move_cost_usd", f"must be a finite number >= 0, got {self.move_cost_usd!r}")
        if self.bucket_hours <= 0 or self.horizon_hours < self.bucket_hours:
            raise InvalidRerouteError("bucket_hours", "must be > 0 and at most horizon_hours")
        if self.method not in ("auto", "lagrangian", "mip", "cpsat"):
            raise InvalidRerouteError("method", f"must be auto, lagrangian, mip or cpsat, got {self.method!r}")
        if self.partitions < 1:
            raise InvalidRerouteError("partitions", f"must be >= 1, got {self.partitions!r}")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise InvalidRerouteError("workers", f"must be >= 1 (or None: one per core), got {self.workers!r}")


Leg = tuple[int, int, tuple[int, ...]]  # (node, option, units per line of the order)


@dataclass
class _Cols:
    """One order's columns, compactly (the full candidate sets are not kept: 100k orders)."""

    picks: tuple[np.ndarray, np.ndarray, np.ndarray]  # leg_node [k, J], leg_opt [k, J], leg_units [k, J, L]
    kept: tuple[Leg, ...]  # the keep column's legs (the current plan)
    ships: np.ndarray  # int[k + 1] shipments per column
    score: np.ndarray  # float[k + 1] the route() score
    terms: np.ndarray  # float[T, k] contributions per term
    values: np.ndarray  # float[T, k] values per term
    eta: np.ndarray  # float[k] latest leg's ETA (hours from the snapshot)
    current: int  # the column of the current plan, -1 when it is not allowed now
    keep: int
    min_ships: int  # fewest shipments of any plan generated for the order
    promise_hours: float
    skus: tuple[str, ...]  # the order's SKU per line, in the context's line order (units are per line)
    note: str = ""  # why the current plan is not a column

    def local(self, slot: int, width: int) -> int:
        """The index into this order's arrays of the model's column ``slot`` (the keep column is the last slot)."""
        return self.keep if slot == width - 1 else slot

    def slot(self, j: int, width: int) -> int:
        return width - 1 if j == self.keep else j

    def add(self, legs: tuple[np.ndarray, np.ndarray, np.ndarray], score, tm, tv, eta) -> None:
        """Append real columns (before the keep column, which stays last)."""
        k = self.keep
        ln, lo, lu = self.picks
        width_j = max(ln.shape[1], legs[0].shape[1])

        def pad(a, fill):
            extra = width_j - a.shape[1]
            if extra <= 0:
                return a
            shape = (a.shape[0], extra) + a.shape[2:]
            return np.concatenate([a, np.full(shape, fill, dtype=a.dtype)], axis=1)

        self.picks = (
            np.concatenate([pad(ln, -1), pad(legs[0], -1)]),
            np.concatenate([pad(lo, -1), pad(legs[1], -1)]),
            np.concatenate([pad(lu, 0), pad(legs[2], 0)]),
        )
        n = len(score)
        self.ships = np.concatenate([self.ships[:k], (legs[0] >= 0).sum(axis=1), self.ships[k:]])
        self.score = np.concatenate([self.score[:k], score, self.score[k:]])
        self.terms = np.hstack([self.terms[:, :k], tm, self.terms[:, k:]])
        self.values = np.hstack([self.values[:, :k], tv, self.values[:, k:]])
        self.eta = np.concatenate([self.eta[:k], eta, self.eta[k:]])
        self.keep = k + n

    def legs(self, k: int) -> tuple[Leg, ...]:
        """Column ``k``'s legs (an index into this order's arrays), sorted (built on demand)."""
        if k == self.keep:
            return self.kept
        ln, lo, lu = self.picks
        live = ln[k] >= 0
        return tuple(sorted(
            (n, o, tuple(u)) for n, o, u in zip(ln[k][live].tolist(), lo[k][live].tolist(), lu[k][live].tolist())
        ))


@dataclass
class Move:
    order_id: str
    decision_id: str  # the decision it leaves
    from_plan: dict
    to_plan: dict
    score_delta: float
    terms: list[dict]  # [{term, delta}] contribution deltas
    sentence: str
    new_decision_id: str | None = None

    def to_json(self) -> dict:
        return {
            "order_id": self.order_id,
            "decision_id": self.decision_id,
            "new_decision_id": self.new_decision_id,
            "from": self.from_plan,
            "to": self.to_plan,
            "score_delta": round(self.score_delta, 6),
            "terms": self.terms,
            "sentence": self.sentence,
        }


@dataclass
class ReroutePlan:
    """What :func:`plan_reroute` found; nothing is changed until :func:`apply_moves`."""

    job_id: str
    created_at: datetime
    strategy: str
    options: RerouteOptions
    orders: int
    moves: list[Move]
    unplaced: list[dict]
    skipped: list[dict]
    conflicts: list[dict]
    kpis_before: dict
    kpis_after: dict
    objective: float
    bound: float
    gap: float
    solver: dict
    timings: dict
    applied: bool = False
    # kept for apply: the snapshot and the columns of every order (not serialised)
    backlog: list[OpenOrder] = field(default_factory=list, repr=False)
    choice: np.ndarray | None = field(default=None, repr=False)
    cols: list[_Cols] = field(default_factory=list, repr=False)
    problem: BatchProblem | None = field(default=None, repr=False)
    snapshot: LiveState | None = field(default=None, repr=False)
    term_names: tuple[str, ...] = field(default=(), repr=False)

    def summary(self) -> dict:
        return {
            "job_id": self.job_id,
            "created_at": self.created_at.isoformat(),
            "strategy": self.strategy,
            "applied": self.applied,
            "orders": self.orders,
            "moved": len(self.moves),
            "unplaced": len(self.unplaced),
            "skipped": len(self.skipped),
            "objective": round(self.objective, 4),
            "bound": round(self.bound, 4),
            "gap": self.gap,
            "kpis_before": self.kpis_before,
            "kpis_after": self.kpis_after,
            "solver": self.solver,
            "timings": self.timings,
        }

    def to_json(self) -> dict:
        return {
            **self.summary(),
            "moves": [m.to_json() for m in self.moves],
            "unplaced_orders": self.unplaced,
            "skipped_orders": self.skipped,
            "conflicts": self.conflicts,
        }


# ------------------------------------------------------------------ snapshot
def plan_alloc(net, plan: dict) -> tuple[list[int], list[int], list[int], list[tuple[int, int]]]:
    """A plan dict's reservation as (nodes, skus, qty, lanes) indices on ``net``."""
    node_index = {nid: i for i, nid in enumerate(net.node_ids)}
    sku_index = {s: i for i, s in enumerate(net.sku_ids)}
    opt_index = {(c, s): o for o, (c, s) in enumerate(zip(net.option_carrier, net.option_service))}
    nodes, skus, qty, lanes = [], [], [], []
    for leg in (plan or {}).get("legs", []):
        n = node_index[leg["node_id"]]
        lanes.append((n, opt_index[(leg["carrier_id"], leg["service"])]))
        for line in leg["lines"]:
            nodes.append(n)
            skus.append(sku_index[line["sku"]])
            qty.append(int(line["qty"]))
    return nodes, skus, qty, lanes


def released_snapshot(state: LiveState, allocs: Sequence[tuple]) -> LiveState:
    """A detached copy of ``state`` with every allocation in ``allocs`` given back."""
    snap = state.detached_copy()
    for nodes, skus, qty, lanes in allocs:
        if nodes:
            np.subtract.at(snap.reserved, (np.asarray(nodes), np.asarray(skus)), np.asarray(qty))
        for n, o in lanes:
            snap.lane_used[n, o] = max(0.0, snap.lane_used[n, o] - 1.0)
        for n in {n for n, _ in lanes}:
            snap.queue_orders[n] = max(0.0, snap.queue_orders[n] - 1.0)
    np.maximum(snap.reserved, 0, out=snap.reserved)
    snap._touch()
    return snap


# ------------------------------------------------------------------- columns
def _current_legs(net, order: Order, ctx: OrderContext, plan: dict) -> tuple[Leg, ...]:
    node_index = {nid: i for i, nid in enumerate(net.node_ids)}
    opt_index = {(c, s): o for o, (c, s) in enumerate(zip(net.option_carrier, net.option_service))}
    line_of = {net.sku_ids[int(s)]: k for k, s in enumerate(ctx.sku_idx.tolist())}
    legs = []
    for leg in plan.get("legs", []):
        units = [0] * len(ctx.qty)
        for line in leg["lines"]:
            units[line_of[line["sku"]]] += int(line["qty"])
        legs.append((node_index[leg["node_id"]], opt_index[(leg["carrier_id"], leg["service"])], tuple(units)))
    return tuple(sorted(legs))


def _legs_of(out: Ranked, c: int) -> tuple[Leg, ...]:
    cs = out.cs
    keep = cs.leg_node[c] >= 0
    nodes = cs.leg_node[c][keep].tolist()
    opts = cs.leg_opt[c][keep].tolist()
    units = cs.leg_units[c][keep].tolist()
    return tuple(sorted((n, o, tuple(u)) for n, o, u in zip(nodes, opts, units)))


def _keys(out: Ranked, idx: np.ndarray, with_opts: bool) -> np.ndarray:
    """int64 key per candidate of ``idx``: its sorted legs' nodes (and options), as digits of one number."""
    cs = out.cs
    node = cs.leg_node[idx]
    base = int(cs.leg_node.max(initial=0)) + 2
    if with_opts:
        n_opt = int(cs.leg_opt.max(initial=0)) + 1
        node = np.where(node >= 0, node * n_opt + cs.leg_opt[idx], -1)
        base = base * n_opt + 1
    d = np.sort(node + 1, axis=1)  # -1 (no leg) sorts first as 0
    key = np.zeros(len(idx), dtype=np.int64)
    for j in range(d.shape[1]):
        key = key * base + d[:, j]
    return key


def _diverse(out: Ranked, k: int) -> list[int]:
    """The best-ranked plan of each distinct set of nodes, best first, up to ``k``.

    The ranking's next plans are mostly the best plan's nodes with another carrier; when
    orders compete for stock, what helps the joint choice is other nodes to ship from.
    """
    ranking = out.ranking
    if not len(ranking):
        return []
    head = ranking[: max(8 * k, 64)]
    _, first = np.unique(_keys(out, head, False), return_index=True)
    return head[np.sort(first)][:k].tolist()


def _find(out: Ranked, legs: tuple[Leg, ...], first: Sequence[int] = ()) -> int:
    """The candidate of ``out`` with exactly these legs (trying ``first`` before the rest), or -1."""
    cs = out.cs
    if not len(cs) or not legs:
        return -1
    for c in first:
        if _legs_of(out, c) == legs:
            return int(c)
    n_opt = int(cs.leg_opt.max(initial=0)) + 1
    base = (int(cs.leg_node.max(initial=0)) + 2) * n_opt + 1
    want = 0
    digits = sorted([n * n_opt + o + 1 for n, o, _ in legs] + [0] * (cs.leg_node.shape[1] - len(legs)))
    if len(digits) > cs.leg_node.shape[1]:
        return -1
    for d in digits:
        want = want * base + d
    for c in np.flatnonzero(_keys(out, np.arange(len(cs)), True) == want).tolist():
        if _legs_of(out, c) == legs:
            return int(c)
    return -1


@dataclass
class _Gen:
    """Columns and usage triplets of a list of orders (one partition, or the whole backlog)."""

    cols: list[_Cols]
    rows: np.ndarray
    cols_idx: np.ndarray  # column (o * W + k), o local to the list
    vals: np.ndarray
    term_names: tuple[str, ...]
    seconds: float


def _row_layout(net, opts: RerouteOptions) -> dict:
    n, s, o = net.n_nodes, len(net.sku_ids), net.n_options
    nb = int(math.ceil(opts.horizon_hours / opts.bucket_hours - 1e-9))
    return {"stock": 0, "lane": n * s, "pick": n * s + n * o, "n_rows": n * s + n * o + n * nb, "buckets": nb}


def _order_inputs(router: Router, state: LiveState, order: Order, now: datetime, at_hours: float):
    """The order's context and its view of ``state`` (with its target segment's late price), as route() builds them."""
    net = router.network
    ctx = router.contexts.build(order, now, state.weather_at_region)
    seg = None
    if router.targets is not None:
        s = router.targets.segment(ctx.tier, net.region_ids[ctx.dest_region] if ctx.dest_region >= 0 else None)
        seg = None if s is None else router.targets.keys[s]
    return ctx, state.view(ctx.sku_idx, at_hours, seg)


def generate_columns(
    router: Router, snapshot: LiveState, backlog: Sequence[OpenOrder], now: datetime, strategy: str,
    opts: RerouteOptions, progress: Callable[[int, int], None] | None = None,
) -> _Gen:
    """Every order's columns on ``snapshot`` and what they use of each row (see the module docstring)."""
    t0 = time.perf_counter()
    net = router.network
    lay = _row_layout(net, opts)
    n_sku, n_opt = len(net.sku_ids), net.n_options
    width = _width(opts)
    at_hours = router._hours(now)
    rows: list[int] = []  # the keep columns' usage (a few legs each)
    cidx: list[int] = []
    vals: list[float] = []
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # the picks' usage, per order
    out_cols: list[_Cols] = []
    term_names: tuple[str, ...] = ()
    closed = snapshot.closed_manual | snapshot.closed_sched
    for i, oo in enumerate(backlog):
        order = oo.order
        ctx, view = _order_inputs(router, snapshot, order, now, at_hours)
        out = router.decide(view, ctx, strategy, explain=False)
        if not term_names and out.scores.terms:
            term_names = tuple(t.name for t in out.scores.terms)
        cur_legs = _current_legs(net, order, ctx, oo.plan)
        picks = _diverse(out, opts.top_k)
        cur = _find(out, cur_legs, picks[:2])
        note = ""
        if cur >= 0 and cur not in picks:
            if bool(closed[[leg[0] for leg in cur_legs]].any()):
                note = "its node is closed"
                cur = -1
            else:
                picks.append(cur)
        elif cur < 0 and cur_legs:
            shut = [net.node_ids[leg[0]] for leg in cur_legs if closed[leg[0]]]
            note = f"{', '.join(shut)} closed" if shut else "not among the plans generated now"
        n_legs = (out.cs.leg_node >= 0).sum(axis=1) if len(out.cs) else np.zeros(0, dtype=np.int64)
        ranked = out.ranking
        min_ships = int(n_legs[ranked].min()) if len(ranked) else len(cur_legs)
        k = len(picks)
        tm = out.scores.contributions_matrix[:, picks] if picks else np.zeros((len(term_names), 0))
        tv = out.scores.values_matrix[:, picks] if picks else np.zeros((len(term_names), 0))
        score = out.scores.total[picks].astype(float) if picks else np.zeros(0)
        eta = (
            np.where(out.cs.leg_node[picks] >= 0, out.cs.leg_eta_hours[picks], 0.0).max(axis=1)
            if picks else np.zeros(0)
        )
        if picks:
            pk_arr = np.asarray(picks, dtype=np.int64)
            pick_legs = (out.cs.leg_node[pk_arr], out.cs.leg_opt[pk_arr], out.cs.leg_units[pk_arr])
            ships = np.append((pick_legs[0] >= 0).sum(axis=1), len(cur_legs))
        else:
            pick_legs = (np.zeros((0, 1), dtype=np.int64), np.zeros((0, 1), dtype=np.int64), np.zeros((0, 1, len(ctx.qty)), dtype=np.int64))
            ships = np.array([len(cur_legs)])
        cur_col = picks.index(cur) if cur >= 0 else -1
        # the keep column: the current reservation as it is, scored as the current plan (or the worst) + penalty
        if cur_col >= 0:
            keep_score, keep_tm, keep_tv, keep_eta = float(score[cur_col]), tm[:, [cur_col]], tv[:, [cur_col]], eta[cur_col]
        else:
            # not among the plans generated now (its node closed, say): priced on its own, on the same
            # view (the lane risk of this pricing is the analytic estimate)
            keep_score, keep_tm, keep_tv, keep_eta = _price_legs(router, view, ctx, cur_legs, len(term_names))
        score = np.append(score, keep_score)
        tm = np.hstack([tm, keep_tm])
        tv = np.hstack([tv, keep_tv])
        eta = np.append(eta, keep_eta)
        keep = k
        base = i * width
        if picks:
            parts.append(_usage(out.cs, np.asarray(picks, dtype=np.int64), ctx, base + np.arange(len(picks)), lay, opts, n_sku, n_opt))
        col = base + width - 1
        for n, o, units in cur_legs:
            for line, u in enumerate(units):
                if u:
                    rows.append(n * n_sku + int(ctx.sku_idx[line]))
                    cidx.append(col)
                    vals.append(float(u))
            rows.append(lay["lane"] + n * n_opt + o)
            cidx.append(col)
            vals.append(1.0)
        out_cols.append(
            _Cols(
                pick_legs, cur_legs, ships, score, tm, tv, eta, cur_col, keep, min_ships, float(ctx.promise_hours),
                tuple(net.sku_ids[int(s)] for s in ctx.sku_idx.tolist()), note,
            )
        )
        if progress is not None and (i + 1) % 1000 == 0:
            progress(i + 1, len(backlog))
    if progress is not None:
        progress(len(backlog), len(backlog))
    parts.append((np.asarray(rows, dtype=np.int64), np.asarray(cidx, dtype=np.int64), np.asarray(vals, dtype=np.float64)))
    return _Gen(
        out_cols,
        np.concatenate([p[0] for p in parts]).astype(np.int64),
        np.concatenate([p[1] for p in parts]).astype(np.int64),
        np.concatenate([p[2] for p in parts]).astype(np.float64),
        term_names,
        time.perf_counter() - t0,
    )


def _width(opts: RerouteOptions) -> int:
    """Column slots per order: the ranked plans, the current one, room for repricing, the keep column (last)."""
    return opts.top_k + 2 + opts.extra_columns


#: Backlogs at least this long generate their columns on several processes by default: below
#: it, starting the processes and sending the columns back cost more than they save.
PARALLEL_MIN_ORDERS = 4000

#: What a forked column worker reads: inherited from the parent at the fork, never pickled
#: (the router with its compiled risk model, the snapshot and 100k orders would take
#: longer to send than to route).
_FORK_JOB: dict | None = None


def column_workers(opts: RerouteOptions, n_orders: int) -> int:
    """How many processes generate the columns of ``n_orders`` orders under ``opts``."""
    if opts.workers is not None:
        return opts.workers
    if n_orders < PARALLEL_MIN_ORDERS or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def _chunk_task(bounds: tuple[int, int]) -> _Gen:
    job = _FORK_JOB
    assert job is not None, "a column worker runs only in a process forked by generate_columns_forked"
    a, b = bounds
    return generate_columns(job["router"], job["snapshot"], job["backlog"][a:b], job["now"], job["strategy"], job["opts"])


def generate_columns_forked(
    router: Router, snapshot: LiveState, backlog: Sequence[OpenOrder], now: datetime, strategy: str,
    opts: RerouteOptions, workers: int, progress: Callable[[int, int], None] | None = None,
    chunk: int | None = None,
) -> _Gen:
    """:func:`generate_columns` on ``workers`` forked processes, chunk by chunk: the same columns.

    An order's columns depend on the snapshot and the order alone, so chunks of the
    backlog are independent; the children inherit the router and the snapshot at the
    fork (copy on write) and send back only their columns. A child that dies breaks the
    pool and raises here (nothing was changed: this is the dry part of a re-route).
    """
    from concurrent.futures import ProcessPoolExecutor

    global _FORK_JOB
    t0 = time.perf_counter()
    n = len(backlog)
    # a few chunks per worker, so one slow chunk does not idle the others and progress moves
    size = chunk or max(250, min(5000, -(-n // (workers * 6))))
    bounds = [(a, min(n, a + size)) for a in range(0, n, size)]
    _FORK_JOB = {"router": router, "snapshot": snapshot, "backlog": backlog, "now": now, "strategy": strategy, "opts": opts}
    gens: list[_Gen] = []
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            done = 0
            for gen, (a, b) in zip(pool.map(_chunk_task, bounds), bounds):
                gens.append(gen)
                done += b - a
                if progress is not None:
                    progress(done, n)
    finally:
        _FORK_JOB = None
    merged = _merge(gens, [list(range(a, b)) for a, b in bounds], n, _width(opts))
    merged.seconds = time.perf_counter() - t0
    return merged


def _usage(cs, pk: np.ndarray, ctx: OrderContext, cols: np.ndarray, lay: dict, opts: RerouteOptions,
           n_sku: int, n_opt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Usage triplets (row, column, amount) of candidates ``pk`` of ``cs`` placed at model columns ``cols``.

    Stock per line, one lane shipment per leg, and the cumulative pick rows from the
    bucket of the leg's deadline on: the pick must finish by the promise minus the leg's
    time after the pick.
    """
    nb, bh = lay["buckets"], opts.bucket_hours
    ln, lo, lu = cs.leg_node[pk], cs.leg_opt[pk], cs.leg_units[pk]
    kk, jj, ll = np.nonzero(lu > 0)
    r = [ln[kk, jj] * n_sku + ctx.sku_idx[ll]]
    c = [cols[kk]]
    v = [lu[kk, jj, ll].astype(np.float64)]
    kk, jj = np.nonzero(ln >= 0)
    nodes = ln[kk, jj]
    r.append(lay["lane"] + nodes * n_opt + lo[kk, jj])
    c.append(cols[kk])
    v.append(np.ones(len(kk)))
    after = cs.leg_eta_hours[pk][kk, jj] - cs.leg_queue_hours[pk][kk, jj]
    b0 = (np.maximum(float(ctx.promise_hours) - after, 0.0) // bh).astype(np.int64)
    cnt = np.maximum(nb - b0, 0)
    if cnt.sum():
        rep = np.repeat(np.arange(len(kk)), cnt)
        step = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        r.append(lay["pick"] + nodes[rep] * nb + b0[rep] + step)
        c.append(cols[kk][rep])
        v.append(np.ones(len(rep)))
    return np.concatenate(r), np.concatenate(c), np.concatenate(v)


def _price_legs(router: Router, view, ctx: OrderContext, legs: tuple[Leg, ...], n_terms: int):
    """(score, contributions[T, 1], values[T, 1], latest ETA) of explicit legs on ``view``."""
    from router.candidates import from_units
    from router.scoring import score_candidates

    if not legs:
        return 0.0, np.zeros((n_terms, 1)), np.zeros((n_terms, 1)), float("nan")
    nodes = np.array([leg[0] for leg in legs], dtype=np.int64)
    opts = np.array([leg[1] for leg in legs], dtype=np.int64)
    units = np.array([leg[2] for leg in legs], dtype=np.int64)
    cs = from_units(nodes, opts, units, router.network, view, ctx)
    sc = score_candidates(cs, view, ctx, router.params)
    eta = float(np.where(cs.leg_node[0] >= 0, cs.leg_eta_hours[0], 0.0).max())
    return float(sc.total[0]), sc.contributions_matrix[:, [0]], sc.values_matrix[:, [0]], eta


def _capacity(router: Router, snapshot: LiveState, opts: RerouteOptions) -> np.ndarray:
    net = router.network
    lay = _row_layout(net, opts)
    nb, bh = lay["buckets"], opts.bucket_hours
    stock = np.maximum(snapshot.on_hand - snapshot.reserved, 0).astype(float).ravel()
    lane = np.maximum(net.lane_daily_capacity - snapshot.lane_used, 0.0).ravel()
    lane = np.where(np.isfinite(lane), lane, 1e12)
    closed = snapshot.closed_manual | snapshot.closed_sched
    thr = np.where(closed, 0.0, snapshot.throughput_per_hour)
    ends = (np.arange(nb) + 1) * bh
    pick = np.maximum(thr[:, None] * ends[None, :] - snapshot.queue_orders[:, None], 0.0).ravel()
    return np.concatenate([stock, lane, pick])


def _row_name(net, opts: RerouteOptions, r: int) -> str:
    lay = _row_layout(net, opts)
    n_sku, n_opt, nb = len(net.sku_ids), net.n_options, lay["buckets"]
    if r < lay["lane"]:
        return f"stock {net.node_ids[r // n_sku]} {net.sku_ids[r % n_sku]}"
    if r < lay["pick"]:
        q = r - lay["lane"]
        o = q % n_opt
        return f"lane {net.node_ids[q // n_opt]} {net.option_carrier[o]}/{net.option_service[o]}"
    q = r - lay["pick"]
    b = q % nb
    return f"picks {net.node_ids[q // nb]} by +{(b + 1) * opts.bucket_hours:g}h"


def _build_problem(gen: _Gen, capacity: np.ndarray, opts: RerouteOptions, names: tuple[str, ...] = ()) -> BatchProblem:
    o, w = len(gen.cols), _width(opts)
    cost = np.full((o, w), np.inf)
    keep = np.full(o, w - 1, dtype=np.int64)
    for i, c in enumerate(gen.cols):
        m = c.keep
        cost[i, :m] = c.score[:m] + opts.move_cost_usd
        if c.current >= 0:
            cost[i, c.current] -= opts.move_cost_usd
        # an order no plan can serve at all stays where it is whatever is chosen: no penalty, so
        # the objective (and the gap) measures the choices there are
        cost[i, w - 1] = c.score[m] + (opts.unplaced_penalty_usd if m > 0 else 0.0)
    usage = sparse.csr_matrix((gen.vals, (gen.rows, gen.cols_idx)), shape=(len(capacity), o * w))
    usage.sum_duplicates()
    return BatchProblem(cost, usage, capacity, keep, names)


def _reprice(
    router: Router, snapshot: LiveState, backlog: Sequence[OpenOrder], gen: _Gen, problem: BatchProblem,
    choice: np.ndarray, stuck: np.ndarray, now: datetime, strategy: str, opts: RerouteOptions,
) -> tuple[int, np.ndarray]:
    """Column generation: plans for the orders no column could place, generated on what the solution leaves.

    The first columns were generated with every backlog unit given back, so they are the
    plans an order would take alone; when orders compete, an order may need a split that
    none of them is. Here the candidate generator of ``route()`` runs again for each
    stuck order on a state holding everything the solution uses (its own keep column
    given back), and its best plans that fit become new columns; each stuck order's best
    new plan is held for the next one. Where that plan also fits every row of the model
    (the pick buckets too, which route() does not know), the order is placed on it at once.
    Returns the number of columns added and the choice with those placements (a feasible
    start for the next solve, which then proves its own bound on the larger model).
    """
    net = router.network
    n_sku, n_opt = len(net.sku_ids), net.n_options
    lay = _row_layout(net, opts)
    width = problem.width
    resid = snapshot.detached_copy()
    load = problem.load(choice)
    n, o = net.n_nodes, n_opt
    resid.reserved += np.rint(load[: n * n_sku]).astype(np.int64).reshape(n, n_sku)
    resid.lane_used += load[lay["lane"]: lay["lane"] + n * o].reshape(n, o)
    resid.queue_orders += load[lay["lane"]: lay["lane"] + n * o].reshape(n, o).sum(axis=1)
    at_hours = router._hours(now)
    usage = problem.usage.tocsc()
    rows, cols, vals = [gen.rows], [gen.cols_idx], [gen.vals]
    added = 0
    choice = choice.copy()
    left = problem.capacity - load
    for i in stuck.tolist():
        c = gen.cols[i]
        room = width - 1 - c.keep
        if room <= 0:
            continue
        # give back the order's own keep column while it looks
        kc = i * width + width - 1
        kr, kv = usage.indices[usage.indptr[kc]:usage.indptr[kc + 1]], usage.data[usage.indptr[kc]:usage.indptr[kc + 1]]
        st = kr < lay["lane"]
        np.subtract.at(resid.reserved.reshape(-1), kr[st], np.rint(kv[st]).astype(np.int64))
        ctx, view = _order_inputs(router, resid, backlog[i].order, now, at_hours)
        out = router.decide(view, ctx, strategy, explain=False)
        np.add.at(resid.reserved.reshape(-1), kr[st], np.rint(kv[st]).astype(np.int64))
        have = {c.legs(j) for j in range(c.keep)}
        picks = [p for p in _diverse(out, room + len(have)) if _legs_of(out, p) not in have][:room]
        if not picks:
            continue
        pk = np.asarray(picks, dtype=np.int64)
        slots = i * width + c.keep + np.arange(len(pk))
        r, cc, v = _usage(out.cs, pk, ctx, slots, lay, opts, n_sku, n_opt)
        rows.append(r)
        cols.append(cc)
        vals.append(v)
        eta = np.where(out.cs.leg_node[pk] >= 0, out.cs.leg_eta_hours[pk], 0.0).max(axis=1)
        c.add(
            (out.cs.leg_node[pk], out.cs.leg_opt[pk], out.cs.leg_units[pk]),
            out.scores.total[pk].astype(float), out.scores.contributions_matrix[:, pk], out.scores.values_matrix[:, pk], eta,
        )
        added += len(pk)
        # place the order at once where the best new plan fits the model's rows (its keep column given back)
        first = cc == slots[0]
        fits = bool((v[first] <= left[r[first]] + _keep_back(left, r[first], kr, kv) + 1e-9).all())
        if fits and int(choice[i]) == width - 1:
            np.add.at(left, kr, kv)
            np.subtract.at(left, r[first], v[first])
            choice[i] = int(slots[0] - i * width)
        # hold the best new plan, so the next stuck order sees what is left after it
        best = int(pk[0])
        live = out.cs.leg_node[best] >= 0
        for n_, o_, u in zip(out.cs.leg_node[best][live].tolist(), out.cs.leg_opt[best][live].tolist(),
                             out.cs.leg_units[best][live].tolist()):
            for line, q in enumerate(u):
                if q:
                    resid.reserved[n_, int(ctx.sku_idx[line])] += q
            resid.lane_used[n_, o_] += 1
    gen.rows = np.concatenate(rows)
    gen.cols_idx = np.concatenate(cols)
    gen.vals = np.concatenate(vals)
    return added, choice


def _keep_back(left: np.ndarray, rows: np.ndarray, kr: np.ndarray, kv: np.ndarray) -> np.ndarray:
    """What the keep column (rows ``kr``, amounts ``kv``) would give back on each of ``rows``."""
    back = dict(zip(kr.tolist(), kv.tolist()))
    return np.array([back.get(r, 0.0) for r in rows.tolist()], dtype=np.float64)


# ----------------------------------------------------------------- partitions
class FixedClock:
    """A clock that always reads ``now`` (picklable, unlike a lambda): a partition plans at the job's time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


#: Routers built in this (worker) process, by the key of the factory that built them: a warm
#: worker of a standing cluster builds its router (scenario, risk model, compiled kernels) once.
_WORKER_ROUTERS: dict[str, Any] = {}


def _partition_task(payload: dict) -> dict:
    """One partition in a worker: its columns on the shared snapshot (the parent solves)."""
    key = payload.get("router_key")
    router = _WORKER_ROUTERS.get(key) if key else None
    if router is None:
        router = payload["factory"](clock=FixedClock(payload["now"]))
        if key:
            _WORKER_ROUTERS.clear()  # one at a time: a worker serves one network
            _WORKER_ROUTERS[key] = router
    router.clock = FixedClock(payload["now"])
    opts: RerouteOptions = payload["opts"]
    gen = generate_columns(router, payload["snapshot"], payload["backlog"], payload["now"], payload["strategy"], opts)
    return {"gen": gen}


def _regions(router: Router, backlog: Sequence[OpenOrder], parts: int) -> list[list[int]]:
    """Backlog positions grouped into ``parts`` partitions of whole destination regions, balanced by count."""
    by_region: dict[str, list[int]] = {}
    for i, oo in enumerate(backlog):
        by_region.setdefault(oo.order.destination.region or f"@{round(oo.order.destination.lat or 0)}", []).append(i)
    groups: list[list[int]] = [[] for _ in range(parts)]
    for _, idx in sorted(by_region.items(), key=lambda kv: -len(kv[1])):
        min(groups, key=len).extend(idx)
    return [sorted(g) for g in groups if g]


def _merge(gens: list[_Gen], parts: list[list[int]], n: int, width: int) -> _Gen:
    cols: list[_Cols | None] = [None] * n
    rows, cidx, vals = [], [], []
    for gen, idx in zip(gens, parts):
        idx_arr = np.asarray(idx, dtype=np.int64)
        for local, c in enumerate(gen.cols):
            cols[idx[local]] = c
        o_local = gen.cols_idx // width
        rows.append(gen.rows)
        cidx.append(idx_arr[o_local] * width + gen.cols_idx % width)
        vals.append(gen.vals)
    names = next((g.term_names for g in gens if g.term_names), ())
    return _Gen(
        cols,  # type: ignore[arg-type]
        np.concatenate(rows), np.concatenate(cidx), np.concatenate(vals), names, max(g.seconds for g in gens),
    )


def _solve_partitioned(problem: BatchProblem, parts: list[list[int]], opts: RerouteOptions) -> BatchSolution:
    """Each partition under its share of every row, stitched (feasible by construction), then polished whole.

    A partition's share of a row is what its keep columns hold there plus a part of the
    rest in proportion to what its orders could use beyond that; the shares add up to
    the capacity, so the stitched choice fits every row.
    """
    from router.solver.batch import _Fill, lagrangian

    t0 = time.perf_counter()
    o, w = problem.cost.shape
    keep_use = []
    want = []
    subs = []
    for idx in parts:
        cols = (np.asarray(idx)[:, None] * w + np.arange(w)[None, :]).ravel()
        sub = problem.usage[:, cols]
        x = np.zeros(len(cols))
        x[np.arange(len(idx)) * w + problem.keep[idx]] = 1.0
        keep_use.append(sub @ x)
        want.append(np.asarray(sub.max(axis=1).todense()).ravel() * len(idx))
        subs.append((idx, sub))
    keep_total = np.sum(keep_use, axis=0)
    spare = np.maximum(problem.capacity - keep_total, 0.0)
    want_total = np.sum(want, axis=0)
    choice = problem.keep.astype(np.int64).copy()
    bounds = []
    share_time = max(0.1, opts.time_limit_s * 0.6 / max(1, len(parts)))
    for (idx, sub), ku, wa in zip(subs, keep_use, want):
        share = ku + np.where(want_total > 0, spare * wa / np.maximum(want_total, 1e-12), 0.0)
        sp = BatchProblem(problem.cost[idx], sub.tocsr(), share, problem.keep[idx])
        lb, ch, _, _ = lagrangian(sp, seconds=share_time)
        choice[idx] = ch
        bounds.append(lb)
    stitched = problem.objective(choice)
    fl = _Fill(problem)
    choice = fl.polish(choice, time.perf_counter() + max(0.5, opts.time_limit_s * 0.2))
    obj = problem.objective(choice)
    # the single problem's bound, for the gap of the partitioned plan (the shares' bounds are not bounds of it)
    left = max(0.2, opts.time_limit_s - (time.perf_counter() - t0))
    lb, _, _, steps = lagrangian(problem, seconds=left)
    return BatchSolution(
        choice, obj, min(lb, obj), "feasible", "partitioned", time.perf_counter() - t0,
        {"partitions": len(parts), "stitched": stitched, "polished": obj, "single_bound": lb, "bound_steps": steps},
    )


# ------------------------------------------------------------------- the plan
def _fmt_legs(net, legs: tuple[Leg, ...]) -> str:
    return " + ".join(f"{net.node_ids[n]} {net.option_carrier[o]}/{net.option_service[o]}" for n, o, _ in legs) or "nothing"


def _plan_json(net, order_skus: list[str], legs: tuple[Leg, ...], score: float | None) -> dict:
    return {
        "legs": [
            {
                "node_id": net.node_ids[n],
                "carrier_id": net.option_carrier[o],
                "service": net.option_service[o],
                "lines": [{"sku": order_skus[k], "qty": u} for k, u in enumerate(units) if u > 0],
            }
            for n, o, units in legs
        ],
        "score": None if score is None or not math.isfinite(score) else round(float(score), 6),
    }


def _kpis(cols: list[_Cols], choice: np.ndarray, problem: BatchProblem, term_names: tuple[str, ...]) -> dict:
    """KPIs of the model columns ``choice`` (one slot per order)."""
    n = len(cols)
    if n == 0:
        return {"orders": 0}
    ti = {t: i for i, t in enumerate(term_names)}
    score = cost = 0.0
    ships = excess = late = 0
    width = problem.width
    for c, slot in zip(cols, choice.tolist()):
        k = c.local(slot, width)
        score += float(c.score[k])
        if "cost" in ti:
            cost += float(c.values[ti["cost"], k])
        s = int(c.ships[k])
        ships += s
        excess += max(0, s - c.min_ships)
        if np.isfinite(c.eta[k]) and c.eta[k] > c.promise_hours:
            late += 1
    load = problem.load(choice)
    cap = problem.capacity
    use = np.where(cap > 0, load / np.maximum(cap, 1e-12), np.where(load > 0, np.inf, 0.0))
    return {
        "orders": n,
        "score": round(score, 4),
        "cost_usd": round(cost, 4),
        "shipments_per_order": round(ships / n, 6),
        "excess_splits": int(excess),
        "past_promise": int(late),
        "rows_over_capacity": int((load > cap + 1e-6).sum()),
        "max_row_use": None if not len(use) or not np.isfinite(use.max()) else round(float(use.max()), 4),
    }


def _sentence(net, old: tuple[Leg, ...], new: tuple[Leg, ...], delta: float, terms: list[dict], note: str) -> str:
    big = sorted((t for t in terms if abs(t["delta"]) >= 0.005), key=lambda t: -abs(t["delta"]))[:2]
    parts = ", ".join(f"{t['term'].replace('_', ' ')} {'+' if t['delta'] >= 0 else '-'}${abs(t['delta']):.2f}" for t in big)
    why = f" ({note})" if note else ""
    return (
        f"Moved from {_fmt_legs(net, old)}{why} to {_fmt_legs(net, new)}: score "
        f"{'+' if delta >= 0 else '-'}${abs(delta):.2f}" + (f" ({parts})." if parts else ".")
    )


#: The first solve's share of a re-route's time limit when repricing may follow (chosen on
#: design seed 101 at 100k orders, where an even split starved the solves after repricing).
FIRST_SHARE = 0.25


def plan_reroute(
    router: Router,
    backlog: Sequence[OpenOrder],
    *,
    opts: RerouteOptions,
    strategy: str | None = None,
    skipped: list[dict] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    factory: Callable[..., Router] | None = None,
    mapper: Callable[[Callable, list], list] | None = None,
    router_key: str | None = None,
) -> ReroutePlan:
    """Solve the re-route of ``backlog`` on a snapshot of ``router``'s state; changes nothing.

    With ``opts.partitions > 1``, ``mapper(fn, items)`` (e.g. :func:`router.distributed.ordered_map`
    with a backend) runs each partition's column generation where it likes, on a router
    that ``factory(clock=...)`` builds there; without them the partitions run here.
    """
    opts.check()
    strategy = strategy or router.strategy
    router._check_strategy(strategy)
    now = router.clock()
    t0 = time.perf_counter()
    net = router.network
    allocs = [plan_alloc(net, oo.plan) for oo in backlog]
    snapshot = released_snapshot(router.state, allocs)
    capacity = _capacity(router, snapshot, opts)
    width = _width(opts)
    parts = _regions(router, backlog, opts.partitions) if opts.partitions > 1 and len(backlog) > 1 else [list(range(len(backlog)))]
    timings: dict = {}
    if len(parts) > 1 and factory is not None and mapper is not None:
        payloads = [
            {
                "factory": factory, "router_key": router_key, "now": now, "opts": opts, "snapshot": snapshot,
                "strategy": strategy,
                "backlog": [backlog[i] for i in idx],
            }
            for idx in parts
        ]
        results = mapper(_partition_task, payloads)
        gen = _merge([r["gen"] for r in results], parts, len(backlog), width)
    else:
        workers = column_workers(opts, len(backlog))
        tick = None if progress is None else (lambda i, n: progress("columns", i, n))
        if workers > 1 and len(backlog) > 1:
            gen = generate_columns_forked(router, snapshot, backlog, now, strategy, opts, workers, tick)
        else:
            gen = generate_columns(router, snapshot, backlog, now, strategy, opts, tick)
        timings["column_workers"] = workers
    timings["columns_s"] = round(time.perf_counter() - t0, 3)
    names = tuple(_row_name(net, opts, r) for r in range(len(capacity)))
    problem = _build_problem(gen, capacity, opts, names)
    t1 = time.perf_counter()
    if progress is not None:
        progress("solve", 0, 1)
    rounds = opts.reprice_rounds if opts.extra_columns > 0 else 0
    # The limit bounds the solves; repricing is column generation, like the first columns,
    # and is not counted in it (an order left stuck for want of a column costs far more than
    # a shorter solve would). The first solve only has to find the orders no column places;
    # the solves after repricing, warm-started from its answer and multipliers, close the
    # gap, so they keep the larger share.
    reprice_s = 0.0

    def spent() -> float:
        return time.perf_counter() - t1 - reprice_s

    first_limit = opts.time_limit_s * (FIRST_SHARE if rounds else 1.0)
    if len(parts) > 1 and opts.solve_partitions:
        sol = _solve_partitioned(problem, parts, replace(opts, time_limit_s=first_limit))
    elif backlog:
        sol = solve_batch(problem, time_limit_s=first_limit, method=opts.method, seed=router.seed)
    else:
        sol = BatchSolution(np.zeros(0, dtype=np.int64), 0.0, 0.0, "optimal", "empty", 0.0)
    reprice: list[dict] = []
    for rnd in range(rounds):
        left = opts.time_limit_s - spent()
        stuck = np.flatnonzero((sol.choice == width - 1) & np.isfinite(problem.cost[:, 0])) if backlog else np.zeros(0, dtype=np.int64)
        if not len(stuck) or left <= 0.2:
            break
        t_r = time.perf_counter()
        added, start = _reprice(router, snapshot, backlog, gen, problem, sol.choice, stuck, now, strategy, opts)
        if added:
            problem = _build_problem(gen, capacity, opts, names)
        gen_s = time.perf_counter() - t_r
        reprice_s += gen_s
        if not added:
            break
        left = max(0.2, opts.time_limit_s - spent())
        # another round may follow only while orders are still stuck: this solve takes half of what
        # is left then, all of it otherwise (the solve stops early when it proves optimality)
        share = 0.5 if rnd + 1 < rounds else 1.0
        if check_choice(problem, start):  # the placements must fit the rebuilt model; else the old choice
            start = sol.choice
        sol2 = solve_batch(problem, time_limit_s=left * share, method=opts.method, seed=router.seed, start=start,
                           duals=sol.duals)
        reprice.append({"round": rnd + 1, "unplaced_before": int(len(stuck)), "columns_added": added,
                        "unplaced_after": int(((sol2.choice == width - 1) & np.isfinite(problem.cost[:, 0])).sum()),
                        "columns_s": round(gen_s, 3), "seconds": round(time.perf_counter() - t_r, 3)})
        # the bound of the bigger model is a bound of it (more columns only lower the optimum)
        sol = sol2 if sol2.objective <= sol.objective + 1e-9 else BatchSolution(
            sol.choice, sol.objective, min(sol2.bound, sol.objective), "feasible", sol.method, sol.seconds, sol.stages,
            sol2.duals)
    left = opts.time_limit_s - spent()
    if backlog and left > 0.5 and sol.status != "optimal" and sol.method != "partitioned":
        # the rounds stopped early (nothing stuck, or no new column): the rest of the limit improves the answer
        sol3 = solve_batch(problem, time_limit_s=left, method=opts.method, seed=router.seed, start=sol.choice,
                           duals=sol.duals)
        if sol3.objective <= sol.objective + 1e-9:
            sol3.stages = {**sol.stages, "final": sol3.stages}
            sol3.bound = min(max(sol3.bound, sol.bound), sol3.objective)
            sol = sol3
    if progress is not None:
        progress("solve", 1, 1)
    timings["reprice_s"] = round(reprice_s, 3)
    timings["solve_s"] = round(spent(), 3)
    if reprice:
        sol.stages["reprice"] = reprice
    problems = check_choice(problem, sol.choice) if backlog else []
    if problems:  # a solver bug must not reach the ledger
        raise RouterError(f"re-route job: the solver's plan breaks the model: {problems[:3]}")
    before = np.array([c.current if c.current >= 0 else width - 1 for c in gen.cols], dtype=np.int64)
    job_id = f"reroute-{uuid.uuid4().hex[:12]}"
    moves: list[Move] = []
    unplaced: list[dict] = []
    load = problem.load(sol.choice) if backlog else np.zeros(0)
    usage_csc = problem.usage.tocsc()
    for i, (oo, c, slot) in enumerate(zip(backlog, gen.cols, sol.choice.tolist())):
        skus = list(c.skus)
        k = c.local(slot, width)
        if k == c.keep:
            # which rows stopped every real column: those at capacity that the column needs
            stopped: dict[str, int] = {}
            for j in range(c.keep):
                col = i * width + j
                lo_, hi_ = usage_csc.indptr[col], usage_csc.indptr[col + 1]
                rr, vv = usage_csc.indices[lo_:hi_], usage_csc.data[lo_:hi_]
                for r in rr[load[rr] + vv > problem.capacity[rr] + 1e-6].tolist():
                    stopped[problem.row_names[r]] = stopped.get(problem.row_names[r], 0) + 1
            if len(c.score) == 1:
                reason = "no plan can serve it now" + (f" ({c.note})" if c.note else "")
            else:
                reason = "no plan fits the capacities left" + (f" ({c.note})" if c.note else "")
            unplaced.append({
                "order_id": oo.order.order_id, "decision_id": oo.decision_id,
                "reason": reason + ("; kept on its current plan" if c.kept else ""),
                "rows": sorted(stopped, key=lambda r: -stopped[r])[:5],
            })
            continue
        if k == c.current:
            continue
        old_k = c.current if c.current >= 0 else c.keep
        terms = [
            {"term": t, "delta": round(float(c.terms[ti, k] - c.terms[ti, old_k]), 6)}
            for ti, t in enumerate(gen.term_names)
        ]
        delta = float(c.score[k] - c.score[old_k])
        moves.append(
            Move(
                order_id=oo.order.order_id,
                decision_id=oo.decision_id,
                from_plan=_plan_json(net, skus, c.legs(old_k), c.score[old_k]),
                to_plan=_plan_json(net, skus, c.legs(k), c.score[k]),
                score_delta=delta,
                terms=terms,
                sentence=_sentence(net, c.legs(old_k), c.legs(k), delta, terms, c.note),
            )
        )
    conflicts = []
    if unplaced:
        counts: dict[str, int] = {}
        for u in unplaced:
            for r in u["rows"]:
                counts[r] = counts.get(r, 0) + 1
        name_idx = {nm: r for r, nm in enumerate(problem.row_names)}
        for r_name, cnt in sorted(counts.items(), key=lambda kv: -kv[1])[:20]:
            r = name_idx[r_name]
            conflicts.append({"row": r_name, "capacity": float(problem.capacity[r]), "used": float(load[r]), "orders_stopped": cnt})
    timings["total_s"] = round(time.perf_counter() - t0, 3)
    kb = _kpis(gen.cols, before, problem, gen.term_names) if backlog else {"orders": 0}
    ka = _kpis(gen.cols, sol.choice, problem, gen.term_names) if backlog else {"orders": 0}
    return ReroutePlan(
        job_id=job_id, created_at=now, strategy=strategy, options=opts, orders=len(backlog), moves=moves,
        unplaced=unplaced, skipped=list(skipped or []), conflicts=conflicts, kpis_before=kb, kpis_after=ka,
        objective=sol.objective, bound=sol.bound, gap=round(sol.gap, 6),
        solver={"method": sol.method, "status": sol.status, "seconds": round(sol.seconds, 3), **_jsonable(sol.stages)},
        timings=timings, backlog=list(backlog), choice=sol.choice, cols=gen.cols, problem=problem, snapshot=snapshot,
        term_names=gen.term_names,
    )


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = _jsonable(v)
        elif isinstance(v, np.generic):
            out[k] = v.item()
        else:
            out[k] = v
    return out


# --------------------------------------------------------------- validation
def check_reroute(router: Router, plan: ReroutePlan) -> list[str]:
    """An independent check of a move plan, from the plans themselves (not the model's arrays).

    Every order ends with a plan that ships exactly its lines; summed over the backlog's
    final plans (moved, kept and unplaced), stock per node and SKU stays within what is
    free plus what the backlog held, lane shipments within what is left plus the
    backlog's own, no leg ships from a closed node unless it was already there; and only
    orders of the backlog move. Returns the problems found (empty: the plan is sound).
    """
    net = router.network
    snap = plan.snapshot
    assert snap is not None
    out: list[str] = []
    moved = {m.order_id: m for m in plan.moves}
    in_backlog = {oo.order.order_id for oo in plan.backlog}
    for m in plan.moves:
        if m.order_id not in in_backlog:
            out.append(f"order {m.order_id} moved but is not in the backlog")
    need = np.zeros_like(snap.on_hand)
    lanes = np.zeros_like(snap.lane_used)
    closed = snap.closed_manual | snap.closed_sched
    for oo in plan.backlog:
        mv = moved.get(oo.order.order_id)
        final = mv.to_plan if mv is not None else oo.plan
        units: dict[str, int] = {}
        for leg in final.get("legs", []):
            for line in leg["lines"]:
                units[line["sku"]] = units.get(line["sku"], 0) + int(line["qty"])
        want: dict[str, int] = {}
        for line in oo.order.lines:
            want[line.sku] = want.get(line.sku, 0) + int(line.qty)
        if units != want:
            out.append(f"order {oo.order.order_id}: the plan ships {units}, the order has {want}")
        nodes, skus, qty, lns = plan_alloc(net, final)
        np.add.at(need, (np.asarray(nodes, dtype=np.int64), np.asarray(skus, dtype=np.int64)), np.asarray(qty, dtype=np.int64))
        for n, o in lns:
            lanes[n, o] += 1
            if mv is not None and closed[n]:
                out.append(f"order {oo.order.order_id} moved to closed node {net.node_ids[n]}")
    free = snap.on_hand - snap.reserved
    for n, k in zip(*np.nonzero(need > free)):
        out.append(f"stock {net.node_ids[n]} {net.sku_ids[k]}: {int(need[n, k])} planned, {int(free[n, k])} there")
    left = net.lane_daily_capacity - snap.lane_used
    for n, o in zip(*np.nonzero(lanes > left + 1e-9)):
        out.append(f"lane {net.node_ids[n]} option {o}: {int(lanes[n, o])} shipments, {left[n, o]:g} left")
    return out


# -------------------------------------------------------------------- apply
def _decision_for_move(router: Router, plan: ReroutePlan, i: int, move: Move) -> tuple[dict, tuple]:
    """The new decision record of a moved order: the route() record on the snapshot, with the batch's choice first."""
    oo = plan.backlog[i]
    c = plan.cols[i]
    assert plan.snapshot is not None and plan.choice is not None
    snap = plan.snapshot
    now = plan.created_at
    t0 = time.perf_counter()
    net = router.network
    ctx, view = _order_inputs(router, snap, oo.order, now, router._hours(now))
    out = router.decide(view, ctx, plan.strategy)
    target = c.legs(c.local(int(plan.choice[i]), _width(plan.options)))
    cand = _find(out, target)
    if cand < 0:
        raise RouterError(f"order {oo.order.order_id}: the re-routed plan is not among the plans re-derived for it")
    rank = int(np.flatnonzero(out.ranking == cand)[0])
    order = [cand] + [int(x) for x in out.ranking.tolist() if int(x) != cand]
    moved = Ranked(out.cs, out.scores, np.asarray(order, dtype=np.int64), out.strategy, out.fallback)
    record = router.records.full(oo.order, now, ctx, view, moved, router.params, t0)
    record["decision_id"] = f"{plan.job_id}-{i}"
    record["supersedes"] = move.decision_id
    record["reroute"] = {
        "job_id": plan.job_id,
        "supersedes": move.decision_id,
        "rank": rank,
        "from": move.from_plan,
        "score_delta": round(move.score_delta, 6),
        "terms": move.terms,
        "sentence": move.sentence,
    }
    record["rationale"]["sentence"] = move.sentence + " " + record["rationale"].get("sentence", "")
    alloc = plan_alloc(net, record["chosen"])
    return record, alloc


def apply_moves(router: Router, plan: ReroutePlan) -> ReroutePlan:
    """Write the moves: one new decision per moved order and the reservations swapped, all or nothing.

    Raises
    ------
    RerouteConflict
        Something changed since the plan was made (units taken, an order released or
        shipped, already applied); nothing changed: plan again.
    """
    if plan.applied:
        raise RerouteConflict(f"re-route job {plan.job_id} was already applied")
    if not plan.moves:
        plan.applied = True
        return plan
    net = router.network
    index = {oo.order.order_id: i for i, oo in enumerate(plan.backlog)}
    built = []
    for m in plan.moves:
        i = index[m.order_id]
        record, new_alloc = _decision_for_move(router, plan, i, m)
        old_alloc = plan_alloc(net, plan.backlog[i].plan)
        built.append((m, record, old_alloc, new_alloc))

    def rows(alloc) -> list[tuple[str, str, int]]:
        agg: dict[tuple[str, str], int] = {}
        for n, k, q in zip(alloc[0], alloc[1], alloc[2]):
            key = (net.node_ids[n], net.sku_ids[k])
            agg[key] = agg.get(key, 0) + int(q)
        return [(a, b, q) for (a, b), q in sorted(agg.items())]

    state = router.state
    with state.lock:
        if router.ledger is not None:
            from router.errors import InvalidEventError, LedgerError, ReservationConflict

            try:
                router.ledger.apply_reroute(
                    router.stock_pool,
                    [(m.decision_id, rec, rows(old), rows(new)) for m, rec, old, new in built],
                    created_at=plan.created_at.isoformat(),
                )
            except (ReservationConflict, InvalidEventError) as exc:
                raise RerouteConflict(f"re-route job {plan.job_id} not applied, nothing changed: {exc}") from exc
            except LedgerError:
                raise
        # this process's cache: give back every old plan, then take every new one
        for _, _, old, _ in built:
            state.release(*old)
        taken = []
        for m, _, _, new in built:
            if state.try_reserve(*new):
                taken.append(new)
                continue
            if router.ledger is not None:
                # the ledger (the truth) took the moves; this cache was stale: read the truth again
                router.refresh_stock()
                break
            for t in taken:
                state.release(*t)
            for _, _, o2, _ in built:
                state.try_reserve(*o2)
            raise RerouteConflict(
                f"re-route job {plan.job_id} not applied, nothing changed: the units of order {m.order_id}'s "
                "new plan were taken since the plan was made"
            )
    for m, rec, _, _ in built:
        m.new_decision_id = rec["decision_id"]
    plan.applied = True
    router.recorded += len(built) if router.ledger is not None else 0
    return plan
