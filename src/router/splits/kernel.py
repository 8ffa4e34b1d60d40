"""Compiled inner loops of the split search (numba).

The split search lists node subsets of one size per service level, prices each
subset's lines at their cheapest node, and drops subsets whose lower bounds lose
to the best plan so far (see :class:`router.splits.SplitSearch`). In numpy
that is a few dozen array operations per order on arrays of a few hundred cells,
and numpy's per-call overhead, not arithmetic, was a third of a decision's time.
This loop does the same work subset by subset in compiled code.

It reproduces the numpy path exactly: the same subsets in the same order (service
level by level, combinations of the level's pool in lexicographic order), the
same options, the same line assignment (first cheapest node, as ``np.argmin``),
the same "every node ships something" rule. Bounds are computed with the same
operations in the same order; a subset is dropped only when it loses on cost
and on score by more than the tolerance, so rounding never decides.
``tests/test_pruning.py`` checks both paths give identical candidate sets.

numba is imported on first use (about 0.6 s), and compiled functions are cached
on disk next to this file, so a process pays the compile (a few seconds) once.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["subset_plans"]


def subset_plans(
    size: int,
    pool_ok: np.ndarray,
    bo: np.ndarray,
    unit_all: np.ndarray,
    line_ok: np.ndarray,
    per_ship: np.ndarray,
    lane_eta: np.ndarray,
    lane_risk: np.ndarray,
    ratio2: np.ndarray,
    weights: tuple[float, float, float, float, float, float],
    promise_hours: float,
    bound: tuple[float, float] | None,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(nodes int[M, size], opts int[M, size], assign int[M, K]) of the surviving subsets.

    ``pool_ok`` bool[G, N]: node n is in service level g's pool, shipping with option
    ``bo[g, n]``; ``unit_all`` float[N, O, K] per-line linear cost; ``per_ship``,
    ``lane_eta``, ``lane_risk`` flat over N x O; ``ratio2`` float[N] load term per node;
    ``weights`` = (cost, eta, lateness, late risk, load, split) as the score uses them;
    ``bound`` = (best cost, best score) so far, or None to keep every feasible subset.
    """
    best_cost, best_score = bound if bound is not None else (0.0, 0.0)
    # the scalars travel in one array: numba's dispatcher checks each argument's type,
    # and twenty arguments cost more than the loop itself on a typical order
    scalars = np.array(
        [*weights, promise_hours, 1.0 if bound is not None else 0.0, best_cost, best_score, tol], dtype=np.float64
    )
    return _kernel()(
        int(size),
        np.ascontiguousarray(pool_ok, dtype=np.bool_),
        np.ascontiguousarray(bo, dtype=np.int64),
        np.ascontiguousarray(unit_all, dtype=np.float64),
        np.ascontiguousarray(line_ok, dtype=np.bool_),
        np.ascontiguousarray(per_ship, dtype=np.float64),
        np.ascontiguousarray(lane_eta, dtype=np.float64),
        np.ascontiguousarray(lane_risk, dtype=np.float64),
        np.ascontiguousarray(ratio2, dtype=np.float64),
        scalars,
    )


@lru_cache(maxsize=1)
def _kernel():
    from numba import njit

    return njit(cache=True, nogil=True)(_subset_plans_py)


def _subset_plans_py(
    size,
    pool_ok,
    bo,
    unit_all,
    line_ok,
    per_ship,
    lane_eta,
    lane_risk,
    ratio2,
    scalars,
):
    cw, ew, lw, rw, loadw, sp = scalars[0], scalars[1], scalars[2], scalars[3], scalars[4], scalars[5]
    promise, has_bound, best_cost, best_score, tol = scalars[6], scalars[7] > 0.0, scalars[8], scalars[9], scalars[10]
    g_n, n_nodes = pool_ok.shape
    n_opt = unit_all.shape[1]
    k_n = line_ok.shape[1]
    inf = np.inf
    cap = 0
    for g in range(g_n):
        p = 0
        for n in range(n_nodes):
            if pool_ok[g, n]:
                p += 1
        if p >= size:
            c = 1
            for i in range(size):
                c = c * (p - i) // (i + 1)
            cap += c
    nodes_out = np.empty((cap, size), dtype=np.int64)
    opts_out = np.empty((cap, size), dtype=np.int64)
    assign_out = np.empty((cap, k_n), dtype=np.int64)
    m = 0
    # the same tolerance rule as SplitSearch.beaten
    cost_cut = best_cost + tol * max(1.0, abs(best_cost))
    score_cut = best_score + tol * max(1.0, abs(best_score))
    pool = np.empty(n_nodes, dtype=np.int64)
    idx = np.empty(size, dtype=np.int64)
    best = np.empty(k_n, dtype=np.float64)
    arg = np.empty(k_n, dtype=np.int64)
    used = np.empty(size, dtype=np.bool_)
    # per pool member: its line costs (inf where it cannot ship the whole line) and lane
    lc = np.empty((n_nodes, k_n), dtype=np.float64)
    ps = np.empty(n_nodes, dtype=np.float64)
    eta_p = np.empty(n_nodes, dtype=np.float64)
    risk_p = np.empty(n_nodes, dtype=np.float64)
    load_p = np.empty(n_nodes, dtype=np.float64)
    for g in range(g_n):
        p = 0
        for n in range(n_nodes):
            if pool_ok[g, n]:
                pool[p] = n
                f = n * n_opt + bo[g, n]
                ps[p] = per_ship[f]
                eta_p[p] = lane_eta[f]
                risk_p[p] = lane_risk[f]
                load_p[p] = ratio2[n]
                for k in range(k_n):
                    lc[p, k] = unit_all[n, bo[g, n], k] if line_ok[n, k] else inf
                p += 1
        if p < size:
            continue
        # every line at its cheapest pool member: no subset pays less for its lines, so a
        # subset whose bound loses even with this is dropped before its lines are priced
        # (rounding is monotone, so this never drops a subset the exact test would keep)
        lines_lb = 0.0
        for k in range(k_n):
            b = inf
            for q in range(p):
                if lc[q, k] < b:
                    b = lc[q, k]
            lines_lb += b
        if lines_lb == inf:
            continue  # some line is held by no pool member
        for j in range(size):
            idx[j] = j
        while True:
            keep = True
            if has_bound:
                q = idx[0]
                cost0 = ps[q]
                eta = eta_p[q]
                stay = 1.0 - risk_p[q]
                load = load_p[q]
                for j in range(1, size):
                    q = idx[j]
                    cost0 = cost0 + ps[q]
                    eta = max(eta, eta_p[q])
                    stay = stay * (1.0 - risk_p[q])
                    load = load + load_p[q]
                rest = ew * eta + lw * max(eta - promise, 0.0)
                risk = 1.0 - stay
                cost = cost0 + lines_lb
                score = cw * cost + rest + rw * risk + loadw * load + sp * (size - 1)
                if cost > cost_cut and score > score_cut:
                    keep = False
            if keep:
                # each line at its cheapest node of the subset (first on ties, as np.argmin)
                for k in range(k_n):
                    b = inf
                    a = 0
                    for j in range(size):
                        v = lc[idx[j], k]
                        if v < b:
                            b = v
                            a = j
                    if b == inf:
                        keep = False
                        break
                    best[k] = b
                    arg[k] = a
            if keep and has_bound:
                # the exact bound: the same operations, in the same order, as the numpy path
                lines = 0.0
                for k in range(k_n):
                    lines += best[k]
                cost = cost0 + lines
                score = cw * cost + ew * eta + lw * max(eta - promise, 0.0) + rw * risk + loadw * load + sp * (size - 1)
                if cost > cost_cut and score > score_cut:
                    keep = False
            if keep:
                # every node must ship something, else a smaller subset covers the same plan
                for j in range(size):
                    used[j] = False
                for k in range(k_n):
                    used[arg[k]] = True
                for j in range(size):
                    if not used[j]:
                        keep = False
            if keep:
                for j in range(size):
                    n = pool[idx[j]]
                    nodes_out[m, j] = n
                    opts_out[m, j] = bo[g, n]
                for k in range(k_n):
                    assign_out[m, k] = arg[k]
                m += 1
            # next combination of `size` pool positions, lexicographic
            i = size - 1
            while i >= 0 and idx[i] == p - size + i:
                i -= 1
            if i < 0:
                break
            idx[i] += 1
            for j in range(i + 1, size):
                idx[j] = idx[j - 1] + 1
    return nodes_out[:m], opts_out[:m], assign_out[:m]
