"""The peer's order (2 centres x 2 carriers, weight tiers, dim weight, carrier volume caps)
routed through route(): our plan costs 9.35; the peer's published plan, priced the same
way, costs 13.46."""

from __future__ import annotations

import nextmv_case as nc
import pytest

from router.engine import Router
from router.scenario import parse_scenario

pytestmark = pytest.mark.skipif(not nc.data_available(), reason="../shared/data/nextmv_order_fulfillment is absent")


def _route():
    sc = parse_scenario(nc.nextmv_scenario_dict())
    order = nc.nextmv_order()
    # decided when the order is placed: its promise counts from created_at
    router = Router(sc, ledger="sqlite://", clock=lambda: order.created_at)
    return sc, router, router.route(order)


def test_route_finds_the_9_35_plan_and_beats_the_peers_13_46():
    sc, router, d = _route()
    assert d.status == "routed"
    delivery = sum(leg.shipping_cost_usd for leg in d.plan.legs)
    handling = sum(leg.handling_cost_usd for leg in d.plan.legs)
    problem = nc.nextmv_problem()
    peer_delivery, peer_handling = nc.cost_parts(problem, nc.peer_plan_units())
    table = (
        f"\n{'':10}{'ours':>8}{'peer':>8}\n{'delivery':10}{delivery:8.2f}{peer_delivery:8.2f}"
        f"\n{'handling':10}{handling:8.2f}{peer_handling:8.2f}"
        f"\n{'total':10}{d.plan.cost_usd:8.2f}{peer_delivery + peer_handling:8.2f}"
    )
    assert d.plan.cost_usd == pytest.approx(9.35, abs=0.01), table
    assert delivery == pytest.approx(7.84, abs=0.01), table
    assert handling == pytest.approx(1.51, abs=0.01), table
    assert peer_delivery + peer_handling == pytest.approx(13.46, abs=0.01), table
    assert peer_delivery == pytest.approx(11.95, abs=0.01) and peer_handling == pytest.approx(1.51, abs=0.01)


def test_the_plan_respects_stock_volume_caps_and_covers_every_unit():
    sc, router, d = _route()
    assert d.plan.units_by_sku() == nc.nextmv_order_qty()
    lanes = {(ln.node, ln.carrier): ln.max_shipment_volume_cuft for ln in sc.spec.lanes}
    vol = {s.id: s.unit_volume_cuft for s in sc.skus}
    stock = sc.spec.stock
    for leg in d.plan.legs:
        shipped = sum(vol[ln.sku] * ln.qty for ln in leg.lines)
        assert shipped <= lanes[(leg.node_id, leg.carrier_id)] + 1e-9
        for ln in leg.lines:
            assert ln.qty <= stock[leg.node_id].get(ln.sku, 0)
    assert d.record["solver"]["name"].startswith("mathopt")
    assert d.record["solver"]["status"] == "optimal"
    # the rationale's cost factor is the plan's cost: the solver's answer was priced by the score terms
    cost = next(f for f in d.rationale["chosen"]["factors"] if f["term"] == "cost")
    assert cost["value"] == pytest.approx(d.plan.cost_usd)
    assert router.replay(d.decision_id).matches
