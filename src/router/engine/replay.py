"""Replay: re-derive a recorded decision from its stored inputs, or run another strategy on them.

The record stores the view and context the decision read, the params and the
seed; :func:`~router.engine.decide.decide` is pure, so the same inputs give the
same plan and the same factors. Before deciding, replay checks that it can be
trusted: the record's network must be this router's network (the view and
context index into the network's arrays by position), and the stored view must
still match the hash recorded with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from router.context import context_from_json
from router.errors import NetworkMismatchError, ReplayError
from router.params import StrategyParams
from router.rationale import factors_at, plan_label
from router.state import StateView

if TYPE_CHECKING:  # pragma: no cover
    from router.engine.router import Router

__all__ = ["ReplayResult", "check_network", "replay_record"]


@dataclass(frozen=True)
class ReplayResult:
    decision_id: str
    strategy: str
    matches: bool
    original_plan: str | None
    replayed_plan: str | None
    original_score: float | None
    replayed_score: float | None
    differences: tuple[str, ...]
    replayed: dict


def check_network(router: Router, rec: dict) -> None:
    """Refuse, in one sentence, a record taken on another network than ``router``'s."""
    net = router.network
    meta = rec.get("network")
    did = rec.get("decision_id", "?")
    if meta is not None:
        if meta.get("hash") != net.content_hash:
            raise NetworkMismatchError(
                f"decision {did} was taken on network {meta.get('scenario')!r} ({str(meta.get('hash'))[:12]}), "
                f"but this router runs {router.scenario.name!r} ({net.content_hash[:12]}): replay it with the "
                "scenario file it was taken on (router replay ID --scenario FILE)"
            )
        return
    # A record written before records named their network: its view must at least fit this network.
    view = (rec.get("inputs") or {}).get("view") or {}
    n_nodes = len(view.get("queue_orders", ()))
    n_options = view.get("n_options")
    if n_nodes != net.n_nodes or (n_options is not None and n_options != net.n_options):
        raise NetworkMismatchError(
            f"decision {did} was taken on a network of {n_nodes} nodes and {n_options} carrier options "
            f"({rec.get('scenario')!r}), but this router's {router.scenario.name!r} has {net.n_nodes} and "
            f"{net.n_options}: replay it with the scenario file it was taken on"
        )


def replay_record(router: Router, rec: dict, *, strategy: str | None = None) -> ReplayResult:
    """Re-derive the decision ``rec`` on ``router``; ``matches`` says whether plan and factors are the same.

    Raises
    ------
    NetworkMismatchError
        The record was taken on another network.
    ReplayError
        The record has no inputs (it failed before any were taken), or its stored
        view no longer matches the hash recorded with it.
    """
    did = rec["decision_id"]
    inputs = rec.get("inputs")
    if not inputs:
        cause = ((rec.get("fallback") or {}).get("causes") or [{}])[0]
        raise ReplayError(
            f"decision {did} stored no inputs: it failed at {cause.get('stage', 'an early stage')} "
            f"({cause.get('error', 'no cause recorded')}), before any state was read"
        )
    check_network(router, rec)
    view = StateView.from_json(inputs["view"])
    if view.recompute_hash() != view.stored_hash:
        raise ReplayError(
            f"decision {did}: the stored view does not match its recorded hash {view.stored_hash}: "
            "the record's inputs were altered"
        )
    ctx = context_from_json(inputs["context"])
    params = StrategyParams.model_validate(rec["strategy"]["params"])
    name = strategy or rec["strategy"]["requested"]
    version = None
    if strategy is None:
        # the version the decision ran: a canary's (its arm says), else the recorded one when
        # the strategy that ranked is the one requested; an open breaker went to its fallback
        breaker = rec.get("breaker") or {}
        if breaker.get("state") == "open" and breaker.get("routed_to"):
            name = breaker["routed_to"]
        arm = rec.get("canary") or {}
        if arm.get("strategy") == name and arm.get("version") is not None:
            version = str(arm["version"])
        elif rec["strategy"].get("name") == name and rec["strategy"].get("version") is not None:
            version = str(rec["strategy"]["version"])
    strategies = router.strategies_for(name, version)
    # the risk model version the decision was scored with (ReplayError when it is gone)
    risk = router.risk_for_record(rec)
    out = router.decide(view, ctx, name, params=params, seed=int(rec["seed"]), risk=risk, strategies=strategies)
    # a re-routed decision holds the batch's choice: the plan at the rank it was recorded with
    rank = int((rec.get("reroute") or {}).get("rank", 0)) if strategy is None else 0
    if len(out.ranking) > rank:
        c = int(out.ranking[rank])
        plan = router.records.plan_dict(out, ctx, c)
        factors = factors_at(out.scores, c)
        score = float(round(float(out.scores.total[c]), 6))
    else:
        plan, factors, score = None, [], None
    orig = rec["chosen"]
    diffs = []
    if (orig is None) != (plan is None) or (orig and plan and orig["legs"] != plan["legs"]):
        diffs.append("chosen plan differs")
    chosen_rat = rec["rationale"].get("chosen")
    orig_factors = chosen_rat["factors"] if chosen_rat else []
    if orig_factors != factors:
        diffs.append("score factors differ")
    return ReplayResult(
        decision_id=did,
        strategy=out.strategy,
        matches=not diffs,
        original_plan=chosen_rat["plan"] if chosen_rat else None,
        replayed_plan=plan_label(out.cs, router.network, c) if plan else None,
        original_score=orig["score"] if orig else None,
        replayed_score=score,
        differences=tuple(diffs),
        replayed={"chosen": plan, "factors": factors},
    )
