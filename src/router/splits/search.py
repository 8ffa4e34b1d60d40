"""Line-split enumeration: node subsets x service levels, each line at its cheapest node of the subset.

For a subset of nodes with linear costs, sending each line to the subset's
cheapest node that holds it is the optimal line-to-node assignment, so the
subsets of up to ``max_splits`` nodes list every split worth considering. Two
paths list the same plans: a numpy reference (also used with priced stock, where
it offers each subset's priced assignment too) and the compiled loop of
:mod:`router.splits.kernel`; ``tests/test_pruning.py`` checks they agree.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from router.candidates import CandidateSet, empty_set
from router.legs import leg_metrics
from router.rules import drop_over_volume
from router.splits.bounds import SplitBounds, upper_pairs

__all__ = ["SplitSearch"]


@lru_cache(maxsize=256)
def _combos(n: int, size: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(n), size)), dtype=np.int64).reshape(-1, size)


class SplitSearch(SplitBounds):
    """Line-split enumeration for one order, size by size, with what the sizes share computed once.

    For each subset of ``size`` nodes and each service level, every line goes to
    the subset's node where it is cheapest per unit (the carrier of each leg is
    the option of that service cheapest for the whole order at that node). The
    bounds that let it skip sizes and subsets are those of :class:`SplitBounds`.
    """

    def _service_groups(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per service level: the pool of nodes, each node's option, and the per-line unit costs."""
        if self._groups is None:
            net, usable, line_ok = self.net, self.usable, self.line_ok
            unit_all = self.unit_all
            est_order = net.per_shipment_usd + unit_all.sum(axis=2)  # [N, O]
            rows = np.arange(net.n_nodes)
            groups = []
            for g in range(len(net.services)):
                est = np.where(usable & (net.option_service_idx[None, :] == g), est_order, np.inf)
                best_opt = np.argmin(est, axis=1)
                has_opt = np.isfinite(est[rows, best_opt])
                pool = self.partial_nodes[has_opt[self.partial_nodes]]
                bo = best_opt[pool]
                unit_cost = np.where(line_ok[pool], unit_all[pool, bo, :], np.inf)  # [P, K]
                groups.append((pool, bo, unit_cost))
            self._groups = groups
        return self._groups

    def _priced_assignments(self, nodes: np.ndarray, opts: np.ndarray, lc: np.ndarray, assign: np.ndarray):
        """Add, per subset, the line assignment that minimises cost + stock value when it differs.

        With shadow prices on stock (the ``stock_value`` term) the best line-to-node
        assignment of a subset is the argmin of ``cost_weight`` x cost + weight x
        units x price, not of cost alone. Both are kept: the cost-optimal plan for
        ``cheapest``, the priced one for the optimizer; the priced rows follow all
        cost rows, so unpriced views generate exactly the candidates they did before.
        Every bound of this class stays valid: prices are >= 0 and the bounds omit them.
        """
        p, ctx = self.params, self.ctx
        # [M, s, K] USD of the line's units at each leg (this path runs only with prices set)
        price = self.view.stock_price[nodes] * ctx.qty  # type: ignore[index]
        finite = np.isfinite(lc)
        priced = np.where(finite, p.cost_weight * np.where(finite, lc, 0.0) + p.stock_value_weight * price, np.inf)
        assign_v = np.argmin(priced, axis=1)
        differ = (assign_v != assign).any(axis=1)
        if not differ.any():
            return nodes, opts, assign
        return (
            np.concatenate([nodes, nodes[differ]]),
            np.concatenate([opts, opts[differ]]),
            np.concatenate([assign, assign_v[differ]]),
        )

    def _assign(self, nodes: np.ndarray, opts: np.ndarray, lc: np.ndarray, size: int):
        """Each line to its cheapest node of the subset; subsets where a node ships nothing are dropped."""
        assign = np.argmin(lc, axis=1)  # [M, K]
        if self.view.stock_price is not None and self.params.stock_value_weight > 0:
            nodes, opts, assign = self._priced_assignments(nodes, opts, lc, assign)
        # every node of the subset must ship something, else a smaller subset covers it
        used = (assign[:, :, None] == np.arange(size)[None, None, :]).any(axis=1).all(axis=1)
        if not used.all():
            nodes, opts, assign = nodes[used], opts[used], assign[used]
        return nodes, opts, assign

    def _pairs(self, bound: tuple[float, float] | None):
        """(nodes [M, 2], opts [M, 2], lc [M, 2, K]) of the two-node subsets that can cover the
        order and are not pruned by ``bound``, in the order of the general path.

        The same subsets, options and bounds as the general path of :meth:`candidates`
        for ``size`` 2, computed on [service, node, node] grids (a few hundred cells)
        instead of gathering and concatenating a list of pairs: about four orders in
        ten reach this point and three quarters of those find no pair worth
        materialising, so this test is most of what they pay.
        """
        net, ctx, line_ok, unit_all = self.net, self.ctx, self.line_ok, self.unit_all
        n_nodes = net.n_nodes
        rows = np.arange(n_nodes)[None, :]
        # each node's option per service: the one cheapest for the whole order (as _service_groups)
        bo, ok, uc = self._group_nodes()
        # per pair, each line at the cheaper of the two nodes, summed: inf when some line
        # is held by neither (costs are finite or +inf, so the sum is finite iff all are)
        lines = np.minimum(uc[:, :, None, :], uc[:, None, :, :]).sum(axis=3)  # [G, N, N]
        keep = np.isfinite(lines) & ok[:, :, None] & ok[:, None, :] & upper_pairs(n_nodes)[None, :, :]
        if bound is not None and keep.any():
            cw, ew, lw, rw, loadw, sp = self.weights
            flat = rows * net.n_options + bo  # [G, N]
            ps = net.per_shipment_usd.ravel()[flat]
            eta = self.lanes.eta[flat]
            stay = 1.0 - self.lanes.risk[flat]
            load = self._load_ratio2()
            # the expressions of _subset_bounds, leg 0 = the lower node index
            cost = ps[:, :, None] + ps[:, None, :]
            eta2 = np.maximum(eta[:, :, None], eta[:, None, :])
            risk = 1.0 - stay[:, :, None] * stay[:, None, :]
            load2 = load[:, None] + load[None, :]
            cost = cost + lines
            score = (
                cw * cost + ew * eta2 + lw * np.maximum(eta2 - ctx.promise_hours, 0.0) + rw * risk + loadw * load2 + sp
            )
            keep &= ~(self.beaten(cost, bound[0]) & self.beaten(score, bound[1]))
        if not keep.any():
            return None, None, None
        gi, ii, jj = np.nonzero(keep)  # service-major, then pairs in combinations order
        nodes = np.stack((ii, jj), axis=1)
        opts = np.stack((bo[gi, ii], bo[gi, jj]), axis=1)
        lc = np.where(line_ok[nodes], unit_all[nodes, opts], np.inf)  # [M, 2, K]
        return nodes, opts, lc

    def candidates(
        self, size: int, excluded: list[dict], bound: tuple[float, float] | None = None
    ) -> CandidateSet:
        """Line-level splits over node subsets of exactly ``size`` nodes, with leg metrics.

        With ``bound`` = (best cost, best score) of plans with fewer legs, subsets
        that lose on both (see the class docstring) are not materialised.
        """
        net, ctx = self.net, self.ctx
        k = len(ctx.qty)
        nodes = None
        if self.compiled and 2 <= size <= k and len(self.partial_nodes) >= size:
            from router.splits.kernel import subset_plans

            bo, ok, _ = self._group_nodes()
            nodes, opts, assign = subset_plans(
                size,
                ok,
                bo,
                self.unit_all,
                self.line_ok,
                net.per_shipment_usd.ravel(),
                self.lanes.eta,
                self.lanes.risk,
                self._load_ratio2(),
                self.weights,
                ctx.promise_hours,
                bound,
                self.TOL,
            )
            if not len(nodes):
                nodes = None
        elif size == 2 and k >= 2 and len(self.partial_nodes) >= 2:
            nodes, opts, lc = self._pairs(bound)
            if nodes is not None:
                nodes, opts, assign = self._assign(nodes, opts, lc, size)
            else:
                nodes = None
        elif 2 <= size <= k and len(self.partial_nodes) >= size:
            # All service levels at once: the subsets of every level's node pool, in the
            # original order (level by level, subsets in combinations order), so one pass of
            # array operations replaces one pass per service level.
            parts_n, parts_o = [], []
            for pool, bo, _ in self._service_groups():
                if len(pool) >= size:
                    combos = _combos(len(pool), size)  # [M, s]
                    parts_n.append(pool[combos])
                    parts_o.append(bo[combos])
            if parts_n:
                nodes = parts_n[0] if len(parts_n) == 1 else np.concatenate(parts_n)
                opts = parts_o[0] if len(parts_o) == 1 else np.concatenate(parts_o)
                # per-line unit cost at each leg (inf where the node cannot ship the whole line):
                # the same numbers as the per-level unit_cost[P, K] gathered by subset
                lc = np.where(self.line_ok[nodes], self.unit_all[nodes, opts], np.inf)  # [M, s, K]
                # min over the s legs as s-1 elementwise minimums: a reduction along a middle
                # axis of length 2..5 costs several times more in numpy
                best = lc[:, 0]
                for j in range(1, size):
                    best = np.minimum(best, lc[:, j])  # [M, K]
                keep = np.isfinite(best).all(axis=1)
                if bound is not None and keep.any():
                    # Bound first: most subsets lose here, before the argmin and the
                    # "every node ships something" test are paid for them.
                    idx = np.flatnonzero(keep)
                    cost_lb, score_lb = self._subset_bounds(nodes[idx], opts[idx], best[idx])
                    keep[idx] = ~(self.beaten(cost_lb, bound[0]) & self.beaten(score_lb, bound[1]))  # type: ignore[index]
                if keep.any():
                    nodes, opts, assign = self._assign(nodes[keep], opts[keep], lc[keep], size)
                else:
                    nodes = None
        if nodes is None or len(nodes) == 0:
            return empty_set(k, excluded)
        m = len(nodes)
        units = np.zeros((m, size, k), dtype=np.int64)
        mi = np.repeat(np.arange(m), k)
        ki = np.tile(np.arange(k), m)
        units[mi, assign[mi, ki], ki] = ctx.qty[ki]
        cs = CandidateSet(nodes, opts, units, np.ones(m, dtype=np.int64))
        cs.excluded = excluded
        leg_metrics(cs, net, self.view, ctx, self.lanes)
        return drop_over_volume(cs, net)

