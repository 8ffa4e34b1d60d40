"""A recorded decision's inputs, rebuilt from its record (replay, checks, overrides, training)."""

from __future__ import annotations

from dataclasses import dataclass

from router.context import OrderContext, context_from_json
from router.errors import RouterError
from router.params import StrategyParams
from router.state import StateView

__all__ = ["DecisionInputs", "decision_inputs"]


@dataclass(frozen=True, eq=False)
class DecisionInputs:
    """What a recorded decision read, rebuilt from its record: enough to replay or check it."""

    view: StateView
    context: OrderContext
    params: StrategyParams
    seed: int


def decision_inputs(record: dict) -> DecisionInputs:
    """The stored view, order context, params and seed of a full decision record.

    Raises
    ------
    RouterError
        The record has no stored inputs (a lean record of ``route(explain=False)``,
        or a decision that failed before any state was read).
    """
    if not record.get("inputs"):
        raise RouterError(f"decision {record.get('decision_id')!r} stores no inputs (schema {record.get('schema')!r})")
    return DecisionInputs(
        view=StateView.from_json(record["inputs"]["view"]),
        context=context_from_json(record["inputs"]["context"]),
        params=StrategyParams.model_validate(record["strategy"]["params"]),
        seed=int(record["seed"]),
    )
