"""The simulator's re-routing policy: the open backlog re-routed every H hours or when a disruption starts.

* without the policy, runs are bit for bit those of the code before it (fingerprints
  computed on that code);
* a node closure with orders queued at the node: at its start they are moved, no final
  plan waits at the closed node, and orders routed before it that were not moved keep
  their delivery exactly (their draws do not move);
* every order's final plan ships exactly its lines, and every reserved unit ships;
* the world's withdrawal leaves the legs behind exactly as if the withdrawn order had
  never been queued (picks, lane slots, closures);
* the same seed twice gives the same run with the policy on.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import yaml
from conftest import SCENARIOS, TINY

from router.errors import RouterError
from router.network import build_network
from router.scenario import load_scenario, parse_scenario
from router.simulation import Simulation, World, simulate
from router.state import LiveState

# Fingerprints of runs without re-routing, computed on the code before the policy
# existed (commit 5ebcd4f). They change only when the engine's decisions or the world
# change on purpose; then recompute them on the commit before such a change.
NATIONAL_250_SEED_5 = "602909810fdae99a3b785baf25b98cbf"
QUEUED_CLOSURE_SEED_1_10H = "376cd6eaf8b5c10b931de91dcdf5dc75"

CLOSED, START, END = "WH-A", 6.0, 30.0


def _queued_closure() -> dict:
    """Two warehouses, WH-A slow (20 picks/h) with a backlog and most demand near it, closed hours 6-30."""
    data = yaml.safe_load((TINY / "two_warehouses_one_carrier.yaml").read_text())
    a, b = data["nodes"]
    data["nodes"] = [dict(a, pick_capacity_per_hour=20, initial_queue_orders=60), dict(b, pick_capacity_per_hour=60)]
    data["regions"][0]["demand_weight"] = 3
    data["stock"] = {n["id"]: {s["id"]: 100_000 for s in data["skus"]} for n in data["nodes"]}
    data["demand"] = dict(data["demand"], orders_per_day=1200)
    data["tiers"] = [{"name": "standard", "promise_hours": 72}]
    data["disruptions"] = [{"kind": "node_closure", "name": "WH-A outage", "node": CLOSED, "start_hour": START, "end_hour": END}]
    return data


@pytest.fixture(scope="module")
def queued():
    return parse_scenario(_queued_closure())


@pytest.fixture(scope="module")
def without(queued):
    return simulate(queued, "optimizer", seed=1, horizon_hours=10.0)


@pytest.fixture(scope="module")
def with_policy(queued):
    return simulate(queued, "optimizer", seed=1, horizon_hours=10.0, reroute_on_disruption=True)


def _det(summary: dict) -> dict:
    """A re-route summary without its wall-clock seconds."""
    out = {k: v for k, v in summary.items() if "seconds" not in k}
    out["per_run"] = [{k: v for k, v in r.items() if k != "seconds"} for r in summary["per_run"]]
    return out


# ------------------------------------------------------------------ policy off
def test_without_rerouting_runs_are_bit_for_bit_those_before_the_policy(without):
    national = load_scenario(SCENARIOS / "national.yaml")
    r = simulate(national, "optimizer", seed=5, max_orders=250)
    assert r.fingerprint() == NATIONAL_250_SEED_5
    assert without.fingerprint() == QUEUED_CLOSURE_SEED_1_10H
    assert without.reroute == {} and "reroute_s" not in without.timings


# ------------------------------------------------------- a closure with a queue
def test_orders_queued_at_a_node_when_it_closes_are_moved_and_none_waits_there(queued, without, with_policy):
    a = queued.node_index[CLOSED]
    legs0 = without.legs
    # without the policy: orders routed to WH-A before the closure wait in its queue until it reopens
    stuck = (legs0.node == a) & (legs0.routed_hours < START) & (legs0.pick_start_hours >= END)
    assert stuck.sum() > 50
    rr = with_policy.reroute
    assert rr["runs"] == 1 and rr["per_run"][0]["at_hours"] == START
    assert "node_closure starts" in rr["per_run"][0]["reason"]
    assert rr["moved"] == rr["per_run"][0]["moved"] > 0 and rr["unplaced"] == 0 and rr["all_optimal"]
    # the orders waiting at WH-A at hour 6 are exactly the orders moved
    assert rr["per_run"][0]["open"] >= stuck.sum()
    assert rr["moved"] == rr["withdrawn_legs"] == stuck.sum()
    legs = with_policy.legs
    at_a = legs.node == a
    # no final plan ships from WH-A through its closure (nothing was left unplaced)
    assert not (at_a & (legs.routed_hours < START) & (legs.pick_start_hours >= END)).any()
    assert not (at_a & (legs.pick_start_hours < END) & (legs.pick_done_hours > START)).any()
    # the moved orders: one new leg each, from WH-B, queued at the closure's start
    moved = np.unique(legs0.order[stuck])
    requeued = np.isin(legs.order, moved)
    assert requeued.sum() == len(moved)
    assert (legs.node[requeued] == queued.node_index["WH-B"]).all()
    assert (legs.routed_hours[requeued] == START).all() and (legs.pick_start_hours[requeued] >= START).all()
    # their rows hold the final plan; arrival and promise stay
    assert (with_policy.node[moved] == queued.node_index["WH-B"]).all()
    assert np.array_equal(with_policy.arrival_hours, without.arrival_hours)
    assert np.array_equal(with_policy.promise_hours, without.promise_hours)
    cost = np.zeros(with_policy.n_orders)
    np.add.at(cost, legs.order, legs.cost_usd)
    assert np.allclose(cost[with_policy.routed], with_policy.cost_usd[with_policy.routed], atol=1e-5)
    # on time: the moved orders leave before the reopening (a few draw a carrier exception on the new lane)
    assert with_policy.on_time.sum() > without.on_time.sum()
    assert (with_policy.delivered_hours[moved] < without.delivered_hours[moved]).mean() > 0.9


def test_orders_routed_before_the_run_and_not_moved_keep_their_outcome_exactly(without, with_policy):
    legs0 = without.legs
    moved = np.unique(legs0.order[(legs0.routed_hours < START) & (legs0.pick_start_hours >= END)])
    before = without.arrival_hours < START
    before[moved] = False
    # their legs were queued before hour 6 and started before it: same pick, departure and draws
    assert before.sum() > 100
    for f in ("delivered_hours", "cost_usd", "shipments", "node"):
        assert np.array_equal(getattr(with_policy, f)[before], getattr(without, f)[before]), f


def test_every_final_plan_ships_exactly_its_orders_lines_and_every_reserved_unit_ships(queued):
    sim = Simulation(queued, "optimizer", seed=1, horizon_hours=10.0, reroute_on_disruption=True, reroute_every_hours=2.0)
    final: dict[int, list] = {}
    schedule = sim.world.schedule

    def spy(i, hours, legs):
        legs = list(legs)
        final[i] = [(n, o, lines) for n, o, lines, _ in legs]  # a re-queue replaces the order's legs
        schedule(i, hours, legs)

    sim.world.schedule = spy  # type: ignore[method-assign]
    sim.run()
    r = sim.finish()
    assert r.reroute["moved"] > 0
    for i, order in enumerate(sim.orders):
        want = Counter()
        for line in order.lines:
            want[line.sku] += line.qty
        got = Counter()
        for _, _, lines in final.get(i, []):
            for sku, qty in lines:
                got[sku] += qty
        assert got == (want if r.routed[i] else Counter()), order.order_id
        # the result's legs are those final legs
        mine = np.flatnonzero(r.legs.order == i)
        assert sorted(zip(r.legs.node[mine].tolist(), r.legs.option[mine].tolist())) == sorted((n, o) for n, o, _ in final.get(i, []))
    # every reservation (old plans released, new ones reserved) was shipped by the drain
    assert int(sim.router.state.reserved.sum()) == 0
    units = sum(q for i, o in enumerate(sim.orders) if r.routed[i] for q in (ln.qty for ln in o.lines))
    assert r.stats["shipped_units"] == units


def test_the_same_seed_twice_gives_the_same_run_with_rerouting_on(queued):
    kw = dict(seed=1, horizon_hours=10.0, reroute_on_disruption=True, reroute_every_hours=2.0)
    a = simulate(queued, "optimizer", **kw)
    b = simulate(queued, "optimizer", **kw)
    assert a.fingerprint() == b.fingerprint()
    assert _det(a.reroute) == _det(b.reroute)
    assert a.reroute["all_optimal"] and a.reroute["moved"] > 0
    assert a.fingerprint() != QUEUED_CLOSURE_SEED_1_10H


def test_runs_fire_every_h_hours_and_at_disruption_starts_once_per_instant(queued):
    r = simulate(queued, "optimizer", seed=1, horizon_hours=10.0, reroute_on_disruption=True, reroute_every_hours=3.0)
    runs = r.reroute["per_run"]
    assert [x["at_hours"] for x in runs] == [3.0, 6.0, 9.0]
    assert runs[1]["reason"] == "every 3 h; node_closure starts (WH-A outage)"
    assert r.reroute["runs"] == 3 and r.reroute["moved"] == sum(x["moved"] for x in runs)
    assert "reroute_s" in r.timings


def test_bad_policies_are_refused(queued, tmp_path):
    with pytest.raises(ValueError, match="reroute_every_hours"):
        Simulation(queued, "optimizer", seed=1, reroute_every_hours=0.0)
    from router.ledger import open_ledger

    with pytest.raises(ValueError, match="without a ledger"):
        Simulation(queued, "optimizer", seed=1, reroute_on_disruption=True,
                   ledger=open_ledger(f"sqlite:///{tmp_path / 'l.sqlite'}"))


# ------------------------------------------------------------ the world's part
def _world(sc):
    net = build_network(sc)
    w = World(sc, net, LiveState(net, sc), seed=3)
    w.enable_withdraw()
    return w


def _lines(k: int):
    return (("SKU-1", 1 + k % 2),)


@pytest.mark.parametrize("closure", [False, True])
def test_withdrawn_legs_leave_the_queue_as_if_never_queued(closure):
    data = _queued_closure()
    data["nodes"] = [dict(n, pick_capacity_per_hour=10, initial_queue_orders=3) for n in data["nodes"]]
    data["lanes"] = [{"node": "WH-A", "carrier": "parcel", "daily_capacity_shipments": 4}]
    data["disruptions"] = [{"kind": "node_closure", "node": "WH-A", "start_hour": 1.0, "end_hour": 5.0}] if closure else []
    sc = parse_scenario(data)
    gone, at = {7, 12, 13}, 0.5
    full, never = _world(sc), _world(sc)
    for i in range(30):
        legs = [(i % 2 if i < 20 else 0, 0, _lines(i), 1.0)]
        full.schedule(i, 0.0, legs)
        if i not in gone:
            never.schedule(i, 0.0, legs)
    assert set(full.waiting_orders(at)) >= gone and 0 not in full.waiting_orders(at)
    assert full.withdraw(sorted(gone), at) == len(gone)
    assert not gone & set(full.waiting_orders(at))
    a = full.legs(np.zeros(30), np.zeros(30) - 90.0, np.zeros(30, dtype=np.int64))
    b = never.legs(np.zeros(30), np.zeros(30) - 90.0, np.zeros(30, dtype=np.int64))
    for f in ("order", "node", "option", "pick_start_hours", "pick_done_hours", "depart_hours", "transit_hours", "delivered_hours"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert full._lane_used == never._lane_used and full.queued == never.queued and full.free_at == never.free_at
    assert np.allclose(full.busy_hours, never.busy_hours)
    # picks at WH-A started (or ran) in the closure never, and slipped a day when the lane was full
    if closure:
        on_a = a.node == 0
        assert not ((a.pick_start_hours[on_a] < 5.0) & (a.pick_done_hours[on_a] > 1.0)).any()
    assert Counter(np.round(a.depart_hours[a.node == 0], 6).tolist()).most_common(1)[0][1] <= 4


def test_a_started_leg_is_never_withdrawn():
    w = _world(parse_scenario(_queued_closure()))
    w.schedule(0, 0.0, [(1, 0, _lines(0), 1.0)])
    assert w.waiting_orders(0.5) == []
    with pytest.raises(RouterError, match="started picking"):
        w.withdraw([0], 0.5)
