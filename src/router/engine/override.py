"""Overrides: a person replaces a decision's plan, and the reservation moves with it.

:func:`override` takes the new plan either as a rank among the candidates the engine
scored for that decision (``candidate_rank``: 1 is the runner-up) or as explicit legs
(``plan``). It

1. re-derives the decision's candidates from its stored inputs (as replay does), so a
   ranked candidate is exactly the one the reviewer saw, and prices an explicit plan
   with the same leg physics and score terms on those inputs: the **score delta** of the
   human choice against the engine's, term by term, is on the decision's own inputs;
2. checks the new plan with the independent plan validator against the **current**
   stock (the decision's own reservation given back first) and limits;
3. moves the reservation: in this process's live state, then in the ledger in one
   transaction (give back the old rows, check-and-reserve the new ones, append the
   override entry pointing at the decision with actor, reason and the delta). If the
   ledger refuses, the live state is put back as it was.

A stock conflict (the new plan's units are no longer there) is
:class:`OverrideConflict`; a plan that is not a plan for this order (unknown node, a
line not covered, a lane that does not exist) is :class:`InvalidOverrideError`, naming
the field. Nothing changes in either case.
"""

from __future__ import annotations

from datetime import timezone
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from router.candidates import from_units
from router.domain import Destination
from router.engine.inputs import decision_inputs
from router.engine.reroute import plan_alloc
from router.errors import InvalidEventError, InvalidPlanError, ReservationConflict, RouterError, _FieldError
from router.rationale import factors_at
from router.scoring import score_candidates
from router.solver.validate import check_plan

if TYPE_CHECKING:
    from router.engine.router import Router

__all__ = ["InvalidOverrideError", "OverrideConflict", "override"]


class InvalidOverrideError(_FieldError):
    """The override request is not a plan for this decision's order (the field and the reason are named)."""


class OverrideConflict(RouterError):
    """The new plan's stock or lanes are not available now; nothing changed."""


def _legs_of_rank(out: Any, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if rank < 0 or rank >= len(out.ranking):
        raise InvalidOverrideError(
            "candidate_rank", f"the decision ranked {len(out.ranking)} candidates (0 is the engine's choice); got {rank}"
        )
    c = int(out.ranking[rank])
    keep = out.cs.leg_node[c] >= 0
    return out.cs.leg_node[c][keep], out.cs.leg_opt[c][keep], out.cs.leg_units[c][keep]


def _legs_of_plan(router: Router, plan: dict, sku_idx: np.ndarray, qty: np.ndarray) -> tuple[np.ndarray, ...]:
    net = router.network
    legs = plan.get("legs") if isinstance(plan, dict) else None
    if not isinstance(legs, list) or not legs:
        raise InvalidOverrideError("plan.legs", "give at least one leg: {node_id, carrier_id, service, lines: [{sku, qty}]}")
    node_index = {nid: i for i, nid in enumerate(net.node_ids)}
    opt_index = {(c, s): o for o, (c, s) in enumerate(zip(net.option_carrier, net.option_service))}
    line_of = {router.network.sku_ids[int(s)]: k for k, s in enumerate(sku_idx.tolist())}
    nodes, opts, units = [], [], []
    for j, leg in enumerate(legs):
        where = f"plan.legs[{j}]"
        if not isinstance(leg, dict):
            raise InvalidOverrideError(where, "a leg is an object {node_id, carrier_id, service, lines}")
        n = node_index.get(leg.get("node_id"))  # type: ignore[arg-type]
        if n is None:
            raise InvalidOverrideError(f"{where}.node_id", f"unknown node {leg.get('node_id')!r}")
        o = opt_index.get((leg.get("carrier_id"), leg.get("service")))  # type: ignore[arg-type]
        if o is None:
            raise InvalidOverrideError(
                f"{where}.service", f"no carrier option {leg.get('carrier_id')!r} / {leg.get('service')!r} on this network"
            )
        u = np.zeros(len(qty), dtype=np.int64)
        lines = leg.get("lines")
        if not isinstance(lines, list) or not lines:
            raise InvalidOverrideError(f"{where}.lines", "a leg ships at least one line: [{sku, qty}]")
        for i, line in enumerate(lines):
            sku = line.get("sku") if isinstance(line, dict) else None
            q = line.get("qty") if isinstance(line, dict) else None
            if sku not in line_of:
                raise InvalidOverrideError(f"{where}.lines[{i}].sku", f"{sku!r} is not a line of this order")
            if isinstance(q, bool) or not isinstance(q, int) or q < 1:
                raise InvalidOverrideError(f"{where}.lines[{i}].qty", f"a whole number of units >= 1, got {q!r}")
            u[line_of[sku]] += q
        nodes.append(n)
        opts.append(o)
        units.append(u)
    total = np.sum(units, axis=0)
    if not np.array_equal(total, qty):
        short = [f"{net.sku_ids[int(s)]}: {int(t)} of {int(q)}" for s, t, q in zip(sku_idx, total, qty) if t != q]
        raise InvalidOverrideError("plan.legs", "the legs must ship exactly the order's units; " + ", ".join(short))
    return np.asarray(nodes, dtype=np.int64), np.asarray(opts, dtype=np.int64), np.asarray(units, dtype=np.int64)


def _plan_of(router: Router, nodes, opts, units, view, ctx, params) -> tuple[dict, Any]:
    """The plan dict and its scores for the legs (node, option, units[K]) on ``view``."""
    cs = from_units(nodes, opts, units, router.network, view, ctx)
    scores = score_candidates(cs, view, ctx, params)
    # plan_dict reads only the candidates and their scores of a ranking
    ranked = SimpleNamespace(cs=cs, scores=scores)
    return router.records.plan_dict(ranked, ctx, 0), scores  # type: ignore[arg-type]


def _current_plan(router: Router, rec: dict) -> dict | None:
    """The plan the decision holds now: the latest override's, else the engine's."""
    overrides = router.ledger.overrides_for(rec["decision_id"]) if router.ledger is not None else []
    moved = [o["plan"] for o in overrides if o.get("plan") is not None]
    return moved[-1] if moved else rec.get("chosen")


def override(
    router: Router,
    decision_id: str,
    *,
    actor: str,
    reason: str,
    plan: dict | None = None,
    candidate_rank: int | None = None,
) -> dict:
    """Replace decision ``decision_id``'s plan and move its reservation; returns the override's record body.

    Raises
    ------
    UnknownDecisionError
        No such decision in the ledger.
    InvalidOverrideError
        Bad arguments, or the plan is not a plan for this order; nothing changed.
    OverrideConflict
        The new plan breaks current stock or limits, or another writer took the units
        first, or the order's units are no longer reserved (shipped); nothing changed.
    """
    ledger = router._require_ledger()
    for name, value in (("actor", actor), ("reason", reason)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidOverrideError(name, "required: who overrides, and why")
    if (plan is None) == (candidate_rank is None):
        raise InvalidOverrideError("plan", "give exactly one of plan and candidate_rank")
    rec = ledger.get_decision(decision_id)
    if not rec.get("inputs"):
        raise InvalidOverrideError("decision_id", f"decision {decision_id} stores no inputs (it failed before reading state)")
    inp = decision_inputs(rec)
    ctx, params = inp.context, inp.params
    risk = router.risk_for_record(rec)
    out = router.decide(inp.view, ctx, rec["strategy"]["requested"], params=params, seed=inp.seed, risk=risk)
    if plan is not None:
        nodes, opts, units = _legs_of_plan(router, plan, ctx.sku_idx, ctx.qty)
    else:
        nodes, opts, units = _legs_of_rank(out, int(candidate_rank))  # type: ignore[arg-type]
    # the human choice priced on the decision's own inputs, against the engine's
    then_plan, then_scores = _plan_of(router, nodes, opts, units, inp.view, ctx, params)
    engine = rec.get("chosen")
    engine_factors = rec["rationale"]["chosen"]["factors"] if rec["rationale"].get("chosen") else []
    new_factors = factors_at(then_scores, 0)
    delta_terms = []
    by_term = {f["term"]: f for f in engine_factors}
    for f in new_factors:
        e = by_term.get(f["term"], {"contribution": 0.0, "value": 0.0})
        delta_terms.append(
            {"term": f["term"], "value": round(f["value"] - e["value"], 6), "contribution": round(f["contribution"] - e["contribution"], 6)}
        )
    score_delta = None if engine is None else round(then_plan["score"] - engine["score"], 6)
    old_plan = _current_plan(router, rec)
    old = plan_alloc(router.network, old_plan or {})
    dest = Destination.model_validate(rec["order"]["destination"])
    now = router.clock()
    state = router.state
    with state.lock:
        state.release(*old)
        try:
            view_now = state.view(ctx.sku_idx, router._hours(now))
            new_plan, _ = _plan_of(router, nodes, opts, units, view_now, ctx, params)
            try:
                check_plan(
                    router.network, view_now, ctx, params, new_plan, skus=router.network.sku_ids,
                    destination=router.contexts.resolve(dest)[:2], check_risk=False,
                    subject=f"the override of decision {decision_id}",
                )  # fmt: skip
            except InvalidPlanError as exc:
                raise OverrideConflict(str(exc)) from None
            new = plan_alloc(router.network, new_plan)
            if not state.try_reserve(*new):
                raise OverrideConflict(f"the override of decision {decision_id}: its stock was taken meanwhile")
        except BaseException:
            state.try_reserve(*old)  # put the decision's reservation back as it was
            raise
        body = {
            "plan": new_plan,
            "from_plan": old_plan,
            "engine_plan": engine,
            "candidate_rank": candidate_rank,
            "score_delta": score_delta,
            "score_delta_terms": delta_terms,
            "sentence": _sentence(then_plan, engine, score_delta),
            "state": {"version": view_now.version, "hash": view_now.state_hash},
        }
        try:
            override_id = ledger.move_reservation(
                decision_id,
                actor=actor,
                reason=reason,
                body=body,
                created_at=now.astimezone(timezone.utc).isoformat(),
                release=router._allocations(old),
                reserve=router._allocations(new),
                pool=router.stock_pool,
            )
        except (ReservationConflict, InvalidEventError) as exc:
            state.release(*new)
            state.try_reserve(*old)
            raise OverrideConflict(str(exc)) from None
        except BaseException:
            state.release(*new)
            state.try_reserve(*old)
            raise
    return {"override_id": override_id, "decision_id": decision_id, "actor": actor, "reason": reason, **body}


def _label(plan: dict) -> str:
    return " + ".join(f"{leg['node_id']} by {leg['carrier_id']} {leg['service']}" for leg in plan["legs"])


def _sentence(plan: dict, engine: dict | None, delta: float | None) -> str:
    nodes = _label(plan)
    if engine is None or delta is None:
        return f"Overridden to ship from {nodes} (cost ${plan['cost_usd']:.2f}); the engine had found no plan."
    was = _label(engine)
    word = "worse" if delta > 0 else "better"
    return (
        f"Overridden to ship from {nodes} (cost ${plan['cost_usd']:.2f}, late risk {plan['late_risk']:.1%}) instead of "
        f"{was} (cost ${engine['cost_usd']:.2f}, late risk {engine['late_risk']:.1%}): ${abs(delta):.2f} {word} "
        "by the engine's score on the decision's inputs."
    )
