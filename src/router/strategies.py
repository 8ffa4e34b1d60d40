"""Named routing strategies behind one Protocol, a registry and fallback chains.

A strategy ranks the scored candidates of one order, best first. All of them
see the same candidates and the same score terms, so the decision record can
show what the full optimizer thought of a rule-based choice. Ties are broken
by candidate index, which is deterministic (candidates are generated in a
fixed order).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from router.candidates import CandidateSet, OrderContext
from router.scoring import Scores

__all__ = [
    "CheapestStrategy",
    "NearestStrategy",
    "OptimizerStrategy",
    "Strategy",
    "TierRulesStrategy",
    "fallback_chain",
    "get_strategy",
    "register",
    "strategy_names",
]


@runtime_checkable
class Strategy(Protocol):
    name: str
    version: str
    rule: str  # one line a reviewer reads: how this strategy chooses

    def rank(self, cs: CandidateSet, scores: Scores, ctx: OrderContext) -> np.ndarray:
        """Candidate indices, best first."""
        ...


def _late(cs: CandidateSet, ctx: OrderContext) -> np.ndarray:
    return (cs.leg_eta_hours.max(axis=1) > ctx.promise_hours).astype(np.int64)


def _lexrank(*keys: np.ndarray) -> np.ndarray:
    """Indices sorted by the keys, first key most significant, index as the last tie-break."""
    c = len(keys[0])
    return np.lexsort((np.arange(c),) + tuple(reversed(keys)))


class NearestStrategy:
    """The common platform default: the closest node that has the stock."""

    name = "nearest"
    version = "1"
    rule = "fewest shipments, then the closest node(s), then the cheapest service that meets the promise"

    def rank(self, cs: CandidateSet, scores: Scores, ctx: OrderContext) -> np.ndarray:
        cost = scores.term("cost").values
        return _lexrank(cs.n_legs, np.round(cs.leg_miles.sum(axis=1), 6), _late(cs, ctx), cost)


class CheapestStrategy:
    """Myopic cost: the cheapest plan now, whatever it does to the promise."""

    name = "cheapest"
    version = "1"
    rule = "lowest shipping + handling cost, then the earliest arrival"

    def rank(self, cs: CandidateSet, scores: Scores, ctx: OrderContext) -> np.ndarray:
        return _lexrank(np.round(scores.term("cost").values, 9), scores.term("eta").values)


class TierRulesStrategy:
    """An ordered rule list as commercial order-management systems configure it."""

    name = "tier_rules"
    version = "1"
    rule = (
        "fewest shipments, then the tier's preferred nodes, then the closest node, then the cheapest "
        "service that meets the promise"
    )

    def rank(self, cs: CandidateSet, scores: Scores, ctx: OrderContext) -> np.ndarray:
        n = np.where(cs.active, cs.leg_node, 0)
        ranks = np.where(cs.active, ctx.tier_node_rank[n], -1).max(axis=1)
        return _lexrank(
            cs.n_legs,
            ranks,
            np.round(cs.leg_miles.sum(axis=1), 6),
            _late(cs, ctx),
            scores.term("cost").values,
        )


class OptimizerStrategy:
    """The full weighted score: cost, ETA, lateness, late risk, load and splits, in USD."""

    name = "optimizer"
    version = "1"
    rule = "lowest total score (sum of every term's value x weight, in USD)"

    def rank(self, cs: CandidateSet, scores: Scores, ctx: OrderContext) -> np.ndarray:
        return np.argsort(scores.total, kind="stable")


_REGISTRY: dict[str, Strategy] = {}
_FALLBACK: dict[str, tuple[str, ...]] = {}


def register(strategy: Strategy, fallback: tuple[str, ...] = ("nearest",)) -> None:
    """Add a strategy; ``fallback`` names what runs if it fails, in order."""
    if not isinstance(strategy, Strategy):
        raise TypeError(f"{strategy!r} does not implement the Strategy protocol")
    _REGISTRY[strategy.name] = strategy
    _FALLBACK[strategy.name] = tuple(f for f in fallback if f != strategy.name)


def get_strategy(name: str) -> Strategy:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; known: {', '.join(strategy_names())}") from None


def strategy_names() -> list[str]:
    return sorted(_REGISTRY)


def fallback_chain(name: str) -> tuple[str, ...]:
    """The strategy itself, then what replaces it when it fails."""
    get_strategy(name)
    return (name, *_FALLBACK.get(name, ()))


register(NearestStrategy(), fallback=())
register(CheapestStrategy())
register(TierRulesStrategy())
register(OptimizerStrategy(), fallback=("tier_rules", "nearest"))
