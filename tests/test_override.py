"""Overrides: a person's plan replaces the engine's, and the reservation moves with it, atomically."""

from __future__ import annotations

import pytest
from conftest import make_order

from router.engine.override import InvalidOverrideError, OverrideConflict
from router.errors import UnknownDecisionError


def _levels(r):
    """(on_hand, reserved) per (node, sku) in the ledger's stock pool."""
    return r.ledger.stock_levels(r.stock_pool)


def test_override_to_the_runner_up_moves_the_reservation_and_records_the_delta(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    d = r.route(make_order("o1", [("SKU-1", 2)], dest={"region": "north"}))
    # $5 + 2 x $1 = $7 from either node; WH-A is 69 mi away (27.32 h), WH-B 553 mi (50.53 h)
    assert d.record["chosen"]["legs"][0]["node_id"] == "WH-A"
    before = _levels(r)
    assert before[("WH-A", "SKU-1")] == (10, 2) and before[("WH-B", "SKU-1")] == (10, 0)
    out = r.override(d.decision_id, candidate_rank=1, actor="ops@example.com", reason="WH-A short of pickers")
    assert out["plan"]["legs"][0]["node_id"] == "WH-B"
    assert out["override_id"] == f"{d.decision_id}-override-1"
    after = _levels(r)
    assert after[("WH-A", "SKU-1")] == (10, 0) and after[("WH-B", "SKU-1")] == (10, 2)
    # the live state moved too
    a, b = r.network.node_ids.index("WH-A"), r.network.node_ids.index("WH-B")
    k = r.network.sku_ids.index("SKU-1")
    assert r.state.reserved[a, k] == 0 and r.state.reserved[b, k] == 2
    # the same cost, 23.21 h later by the ETA term: the delta is the engine's own score difference
    cost = next(t for t in out["score_delta_terms"] if t["term"] == "cost")
    assert cost["value"] == 0.0
    eta = next(t for t in out["score_delta_terms"] if t["term"] == "eta")
    assert eta["value"] == pytest.approx(50.53 - 27.32, abs=0.01)
    assert out["score_delta"] == pytest.approx(sum(t["contribution"] for t in out["score_delta_terms"]), abs=1e-6)
    assert out["score_delta"] > 0 and "worse" in out["sentence"]
    # the ledger: an override entry pointing at the decision, reservations summing to the new plan
    stored = r.ledger.overrides_for(d.decision_id)
    assert len(stored) == 1 and stored[0]["actor"] == "ops@example.com" and stored[0]["plan"] == out["plan"]
    net = {}
    for node, sku, q in r.ledger.reservations_for(d.decision_id):
        net[(node, sku)] = net.get((node, sku), 0) + q
    assert {k: v for k, v in net.items() if v} == {("WH-B", "SKU-1"): 2}
    assert r.ledger.verify().ok


def test_an_explicit_plan_is_priced_and_checked_and_a_stock_conflict_changes_nothing(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    d = r.route(make_order("o1", [("SKU-1", 2)], dest={"region": "north"}))
    plan = {"legs": [{"node_id": "WH-A", "carrier_id": "parcel", "service": "ground", "lines": [{"sku": "SKU-1", "qty": 1}]},
                     {"node_id": "WH-B", "carrier_id": "parcel", "service": "ground", "lines": [{"sku": "SKU-1", "qty": 1}]}]}  # fmt: skip
    out = r.override(d.decision_id, plan=plan, actor="ops", reason="split to balance load")
    # two shipments: $5 + $1 each = $12 against $7
    assert out["plan"]["cost_usd"] == pytest.approx(12.0)
    assert next(t for t in out["score_delta_terms"] if t["term"] == "cost")["value"] == pytest.approx(5.0)
    # more units than WH-B holds (10): refused by the validator against current stock, nothing moves
    before, entries = _levels(r), r.ledger.count_decisions()
    d2 = r.route(make_order("o2", [("SKU-1", 9)], dest={"region": "south"}))  # WH-B now holds 10 - 1 - 9 = 0 free
    assert d2.record["chosen"]["legs"][0]["node_id"] == "WH-B"
    before = _levels(r)
    greedy = {"legs": [{"node_id": "WH-B", "carrier_id": "parcel", "service": "ground", "lines": [{"sku": "SKU-1", "qty": 2}]}]}
    with pytest.raises(OverrideConflict, match=r"stock \(leg 0\): WH-B ships 2 of SKU-1, may ship 1"):
        r.override(d.decision_id, plan=greedy, actor="ops", reason="one box")
    assert _levels(r) == before and len(r.ledger.overrides_for(d.decision_id)) == 1
    assert entries + 1 == r.ledger.count_decisions()


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"candidate_rank": 7}, "candidate_rank", "ranked"),
        ({"candidate_rank": 1, "plan": {"legs": []}}, "plan", "exactly one"),
        ({"plan": {"legs": [{"node_id": "WH-Z", "carrier_id": "parcel", "service": "ground",
                             "lines": [{"sku": "SKU-1", "qty": 2}]}]}}, "plan.legs[0].node_id", "unknown node"),  # fmt: skip
        ({"plan": {"legs": [{"node_id": "WH-A", "carrier_id": "parcel", "service": "ground",
                             "lines": [{"sku": "SKU-1", "qty": 1}]}]}}, "plan.legs", "exactly the order's units"),  # fmt: skip
        ({"plan": {"legs": [{"node_id": "WH-A", "carrier_id": "parcel", "service": "air",
                             "lines": [{"sku": "SKU-1", "qty": 2}]}]}}, "plan.legs[0].service", "no carrier option"),  # fmt: skip
        ({"candidate_rank": 1, "actor": " "}, "actor", "required"),
    ],
)
def test_bad_overrides_name_the_field_and_change_nothing(tiny_router, kwargs, field, reason):
    r = tiny_router("two_warehouses_one_carrier")
    d = r.route(make_order("o1", [("SKU-1", 2)], dest={"region": "north"}))
    before = _levels(r)
    args = {"actor": "ops", "reason": "test", **kwargs}
    with pytest.raises(InvalidOverrideError) as info:
        r.override(d.decision_id, **args)
    assert info.value.field == field and reason in info.value.reason
    assert _levels(r) == before and r.ledger.overrides_for(d.decision_id) == []


def test_override_of_an_unknown_decision_is_refused(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    with pytest.raises(UnknownDecisionError):
        r.override("nope", candidate_rank=1, actor="ops", reason="x")


def test_an_unfulfillable_decision_can_be_given_a_plan_by_hand(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    # SKU-2 is only at WH-A (5 units): 6 cannot be shipped, the engine finds no plan
    d = r.route(make_order("o1", [("SKU-2", 6)]))
    assert d.status == "unfulfillable"
    r.state.apply({"type": "stock_adjust", "node": "WH-A", "sku": "SKU-2", "delta": 3})  # a receipt arrives
    plan = {"legs": [{"node_id": "WH-A", "carrier_id": "parcel", "service": "ground", "lines": [{"sku": "SKU-2", "qty": 6}]}]}
    out = r.override(d.decision_id, plan=plan, actor="ops", reason="receipt in")
    assert out["score_delta"] is None and "the engine had found no plan" in out["sentence"]
    assert out["plan"]["cost_usd"] == pytest.approx(11.0)  # $5 + 6 x $1
    assert _levels(r)[("WH-A", "SKU-2")] == (8, 6)
