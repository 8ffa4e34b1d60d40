"""Decision records: rationale numbers, replay, fallback, bad input, concurrency, the ledger."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from conftest import TINY, make_order, pg_schema_url

from router import InvalidOrderError, Order, ScenarioError, UnknownDecisionError
from router.engine import Router
from router.errors import LedgerError
from router.scenario import load_scenario
from router.strategies import default_strategies


def test_record_has_every_field_of_the_v1_contract(tiny_router):
    r = tiny_router("tiers_and_storm")
    d = r.route(make_order("r1", [("SKU-1", 1)], dest={"lat": 41.0, "lon": -90.0}))
    rec = r.ledger.get_decision(d.decision_id)
    for key in (
        "decision_id", "order_id", "created_at", "strategy", "state", "risk_model", "code_version", "seed",
        "order", "candidates", "chosen", "rationale", "fallback", "canary", "solver", "latency_ms", "inputs",
    ):
        assert key in rec, key
    assert rec["decision_id"] == d.decision_id and rec["order_id"] == "r1"
    assert set(rec["strategy"]) >= {"name", "version", "params_hash"}
    assert rec["strategy"]["params_hash"] == r.params.params_hash()
    assert rec["state"]["hash"] and isinstance(rec["state"]["version"], int)
    assert rec["order"] == json.loads(d.record["order"] and json.dumps(d.record["order"]))
    assert rec["order"]["lines"] == [{"sku": "SKU-1", "qty": 1}]


def test_rationale_numbers_are_the_numbers_the_solver_ranked(tiny_router):
    r = tiny_router("tiers_and_storm")
    r.state.set_clock_hours(40.0)
    d = r.route(make_order("r2", [("SKU-1", 1), ("SKU-2", 1)], tier="vip", dest={"region": "north"}))
    chosen = d.rationale["chosen"]
    # contributions are value x weight and sum to the score the optimizer minimised
    # (value and contribution are each rounded to 6 decimals, so the product may be
    # off by half a unit of the 6th decimal times the weight, plus that of the contribution)
    for f in chosen["factors"]:
        assert f["contribution"] == pytest.approx(f["value"] * f["weight"], abs=5e-7 * (abs(f["weight"]) + 1.0) + 1e-12)
    assert sum(f["contribution"] for f in chosen["factors"]) == pytest.approx(d.plan.score, abs=1e-5)
    assert chosen["score"] == d.plan.score
    # the chosen plan is the best of the ranked list, and the record's top candidate is it
    assert all(ru["score"] >= chosen["score"] for ru in d.rationale["runners_up"])
    assert d.record["candidates"][0]["score"] == chosen["score"]
    assert [ru["score"] for ru in d.rationale["runners_up"]] == [c["score"] for c in d.record["candidates"][1:]]
    assert [ru["score"] for ru in d.rationale["runners_up"]] == sorted(ru["score"] for ru in d.rationale["runners_up"])
    # the cost factor is the plan's own cost, leg by leg
    cost = next(f for f in chosen["factors"] if f["term"] == "cost")
    assert cost["value"] == pytest.approx(sum(l.shipping_cost_usd + l.handling_cost_usd for l in d.plan.legs), abs=1e-5)
    # the tier multiplies the lateness weights: vip x4
    risk = next(f for f in chosen["factors"] if f["term"] == "late_risk")
    assert risk["weight"] == pytest.approx(r.params.late_risk_usd * 4.0)
    # one sentence, with the chosen node and cost in it
    assert d.sentence.startswith(f"Shipped from {chosen['plan']}")
    assert f"${d.plan.cost_usd:.2f}" in d.sentence


def test_sentence_names_the_pick_queue_when_load_drives_the_choice(tiny_router):
    from router.state import LoadUpdate

    r = tiny_router("two_warehouses_one_carrier")
    # WH-A is nearest to north but its queue would hold the order ~30 h: past the cut-off
    r.state.apply(LoadUpdate(node="WH-A", queue_orders=3000))
    d = r.route(make_order("q1", [("SKU-1", 1)], dest={"region": "north"}, promised_by="2026-11-04T23:00:00Z"))
    assert d.plan.legs[0].node_id == "WH-B"
    assert "late risk 0.52 vs 0.17 (WH-A pick queue 3000 orders, est. +30.0 h)" in d.sentence


def test_replay_reproduces_the_decision_from_stored_inputs(tiny_router):
    r = tiny_router("tiers_and_storm")
    ids = []
    for i, (tier, region) in enumerate([("standard", "north"), ("vip", "south"), ("plus", "mid")]):
        r.state.set_clock_hours(10.0 * i)
        ids.append(r.route(make_order(f"p{i}", [("SKU-1", 1), ("SKU-2", 1)], tier=tier, dest={"region": region})).decision_id)
    # the live state moves on (more orders, a closure) ...
    r.route(make_order("later", [("SKU-1", 3)], dest={"region": "north"}))
    r.state.apply({"type": "node_status", "node": "WH-N", "closed": True})
    # ... and replay still re-derives each decision exactly
    for did in ids:
        res = r.replay(did)
        assert res.matches, res.differences
        assert res.replayed["chosen"] == r.ledger.get_decision(did)["chosen"]
    # a fresh router on the same scenario (another process, later) replays it too
    again = Router(load_scenario(TINY / "tiers_and_storm.yaml"), ledger=r.ledger)
    assert again.replay(ids[1]).matches


def test_counterfactual_replay_runs_another_strategy_on_the_same_inputs(tiny_router):
    r = tiny_router("tiers_and_storm")
    r.state.set_clock_hours(40.0)
    d = r.route(make_order("cf", [("SKU-1", 1)], dest={"region": "mid"}), strategy="cheapest")
    cf = r.replay(d.decision_id, strategy="nearest")
    assert cf.strategy == "nearest"
    assert cf.replayed_plan.startswith("ST-M")  # nearest node, 0 miles
    assert cf.original_plan.startswith("WH-")  # cheapest used budget from a warehouse


def test_unknown_decision_is_a_typed_error(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    with pytest.raises(UnknownDecisionError, match="nope"):
        r.replay("nope")
    with pytest.raises(UnknownDecisionError):
        r.explain("nope")


def test_failing_strategy_falls_back_and_the_record_says_why(tiny_router):
    class Broken:
        name = "broken"
        version = "0"
        rule = "always fails"

        def rank(self, cs, scores, ctx):
            raise RuntimeError("model file missing")

    strategies = default_strategies().with_strategy(Broken(), fallback=("optimizer", "nearest"))
    r = tiny_router("two_warehouses_one_carrier", strategies=strategies)
    d = r.route(make_order("fb", [("SKU-1", 1)]), strategy="broken")
    assert d.status == "routed" and d.strategy == "optimizer"
    fb = d.record["fallback"]
    assert fb["requested"] == "broken" and fb["used"] == "optimizer"
    assert fb["causes"] == [{"strategy": "broken", "stage": "rank", "error": "RuntimeError: model file missing"}]
    assert r.replay(d.decision_id).matches
    # the default strategies never saw it: composition is explicit, nothing is registered globally
    assert "broken" not in default_strategies()


@pytest.mark.parametrize(
    "order, field, reason",
    [
        ({"lines": [{"sku": "SKU-404", "qty": 1}]}, "lines[0].sku", "unknown sku 'SKU-404'"),
        ({"lines": [{"sku": "SKU-1", "qty": -2}]}, "lines[0].qty", "greater than 0"),
        ({"lines": [{"sku": "SKU-1", "qty": 0}]}, "lines[0].qty", "greater than 0"),
        ({"destination": {}}, "destination", "no coordinates"),
        ({"destination": {"lat": 40.0}}, "destination", "both lat and lon"),
        ({"destination": {"region": "atlantis"}}, "destination.region", "unknown region 'atlantis'"),
        ({"customer": {"customer_id": "c", "tier": "gold"}}, "customer.tier", "unknown tier 'gold'"),
        ({"lines": []}, "lines", "at least 1"),
        ({"lines": [{"sku": "SKU-1", "qty": 1}, {"sku": "SKU-1", "qty": 2}]}, "<root>", "repeat sku"),
        ({"service_level": "teleport"}, "service_level", "unknown service level 'teleport'"),
        ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
    ],
)
def test_bad_order_raises_a_typed_error_naming_the_field_and_changes_nothing(tiny_router, order, field, reason):
    r = tiny_router("two_warehouses_one_carrier")
    base = {
        "order_id": "bad",
        "customer": {"customer_id": "c", "tier": "standard"},
        "destination": {"region": "north"},
        "lines": [{"sku": "SKU-1", "qty": 1}],
        "created_at": "2026-11-02T00:00:00Z",
    }
    version = r.state.version
    with pytest.raises(InvalidOrderError) as info:
        r.route({**base, **order})
    assert info.value.field == field
    assert reason in info.value.reason
    assert field in str(info.value)
    assert r.state.version == version and int(r.state.reserved.sum()) == 0
    assert r.ledger.count_decisions() == 0


def test_malformed_scenario_file_names_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((TINY / "two_warehouses_one_carrier.yaml").read_text().replace("lat: 40.0, lon: -90.0, pick", "lon: -90.0, pick"))
    with pytest.raises(ScenarioError) as info:
        Router.from_scenario(bad, ledger=None)
    assert info.value.field == "nodes[0].lat"
    assert "bad.yaml" in str(info.value)


def test_ledger_failure_releases_the_reservation_and_raises(tiny_router):
    class DownLedger:
        def append_decision(self, record, reservations, *, pool=None):
            raise OSError("disk full")

        def close(self):
            pass

    r = tiny_router("two_warehouses_one_carrier", ledger=False)
    r.ledger = DownLedger()
    with pytest.raises(LedgerError, match="disk full"):
        r.route(make_order("lf", [("SKU-1", 3)]))
    assert int(r.state.reserved.sum()) == 0 and r.failed_writes == 1


def test_concurrent_route_calls_never_oversell(tmp_path, clock):
    sc = load_scenario(TINY / "split_needed.yaml")
    r = Router(sc, ledger=f"sqlite:///{tmp_path / 'c.sqlite'}", clock=clock)
    # 5 SKU-A at WH-A only, 5 SKU-C at each node; 8 threads x 10 orders of one unit each
    results: list = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(10):
            sku = "SKU-A" if (t + i) % 2 else "SKU-C"
            d = r.route(make_order(f"t{t}-{i}", [(sku, 1)], dest={"region": "center"}))
            with lock:
                results.append((sku, d))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    routed = {"SKU-A": 0, "SKU-C": 0}
    for sku, d in results:
        routed[sku] += d.status == "routed"
    assert routed == {"SKU-A": 5, "SKU-C": 10}  # exactly the stock, never more
    assert np.all(r.state.reserved <= r.state.on_hand)
    totals = r.ledger.reserved_totals()
    assert sum(v for (n, s), v in totals.items() if s == "SKU-A") == 5
    assert sum(v for (n, s), v in totals.items() if s == "SKU-C") == 10
    assert r.ledger.count_decisions() == 80
    assert r.ledger.verify().ok
    r.close()


def test_explain_returns_the_stored_rationale(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    d = r.route(make_order("e1", [("SKU-1", 1)]))
    ex = r.explain(d.decision_id)
    assert ex["sentence"] == d.sentence and ex["chosen"] == d.rationale["chosen"]


def test_order_as_json_dict_routes_like_the_model(tiny_router):
    r = tiny_router("two_warehouses_one_carrier")
    o = make_order("j1", [("SKU-1", 2)])
    d1 = r.route(o.model_dump(mode="json"))
    d2 = r.route(Order.model_validate({**o.model_dump(mode="json"), "order_id": "j2"}))
    assert d1.plan.legs == d2.plan.legs


@pytest.mark.postgres
def test_postgres_ledger_records_replays_and_never_oversells_across_threads(clock):
    with pg_schema_url() as url:
        sc = load_scenario(TINY / "split_needed.yaml")
        r = Router(sc, ledger=url, clock=clock)
        try:
            def worker(t: int) -> None:
                for i in range(6):
                    r.route(make_order(f"pg{t}-{i}", [("SKU-A", 1)], dest={"region": "center"}))

            threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert r.ledger.count_decisions() == 24
            assert r.ledger.reserved_totals() == {("WH-A", "SKU-A"): 5}  # exactly the stock
            routed = [d for d in r.ledger.recent_decisions(30) if d["status"] == "routed"]
            assert len(routed) == 5
            assert r.replay(routed[0]["decision_id"]).matches
            assert r.ledger.verify().ok
        finally:
            r.close()


def test_route_batch_validates_everything_first_and_rolls_back_on_ledger_failure(tiny_router):
    r = tiny_router("split_needed")
    good = [make_order(f"g{i}", [("SKU-C", 1)], dest={"region": "center"}) for i in range(3)]
    bad = {**good[0].model_dump(mode="json"), "order_id": "bad", "lines": [{"sku": "NOPE", "qty": 1}]}
    with pytest.raises(InvalidOrderError) as info:
        r.route_batch([*good, bad])
    assert info.value.field == "orders[3].lines[0].sku"
    assert int(r.state.reserved.sum()) == 0 and r.ledger.count_decisions() == 0

    class DownLedger:
        def append_decisions(self, items, *, pool=None):
            raise OSError("disk full")

        def close(self):
            pass

    real = r.ledger
    r.ledger = DownLedger()
    with pytest.raises(LedgerError, match="batch of 3 decisions not recorded: disk full"):
        r.route_batch(good)
    assert int(r.state.reserved.sum()) == 0 and r.failed_writes == 3
    # an unfulfillable order in the batch reserved nothing; rolling it back is a no-op
    huge = make_order("huge", [("SKU-C", 10_000)], dest={"region": "center"})
    with pytest.raises(LedgerError, match="batch of 4 decisions not recorded"):
        r.route_batch([*good, huge])
    assert int(r.state.reserved.sum()) == 0 and r.failed_writes == 7
    r.ledger = real
    ds = r.route_batch(good)
    assert [d.status for d in ds] == ["routed"] * 3 and real.count_decisions() == 3
    assert sum(real.reserved_totals().values()) == 3


def test_explain_false_routes_identically_without_a_rationale(tiny_router):
    a = tiny_router("tiers_and_storm", ledger=False)
    b = tiny_router("tiers_and_storm", ledger=False)
    for i, tier in enumerate(["standard", "plus", "vip"]):
        o = make_order(f"x{i}", [("SKU-1", 1), ("SKU-2", 2)], tier=tier, dest={"region": "north"})
        full, lean = a.route(o), b.route(o, explain=False)
        assert lean.record["chosen"] == full.record["chosen"]
        assert lean.plan == full.plan and lean.rationale == {} and lean.sentence == ""
    assert np.array_equal(a.state.reserved, b.state.reserved)
    # with a ledger the record is always complete
    c = tiny_router("tiers_and_storm")
    d = c.route(make_order("y", [("SKU-1", 1)]), explain=False)
    assert d.rationale["chosen"] and c.ledger.get_decision(d.decision_id)["inputs"]
