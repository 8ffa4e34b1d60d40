"""Every decision captured before the core was reshaped is re-derived unchanged.

``golden/national_decisions.json.gz`` holds the inputs (view and order context) of
every decision of 90 simulated minutes of ``national.yaml`` (optimizer, seed 7:
busy queues, partial stock, weight tiers, volume limits, splits), and the plan
and score that each built-in strategy chose from them, as recorded by the code
before the reshape. The inputs are stored, not re-simulated, so a later change
to the simulated world does not move them. A refactoring of candidates, scores,
bounds or strategies must give the same plan and the same score: bit for bit on
the machine that captured them; on another CPU numpy's vectorised math (exp, the
normal tail, sums) may round the last bit differently, so scores are compared to
a relative 1e-12 and plans exactly.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from conftest import SCENARIOS

from router.scenario import load_scenario

GOLDEN = Path(__file__).parent / "golden" / "national_decisions.json.gz"
STRATEGIES = ["optimizer", "cheapest", "nearest", "tier_rules"]


@pytest.fixture(scope="module")
def golden():
    with gzip.open(GOLDEN, "rt") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def engine_parts(golden):
    from router.engine import Router, decision_inputs
    from router.params import StrategyParams

    router = Router(load_scenario(SCENARIOS / "national.yaml"), ledger=None, risk_model=None)  # captured on the analytic risk
    params = StrategyParams.model_validate(golden["params"])

    def inputs(view_json, context_json):
        i = decision_inputs({"inputs": {"view": view_json, "context": context_json}, "strategy": {"params": golden["params"]}, "seed": 0})
        return i.view, i.context

    return router, params, inputs


def _chosen(router, out):
    if not len(out.ranking):
        return None
    net, cs, k = router.network, out.cs, int(out.ranking[0])
    legs = sorted(
        [net.node_ids[int(n)], net.option_carrier[int(o)], net.option_service[int(o)], u.tolist()]
        for n, o, u in zip(cs.leg_node[k], cs.leg_opt[k], cs.leg_units[k])
        if n >= 0
    )
    return {"legs": legs, "score": float(out.scores.total[k]), "strategy": out.strategy}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_captured_decision_is_rederived_unchanged(golden, engine_parts, strategy):
    router, params, decision_inputs = engine_parts
    rows = golden["decisions"]
    assert len(rows) > 2000
    splits = 0
    for i, row in enumerate(rows):
        view, ctx = decision_inputs(row["view"], row["context"])
        got = _chosen(router, router.decide(view, ctx, strategy, params=params))
        want = row["chosen"][strategy]
        if got is not None and want is not None:
            assert got["score"] == pytest.approx(want["score"], rel=1e-12, abs=1e-12), f"decision {i}: {strategy}"
            got, want = dict(got, score=None), dict(want, score=None)
        assert got == want, f"decision {i}: {strategy} chose {got} instead of {want}"
        splits += want is not None and len(want["legs"]) > 1
    if strategy in ("optimizer", "cheapest"):
        assert splits > 10  # the comparison covered split plans, not only single-node plans
