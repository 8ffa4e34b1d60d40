"""The pure decision: rank one order's candidates with a strategy, walking its fallback chain.

:func:`decide` is a function of (network, view, context, params, strategy set,
strategy, seed) and nothing else, which is what makes a decision replayable
from its record. Every stage after validation runs inside the chain: a
strategy's candidates and scores are part of that strategy, so a failure in
the rules, leg physics, candidate generation, scoring, split search, split
solver or ranking moves on to the next strategy of the chain, and the cause
(strategy, stage, error) is kept. When the whole chain failed, a last resort
ranks single-node plans by the nearest-node rule on cost; when even that
fails, the order has no plan and the causes say why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from router.candidates import CandidateSet, empty_set
from router.context import OrderContext
from router.errors import RouterError, StageError
from router.legs import LaneRisk
from router.network import Network
from router.params import StrategyParams
from router.scoring import Scores
from router.solver.choose import scored_candidates, single_node_candidates
from router.state import StateView
from router.strategies import StrategySet, last_resort_ranking
from router.targets import floor_for

__all__ = ["LAST_RESORT", "Ranked", "apply_risk_floor", "decide"]

#: The name a decision's strategy takes when every strategy of its chain failed.
LAST_RESORT = "last_resort"


@dataclass(frozen=True, eq=False)
class Ranked:
    """The pure result of :func:`decide`: candidates, their scores, the ranking, and who ranked.

    ``ranking`` is empty when no plan exists. ``fallback`` is
    ``{"requested", "used", "causes": [{"strategy", "stage", "error"}, ...]}``.
    """

    cs: CandidateSet
    scores: Scores
    ranking: np.ndarray
    strategy: str
    fallback: dict

    @property
    def chosen(self) -> int | None:
        return int(self.ranking[0]) if len(self.ranking) else None


def _cause(strategy: str, exc: BaseException) -> dict:
    if isinstance(exc, StageError):
        return {"strategy": strategy, "stage": exc.stage, "error": f"{type(exc.cause).__name__}: {exc.cause}"}
    return {"strategy": strategy, "stage": "rank", "error": f"{type(exc).__name__}: {exc}"}


def _no_plan(ctx: OrderContext) -> tuple[CandidateSet, Scores]:
    cs = empty_set(len(ctx.qty), [])
    return cs, Scores((), np.zeros(0))


def decide(
    net: Network,
    view: StateView,
    ctx: OrderContext,
    params: StrategyParams,
    skus: tuple[str, ...],
    strategies: StrategySet,
    strategy: str,
    *,
    seed: int = 0,
    explain: bool = True,
    compiled_splits: bool = True,
    risk: LaneRisk | None = None,
) -> Ranked:
    """Rank the order's candidates with ``strategy``, falling back along its chain on any failure.

    The candidates and scores are computed once and shared by the strategies of
    the chain (they do not depend on the strategy); if computing them fails, the
    next strategy computes them again. ``explain=False`` (no rationale will be
    written) skips the exclusion sentences only.
    """
    chain = strategies.chain(strategy)
    causes: list[dict] = []
    shared: tuple[CandidateSet, Scores] | None = None
    for name in chain:
        try:
            if shared is None:
                shared = scored_candidates(
                    net, view, ctx, params, skus, seed=seed, explain=explain, compiled_splits=compiled_splits, risk=risk
                )
            cs, scores = shared
            if len(cs) == 0:  # no plan exists: not a failure, every strategy would say the same
                return Ranked(cs, scores, np.zeros(0, dtype=np.int64), name, _fallback(strategy, name, causes))
            ranking = np.asarray(strategies.get(name).rank(cs, scores, ctx), dtype=np.int64)
            if ranking.shape != (len(cs),) or not np.isfinite(scores.total[ranking[0]]):
                raise RouterError(f"strategy {name} returned an invalid ranking")
            if params.targets is not None:
                ranking = apply_risk_floor(ranking, scores, floor_for(params.targets, ctx.tier, _region(net, ctx)))
            return Ranked(cs, scores, ranking, name, _fallback(strategy, name, causes))
        except Exception as exc:  # noqa: BLE001 - any failure walks the chain, and is recorded
            causes.append(_cause(name, exc))
    try:
        cs, scores = single_node_candidates(net, view, ctx, params, skus)
        ranking = (
            np.asarray(last_resort_ranking(cs, scores, ctx), dtype=np.int64) if len(cs) else np.zeros(0, np.int64)
        )
        return Ranked(cs, scores, ranking, LAST_RESORT, _fallback(strategy, LAST_RESORT, causes))
    except Exception as exc:  # noqa: BLE001 - the last resort failed too: no plan, with every cause
        causes.append(_cause(LAST_RESORT, exc))
    cs, scores = _no_plan(ctx)
    return Ranked(cs, scores, np.zeros(0, dtype=np.int64), LAST_RESORT, _fallback(strategy, LAST_RESORT, causes))


def _region(net: Network, ctx: OrderContext) -> str | None:
    return net.region_ids[ctx.dest_region] if 0 <= ctx.dest_region < len(net.region_ids) else None


def apply_risk_floor(ranking: np.ndarray, scores: Scores, floor: float | None) -> np.ndarray:
    """A target's hard floor: plans whose late risk exceeds ``floor`` go after every plan within it.

    The strategy's order is kept inside each group; when no plan is within the floor
    (or every plan is) the ranking is unchanged.
    """
    if floor is None or not len(ranking):
        return ranking
    ok = scores.term("late_risk").values[ranking] <= floor
    if ok.all() or not ok.any():
        return ranking
    return np.concatenate([ranking[ok], ranking[~ok]])


def _fallback(requested: str, used: str, causes: list[dict]) -> dict:
    return {"requested": requested, "used": used, "causes": causes}

