"""The strategy sandbox: a candidate strategy against the current one before it goes live.

Two ways, both read-only for the live system (no ledger is written, no stock reserved):

* :func:`try_in_simulation`: the candidate and the current strategy each route the same
  seeded worlds (same scenario, seed and horizon: the same arrivals, picks and transit
  draws, common random numbers). Per seed it takes on-time overall and per tier, cost
  per order, shipments per order and the fallback rate; over seeds each side gets a mean
  and its 95 % Student-t interval (:func:`router.simulation.report.confidence_interval`),
  and the comparison is the paired difference per seed, ``candidate - current``, with a
  winner called only where its 95 % interval excludes zero (the protocol of
  benchmarks/README.md).
* :func:`try_on_records`: counterfactual replay of recorded decisions: each record's
  stored view and context decided again by the candidate (:func:`router.engine.replay.replay_record`).
  It reports agreement (the share of decisions where the candidate picks the same plan:
  the same legs), and the cost and late-risk deltas of the chosen plans, ``candidate -
  recorded``, with a mean and 95 % interval over the decisions that both sides planned.
  Replay holds the state still: it says what the candidate would have chosen on the
  same view, not how the world would have answered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from router.engine import Router
from router.engine.replay import replay_record
from router.errors import RouterError
from router.scenario import Scenario
from router.simulation.kpis import kpis
from router.simulation.report import confidence_interval
from router.simulation.simulator import Simulation
from router.strategies import StrategySet, default_strategies
from router.strategy_spec import DeclaredStrategy, declared_set

__all__ = [
    "NO_CLEAR_WINNER",
    "SANDBOX_METRICS",
    "interval",
    "paired",
    "parse_seeds",
    "run_side",
    "try_in_simulation",
    "try_on_records",
    "winner",
]

NO_CLEAR_WINNER = "no clear winner"

#: The side-by-side figures: (key, label, kind, lower is better). ``on_time:<tier>`` keys
#: are added per tier of the scenario after ``on_time``.
SANDBOX_METRICS: tuple[tuple[str, str, str, bool], ...] = (
    ("on_time", "on-time", "rate", False),
    ("cost_per_order", "cost/order", "usd", True),
    ("shipments_per_order", "ships/order", "ratio", True),
    ("fallback_rate", "fallback rate", "rate", True),
)


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``"1,2"``, ``"1-5"`` or a mix (``"1-3,7"``), in the order given; distinct.

    >>> parse_seeds("1-3,7")
    [1, 2, 3, 7]
    """
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            seeds.extend(range(int(lo), int(hi) + 1) if dash else [int(part)])
        except ValueError:
            raise RouterError(f"seeds: {part!r} is not a seed or a range like 1-5") from None
        if dash and int(hi) < int(lo):
            raise RouterError(f"seeds: the range {part!r} runs backwards")
    if not seeds:
        raise RouterError(f"seeds: no seed in {text!r}")
    if len(set(seeds)) != len(seeds):
        raise RouterError(f"seeds: {text!r} repeats a seed (a repeated seed is not an independent replication)")
    return seeds


def _r(x: float, digits: int) -> float | None:
    return None if math.isnan(x) else round(x, digits)


def interval(values: Sequence[float | None], digits: int = 6) -> dict:
    """Mean and 95 % t-interval: ``{"mean", "ci95": [lo, hi], "n"}`` (None where it cannot be estimated).

    Missing values (None, NaN) are left out; ``n`` counts the values used.

    >>> interval([0.9, 0.8, 1.0], 4)
    {'mean': 0.9, 'ci95': [0.6516, 1.1484], 'n': 3}
    """
    used = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    mean, half = confidence_interval(used)
    return {"mean": _r(mean, digits), "ci95": [_r(mean - half, digits), _r(mean + half, digits)], "n": len(used)}


def winner(iv: dict, ours: str, theirs: str, *, lower_is_better: bool) -> str:
    """The winner of a paired difference ``ours - theirs``: only where its 95 % interval excludes 0."""
    lo, hi = iv["ci95"]
    if lo is None or hi is None:
        return NO_CLEAR_WINNER
    if hi < 0:
        return ours if lower_is_better else theirs
    if lo > 0:
        return theirs if lower_is_better else ours
    return NO_CLEAR_WINNER


def paired(
    ours: Sequence[float | None], theirs: Sequence[float | None], names: tuple[str, str], *, lower_is_better: bool,
    digits: int = 6,
) -> dict:
    """Paired difference per seed, ``ours - theirs``: ``{"mean", "ci95", "n", "per_seed", "winner"}``.

    A seed where either side has no value is left out. The winner is named only where
    the 95 % interval excludes zero (``ours`` is the first name).

    >>> paired([1.0, 2.0, 3.0], [2.0, 3.0, 4.5], ("a", "b"), lower_is_better=True)["winner"]
    'a'
    """
    if len(ours) != len(theirs):
        raise ValueError(f"a paired difference needs one value per seed on both sides: {len(ours)} vs {len(theirs)}")
    diffs: list[float | None] = [
        None if a is None or b is None else float(a) - float(b) for a, b in zip(ours, theirs)
    ]
    iv = interval(diffs, digits)
    per_seed = [None if d is None else round(d, digits) for d in diffs]
    return {**iv, "per_seed": per_seed, "winner": winner(iv, *names, lower_is_better=lower_is_better)}


# ------------------------------------------------------------------------------ simulation


@dataclass(frozen=True)
class _Side:
    label: str  # shown in tables: the strategy's name (and "(candidate)" on a name clash)
    strategy: str  # the name the router is asked for
    strategies: StrategySet
    version: str


def run_side(
    scenario: Scenario,
    strategy: str,
    strategies: StrategySet,
    *,
    seed: int,
    horizon_hours: float,
    max_orders: int | None = None,
) -> dict:
    """One seeded run of ``strategy``: its sandbox figures (no ledger, no timing: a pure function of the inputs)."""
    sim = Simulation(
        scenario, strategy, seed=seed, horizon_hours=horizon_hours, max_orders=max_orders, strategies=strategies
    )
    fallbacks = 0
    decisions = 0
    fallback_legs: dict[str, int] = {}
    while (d := sim.step()) is not None:
        decisions += 1
        fb = d.record.get("fallback") or {}
        if fb.get("used") not in (None, fb.get("requested")):
            fallbacks += 1
            for leg in (d.record.get("chosen") or {}).get("legs", ()):
                fallback_legs[leg["node_id"]] = fallback_legs.get(leg["node_id"], 0) + 1
    result = sim.finish()
    k = kpis(result, timing=False)
    overall = k["overall"]
    legs_by_node = np.bincount(result.legs.node, minlength=len(result.node_ids)) if len(result.legs.node) else (
        np.zeros(len(result.node_ids), dtype=np.int64)
    )
    return {
        "seed": seed,
        "orders": overall["orders"],
        "routed_orders": overall["routed_orders"],
        "on_time": overall["on_time_rate"],
        "on_time_by_tier": {t: v["on_time_rate"] for t, v in k["by_tier"].items()},
        "cost_per_order": overall["cost_per_order_usd"],
        "shipments_per_order": overall["shipments_per_order"],
        "fallback_rate": fallbacks / decisions if decisions else None,
        "legs_by_node": {nid: int(n) for nid, n in zip(result.node_ids, legs_by_node.tolist())},
        "fallback_legs_by_node": fallback_legs,
    }


def _metric_keys(scenario: Scenario) -> list[tuple[str, str, str, bool]]:
    keys = [SANDBOX_METRICS[0]]
    keys += [(f"on_time:{t}", f"on-time {t}", "rate", False) for t in scenario.tiers]
    return keys + list(SANDBOX_METRICS[1:])


def _value(run: dict, key: str) -> float | None:
    if key.startswith("on_time:"):
        return run["on_time_by_tier"].get(key.partition(":")[2])
    return run[key]


def try_in_simulation(
    scenario: Scenario,
    candidate: DeclaredStrategy,
    *,
    against: str = "optimizer",
    seeds: Iterable[int] = (1, 2, 3),
    horizon_hours: float = 24.0,
    max_orders: int | None = None,
    base: StrategySet | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """The candidate and ``against`` on the same seeded worlds, side by side with 95 % intervals.

    Parameters
    ----------
    scenario : Scenario
    candidate : DeclaredStrategy
        The compiled candidate; it runs in ``base`` with its file's fallback chain
        (replacing a strategy of the same name there).
    against : str
        The current strategy, a name of ``base`` (default: the router's default, ``optimizer``).
    seeds : iterable of int
        One run per side and seed; the same seed gives both sides the same world.
    horizon_hours, max_orders
        Arrivals in the first ``horizon_hours``, at most ``max_orders`` of them.
    base : StrategySet, optional
        The strategies (default: the built-ins).
    progress : callable(done, total), optional
        Called after each run.

    Returns
    -------
    dict
        ``{"scenario", "seeds", "horizon_hours", "max_orders", "current": {...},
        "candidate": {...}, "metrics": [{"key", "label", "kind", "current", "candidate",
        "difference"}], "runs": {"current": [...], "candidate": [...]}}``; each side
        names its strategy and version and sums its legs per node over the seeds
        (``legs_by_node``), and those of decisions its fallback chain made
        (``fallback_legs_by_node``).
    """
    base = base if base is not None else default_strategies()
    if against not in base:
        raise RouterError(f"unknown strategy {against!r} to try against; known: {', '.join(base.names())}")
    seeds = list(seeds)
    if not seeds:
        raise RouterError("no seeds: the sandbox needs at least one seeded world")
    cur_label = against
    cand_label = candidate.name if candidate.name != against else f"{candidate.name} (candidate)"
    sides = (
        _Side(cur_label, against, base, str(base.get(against).version)),
        _Side(cand_label, candidate.name, declared_set([candidate], base), str(candidate.version)),
    )
    runs: dict[str, list[dict]] = {"current": [], "candidate": []}
    total, done = 2 * len(seeds), 0
    for seed in seeds:
        for role, side in zip(("current", "candidate"), sides):
            runs[role].append(
                run_side(
                    scenario, side.strategy, side.strategies, seed=seed, horizon_hours=horizon_hours,
                    max_orders=max_orders,
                )
            )
            done += 1
            if progress is not None:
                progress(done, total)
    metrics = []
    for key, label, kind, lower in _metric_keys(scenario):
        cur = [_value(r, key) for r in runs["current"]]
        cand = [_value(r, key) for r in runs["candidate"]]
        metrics.append(
            {
                "key": key,
                "label": label,
                "kind": kind,
                "lower_is_better": lower,
                "current": interval(cur),
                "candidate": interval(cand),
                "difference": paired(cand, cur, (cand_label, cur_label), lower_is_better=lower),
            }
        )

    def side_info(role: str, side: _Side) -> dict:
        legs: dict[str, int] = {}
        fb_legs: dict[str, int] = {}
        for r in runs[role]:
            for nid, n in r["legs_by_node"].items():
                legs[nid] = legs.get(nid, 0) + n
            for nid, n in r["fallback_legs_by_node"].items():
                fb_legs[nid] = fb_legs.get(nid, 0) + n
        return {
            "label": side.label,
            "strategy": side.strategy,
            "version": side.version,
            "orders_per_run": float(np.mean([r["orders"] for r in runs[role]])),
            "legs_by_node": legs,
            "fallback_legs_by_node": fb_legs,
        }

    return {
        "scenario": scenario.name,
        "seeds": seeds,
        "horizon_hours": horizon_hours,
        "max_orders": max_orders,
        "current": side_info("current", sides[0]),
        "candidate": side_info("candidate", sides[1]),
        "metrics": metrics,
        "runs": runs,
    }


# ------------------------------------------------------------------------------ ledger replay


def try_on_records(
    scenario: Scenario,
    candidate: DeclaredStrategy,
    records: Sequence[dict],
    *,
    base: StrategySet | None = None,
    show: int = 5,
) -> dict:
    """Counterfactual replay of ``records`` under the candidate: agreement and cost / late-risk deltas.

    Every record with stored inputs taken on ``scenario``'s network is decided again by
    the candidate on its own view, context, params and seed (the risk model version it
    was scored with). Records that cannot be replayed (no inputs: the decision failed
    before reading state; another network; an altered view) are counted in ``skipped``
    with the first reasons.

    Returns
    -------
    dict
        ``{"candidate", "version", "decisions", "replayed", "skipped", "skip_reasons",
        "agreement", "same_plan", "cost_delta", "late_risk_delta", "only_recorded_planned",
        "only_candidate_planned", "disagreements"}``: ``agreement`` is the share of replayed
        decisions with the same chosen plan (the same legs; both without a plan counts
        as the same); the deltas are ``candidate - recorded`` per decision with a plan on
        both sides (mean and 95 % t-interval over those decisions); ``disagreements`` the
        first ``show`` with both plans.
    """
    base = base if base is not None else default_strategies()
    router = Router(scenario, ledger=None, strategies=declared_set([candidate], base), strategy=candidate.name)
    replayed = same = 0
    only_rec = only_cand = 0
    cost_d: list[float] = []
    risk_d: list[float] = []
    skipped: list[str] = []
    disagreements: list[dict] = []
    by_strategy: dict[str, int] = {}
    for rec in records:
        try:
            res = replay_record(router, rec, strategy=candidate.name)
        except RouterError as exc:
            skipped.append(f"{rec.get('decision_id', '?')}: {exc}")
            continue
        replayed += 1
        used = (rec.get("strategy") or {}).get("name", "?")
        by_strategy[used] = by_strategy.get(used, 0) + 1
        orig = rec.get("chosen")
        new = res.replayed["chosen"]
        agree = (orig is None and new is None) or (orig is not None and new is not None and orig["legs"] == new["legs"])
        if agree:
            same += 1
        if orig is not None and new is not None:
            cost_d.append(float(new["cost_usd"]) - float(orig["cost_usd"]))
            risk_d.append(float(new["late_risk"]) - float(orig["late_risk"]))
        elif orig is not None:
            only_rec += 1
        elif new is not None:
            only_cand += 1
        if not agree and len(disagreements) < show:
            disagreements.append(
                {
                    "decision_id": rec["decision_id"],
                    "order_id": rec.get("order_id"),
                    "recorded_strategy": used,
                    "recorded_plan": res.original_plan,
                    "recorded_cost_usd": None if orig is None else orig["cost_usd"],
                    "recorded_late_risk": None if orig is None else orig["late_risk"],
                    "candidate_plan": res.replayed_plan,
                    "candidate_cost_usd": None if new is None else new["cost_usd"],
                    "candidate_late_risk": None if new is None else new["late_risk"],
                }
            )
    return {
        "candidate": candidate.name,
        "version": str(candidate.version),
        "decisions": len(records),
        "replayed": replayed,
        "recorded_by": by_strategy,
        "skipped": len(skipped),
        "skip_reasons": skipped[:3],
        "same_plan": same,
        "agreement": same / replayed if replayed else None,
        "cost_delta": interval(cost_d),
        "late_risk_delta": interval(risk_d),
        "only_recorded_planned": only_rec,
        "only_candidate_planned": only_cand,
        "disagreements": disagreements,
    }
