"""route() never raises on a valid order: every stage after validation fails into a recorded decision.

Each test injects a failure into one stage of the pipeline and checks that
route() returns a decision that is in the ledger, names the stage and the cause,
and reserved exactly what its plan says (nothing when there is no plan).

Inside the fallback chain (rules, legs, candidates, scoring, splits, split_solver,
rank) a failure moves on to the next strategy; when the whole chain failed, a
last resort ranks single-node plans by the nearest-node rule on cost. Outside it
(context, view, reserve, record) the order is recorded unfulfillable.
"""

from __future__ import annotations

import pytest
from conftest import make_order

import router.solver.choose as choose
import router.solver.split as split
from router.engine import LAST_RESORT
from router.splits import SplitSearch
from router.strategies import CheapestStrategy, NearestStrategy, OptimizerStrategy, TierRulesStrategy

CHAIN = ["optimizer", "tier_rules", "nearest"]


def boom(*args, **kwargs):
    raise ValueError("injected failure")


def _recorded(r, d):
    rec = r.ledger.get_decision(d.decision_id)
    assert rec == d.record
    return rec


def _stages(rec):
    return [(c["strategy"], c["stage"]) for c in rec["fallback"]["causes"]]


def _reserved(r):
    return int(r.state.reserved.sum())


@pytest.mark.parametrize(
    "stage, target",
    [
        ("rules", (choose, "usable_options")),
        ("legs", (choose, "lane_metrics")),
        ("candidates", (choose, "single_candidates")),
        ("scoring", (choose, "score_candidates")),
    ],
)
def test_a_failing_shared_stage_walks_the_chain_and_is_recorded_unfulfillable(tiny_router, monkeypatch, stage, target):
    """Rules, leg physics, candidates and scores are also what the last resort needs: no plan, every cause kept."""
    r = tiny_router("two_warehouses_one_carrier")
    monkeypatch.setattr(*target, boom)
    d = r.route(make_order("s", [("SKU-1", 1)]))
    rec = _recorded(r, d)
    assert d.status == "unfulfillable" and d.plan is None
    assert _stages(rec) == [(s, stage) for s in CHAIN] + [(LAST_RESORT, stage)]
    assert rec["fallback"]["causes"][0]["error"] == "ValueError: injected failure"
    assert d.sentence.startswith(f"No plan: routing failed (optimizer failed at {stage}: ValueError: injected failure")
    assert _reserved(r) == 0 and r.recorded == 1


def test_a_failing_split_search_falls_back_to_single_node_plans(tiny_router, monkeypatch):
    r = tiny_router("split_needed")
    monkeypatch.setattr(SplitSearch, "candidates", boom)
    # {SKU-A: 1, SKU-C: 2} fits WH-A alone ($8); the split search runs and fails for every strategy
    d = r.route(make_order("s", [("SKU-A", 1), ("SKU-C", 2)], dest={"region": "center"}))
    rec = _recorded(r, d)
    assert d.status == "routed" and d.strategy == LAST_RESORT
    assert _stages(rec) == [(s, "splits") for s in CHAIN]
    assert [(leg.node_id, leg.shipping_cost_usd) for leg in d.plan.legs] == [("WH-A", 8.0)]
    assert rec["rationale"]["strategy_rule"].startswith("every strategy failed")
    assert _reserved(r) == 3  # exactly the plan's units
    assert r.replay(d.decision_id).matches  # the replay fails the same way and lands on the same plan


def test_a_failing_split_solver_walks_the_chain(tiny_router, monkeypatch):
    r = tiny_router("split_needed")
    monkeypatch.setattr(split, "solve_split", boom)
    # 8 of SKU-C: 5 at each node, so only a quantity split (the MIP) can ship it
    d = r.route(make_order("q", [("SKU-C", 8)], dest={"region": "center"}))
    rec = _recorded(r, d)
    assert d.status == "unfulfillable"
    assert _stages(rec)[:3] == [(s, "split_solver") for s in CHAIN]
    assert _reserved(r) == 0
    # without the injected failure the same order is routed as a quantity split
    monkeypatch.undo()
    d2 = r.route(make_order("q2", [("SKU-C", 8)], dest={"region": "center"}))
    assert d2.status == "routed" and sorted(leg.lines[0].qty for leg in d2.plan.legs) == [3, 5]


def test_when_every_ranking_fails_the_last_resort_ranks(tiny_router, monkeypatch):
    r = tiny_router("two_warehouses_one_carrier")
    for cls in (OptimizerStrategy, TierRulesStrategy, NearestStrategy, CheapestStrategy):
        monkeypatch.setattr(cls, "rank", boom)
    d = r.route(make_order("k", [("SKU-1", 1)], dest={"region": "south"}))
    rec = _recorded(r, d)
    assert _stages(rec) == [(s, "rank") for s in CHAIN]
    assert d.status == "routed" and d.strategy == LAST_RESORT
    assert d.plan.legs[0].node_id == "WH-B"  # the nearest node to south
    assert _reserved(r) == 1


@pytest.mark.parametrize("stage", ["context", "view", "reserve", "record"])
def test_a_failure_outside_the_chain_is_recorded_unfulfillable(tiny_router, monkeypatch, stage):
    r = tiny_router("two_warehouses_one_carrier")
    target = {
        "context": (r.contexts, "build"),
        "view": (r.state, "view"),
        "reserve": (r.state, "try_reserve"),
        "record": (r.records, "full"),
    }[stage]
    monkeypatch.setattr(*target, boom)
    d = r.route(make_order("o", [("SKU-1", 2)]))
    rec = _recorded(r, d)
    assert d.status == "unfulfillable" and d.plan is None
    assert _stages(rec) == [("optimizer", stage)]
    assert rec["fallback"]["causes"][0]["error"] == "ValueError: injected failure"
    assert d.sentence == f"No plan: routing failed at {stage} (ValueError: injected failure)."
    assert _reserved(r) == 0  # the record stage's reservation was released
    assert r.ledger.stock_levels("two_warehouses_one_carrier")[("WH-A", "SKU-1")] == (10, 0)
    if stage in ("context", "view"):
        with pytest.raises(Exception, match="stored no inputs: it failed at"):
            r.replay(d.decision_id)
    monkeypatch.undo()
    assert r.route(make_order("o2", [("SKU-1", 2)])).status == "routed"  # the router goes on


def test_a_reservation_conflict_that_persists_is_recorded_after_the_retries(tiny_router, monkeypatch):
    from router.errors import ReservationConflict

    r = tiny_router("two_warehouses_one_carrier")
    real = r.ledger.append_decision

    def always_taken(record, reservations, *, pool=None):
        if reservations:
            raise ReservationConflict("taken", {("WH-A", "SKU-1"): (10, 0), ("WH-B", "SKU-1"): (10, 0)})
        return real(record, reservations, pool=pool)

    monkeypatch.setattr(r.ledger, "append_decision", always_taken)
    d = r.route(make_order("c", [("SKU-1", 1)]))
    assert d.status == "unfulfillable" and r.reserve_conflicts == r.options.reserve_retries + 1
    rec = _recorded(r, d)
    assert _stages(rec) == [("optimizer", "reserve")] and rec["state"]["reserve_retries"] == 4
    assert _reserved(r) == 0
