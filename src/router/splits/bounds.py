"""Lower bounds of the split search: what no plan of a given size, or no node subset, can beat.

A size, or a subset within a size, is skipped only when its bound loses to the best
plan found so far on cost AND on score by more than a tolerance far above rounding
error, so no built-in strategy could rank what it holds first. ``tests/test_pruning.py``
re-decides a simulated stretch with every bound switched off and requires the same
choice.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from router.context import OrderContext
from router.legs import LaneMetrics, lane_metrics, unit_cost_matrix
from router.network import Network
from router.params import StrategyParams
from router.state import StateView

__all__ = ["SplitBounds"]


@lru_cache(maxsize=64)
def upper_pairs(n: int) -> np.ndarray:
    """bool[n, n]: i < j (each unordered pair once, in combinations order)."""
    out = np.triu(np.ones((n, n), dtype=bool), 1)
    out.setflags(write=False)
    return out


class SplitBounds:
    """Line-split enumeration for one order, size by size, with what the sizes share computed once.

    For each subset of ``size`` nodes and each service level, every line goes to
    the subset's node where it is cheapest per unit (the carrier of each leg is
    the option of that service cheapest for the whole order at that node).

    Two kinds of lower bounds let the engine skip work that cannot change any
    registered strategy's choice (``nearest``, ``tier_rules``, ``cheapest``,
    ``optimizer``). The rule strategies rank fewer shipments first, so once a
    plan with fewer legs exists they never pick a plan of ``size`` legs; what
    remains is cost (``cheapest``) and total score (``optimizer``):

    * :meth:`cost_lower_bound` -- the original per-size cost bound;
    * :meth:`size_bound` -- a tighter bound on cost and on score of every plan
      with ``size`` or more legs at distinct nodes: the ``size`` cheapest
      per-shipment charges of distinct nodes plus each line's cheapest per-unit
      cost; for the score also the split penalty, the ``size`` smallest load
      terms, and the smallest ETA + lateness + late-risk of any usable lane (a
      plan's ETA is its latest leg's and its risk at least any leg's);
    * per subset, in :meth:`candidates` with ``bound``: the subset's exact
      linear cost (billable weight and weight tiers only add) and its exact
      ETA, risk, load and split terms.

    A plan is dropped only when it is worse than the best plan found so far on
    cost AND on score by more than a tolerance far above rounding error, so
    no strategy above could ever rank it first.
    """

    # Bounds and actual values are computed in different orders; 1e-6 USD (relative
    # to the magnitude) is far above the ~1e-13 rounding differences, far below any
    # difference that matters, and keeps `cheapest` (cost rounded to 9 decimals) safe.
    TOL = 1e-6

    def __init__(
        self,
        net: Network,
        view: StateView,
        ctx: OrderContext,
        params: StrategyParams,
        usable: np.ndarray,
        line_ok: np.ndarray,
        lanes: LaneMetrics | None = None,
        *,
        compiled: bool = True,
    ) -> None:
        self.net, self.view, self.ctx, self.params = net, view, ctx, params
        self.usable, self.line_ok = usable, line_ok
        self.lanes = lanes if lanes is not None else lane_metrics(net, view, ctx)
        self.partial_mask = line_ok.any(axis=1)  # nodes that hold at least one line
        self.partial_nodes = np.flatnonzero(self.partial_mask)
        # [N, O, K], the rows of the nodes that hold a line (0 elsewhere: every reader masks
        # by line_ok or partial_mask); a pool is a few dozen of a network's hundreds
        self.unit_all = unit_cost_matrix(net, ctx, self.partial_nodes if len(self.partial_nodes) < net.n_nodes else None)
        # The compiled enumeration (router.splits.kernel) applies every subset's own bounds,
        # so the size-level bounds below are not needed; with stock prices the numpy path
        # also offers the priced line assignment of each subset.
        self.compiled = compiled and (view.stock_price is None or params.stock_value_weight <= 0)
        self.weights = params.score_weights(ctx.tier_multiplier, view.late_risk_usd)
        if self.compiled:
            self.f_min = self.line_min_sum = np.nan  # unused on the compiled path
        elif usable.any():
            self.f_min = float(net.per_shipment_usd[usable].min())
            unit = np.where((usable[:, :, None] & line_ok[:, None, :]), self.unit_all, np.inf)
            self.line_min_sum = float(unit.min(axis=(0, 1)).sum())
        else:
            self.f_min = self.line_min_sum = np.inf
        self._groups: list | None = None
        self._tight: tuple | None = None
        self._grid: tuple | None = None

    # ------------------------------------------------------------------ bounds
    def cost_lower_bound(self, size: int) -> float:
        """Each shipment pays at least the cheapest per-shipment charge among usable lanes, each line at least
        its cheapest linear per-unit cost anywhere; weight tiers and billable weight only add."""
        if not np.isfinite(self.f_min):
            return np.inf
        return size * self.f_min + self.line_min_sum

    def _load_ratio2(self) -> np.ndarray:
        view = self.view
        ratio = view.queue_orders / (view.throughput_per_hour * 24.0)
        return ratio * ratio

    def size_bound(self, size: int) -> tuple[float, float]:
        """(cost, score) lower bounds of every plan with ``size`` or more legs; inf when none exists.

        Each piece is non-decreasing in ``size``, so the bound holds for larger plans too.
        """
        if self._tight is None:
            net, ctx, usable = self.net, self.ctx, self.usable
            nodes = self.partial_nodes
            per_ship = np.sort(np.where(usable, net.per_shipment_usd, np.inf).min(axis=1)[nodes])
            cw, ew, lw, rw, loadw, sp = self.weights
            eta = self.lanes.eta.reshape(usable.shape)
            risk = self.lanes.risk.reshape(usable.shape)
            g = ew * eta + lw * np.maximum(eta - ctx.promise_hours, 0.0) + rw * risk
            g_node = np.sort(np.where(usable, g, np.inf).min(axis=1)[nodes])
            load = np.sort(self._load_ratio2()[nodes])
            self._tight = (np.cumsum(per_ship), g_node, np.cumsum(load))
        ship_cum, g_node, load_cum = self._tight
        if size > len(ship_cum) or not np.isfinite(ship_cum[size - 1]) or not np.isfinite(self.line_min_sum):
            return np.inf, np.inf
        cw, ew, lw, rw, loadw, sp = self.weights
        cost = float(ship_cum[size - 1]) + self.line_min_sum
        score = cw * cost + float(g_node[size - 1]) + loadw * float(load_cum[size - 1]) + sp * (size - 1)
        return cost, score

    @classmethod
    def beaten(cls, lb: np.ndarray | float, best: float) -> np.ndarray | bool:
        """True where a lower bound is worse than ``best`` by more than the tolerance."""
        return lb > best + cls.TOL * max(1.0, abs(best))

    def _subset_bounds(self, nodes: np.ndarray, opts: np.ndarray, line_cost: np.ndarray):
        """Exact linear cost and score lower bound of subsets (rows of nodes / opts [M, s])."""
        net, lanes, ctx = self.net, self.lanes, self.ctx
        cw, ew, lw, rw, loadw, sp = self.weights
        s = nodes.shape[1]
        flat = nodes * lanes.n_options + opts
        per_ship, ratio2 = net.per_shipment_usd.ravel(), self._load_ratio2()
        # leg by leg (s is 2..5): cheaper than gathering [M, s] blocks and reducing them
        f = flat[:, 0]
        cost = per_ship[f]
        eta = lanes.eta[f]
        stay = 1.0 - lanes.risk[f]
        load = ratio2[nodes[:, 0]]
        for j in range(1, s):
            f = flat[:, j]
            cost = cost + per_ship[f]
            eta = np.maximum(eta, lanes.eta[f])
            stay = stay * (1.0 - lanes.risk[f])
            load = load + ratio2[nodes[:, j]]
        cost = cost + line_cost.sum(axis=1)
        risk = 1.0 - stay
        score = (
            cw * cost + ew * eta + lw * np.maximum(eta - ctx.promise_hours, 0.0) + rw * risk + loadw * load + sp * (s - 1)
        )
        return cost, score

    def _group_nodes(self):
        """Per service level and node: its option (cheapest for the whole order), and whether
        the node is in the level's pool; shared by the pair path and the triple bound.

        Returns (bo int[G, N], ok bool[G, N], uc float[G, N, K] per-unit line costs at
        that option, inf where the node cannot ship the whole line).
        """
        if self._grid is None:
            net, usable, line_ok, unit_all = self.net, self.usable, self.line_ok, self.unit_all
            g_n = len(net.services)
            # Only the nodes holding a line can be in a level's pool: compute over those rows
            # (a few dozen of a store network's hundreds) and leave the rest at option 0, not ok.
            part = self.partial_nodes
            est_order = net.per_shipment_usd[part] + unit_all[part].sum(axis=2)  # [P, O]
            in_g = usable[part][None, :, :] & net.service_option_mask[:, None, :]
            est = np.where(in_g, est_order[None, :, :], np.inf)  # [G, P, O]
            bo_p = np.argmin(est, axis=2)  # [G, P]
            ok_p = np.isfinite(np.take_along_axis(est, bo_p[:, :, None], axis=2)[:, :, 0])
            bo = np.zeros((g_n, net.n_nodes), dtype=bo_p.dtype)
            ok = np.zeros((g_n, net.n_nodes), dtype=bool)
            bo[:, part] = bo_p
            ok[:, part] = ok_p
            rows = np.arange(net.n_nodes)[None, :]
            # the compiled enumeration reads unit_all itself; the numpy paths need uc
            uc = None if self.compiled else np.where(line_ok[None, :, :], unit_all[rows, bo], np.inf)  # [G, N, K]
            self._grid = (bo, ok, uc)
        return self._grid

    def triple_beaten(self, best_cost: float, best_score: float) -> bool:
        """True when no plan of exactly three shipments can beat (best_cost, best_score).

        Per service level, a three-node plan costs at least its three per-shipment
        charges plus each line's cheapest per-unit cost in the level's pool, and
        scores at least that (x cost weight) + the three nodes' load terms + the
        largest of their ETA / lateness / risk values + two split penalties. The
        minimum over all triples is found without listing them: for each node m
        taken as the one with the largest of those values, add the two smallest
        per-node terms among nodes ranked before it. :meth:`size_bound` takes each
        minimum from a different node; coupling them here rules out about half of
        the orders that would otherwise enumerate triples (220 per level on a
        12-node network), and nearly all of those triples would lose anyway.
        """
        net, ctx = self.net, self.ctx
        bo, ok, _ = self._group_nodes()
        if (ok.sum(axis=1) < 3).all():
            return True
        # Over the nodes some level may use (ascending, so ties still break by node index):
        # the [G, m, j] grid below is quadratic in the node count.
        cols = np.flatnonzero(ok.any(axis=0))
        bo, ok = bo[:, cols], ok[:, cols]
        uc = np.where(self.line_ok[cols][None, :, :], self.unit_all[cols[None, :], bo], np.inf)  # [G, C, K]
        cw, ew, lw, rw, loadw, sp = self.weights
        flat = cols[None, :] * net.n_options + bo  # [G, C]
        eta = self.lanes.eta[flat]
        g = ew * eta + lw * np.maximum(eta - ctx.promise_hours, 0.0) + rw * self.lanes.risk[flat]
        g = np.where(ok, g, np.inf)
        ps = np.where(ok, net.per_shipment_usd.ravel()[flat], np.inf)
        a = cw * ps + loadw * self._load_ratio2()[cols][None, :]  # additive per-node score part
        lmin = np.where(ok[:, :, None], uc, np.inf).min(axis=1).sum(axis=1)  # [G]
        n = g.shape[1]
        # j ranks before m: smaller g, ties broken by index (each triple counted with its max node)
        before = (g[:, None, :] < g[:, :, None]) | (
            (g[:, None, :] == g[:, :, None]) & (np.arange(n)[None, :] < np.arange(n)[:, None])[None, :, :]
        )  # [G, m, j]
        two = np.partition(np.where(before & ok[:, None, :], a[:, None, :], np.inf), 1, axis=2)[:, :, :2].sum(axis=2)
        score = (a + g + two).min(axis=1) + cw * lmin + 2.0 * sp  # [G]
        cost = np.sort(ps, axis=1)[:, :3].sum(axis=1) + lmin
        cost = np.where(np.isfinite(score), cost, np.inf)
        return bool((self.beaten(cost, best_cost) & self.beaten(score, best_score)).all())  # type: ignore[union-attr]

