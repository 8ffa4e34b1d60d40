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

from dataclasses import dataclass
from typing import Callable

import numpy as np

from router.candidates import CandidateSet, OrderContext
from router.params import StrategyParams
from router.state import StateView

__all__ = [
    "TERMS",
    "Scores",
    "Term",
    "cost_term",
    "eta_term",
    "late_risk_term",
    "lateness_term",
    "load_term",
    "score_candidates",
    "split_term",
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


def cost_term(cs: CandidateSet, view: StateView, ctx: OrderContext, p: StrategyParams) -> Term:
    """Soft: what the shipments cost (carrier shipping + node handling), in USD."""
    values = cs.leg_shipping_usd.sum(axis=1) + cs.leg_handling_usd.sum(axis=1)
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
    values = cs.leg_eta_hours.max(axis=1)
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
    values = np.maximum(cs.leg_eta_hours.max(axis=1) - ctx.promise_hours, 0.0)
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
    values = 1.0 - np.prod(1.0 - cs.leg_risk, axis=1)
    w = p.late_risk_usd * ctx.tier_multiplier
    return Term(
        "late_risk",
        "probability",
        values,
        w,
        values * w,
        f"P(any leg arrives after the promise), normal spread of queue and transit; tier {ctx.tier} "
        f"x{ctx.tier_multiplier:g}",
    )


def load_term(cs: CandidateSet, view: StateView, ctx: OrderContext, p: StrategyParams) -> Term:
    """Soft: load pressure, the squared share of a day's pick capacity already queued, per node used."""
    n = np.where(cs.active, cs.leg_node, 0)
    ratio = view.queue_orders[n] / (view.throughput_per_hour[n] * 24.0)
    values = np.where(cs.active, ratio * ratio, 0.0).sum(axis=1)
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


TermFn = Callable[[CandidateSet, StateView, OrderContext, StrategyParams], Term]
TERMS: list[TermFn] = [cost_term, eta_term, lateness_term, late_risk_term, load_term, split_term]


def score_candidates(
    cs: CandidateSet, view: StateView, ctx: OrderContext, p: StrategyParams, terms: list[TermFn] | None = None
) -> Scores:
    """Every term for every candidate, and the total the optimizer minimises."""
    out = tuple(fn(cs, view, ctx, p) for fn in (terms or TERMS))
    total = np.zeros(len(cs))
    for t in out:
        total = total + t.contributions
    return Scores(out, total)
