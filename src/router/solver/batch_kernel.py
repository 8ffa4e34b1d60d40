"""Compiled inner loops of the batch re-routing heuristic (numba).

:func:`fill` walks orders one at a time: each gives back the capacity of the column it
holds, takes the best column (by the given score) that fits what is left, and takes its
capacity. Started from a feasible assignment it stays feasible after every step, so it
serves both as the construction (scores = Lagrangian reduced costs, orders by regret)
and as the 1-opt improvement pass (scores = true costs: no order can move alone to a
better column that fits). In Python this is a loop of small-array operations per order;
at 100,000 orders x 8 columns it took seconds per pass, here milliseconds.

numba is imported on first use; compiled functions are cached on disk next to this file.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["fill"]


def fill(
    seq: np.ndarray,
    score: np.ndarray,
    indptr: np.ndarray,
    rows: np.ndarray,
    vals: np.ndarray,
    left: np.ndarray,
    choice: np.ndarray,
    release: bool = True,
) -> int:
    """Re-choose each order of ``seq`` in turn; ``left`` and ``choice`` are updated in place.

    ``release=False``: the orders of ``seq`` hold nothing yet (``choice`` is ignored for
    them on entry); each takes its best column that fits, or is set to -1 when none does
    (order-by-order routing from empty).

    ``score`` float[O, K] (inf: no column); columns are flat ``o * K + k`` and their usage
    is ``rows[indptr[c]:indptr[c + 1]]`` with amounts ``vals[...]`` (CSC). Returns the
    number of orders that changed column.
    """
    return int(
        _kernel()(
            np.ascontiguousarray(seq, dtype=np.int64),
            np.ascontiguousarray(score, dtype=np.float64),
            np.ascontiguousarray(indptr, dtype=np.int64),
            np.ascontiguousarray(rows, dtype=np.int64),
            np.ascontiguousarray(vals, dtype=np.float64),
            left,
            choice,
            bool(release),
        )
    )


@lru_cache(maxsize=1)
def _kernel():
    from numba import njit

    return njit(cache=True, nogil=True)(_fill_py)


def _fill_py(seq, score, indptr, rows, vals, left, choice, release):  # pragma: no cover - compiled
    n_cols = score.shape[1]
    changed = 0
    eps = 1e-9
    for t in range(seq.shape[0]):
        o = seq[t]
        cur = choice[o] if release else -1
        if release:
            c0 = o * n_cols + cur
            for p in range(indptr[c0], indptr[c0 + 1]):
                left[rows[p]] += vals[p]
        best = -1
        best_s = np.inf
        for k in range(n_cols):
            s = score[o, k]
            if not s < best_s:
                continue
            c = o * n_cols + k
            ok = True
            for p in range(indptr[c], indptr[c + 1]):
                if vals[p] > left[rows[p]] + eps:
                    ok = False
                    break
            if ok:
                best = k
                best_s = s
        if best < 0:
            if not release:
                choice[o] = -1
                changed += 1
                continue
            best = cur  # the column it held fits: its capacity was just given back
        c1 = o * n_cols + best
        for p in range(indptr[c1], indptr[c1 + 1]):
            left[rows[p]] -= vals[p]
        if best != cur:
            changed += 1
            choice[o] = best
    return changed
