"""Re-routing over HTTP (FastAPI's test client on a real SQLite ledger): ``POST /v1/reroute``
(dry run, apply, skipped orders, bad input) and ``POST /v1/orders/{id}/release``."""

from __future__ import annotations

import pytest
from test_service import _order, _sample, _stock, service  # noqa: F401 - the fixture


def _route_three_to_wh_a(c) -> list[str]:
    ids = []
    for i in range(3):
        body = c.post("/v1/route", json=_order(f"o{i}")).json()
        # $5 per shipment + $1 per unit, WH-A is the near node for north
        assert body["plan"]["legs"][0]["node_id"] == "WH-A" and body["plan"]["cost_usd"] == 7.0
        ids.append(body["decision_id"])
    r = c.post("/v1/events", json={"events": [{"type": "node_status", "node": "WH-A", "closed": True, "reason": "flood"}]})
    assert r.status_code == 200
    return ids


def test_a_dry_run_lists_the_moves_and_changes_nothing(service):  # noqa: F811
    c, url = service()
    ids = _route_three_to_wh_a(c)
    before = _stock(url)
    metrics_before = c.get("/metrics").text
    r = c.post("/v1/reroute", json={})
    assert r.status_code == 200
    plan = r.json()
    assert (plan["applied"], plan["orders"], plan["moved"], plan["skipped"]) == (False, 3, 3, 0)
    rerouted = 'router_decisions_total{fallback="none",status="rerouted",strategy="optimizer"}'
    assert _sample(c.get("/metrics").text, rerouted) == _sample(metrics_before, rerouted)  # no decision written
    assert plan["gap"] == 0.0 and plan["objective"] == pytest.approx(plan["bound"])
    assert {m["decision_id"] for m in plan["moves"]} == set(ids)
    for m in plan["moves"]:
        assert m["from"]["legs"][0]["node_id"] == "WH-A" and m["to"]["legs"][0]["node_id"] == "WH-B"
        assert m["new_decision_id"] is None
        assert m["sentence"].startswith("Moved from WH-A parcel/ground (WH-A closed) to WH-B parcel/ground")
        # same cost from either node ($7): the delta is the later arrival alone
        assert {t["term"]: t["delta"] for t in m["terms"]}["cost"] == 0.0
        assert m["score_delta"] == pytest.approx(sum(t["delta"] for t in m["terms"]), abs=1e-5)
    assert plan["kpis_before"]["cost_usd"] == plan["kpis_after"]["cost_usd"] == 21.0
    assert _stock(url) == before  # nothing reserved, nothing recorded


def test_apply_moves_the_reservations_and_records_one_superseding_decision_per_move(service):  # noqa: F811
    c, url = service()
    ids = _route_three_to_wh_a(c)
    rerouted = 'router_decisions_total{fallback="none",status="rerouted",strategy="optimizer"}'
    before = c.get("/metrics").text  # the counters are per process: compare before and after
    r = c.post("/v1/reroute", json={"apply": True, "time_limit_s": 2})
    assert r.status_code == 200
    plan = r.json()
    assert plan["applied"] is True and plan["moved"] == 3
    # the three decisions it wrote are counted (a dry run counts none: see the end)
    assert _sample(c.get("/metrics").text, rerouted) - _sample(before, rerouted) == 3.0
    levels, decisions, _ = _stock(url)
    assert levels[("WH-A", "SKU-1")] == (10, 0) and levels[("WH-B", "SKU-1")] == (10, 6)
    assert decisions == 6
    for m in plan["moves"]:
        rec = c.get(f"/v1/decisions/{m['new_decision_id']}").json()["record"]
        assert rec["supersedes"] == m["decision_id"] and rec["chosen"]["legs"][0]["node_id"] == "WH-B"
        assert rec["reroute"]["job_id"] == plan["job_id"]
    # the moved orders are open at their new node: a second run has nothing better to do
    again = c.post("/v1/reroute", json={}).json()
    assert (again["orders"], again["moved"]) == (3, 0)
    assert _sample(c.get("/metrics").text, rerouted) - _sample(before, rerouted) == 3.0
    assert sorted(ids) != sorted(m["new_decision_id"] for m in plan["moves"])


def test_released_and_unknown_orders_are_skipped_with_the_reason(service):  # noqa: F811
    c, url = service()
    _route_three_to_wh_a(c)
    assert c.post("/v1/orders/o0/release", json={"state": "released"}).json() == {"order_id": "o0", "state": "released"}
    r = c.post("/v1/reroute", json={"apply": True, "order_ids": ["o0", "o1", "nope"]})
    assert r.status_code == 200
    plan = r.json()
    assert (plan["orders"], plan["moved"]) == (1, 1) and plan["moves"][0]["order_id"] == "o1"
    assert plan["skipped_orders"] == [
        {"order_id": "o0", "reason": "released: no longer movable"},
        {"order_id": "nope", "reason": "unknown order: no routed decision holds it"},
    ]
    levels, _, _ = _stock(url)
    # o0 (released) and o2 (not named) stay at WH-A; o1 moved
    assert levels[("WH-A", "SKU-1")] == (10, 4) and levels[("WH-B", "SKU-1")] == (10, 2)


def test_release_answers_404_for_an_unknown_order_and_409_for_one_past_that_state(service):  # noqa: F811
    c, url = service()
    _route_three_to_wh_a(c)
    assert c.post("/v1/orders/o0/release").json() == {"order_id": "o0", "state": "released"}  # body optional
    again = c.post("/v1/orders/o0/release")
    assert again.status_code == 409
    assert again.json()["error"]["reason"].startswith("order 'o0' is released")
    assert c.post("/v1/orders/o0/release", json={"state": "shipped"}).status_code == 200
    unknown = c.post("/v1/orders/zz/release")
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "order_id"
    bad = c.post("/v1/orders/o1/release", json={"state": "picked"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "state"


@pytest.mark.parametrize(
    ("body", "query", "field", "reason"),
    [
        ({"time_limit_s": 0}, "", "time_limit_s", "greater than 0"),
        ({"time_limit_s": 601}, "", "time_limit_s", "less than or equal to 600"),
        ({"filter": {"tiers": ["gold"]}}, "", "filter.tiers", "unknown: gold"),
        ({"filter": {"nodes": ["WH-B"]}}, "", "filter", "matches none of the 3 open orders"),
        ({"move_cost_usd": -1}, "", "move_cost_usd", "greater than or equal to 0"),
        ({"order_ids": []}, "", "order_ids", "at least 1 item"),
        ({"apply": True, "extra": 1}, "", "extra", "Extra inputs are not permitted"),
        ({}, "?strategy=nope", "strategy", "nope"),
    ],
)
def test_bad_reroute_requests_get_a_422_naming_the_field_and_change_nothing(service, body, query, field, reason):  # noqa: F811
    c, url = service()
    _route_three_to_wh_a(c)
    before = _stock(url)
    r = c.post("/v1/reroute" + query, json=body)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["field"] == field and reason in err["reason"]
    assert _stock(url) == before
