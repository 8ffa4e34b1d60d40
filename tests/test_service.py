"""The HTTP service in process (FastAPI's test client on a real SQLite ledger): every endpoint,
its errors, idempotency, personal data, the token, and that a failed request writes nothing."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timedelta, timezone

import pytest
from conftest import TINY

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note on httpx versions
    from fastapi.testclient import TestClient

from router.ledger import open_ledger
from router.service.app import create_app
from router.service.schemas import ORDER_EXAMPLE
from router.service.settings import ServiceSettings

TINY_SCENARIO = str(TINY / "two_warehouses_one_carrier.yaml")


def _order(order_id="o1", lines=(("SKU-1", 2),), **extra):
    return {
        "order_id": order_id,
        "customer": {"customer_id": "c-" + order_id},
        "destination": {"region": "north"},
        "lines": [{"sku": s, "qty": q} for s, q in lines],
        **extra,
    }


@pytest.fixture
def service(tmp_path):
    """Factory: (client, ledger URL) of a service on the tiny scenario with a fresh SQLite ledger."""
    opened = []

    def make(**kw):
        url = f"sqlite:///{tmp_path / 'svc.sqlite'}"
        settings = ServiceSettings(database_url=url, scenario=TINY_SCENARIO, model="none", log_format="console", **kw)
        client = TestClient(create_app(settings))
        client.__enter__()
        opened.append(client)
        return client, url

    yield make
    for c in opened:
        c.__exit__(None, None, None)


def _stock(url):
    led = open_ledger(url)
    try:
        return led.stock_levels("two_warehouses_one_carrier"), led.count_decisions(), led.events_head("two_warehouses_one_carrier")
    finally:
        led.close()


def test_route_records_a_decision_and_reserves_its_stock(service):
    c, url = service()
    r = c.post("/v1/route", json=_order())
    assert r.status_code == 200
    body = r.json()
    # $5 per shipment + $1 per unit; WH-A is 69 mi from north, WH-B 553 mi
    assert body["status"] == "routed" and body["plan"]["cost_usd"] == 7.0
    assert body["plan"]["legs"][0]["node_id"] == "WH-A" and body["sentence"].startswith("Shipped from WH-A")
    levels, decisions, _ = _stock(url)
    assert levels[("WH-A", "SKU-1")] == (10, 2) and decisions == 1
    got = c.get(f"/v1/decisions/{body['decision_id']}").json()
    assert got["record"]["chosen"] == body["plan"] and got["overrides"] == [] and got["outcomes"] == []
    assert r.headers["x-request-id"] and got["record"]["request_id"] == r.headers["x-request-id"]


def test_a_retry_with_the_same_idempotency_key_returns_the_stored_response_and_reserves_nothing(service):
    c, url = service()
    h = {"Idempotency-Key": "order-o1-attempt"}
    first = c.post("/v1/route", json=_order(), headers=h)
    again = c.post("/v1/route", json=_order(), headers=h)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    levels, decisions, _ = _stock(url)
    assert levels[("WH-A", "SKU-1")] == (10, 2) and decisions == 1
    # the same key with another body: refused, nothing written
    other = c.post("/v1/route", json=_order("o2"), headers=h)
    assert other.status_code == 422
    assert other.json()["error"]["field"] == "Idempotency-Key" and "another request body" in other.json()["error"]["reason"]
    assert _stock(url)[:2] == (levels, 1)


def test_a_key_whose_response_was_lost_still_routes_once(service, tmp_path):
    """The process died after recording the decision, before storing the response: the retry finds the decision."""
    c, url = service()
    h = {"Idempotency-Key": "lost-response"}
    first = c.post("/v1/route", json=_order(), headers=h).json()
    led = open_ledger(url)
    try:  # forget the stored response, as if the worker had been killed right after the ledger write
        led.idempotency_release("lost-response", "/v1/route")
        with led._engine.begin() as conn:
            from router.ledger.schema import idempotency_keys

            conn.execute(idempotency_keys.delete())
    finally:
        led.close()
    again = c.post("/v1/route", json=_order(), headers=h)
    assert again.status_code == 200 and again.json()["decision_id"] == first["decision_id"]
    levels, decisions, _ = _stock(url)
    assert levels[("WH-A", "SKU-1")] == (10, 2) and decisions == 1


@pytest.mark.parametrize(
    ("order", "field", "reason"),
    [
        (_order(lines=(("NOPE", 1),)), "lines[0].sku", "unknown sku"),
        (_order(lines=(("SKU-1", "2"),)), "lines[0].qty", "valid integer"),
        (_order(lines=(("SKU-1", 0),)), "lines[0].qty", "greater than 0"),
        (_order(created_at=(datetime.now(timezone.utc) + timedelta(days=2)).isoformat()), "created_at", "ahead of the router"),
        ({**_order(), "destination": {"region": "atlantis"}}, "destination.region", "atlantis"),
        ({**_order(), "coupon": "X"}, "coupon", "Extra inputs"),
        ({**_order(), "customer": {"customer_id": "c", "tier": "gold"}}, "customer.tier", "gold"),
    ],
)
def test_bad_orders_get_422_with_the_field_and_change_nothing(service, order, field, reason):
    c, url = service()
    before = _stock(url)
    r = c.post("/v1/route", json=order)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field and reason.lower() in err["reason"].lower()
    assert _stock(url) == before


def test_unknown_ids_are_404_and_a_bad_strategy_is_422(service):
    c, _ = service()
    assert c.get("/v1/decisions/nope").status_code == 404
    assert c.post("/v1/decisions/nope/replay", json={}).json()["error"]["type"] == "not_found"
    r = c.post("/v1/route", json=_order(), params={"strategy": "magic"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "strategy"


def test_override_over_http_moves_stock_and_a_conflict_is_409(service):
    c, url = service()
    did = c.post("/v1/route", json=_order()).json()["decision_id"]
    r = c.post(f"/v1/decisions/{did}/override", json={"candidate_rank": 1, "actor": "ops", "reason": "WH-A busy"})
    assert r.status_code == 200 and r.json()["plan"]["legs"][0]["node_id"] == "WH-B"
    levels, _, _ = _stock(url)
    assert levels[("WH-A", "SKU-1")] == (10, 0) and levels[("WH-B", "SKU-1")] == (10, 2)
    # WH-B's last 8 free units go to another order; moving 2 more units there conflicts
    c.post("/v1/route", json=_order("o2", (("SKU-1", 8),), destination={"region": "south"}))
    plan = {"legs": [{"node_id": "WH-B", "carrier_id": "parcel", "service": "ground", "lines": [{"sku": "SKU-1", "qty": 2}]}]}
    levels = _stock(url)[0]
    assert levels[("WH-B", "SKU-1")] == (10, 10)
    # holding 2 there already, the same plan is fine; the runner-up (WH-A) is fine too; a 3-unit leg is not a plan
    bad = c.post(f"/v1/decisions/{did}/override", json={"plan": {"legs": [dict(plan["legs"][0], lines=[{"sku": "SKU-1", "qty": 3}])]},
                                                         "actor": "ops", "reason": "x"})  # fmt: skip
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "plan.legs"
    o3 = c.post("/v1/route", json=_order("o3", (("SKU-1", 10),))).json()  # takes WH-A's 10
    assert o3["plan"]["legs"][0]["node_id"] == "WH-A"
    before = _stock(url)
    back = c.post(f"/v1/decisions/{did}/override", json={"candidate_rank": 0, "actor": "ops", "reason": "back to A"})
    assert back.status_code == 409 and back.json()["error"]["type"] == "conflict"
    assert _stock(url) == before


def test_events_are_all_or_nothing_and_shared_through_the_log(service):
    c, url = service()
    before = _stock(url)
    bad = c.post("/v1/events", json={"events": [
        {"type": "load_update", "node": "WH-A", "queue_orders": 50},
        {"type": "weather_update", "region": "mars", "severity": 1.0}]})  # fmt: skip
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "events[1].region"
    refused = c.post("/v1/events", json={"events": [
        {"type": "stock_adjust", "node": "WH-A", "sku": "SKU-1", "delta": 5},
        {"type": "stock_adjust", "node": "WH-B", "sku": "SKU-1", "delta": -11}]})  # fmt: skip
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "events[1]"
    assert _stock(url) == before  # the first adjustment was rolled back with the second
    ok = c.post("/v1/events", json={"events": [
        {"type": "stock_adjust", "node": "WH-A", "sku": "SKU-1", "delta": 5},
        {"type": "node_status", "node": "WH-A", "closed": True, "reason": "fire drill"}]})  # fmt: skip
    assert ok.status_code == 200 and ok.json()["applied"] == 2 and ok.json()["events_seq"] == 2
    levels, _, head = _stock(url)
    assert levels[("WH-A", "SKU-1")] == (15, 0) and head == 2
    # the closure reached the router: the next order ships from WH-B and names the event seq it read
    r = c.post("/v1/route", json=_order("o9")).json()
    assert r["plan"]["legs"][0]["node_id"] == "WH-B" and r["events_seq"] == 2


def test_a_second_worker_applies_the_log_before_it_decides(tmp_path):
    url = f"sqlite:///{tmp_path / 'two.sqlite'}"
    settings = ServiceSettings(database_url=url, scenario=TINY_SCENARIO, model="none", log_format="console")
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        a.post("/v1/events", json={"events": [{"type": "node_status", "node": "WH-A", "closed": True, "reason": "flood"},
                                              {"type": "stock_set", "node": "WH-B", "sku": "SKU-1", "on_hand": 3}]})  # fmt: skip
        r = b.post("/v1/route", json=_order()).json()  # b never saw the request
        assert r["events_seq"] == 2 and r["plan"]["legs"][0]["node_id"] == "WH-B"
        over = b.post("/v1/route", json=_order("o2", (("SKU-1", 2),))).json()
        assert over["status"] == "unfulfillable"  # 3 on hand at WH-B, 2 taken, WH-A closed


def test_outcomes_are_recorded_and_judged_against_the_promise(service):
    c, _ = service()
    did = c.post("/v1/route", json=_order(created_at="2026-12-01T00:00:00+00:00")).json()["decision_id"] \
        if False else c.post("/v1/route", json=_order()).json()["decision_id"]  # fmt: skip
    rec = c.get(f"/v1/decisions/{did}").json()["record"]
    created = datetime.fromisoformat(rec["order"]["created_at"])
    late = (created + timedelta(hours=121)).isoformat()  # the tier promises 120 h
    r = c.post("/v1/outcomes", json={"outcomes": [{"decision_id": did, "delivered_at": late}]})
    assert r.status_code == 200 and r.json()["recorded"][0]["on_time"] is False
    assert c.get(f"/v1/decisions/{did}").json()["outcomes"][0]["on_time"] is False
    bad = c.post("/v1/outcomes", json={"outcomes": [{"decision_id": did, "delivered_at": late},
                                                    {"decision_id": "nope", "delivered_at": late}]})  # fmt: skip
    assert bad.status_code == 404 and bad.json()["error"]["field"] == "outcomes[1].decision_id"
    assert len(c.get(f"/v1/decisions/{did}").json()["outcomes"]) == 1  # nothing of the failed request


def test_personal_fields_are_masked_in_stored_records(service, tmp_path):
    c, url = service()
    did = c.post("/v1/route", json=_order(contact={"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+1 555 0100"})).json()["decision_id"]
    rec = c.get(f"/v1/decisions/{did}").json()["record"]
    assert rec["pii"] == {
        "policy": "mask",
        "fields": ["contact.email", "contact.name", "contact.phone"],
        "masked": {"contact.email": "a**@e******.c**", "contact.name": "A** L*******", "contact.phone": "+1 5** 0***"},
    }
    raw = (tmp_path / "svc.sqlite").read_bytes()
    assert b"ada@example.com" not in raw and b"Lovelace" not in raw and "Lovelace" not in json.dumps(rec)


def test_drop_policy_keeps_only_the_field_names(service):
    c, _ = service(pii_policy="drop")
    did = c.post("/v1/route", json=_order(contact={"email": "ada@example.com"})).json()["decision_id"]
    assert c.get(f"/v1/decisions/{did}").json()["record"]["pii"] == {"policy": "drop", "fields": ["contact.email"]}


def test_write_endpoints_need_the_token_when_one_is_set(service):
    c, url = service(token="s3cret")
    r = c.post("/v1/route", json=_order())
    assert r.status_code == 401 and _stock(url)[1] == 0
    assert c.post("/v1/route", json=_order(), headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.post("/v1/route", json=_order(), headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/healthz").status_code == 200  # reads stay open


def test_size_and_batch_limits(service):
    c, url = service(max_batch=2, max_body_bytes=2048)
    r = c.post("/v1/route:batch", json={"orders": [_order(f"b{i}") for i in range(3)]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "orders"
    big = c.post("/v1/route", content=b"{" + b" " * 4000 + b"}", headers={"content-type": "application/json"})
    assert big.status_code == 413 and big.json()["error"]["type"] == "too_large"
    chunked = c.post("/v1/route", content=iter([b"{", b" " * 4000, b"}"]), headers={"content-type": "application/json"})
    assert chunked.status_code == 413  # no Content-Length: the body is measured
    small = c.post("/v1/route", content=iter([json.dumps(_order("c1")).encode()]), headers={"content-type": "application/json"})
    assert small.status_code == 200 and small.json()["order_id"] == "c1"  # and still reaches the endpoint
    ok = c.post("/v1/route:batch", json={"orders": [_order("b1"), _order("b2", (("SKU-1", 7),))]})
    ds = ok.json()["decisions"]
    # one after the other: the second order sees the first's reservation (WH-A 10 - 2 - 2 = 6 < 7)
    assert [d["plan"]["legs"][0]["node_id"] for d in ds] == ["WH-A", "WH-B"]
    assert _stock(url)[1] == 3


def test_a_batch_with_one_bad_order_routes_none(service):
    c, url = service()
    r = c.post("/v1/route:batch", json={"orders": [_order("b1"), _order("b2", (("NOPE", 1),))]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "orders[1].lines[0].sku"
    assert _stock(url)[1] == 0


def test_decisions_are_listed_filtered_and_paged(service):
    c, _ = service()
    ids = [c.post("/v1/route", json=_order(f"o{i}", destination={"region": "south" if i % 2 else "north"})).json()["decision_id"]
           for i in range(5)]  # fmt: skip
    page = c.get("/v1/decisions", params={"limit": 2}).json()
    assert [d["decision_id"] for d in page["items"]] == ids[:2] and page["next_cursor"] is not None
    rest = c.get("/v1/decisions", params={"limit": 10, "cursor": page["next_cursor"]}).json()
    assert [d["decision_id"] for d in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    south = c.get("/v1/decisions", params={"node": "WH-B"}).json()["items"]
    assert [d["decision_id"] for d in south] == [ids[1], ids[3]]
    assert [d["decision_id"] for d in c.get("/v1/decisions", params={"order_id": "o2"}).json()["items"]] == [ids[2]]
    c.post(f"/v1/decisions/{ids[0]}/override", json={"candidate_rank": 1, "actor": "ops", "reason": "x"})
    assert [d["decision_id"] for d in c.get("/v1/decisions", params={"overridden": True}).json()["items"]] == [ids[0]]
    assert len(c.get("/v1/decisions", params={"overridden": False}).json()["items"]) == 4
    assert c.get("/v1/decisions", params={"since": "yesterday"}).status_code == 422


def test_replay_over_http_reproduces_the_decision(service):
    c, _ = service()
    did = c.post("/v1/route", json=_order()).json()["decision_id"]
    r = c.post(f"/v1/decisions/{did}/replay", json={}).json()
    assert r["matches"] is True and r["original_score"] == r["replayed_score"]
    other = c.post(f"/v1/decisions/{did}/replay", json={"strategy": "cheapest"}).json()
    assert other["strategy"] == "cheapest"


def _sample(text: str, name: str) -> float:
    line = next((x for x in text.splitlines() if x.startswith(name + " ")), None)
    return 0.0 if line is None else float(line.rsplit(" ", 1)[1])


def test_health_readiness_and_metrics(service):
    c, _ = service()
    routed = 'router_decisions_total{fallback="none",status="routed",strategy="optimizer"}'
    ok = 'router_http_requests_total{endpoint="/v1/route",method="POST",status="200"}'
    bad = 'router_http_requests_total{endpoint="/v1/route",method="POST",status="422"}'
    before = c.get("/metrics").text  # the counters are per process: compare before and after
    c.post("/v1/route", json=_order())
    c.post("/v1/route", json=_order(lines=(("NOPE", 1),)))
    assert c.get("/healthz").json()["status"] == "ok"
    assert c.get("/readyz").json() == {"status": "ready", "events_seq": 0}
    after = c.get("/metrics").text
    assert _sample(after, routed) - _sample(before, routed) == 1.0
    assert _sample(after, ok) - _sample(before, ok) == 1.0 and _sample(after, bad) - _sample(before, bad) == 1.0
    assert "router_http_request_seconds_bucket" in after


def test_the_openapi_examples_are_valid_requests_on_the_default_scenario(tmp_path):
    settings = ServiceSettings(database_url=f"sqlite:///{tmp_path / 'ex.sqlite'}", model="none", log_format="console")
    with TestClient(create_app(settings)) as c:
        doc = c.get("/openapi.json").json()
        assert {"/v1/route", "/v1/route:batch", "/v1/decisions", "/v1/decisions/{decision_id}",
                "/v1/decisions/{decision_id}/override", "/v1/decisions/{decision_id}/replay", "/v1/events",
                "/v1/outcomes", "/v1/reroute", "/v1/orders/{order_id}/release", "/healthz", "/readyz",
                "/metrics"} <= set(doc["paths"])  # fmt: skip
        r = c.post("/v1/route", json=ORDER_EXAMPLE)
        assert r.status_code == 200 and r.json()["status"] == "routed"
        did = r.json()["decision_id"]
        examples = {name: s["examples"][0] for name, s in doc["components"]["schemas"].items() if s.get("examples")}
        assert c.post("/v1/route:batch", json={"orders": [dict(ORDER_EXAMPLE, order_id="ORD-1002")]}).status_code == 200
        assert c.post("/v1/events", json=examples["EventsIn"]).status_code == 200
        assert c.post(f"/v1/decisions/{did}/override", json=examples["OverrideIn"]).status_code == 200
        assert c.post(f"/v1/decisions/{did}/replay", json=examples["ReplayIn"]).status_code == 200
        rerouted = c.post("/v1/reroute", json=examples["RerouteIn"])
        assert rerouted.status_code == 200 and rerouted.json()["orders"] == 2  # ORD-1001 and ORD-1002 are open
        assert c.post("/v1/orders/ORD-1002/release", json=examples["ReleaseIn"]).status_code == 200


def test_settings_refuse_sqlite_with_several_workers_and_open_listening_without_a_token():
    s = ServiceSettings(database_url="sqlite:///x.sqlite", workers=2)
    assert "SQLite is for one worker" in s.problems()[0]
    s = ServiceSettings(host="0.0.0.0")
    assert "without a token" in s.problems()[0]
    assert ServiceSettings(host="0.0.0.0", token="t").problems() == []
    with pytest.raises(SystemExit, match="SQLite is for one worker"):
        create_app(ServiceSettings(database_url="sqlite:///x.sqlite", workers=2))
