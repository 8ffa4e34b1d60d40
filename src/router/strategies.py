"""Named routing strategies behind one Protocol, and the set a router is given with fallback chains.

A strategy ranks the scored candidates of one order, best first. All of them
see the same candidates and the same score terms, so the decision record can
show what the full optimizer thought of a rule-based choice. Ties are broken
by candidate index, which is deterministic (candidates are generated in a
fixed order).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from router.candidates import CandidateSet
from router.context import OrderContext
from router.scoring import Scores

__all__ = [
    "RANDOM",
    "RandomStrategy",
    "CheapestStrategy",
    "NearestStrategy",
    "OptimizerStrategy",
    "Strategy",
    "TierRulesStrategy",
    "StrategySet",
    "default_strategies",
    "last_resort_ranking",
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


#: The name of :class:`RandomStrategy`.
RANDOM = "explore_random"


class RandomStrategy:
    """Exploration: a random feasible candidate first (simulations that collect delay-risk training rows).

    Deterministic in its seed and the sequence of calls, as every draw of a
    simulation is. Never a production strategy: it ignores cost and promise.
    """

    name = RANDOM
    version = "1"
    rule = "a random feasible candidate (exploration for delay-risk training)"

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng([int(seed), 0x5EED])

    def rank(self, cs: CandidateSet, scores: Scores, ctx: OrderContext) -> np.ndarray:
        return self._rng.permutation(len(cs))


class StrategySet:
    """The strategies a router may use, each with its fallback chain.

    Passed to :class:`~router.engine.Router` explicitly (as PyVRP passes its
    operators): there is no module-level registry filled at import.
    :func:`default_strategies` gives the four built-ins.

    Parameters
    ----------
    entries : iterable of (Strategy, fallback names)
        Each strategy and the names that replace it, in order, when it fails.
        Every fallback must name a strategy of the set.
    """

    def __init__(self, entries: Iterable[tuple[Strategy, Sequence[str]]] = ()) -> None:
        self._by_name: dict[str, Strategy] = {}
        self._fallback: dict[str, tuple[str, ...]] = {}
        # every version this set has known, active or not: how replay finds a recorded version
        self._versions: dict[tuple[str, str], Strategy] = {}
        for strategy, fallback in entries:
            self.add(strategy, fallback)

    def add(self, strategy: Strategy, fallback: Sequence[str] = ("nearest",)) -> StrategySet:
        """Add (or replace) a strategy; ``fallback`` names what runs if it fails, in order."""
        if not isinstance(strategy, Strategy):
            raise TypeError(f"{strategy!r} does not implement the Strategy protocol")
        self._by_name[strategy.name] = strategy
        self._fallback[strategy.name] = tuple(f for f in fallback if f != strategy.name)
        self._versions[(strategy.name, str(strategy.version))] = strategy
        return self

    def add_version(self, strategy: Strategy) -> StrategySet:
        """Keep another version of a strategy for :meth:`get_version` without making it the active one."""
        if not isinstance(strategy, Strategy):
            raise TypeError(f"{strategy!r} does not implement the Strategy protocol")
        self._versions[(strategy.name, str(strategy.version))] = strategy
        return self

    def get_version(self, name: str, version: str) -> Strategy | None:
        """The strategy ``name`` at ``version``: the active one if its version matches, else a kept one, else None."""
        current = self._by_name.get(name)
        if current is not None and str(current.version) == str(version):
            return current
        return self._versions.get((name, str(version)))

    def with_strategy(self, strategy: Strategy, fallback: Sequence[str] = ("nearest",)) -> StrategySet:
        """A copy of this set with ``strategy`` added; this set is unchanged."""
        out = StrategySet()
        out._by_name, out._fallback = dict(self._by_name), dict(self._fallback)
        out._versions = self._versions  # shared: a version known to one copy is known to all
        return out.add(strategy, fallback)

    def get(self, name: str) -> Strategy:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown strategy {name!r}; known: {', '.join(self.names())}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def chain(self, name: str) -> tuple[str, ...]:
        """The strategy itself, then what replaces it when it fails (unknown names skipped)."""
        self.get(name)
        return (name, *(f for f in self._fallback.get(name, ()) if f in self._by_name))


def default_strategies() -> StrategySet:
    """The built-ins: ``nearest``, ``cheapest``, ``tier_rules`` and ``optimizer`` with its chain."""
    return StrategySet(
        [
            (NearestStrategy(), ()),
            (CheapestStrategy(), ("nearest",)),
            (TierRulesStrategy(), ("nearest",)),
            (OptimizerStrategy(), ("tier_rules", "nearest")),
        ]
    )


def strategy_names() -> list[str]:
    """Names of the built-in strategies."""
    return default_strategies().names()


def last_resort_ranking(cs: CandidateSet, scores: Scores, ctx: OrderContext) -> np.ndarray:
    """How the engine ranks when every strategy of the chain failed: nearest's rule on cost alone."""
    return _lexrank(cs.n_legs, np.round(cs.leg_miles.sum(axis=1), 6), _late(cs, ctx), scores.term("cost").values)
