"""The routing engine: the pure decision, its records, replay, and the Router facade.

* :mod:`router.engine.decide` -- :func:`decide`: rank one order's candidates along a
  strategy's fallback chain (pure);
* :mod:`router.engine.records` -- the decision record (v1), built from the ranked arrays;
* :mod:`router.engine.replay` -- re-derive a recorded decision, or a counterfactual;
* :mod:`router.engine.router` -- :class:`Router`: route, route_batch, replay, explain.
"""

from router.engine.decide import LAST_RESORT, Ranked, decide
from router.engine.records import RECORD_SCHEMA, RISK_MODEL_VERSION, RecordBuilder
from router.engine.replay import ReplayResult
from router.engine.router import DEFAULT_LEDGER_URL, Decision, DecisionInputs, Router, decision_inputs

__all__ = [
    "DEFAULT_LEDGER_URL",
    "LAST_RESORT",
    "RECORD_SCHEMA",
    "RISK_MODEL_VERSION",
    "Decision",
    "DecisionInputs",
    "Ranked",
    "RecordBuilder",
    "ReplayResult",
    "Router",
    "decide",
    "decision_inputs",
]
