"""Score terms: one function per term, each returning values and a justification.

Every term reads the candidate set's leg arrays and returns a :class:`Term`:
the raw value per candidate (with its unit), the weight applied (USD per unit
of value, from :class:`~router.params.StrategyParams`, times the tier multiplier
where the tier matters) and the contribution = value x weight. A plan's score
is the sum of its contributions, so the rationale can show exactly why one plan
beat another. Terms live in a plain list (:data:`TERMS`); adding a term is
adding a function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from router.candidates import CandidateSet
from router.context import OrderContext
from router.params import StrategyParams
from router.state import StateView

__all__ = [
    "TERMS",
    "Scores",
    "Term",
    "cost_term",
    "eta_term",
    "concat_scores",
    "late_risk_term",
    "lateness_term",
    "load_term",
    "score_candidates",
    "split_term",
    "stock_value_term",
]


@dataclass(frozen=True, eq=False)
class Term:
    name: str
    unit: str
    values: np.ndarray  # float[C]
    weight: float
    contributions: np.ndarray  # float[C] = values x weight
    justification: str  # how the value is computed, in words


@dataclass(frozen=True, eq=False)
class Scores:
    terms: tuple[Term, ...]
    total: np.ndarray  # float[C]

    def term(self, name: str) -> Term:
        for t in self.terms:
            if t.name == name:
                return t
        raise KeyError(name)

    @cached_property
    def values_matrix(self) -> np.ndarray:
        """float[T, C]: every term's values, one row per term (built once, for the record)."""
        return np.stack([t.values for t in self.terms]) if self.terms else np.zeros((0, len(self.total)))

    @cached_property
    def contributions_matrix(self) -> np.ndarray:
        """float[T, C]: every term's contributions, one row per term."""
        return np.stack([t.contributions for t in self.terms]) if self.terms else np.zeros((0, len(self.total)))


def _leg_sum(x: np.ndarray) -> np.ndarray:
    """Sum over legs; with one leg per plan, the column itself (a sum of one value is that value)."""
    return x[:, 0] if x.shape[1] == 1 else x.sum(axis=1)


def _leg_max(x: np.ndarray) -> np.ndarray:
    """Max over legs; with one leg per plan, the column itself."""
    return x[:, 0] if x.shape[1] == 1 else x.max(axis=1)


def cost_term(cs: CandidateSet, view: StateView, ctx: OrderContext, p: StrategyParams) -> Term:
    """Soft: what the shipments cost (carrier shipping + node handling), in USD."""
    values = _leg_sum(cs.leg_shipping_usd) + _leg_sum(cs.leg_handling_usd)
    return Term(
        "cost",
        "usd",
        values,
        p.cost_weight,
        values * p.cost_weight,
        "shipping (fixed + per unit + per unit-mile + per billable lb + weight tier) plus handling "
        "(per shipment + per unit + per carton)",
    )


def eta_term(cs: CandidateSet, view: StateView, ctx: OrderContext, p: StrategyParams) -> Term:
    """Soft: expected hours until the last leg arrives (pick queue + cut-off wait + transit)."""
    values = _leg_max(cs.leg_eta_hours)
    return Term(
        "eta",
        "hours",
        values,
        p.eta_hour_usd,
        values * p.eta_hour_usd,
        "queue / throughput + wait for the cut-off + transit x congestion x weather, latest leg",
    )


def lateness_term(cs: CandidateSet, view: StateView, ctx: OrderContext, p: StrategyParams) -> Term:
    """Soft: expected hours past the promise, weighted up by the customer's tier."""
    values = np.maximum(_leg_max(cs.leg_eta_hours) - ctx.promise_hours, 0.0)
    w = p.late_hour_usd * ctx.tier_multiplier
    return Term(
        "lateness",
        "hours",
        values,
        w,
        values * w,
        f"max(0, eta - promise {ctx.promise_hours:.1f} h); tier {ctx.tier} x{ctx.tier_multiplier:g}",
    )


def late_risk_term(cs: CandidateSet, view: StateView, ctx: OrderContext, p: StrategyParams) -> Term:
    """Soft: probability that some leg misses the promise, weighted up by the tier."""
    # one leg: 1 - (1 - r) as the multi-leg formula computes it (not r itself: not bit-equal)
    values = 1.0 - (1.0 - cs.leg_risk[:, 0] if cs.leg_risk.shape[1] == 1 else np.prod(1.0 - cs.leg_risk, axis=1))
    # the service-level controller's price for the order's target segment (router.targets), if any
    w = p.late_risk_weight(ctx.tier_multiplier, view.late_risk_usd)
    if view.late_risk_usd is None:
        weight_text = f"tier {ctx.tier} x{ctx.tier_multiplier:g}"
    else:
        weight_text = f"priced by the tier {ctx.tier} on-time target: ${w:.2f} for a certain miss"
    return Term(
        "late_risk",
        "probability",
        values,
        w,
        values * w,
        "P(any leg arrives after the promise) = 1 - prod(1 - leg risk), leg risk from the record's risk_model; "
        + weight_text,
    )


def load_term(cs: CandidateSet, view: StateView, ctx: OrderContext, p: StrategyParams) -> Term:
    """Soft: load pressure, the squared share of a day's pick capacity already queued, per node used."""
    if cs.leg_node.shape[1] == 1:  # single-node plans: no padding, one node each
        n = cs.leg_node[:, 0]
        ratio = view.queue_orders[n] / (view.throughput_per_hour[n] * 24.0)
        values = ratio * ratio
    else:
        n = np.where(cs.active, cs.leg_node, 0)
        ratio = view.queue_orders[n] / (view.throughput_per_hour[n] * 24.0)
        used = cs.active
        # Once per node used. Only the split solver's plans (source 2) can ship from one
        # node with two carriers: enumerated splits use distinct nodes by construction, so
        # the common chunks skip the de-duplication (a few numpy calls per leg).
        if (cs.source == 2).any():
            used = cs.active.copy()
            for j in range(1, n.shape[1]):
                used[:, j] &= ~(cs.leg_node[:, :j] == cs.leg_node[:, j : j + 1]).any(axis=1)
        values = np.where(used, ratio * ratio, 0.0).sum(axis=1)
    return Term(
        "load",
        "load_ratio^2",
        values,
        p.load_usd,
        values * p.load_usd,
        "sum over nodes used of (pick queue / 24 h of throughput)^2: spreads work before queues bite",
    )


def split_term(cs: CandidateSet, view: StateView, ctx: OrderContext, p: StrategyParams) -> Term:
    """Soft: shipments beyond the first (customers dislike split deliveries)."""
    values = (cs.n_legs - 1).astype(float)
    return Term(
        "split",
        "extra_shipments",
        values,
        p.split_penalty_usd,
        values * p.split_penalty_usd,
        "number of shipments minus one",
    )


def stock_value_term(cs: CandidateSet, view: StateView, ctx: OrderContext, p: StrategyParams) -> Term:
    """Soft: what the stock a plan uses is worth to the demand still to come, in USD.

    Sum over legs and lines of units x the shadow price of that SKU at that node
    (``view.stock_price``, published by a pricing job). Acimovic & Graves (2015)
    price a unit by the dual of its supply constraint in a transportation LP over
    the expected remaining demand: shipping it now costs that much later, so a
    myopic choice that empties a well-placed node pays for it here. Prices are
    >= 0 (the state rejects others), which keeps the split-size lower bounds of
    :class:`~router.splits.SplitSearch` valid: they omit this term. With no
    price set every value is 0 and no decision changes.
    """
    price = view.stock_price
    if price is None:
        values = np.zeros(len(cs))
    else:
        n = np.where(cs.active, cs.leg_node, 0)
        # padded legs carry 0 units, so gathering node 0's price for them adds nothing
        values = np.einsum("cjk,cjk->c", cs.leg_units.astype(float), price[n])
    return Term(
        "stock_value",
        "usd",
        values,
        p.stock_value_weight,
        values * p.stock_value_weight,
        "sum over legs and lines of units x shadow price of the SKU at the node "
        "(the stock's value to the demand still expected)",
    )


TermFn = Callable[[CandidateSet, StateView, OrderContext, StrategyParams], Term]
TERMS: list[TermFn] = [cost_term, eta_term, lateness_term, late_risk_term, load_term, split_term, stock_value_term]


def score_candidates(
    cs: CandidateSet, view: StateView, ctx: OrderContext, p: StrategyParams, terms: list[TermFn] | None = None
) -> Scores:
    """Every term for every candidate, and the total the optimizer minimises."""
    out = tuple(fn(cs, view, ctx, p) for fn in (terms or TERMS))
    # Left to right from 0.0, as before; 0.0 + x == x, so starting from the first
    # contribution (a copy, then in-place adds) gives the same bits with fewer arrays.
    total = np.zeros(len(cs))
    if out:
        total = out[0].contributions + 0.0
        for t in out[1:]:
            total += t.contributions
    return Scores(out, total)


def concat_scores(parts: list[Scores]) -> Scores:
    """Scores of concatenated candidate chunks (see :func:`router.candidates.concat_all`).

    Every term is a per-candidate function of that candidate's legs only, and
    padding legs are zeros that leave sums, maxima (values are >= 0) and products
    (of 1 - 0) exactly unchanged, so scoring each chunk alone and concatenating
    gives bit-identical values to scoring the concatenated set -- without
    re-scoring earlier chunks every time a split size adds one.
    """
    if len(parts) == 1:
        return parts[0]
    terms = tuple(
        Term(
            t.name,
            t.unit,
            np.concatenate([p.terms[i].values for p in parts]),
            t.weight,
            np.concatenate([p.terms[i].contributions for p in parts]),
            t.justification,
        )
        for i, t in enumerate(parts[0].terms)
    )
    return Scores(terms, np.concatenate([p.total for p in parts]))
