"""Candidate plans for one order, as arrays.

A candidate set holds C plans of at most J legs each. Leg ``j`` of plan ``c``
ships ``leg_units[c, j, :]`` units of the order's K lines from node
``leg_node[c, j]`` with option (carrier x service) ``leg_opt[c, j]``; -1 pads
unused legs. Candidates come from three generators:

* single node (:func:`single_candidates`): every usable (node, option) pair whose
  node holds every line;
* line splits (:mod:`router.splits`): for each subset of 2..max_splits nodes and
  each service level, each line goes to the subset's node where it is cheapest
  per unit, enumerated as arrays (no Python object per candidate);
* the OR-Tools split MIP (:mod:`router.solver.split`) when neither covers the
  order (a line larger than any single node's stock, lanes too small for the
  whole order); :func:`from_units` turns its answer into one candidate.

Leg numbers (cost, ETA, risk) come from :mod:`router.legs`; the hard rules that
decide what may be generated from :mod:`router.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from router.context import OrderContext
from router.legs import METRIC_FIELDS, LaneMetrics, lane_metrics, leg_metrics, single_leg_metrics
from router.network import Network
from router.rules import drop_over_volume
from router.state import StateView

__all__ = ["CandidateSet", "concat_all", "empty_set", "from_units", "single_candidates"]


@dataclass(eq=False)
class CandidateSet:
    leg_node: np.ndarray  # int[C, J]
    leg_opt: np.ndarray  # int[C, J]
    leg_units: np.ndarray  # int[C, J, K]
    source: np.ndarray  # int[C]: 0 single, 1 line split, 2 split solver
    excluded: list[dict] = field(default_factory=list)
    solver: dict = field(default_factory=dict)
    # the lanes' risk model ({"version", "fallback"?}), set by the pipeline; recorded as risk_model
    risk_model: dict = field(default_factory=dict)
    # Leg metrics, filled by router.legs (leg_metrics / single_leg_metrics) when the set is
    # generated: every set that leaves this module has them, so they are typed as arrays.
    active: np.ndarray = field(default=None)  # type: ignore[arg-type]
    n_legs: np.ndarray = field(default=None)  # type: ignore[arg-type]
    leg_miles: np.ndarray = field(default=None)  # type: ignore[arg-type]
    leg_weight_lb: np.ndarray = field(default=None)  # type: ignore[arg-type]
    leg_volume_cuft: np.ndarray = field(default=None)  # type: ignore[arg-type]
    leg_billable_lb: np.ndarray = field(default=None)  # type: ignore[arg-type]
    leg_shipping_usd: np.ndarray = field(default=None)  # type: ignore[arg-type]
    leg_handling_usd: np.ndarray = field(default=None)  # type: ignore[arg-type]
    leg_queue_hours: np.ndarray = field(default=None)  # type: ignore[arg-type]
    leg_eta_hours: np.ndarray = field(default=None)  # type: ignore[arg-type]
    leg_sigma_hours: np.ndarray = field(default=None)  # type: ignore[arg-type]
    leg_risk: np.ndarray = field(default=None)  # type: ignore[arg-type]

    SOURCES = ("single", "split", "split_solver")

    def __len__(self) -> int:
        return int(self.leg_node.shape[0])

    def take(self, keep: np.ndarray) -> CandidateSet:
        """The candidates where ``keep`` is true (metrics included)."""
        out = CandidateSet(
            self.leg_node[keep], self.leg_opt[keep], self.leg_units[keep], self.source[keep], self.excluded, self.solver,
            self.risk_model,
        )
        for name in ("active", "n_legs", *METRIC_FIELDS):
            val = getattr(self, name)
            if val is not None:
                setattr(out, name, val[keep])
        return out


def single_candidates(
    net: Network,
    view: StateView,
    ctx: OrderContext,
    usable: np.ndarray,
    line_ok: np.ndarray,
    excluded: list[dict],
    lanes: LaneMetrics | None = None,
) -> CandidateSet:
    """Every usable option of every node that holds every line, with leg metrics."""
    k = len(ctx.qty)
    full = line_ok.all(axis=1)
    sn, so = np.nonzero(usable & full[:, None])  # type: ignore[index]
    units = np.empty((len(sn), 1, k), dtype=np.int64)
    units[...] = ctx.qty  # one broadcast copy (broadcast_to + astype made two arrays)
    cs = CandidateSet(
        sn[:, None].astype(np.int64, copy=False),
        so[:, None].astype(np.int64, copy=False),
        units,
        np.zeros(len(sn), dtype=np.int64),
    )
    cs.excluded = excluded
    if lanes is None:
        lanes = lane_metrics(net, view, ctx)
    single_leg_metrics(cs, net, ctx, lanes, sn, so)
    return drop_over_volume(cs, net)


def from_units(
    arc_node: np.ndarray,
    arc_opt: np.ndarray,
    units: np.ndarray,
    net: Network,
    view: StateView,
    ctx: OrderContext,
    lanes: LaneMetrics | None = None,
) -> CandidateSet:
    """One candidate from a solver's units[L, K] over arcs (node, option); arcs that ship nothing are dropped."""
    used = units.sum(axis=1) > 0
    legs = np.flatnonzero(used)
    cs = CandidateSet(
        arc_node[legs][None, :].astype(np.int64),
        arc_opt[legs][None, :].astype(np.int64),
        units[legs][None, :, :].astype(np.int64),
        np.array([2], dtype=np.int64),
    )
    return leg_metrics(cs, net, view, ctx, lanes)


def concat_all(parts: list[CandidateSet]) -> CandidateSet:
    """The candidates of every part in order, legs padded to the widest part, in one copy.

    One copy of everything, however many parts (a split size adds one part).
    """
    if len(parts) == 1:
        return parts[0]
    j = max(p.leg_node.shape[1] for p in parts)
    c = sum(len(p) for p in parts)
    k = parts[0].leg_units.shape[2]
    first = parts[0]
    out = CandidateSet(
        np.full((c, j), -1, dtype=np.int64),
        np.full((c, j), -1, dtype=np.int64),
        np.zeros((c, j, k), dtype=np.int64),
        np.concatenate([p.source for p in parts]),
        first.excluded,
        {key: val for p in parts for key, val in p.solver.items()},
    )
    metrics = {name: np.zeros((c, j)) for name in METRIC_FIELDS}
    at = 0
    for p in parts:
        m, s = p.leg_node.shape
        if m == 0:
            continue
        out.leg_node[at : at + m, :s] = p.leg_node
        out.leg_opt[at : at + m, :s] = p.leg_opt
        out.leg_units[at : at + m, :s] = p.leg_units
        for name, arr in metrics.items():
            arr[at : at + m, :s] = getattr(p, name)
        at += m
    for name, arr in metrics.items():
        setattr(out, name, arr)
    out.active = out.leg_node >= 0
    out.n_legs = out.active.sum(axis=1)
    return out


def empty_set(k: int, excluded: list[dict]) -> CandidateSet:
    """No candidates, with (empty) leg metrics: what leg_metrics would fill, without its ~40 us."""
    node, opt, units, source, active, n_legs, metric = _empty_arrays(k)
    cs = CandidateSet(node, opt, units, source)
    cs.excluded = excluded
    cs.active = active
    cs.n_legs = n_legs
    for name in METRIC_FIELDS:
        setattr(cs, name, metric)
    return cs


@lru_cache(maxsize=64)
def _empty_arrays(k: int):
    # Zero-size arrays hold nothing to write, so every empty set may share them
    # (most orders that reach the split search end with an empty chunk).
    return (
        np.zeros((0, 2), dtype=np.int64),
        np.zeros((0, 2), dtype=np.int64),
        np.zeros((0, 2, k), dtype=np.int64),
        np.zeros(0, dtype=np.int64),
        np.zeros((0, 2), dtype=bool),
        np.zeros(0, dtype=np.int64),
        np.zeros((0, 2)),
    )
