"""Decision records (schema ``decision.v1``): what is written for every decision, built from the arrays.

The record is modelled on Open Policy Agent's decision logs: an id returned to
the caller, the input as received, the policy (strategy name, version, params
hash), the non-deterministic inputs (state view, order context, seed), the
result with its rationale, the fallback causes and the timing. The numbers in
it are read off the arrays the strategy ranked: :class:`RecordBuilder` never
recomputes a value the solver used.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import router
from router.candidates import CandidateSet
from router.context import OrderContext, context_to_json
from router.domain import Leg, LegLine, Order, Plan
from router.engine.decide import LAST_RESORT, Ranked
from router.legs import ANALYTIC_RISK_VERSION
from router.network import Network
from router.params import StrategyParams
from router.rationale import build_rationale, factors_for, round6, round_np
from router.state import StateView
from router.strategies import StrategySet

__all__ = ["RECORD_SCHEMA", "RISK_MODEL_VERSION", "RecordBuilder", "plan_from_dict"]

RECORD_SCHEMA = "decision.v1"
RISK_MODEL_VERSION = ANALYTIC_RISK_VERSION


def plan_from_dict(d: dict) -> Plan:
    """A record's ``chosen`` dict as a :class:`~router.domain.Plan`.

    ``model_construct``: the numbers come from our own arrays, validated already.
    """
    legs = tuple(
        Leg.model_construct(**{**leg, "lines": tuple(LegLine.model_construct(**ln) for ln in leg["lines"])})
        for leg in d["legs"]
    )
    return Plan.model_construct(**{**d, "legs": legs})


class RecordBuilder:
    """Builds the records of one router: its network, catalogue, strategies and seed."""

    def __init__(
        self, network: Network, skus: tuple[str, ...], strategies: StrategySet, *, scenario_name: str, seed: int
    ) -> None:
        self.network = network
        self.skus = skus
        self.strategies = strategies
        self.scenario_name = scenario_name
        self.seed = seed
        self._network_meta = {"scenario": scenario_name, "hash": network.content_hash}
        self._params_meta_for: StrategyParams | None = None
        self._params_meta: tuple[str, dict] = ("", {})

    # -------------------------------------------------------------- plans
    def plan_dict(self, out: Ranked, ctx: OrderContext, c: int) -> dict:
        """Candidate ``c`` as the JSON of a :class:`~router.domain.Plan` (plain dicts: this is the hot path)."""
        cs, net, skus = out.cs, self.network, self.skus
        nodes = cs.leg_node[c].tolist()
        opts = cs.leg_opt[c].tolist()
        # np.round(x, 3) / np.round(x, 6), bit for bit, on the few numbers of one plan
        miles = [round_np(x, 1e3) for x in cs.leg_miles[c].tolist()]
        ship = [round_np(x) for x in cs.leg_shipping_usd[c].tolist()]
        hand = [round_np(x) for x in cs.leg_handling_usd[c].tolist()]
        eta = [round_np(x) for x in cs.leg_eta_hours[c].tolist()]
        risk = [round_np(x) for x in cs.leg_risk[c].tolist()]
        sku_idx = ctx.sku_idx.tolist()
        all_units = cs.leg_units[c].tolist()
        legs = []
        for j, n in enumerate(nodes):
            if n < 0:
                continue
            units = all_units[j]
            legs.append(
                {
                    "node_id": net.node_ids[n],
                    "carrier_id": net.option_carrier[opts[j]],
                    "service": net.option_service[opts[j]],
                    "lines": [{"sku": skus[sku_idx[k]], "qty": u} for k, u in enumerate(units) if u > 0],
                    "distance_miles": miles[j],
                    "shipping_cost_usd": ship[j],
                    "handling_cost_usd": hand[j],
                    "eta_hours": eta[j],
                    "late_risk": risk[j],
                }
            )
        s = out.scores
        return {
            "legs": legs,
            "cost_usd": round(s.terms[0].values[c].item(), 6),
            "eta_hours": round(s.term("eta").values[c].item(), 6),
            "promise_hours": round(float(ctx.promise_hours), 6),
            "late_risk": round(s.term("late_risk").values[c].item(), 6),
            "score": round(s.total[c].item(), 6),
            "kind": "single" if len(legs) == 1 else "split",
        }

    def top_candidates(self, out: Ranked, top_idx: list[int]) -> list[dict]:
        """The ranked top-K in compact form: legs as (node, carrier, service, units per order line).

        Their factors are in the rationale (chosen, runners-up): stored once.
        """
        cs, net = out.cs, self.network
        node_ids, carrier, service = net.node_ids, net.option_carrier, net.option_service
        sources = CandidateSet.SOURCES
        # One tolist per array for the whole top-K instead of three per candidate.
        all_nodes = cs.leg_node[top_idx].tolist()
        all_opts = cs.leg_opt[top_idx].tolist()
        all_units = cs.leg_units[top_idx].tolist()
        all_src = cs.source[top_idx].tolist()
        totals = round6(out.scores.total[top_idx]).tolist()
        return [
            {
                "rank": r + 1,
                "source": sources[all_src[r]],
                "legs": [
                    [node_ids[n], carrier[o], service[o], u]
                    for n, o, u in zip(all_nodes[r], all_opts[r], all_units[r])
                    if n >= 0
                ],
                "score": totals[r],
            }
            for r in range(len(top_idx))
        ]

    def params_json(self, params: StrategyParams) -> tuple[str, dict]:
        """``params_hash()`` and the JSON dump of the (frozen) params, computed once per params object.

        Each record still gets its own copy of the dict (lists copied too) so no
        two records share mutable state.
        """
        if self._params_meta_for is not params:
            self._params_meta = (params.params_hash(), params.model_dump(mode="json"))
            self._params_meta_for = params
        h, d = self._params_meta
        return h, {k: (list(v) if isinstance(v, list) else v) for k, v in d.items()}

    # ------------------------------------------------------------ records
    def lean(self, order: Order, now: datetime, ctx: OrderContext, out: Ranked, t0: float) -> dict:
        """Plan and status only: no rationale, no inputs (nothing will be reviewed or replayed)."""
        chosen_dict = self.plan_dict(out, ctx, int(out.ranking[0])) if len(out.ranking) else None
        latency_ms = (time.perf_counter() - t0) * 1000.0
        return {
            "schema": RECORD_SCHEMA + "-lean",
            "decision_id": uuid.uuid4().hex,
            "order_id": order.order_id,
            "created_at": now.isoformat(),
            "status": "routed" if chosen_dict else "unfulfillable",
            "strategy": {"name": out.strategy, "requested": out.fallback["requested"]},
            "chosen": chosen_dict,
            "fallback": out.fallback,
            "latency_ms": round(latency_ms, 4),
        }

    def full(
        self,
        order: Order,
        now: datetime,
        ctx: OrderContext,
        view: StateView,
        out: Ranked,
        params: StrategyParams,
        t0: float,
        strategies: StrategySet | None = None,
    ) -> dict:
        """The full v1 record: inputs for replay, ranked candidates, rationale, fallback, solver.

        ``strategies`` is the set the decision ran on when it is not the router's own (a canary's).
        """
        known = self.strategies if strategies is None else strategies
        strat = known.get(out.strategy) if out.strategy in known else None
        if len(out.ranking):
            chosen = int(out.ranking[0])
            top_idx = out.ranking[: params.top_k].tolist()
            chosen_dict = self.plan_dict(out, ctx, chosen)
            # The rationale's runners-up and the record's candidates show the same
            # factors: compute them once (they are the same numbers, rounded once).
            top_factors = factors_for(out.scores, top_idx)
            rationale = build_rationale(
                out.cs,
                out.scores,
                out.ranking,
                self.network,
                ctx,
                strategy_name=out.strategy,
                strategy_rule=strat.rule if strat else "every strategy failed: nearest node on cost alone",
                top_k=params.top_k,
                factors=top_factors,
                queue_orders=view.queue_orders,
            )
            status = "routed"
            top = self.top_candidates(out, top_idx)
        else:
            chosen_dict = None
            status = "unfulfillable"
            rationale = self.no_plan_rationale(out, params)
            top = []
        params_hash, params_json = self.params_json(params)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        return {
            "schema": RECORD_SCHEMA,
            "decision_id": uuid.uuid4().hex,
            "order_id": order.order_id,
            "created_at": now.isoformat(),
            "status": status,
            "scenario": self.scenario_name,
            "network": dict(self._network_meta),
            "strategy": {
                "name": out.strategy,
                "requested": out.fallback["requested"],
                "version": strat.version if strat else "0",
                "params_hash": params_hash,
                "params": params_json,
            },
            "state": {"version": view.version, "hash": view.state_hash},
            "risk_model": out.cs.risk_model or {"version": RISK_MODEL_VERSION},
            "code_version": router.__version__,
            "seed": self.seed,
            "order": order.model_dump(mode="json"),
            "inputs": {"context": context_to_json(ctx), "view": view.to_json()},
            "candidates": top,
            "chosen": chosen_dict,
            "rationale": rationale,
            "fallback": out.fallback,
            "canary": None,
            "solver": out.cs.solver
            or {"name": "array-enumeration", "status": "optimal" if chosen_dict is not None else "infeasible"},
            "latency_ms": round(latency_ms, 4),
        }

    @staticmethod
    def no_plan_rationale(out: Ranked, params: StrategyParams) -> dict:
        causes = out.fallback.get("causes") or []
        if causes and out.strategy == LAST_RESORT:
            what = "; ".join(f"{c['strategy']} failed at {c['stage']}: {c['error']}" for c in causes[:4])
            sentence = f"No plan: routing failed ({what})."
        else:
            reasons = "; ".join(e["detail"] for e in out.cs.excluded[:6]) or "no node can ship it"
            sentence = (
                f"No plan: no node or combination of up to {params.max_splits} nodes can ship every line ({reasons})."
            )
        return {
            "sentence": sentence,
            "chosen": None,
            "runners_up": [],
            "excluded": list(out.cs.excluded),
            "candidates_considered": 0,
        }

    def failed(
        self, order: Order, now: datetime, strategy: str, stage: str, exc: BaseException, t0: float, *, inputs=None
    ) -> dict:
        """The record of a decision that failed before or after ranking (context, reserve, record stages).

        The order is recorded as unfulfillable with the stage and the cause, and
        nothing is reserved: route() returns a recorded decision instead of raising.
        """
        cause = {"strategy": strategy, "stage": stage, "error": f"{type(exc).__name__}: {exc}"}
        return {
            "schema": RECORD_SCHEMA,
            "decision_id": uuid.uuid4().hex,
            "order_id": order.order_id,
            "created_at": now.isoformat(),
            "status": "unfulfillable",
            "scenario": self.scenario_name,
            "network": dict(self._network_meta),
            "strategy": {"name": strategy, "requested": strategy, "version": "0"},
            "risk_model": {"version": RISK_MODEL_VERSION},
            "code_version": router.__version__,
            "seed": self.seed,
            "order": order.model_dump(mode="json"),
            "inputs": inputs,
            "candidates": [],
            "chosen": None,
            "rationale": {
                "sentence": f"No plan: routing failed at {stage} ({cause['error']}).",
                "chosen": None,
                "runners_up": [],
                "excluded": [],
                "candidates_considered": 0,
            },
            "fallback": {"requested": strategy, "used": None, "causes": [cause]},
            "canary": None,
            "solver": {"name": "none", "status": "error"},
            "latency_ms": round((time.perf_counter() - t0) * 1000.0, 4),
        }
