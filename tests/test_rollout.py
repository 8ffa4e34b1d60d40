"""Strategy rollout: versions in the ledger, shadow, sticky canary, circuit breaker, guards, hot reload."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import numpy as np
import pytest
from conftest import TINY, FixedClock, make_order, pg_schema_url

from router.engine import Router
from router.errors import ReplayError
from router.ledger import open_ledger
from router.rollout import GuardOptions, RolloutOptions, canary_bucket, in_canary
from router.scenario import load_scenario
from router.state import StockSet
from router.strategies import CheapestStrategy, OptimizerStrategy, default_strategies

SCENARIO = TINY / "two_warehouses_one_carrier.yaml"


class Farthest:
    """Prefers the farthest node: a shadow or canary whose choice differs from the optimizer's."""

    rule = "the farthest node first"

    def __init__(self, name: str = "farthest", version: str = "1") -> None:
        self.name, self.version = name, version

    def rank(self, cs, scores, ctx):
        return np.argsort(-cs.leg_miles.sum(axis=1), kind="stable")


class Flaky:
    """A strategy whose rank raises while ``failing`` is set (an injected failure)."""

    rule = "the optimizer's ranking, when it does not fail"

    def __init__(self, name: str = "flaky", version: str = "1") -> None:
        self.name, self.version = name, version
        self.failing = True
        self.calls = 0

    def rank(self, cs, scores, ctx):
        self.calls += 1
        if self.failing:
            raise RuntimeError("injected failure")
        return np.argsort(scores.total, kind="stable")


def _version(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def loader(name: str, body: dict):
    """A test stand-in for the strategy-file compiler: the body names a built-in ranking."""
    s = Farthest(name, _version(body)) if body["rank"] == "farthest" else Flaky(name, _version(body))
    if body["rank"] == "optimizer":
        s.failing = False
    return s


def _router(tmp_path, clock, *, ledger=True, strategies=None, strategy="optimizer", name="ledger", **kw) -> Router:
    sc = load_scenario(SCENARIO)
    url = f"sqlite:///{tmp_path / (name + '.sqlite')}" if ledger else None
    return Router(sc, ledger=url, clock=clock, strategies=strategies, strategy=strategy, risk_model=None, **kw)


def _stock_up(router: Router, units: int = 100_000) -> None:
    for node in ("WH-A", "WH-B"):
        router.state.apply(StockSet(node=node, sku="SKU-1", on_hand=units))


def _orders(n: int, prefix: str = "o", region: str = "north"):
    return [make_order(f"{prefix}{i}", dest={"region": region}) for i in range(n)]


# -- canary assignment ------------------------------------------------------------------------------


@pytest.mark.parametrize("percent", [1.0, 10.0, 25.0, 50.0])
def test_canary_share_is_within_one_point_over_10000_orders(tmp_path, clock, percent):
    r = _router(tmp_path, clock, ledger=False)
    r.add_strategy_version(Farthest())
    r.set_strategy_mode("farthest", "1", "canary", percent=percent, actor="ops", reason="try it")
    orders = _orders(10_000)
    arms = [r.rollout.plan(o, "optimizer").arm["arm"] for o in orders]
    share = 100.0 * arms.count("canary") / len(arms)
    assert abs(share - percent) <= 1.0
    # sticky: the same key lands in the same arm again, and matches the documented hash
    again = [r.rollout.plan(o, "optimizer").arm["arm"] for o in orders]
    assert again == arms
    assert [in_canary(o.order_id, percent, "farthest:1") for o in orders] == [a == "canary" for a in arms]


def test_canary_is_sticky_per_customer_and_deterministic():
    assert canary_bucket("c-42", "x:1") == canary_bucket("c-42", "x:1")
    assert 0 <= canary_bucket("anything", "x:1") < 10_000
    # a new version re-slices the keys: another salt
    assert [canary_bucket(f"k{i}", "x:1") for i in range(50)] != [canary_bucket(f"k{i}", "x:2") for i in range(50)]


def test_customer_sticky_canary_puts_every_order_of_a_customer_in_one_arm(tmp_path, clock):
    r = _router(tmp_path, clock, ledger=False, rollout=RolloutOptions(sticky="customer"))
    r.add_strategy_version(Farthest())
    r.set_strategy_mode("farthest", "1", "canary", percent=50, actor="ops", reason="try it")
    for c in range(40):
        orders = [make_order(f"c{c}-o{i}").model_copy(update={"customer": make_order(f"{c}").customer}) for i in range(5)]
        assert len({r.rollout.plan(o, "optimizer").arm["arm"] for o in orders}) == 1


def test_canary_decisions_use_the_canary_and_say_their_arm(tmp_path, clock):
    r = _router(tmp_path, clock)
    _stock_up(r)
    r.add_strategy_version(Farthest())
    r.set_strategy_mode("farthest", "1", "canary", percent=30, actor="ops", reason="try it")
    decisions = r.route_batch(_orders(60))
    for d in decisions:
        arm = d.record["canary"]
        expected = "canary" if in_canary(d.order_id, 30, "farthest:1") else "control"
        assert arm["arm"] == expected and arm["percent"] == 30
        node = d.record["chosen"]["legs"][0]["node_id"]
        if expected == "canary":
            assert (arm["strategy"], arm["version"], d.strategy, node) == ("farthest", "1", "farthest", "WH-B")
        else:
            assert (arm["strategy"], arm["version"], d.strategy, node) == ("optimizer", "1", "optimizer", "WH-A")
    # a canary decision replays with its own strategy
    canary = next(d for d in decisions if d.record["canary"]["arm"] == "canary")
    assert r.replay(canary.decision_id).matches


def test_without_a_rollout_records_are_as_before(tmp_path, clock):
    r = _router(tmp_path, clock)
    d = r.route(make_order("plain"))
    assert d.record["canary"] is None
    assert "shadow" not in d.record and "breaker" not in d.record


# -- shadow -----------------------------------------------------------------------------------------


def test_shadow_never_reserves_stock_and_its_records_are_marked(tmp_path, clock):
    with_shadow = _router(tmp_path, clock, name="shadow")
    plain = _router(tmp_path, clock, name="plain")
    with_shadow.add_strategy_version(Farthest())
    with_shadow.set_strategy_mode("farthest", "1", "shadow", actor="ops", reason="watch it")
    stock_before = with_shadow.ledger.stock_levels(with_shadow.stock_pool)
    orders = _orders(6)
    got = [with_shadow.route(o) for o in orders]
    want = [plain.route(o) for o in orders]
    for d, p in zip(got, want):
        assert d.record["chosen"] == p.record["chosen"]  # the live decision is the control's
        assert d.record["canary"]["arm"] == "control"
        sh = d.record["shadow"]
        assert (sh["strategy"], sh["version"], sh["used"]) == ("farthest", "1", "farthest")
        assert sh["plan"]["legs"][0]["node_id"] == "WH-B"  # what it would have done
        stored = with_shadow.ledger.get_decision(d.decision_id)
        assert stored["shadow"] == sh
    # the stock moved exactly as without the shadow: only the control's WH-A units
    after = with_shadow.ledger.stock_levels(with_shadow.stock_pool)
    assert after[("WH-B", "SKU-1")] == stock_before[("WH-B", "SKU-1")]
    assert after == plain.ledger.stock_levels(plain.stock_pool)
    assert with_shadow.ledger.reserved_totals() == plain.ledger.reserved_totals()
    health = {(h["strategy"], h["version"]): h for h in with_shadow.strategy_status()["health"]}
    assert health[("farthest", "1")]["decisions"] == 6


# -- circuit breaker ---------------------------------------------------------------------------------


def _flaky_router(tmp_path, clock, **kw):
    flaky = Flaky()
    strategies = default_strategies().with_strategy(flaky, ("nearest",))
    r = _router(tmp_path, clock, strategies=strategies, strategy="flaky",
                rollout=RolloutOptions(breaker_cooldown_s=60), **kw)
    _stock_up(r)
    return r, flaky


def test_breaker_opens_after_exactly_3_failures_and_closes_after_one_good_trial(tmp_path, clock):
    r, flaky = _flaky_router(tmp_path, clock)
    for i in range(3):
        d = r.route(make_order(f"f{i}"))
        assert d.strategy == "nearest" and d.record["fallback"]["causes"][0]["strategy"] == "flaky"
        assert "breaker" not in d.record  # it ran (and failed): not skipped
        assert r.rollout.breakers[("flaky", "1")].state == ("open" if i == 2 else "closed")
    assert flaky.calls == 3
    # open: straight to the fallback chain, the strategy is not called, the record says why
    for i in range(3):
        clock.now += timedelta(seconds=10)
        d = r.route(make_order(f"open{i}"))
        assert flaky.calls == 3
        assert d.strategy == "nearest"
        assert d.record["breaker"]["state"] == "open"
        assert "3 consecutive failures" in d.record["breaker"]["reason"]
        assert d.record["strategy"]["requested"] == "flaky"
        assert d.record["fallback"]["causes"][0]["stage"] == "breaker"
        assert r.replay(d.decision_id).matches
    # after the cool-down ONE trial goes through; it succeeds and closes the breaker
    flaky.failing = False
    clock.now += timedelta(seconds=60)
    d = r.route(make_order("trial"))
    assert flaky.calls == 4
    assert d.strategy == "flaky"
    assert d.record["breaker"]["state"] == "half_open" and d.record["breaker"]["trial"] == "passed"
    assert r.rollout.breakers[("flaky", "1")].state == "closed"
    d = r.route(make_order("after"))
    assert d.strategy == "flaky" and "breaker" not in d.record
    status = r.strategy_status()
    assert status["breakers"][0]["state"] == "closed" and status["breakers"][0]["opened"] == 1


def test_a_failed_trial_opens_the_breaker_again(tmp_path, clock):
    r, flaky = _flaky_router(tmp_path, clock)
    for i in range(3):
        r.route(make_order(f"f{i}"))
    clock.now += timedelta(seconds=61)
    d = r.route(make_order("trial"))
    assert d.record["breaker"]["state"] == "half_open" and d.record["breaker"]["trial"] == "failed"
    assert flaky.calls == 4
    d = r.route(make_order("next"))
    assert flaky.calls == 4 and d.record["breaker"]["state"] == "open"
    assert "trial failed" in d.record["breaker"]["reason"]


def test_a_successful_decision_resets_the_failure_count(tmp_path, clock):
    r, flaky = _flaky_router(tmp_path, clock, ledger=False)
    r.route(make_order("a"))
    r.route(make_order("b"))
    flaky.failing = False
    r.route(make_order("c"))
    flaky.failing = True
    r.route(make_order("d"))
    r.route(make_order("e"))
    assert r.rollout.breakers[("flaky", "1")].state == "closed"
    r.route(make_order("f"))
    assert r.rollout.breakers[("flaky", "1")].state == "open"


# -- guards ------------------------------------------------------------------------------------------


def test_error_rate_guard_rolls_the_canary_back_and_the_record_names_it(tmp_path, clock):
    guards = GuardOptions(min_decisions=20, max_error_rate=0.05)
    r = _router(tmp_path, clock, rollout=RolloutOptions(guards=guards))
    _stock_up(r)
    bad = Flaky("optimizer", "2")  # a new version of the control's own name that fails
    r.add_strategy_version(bad)
    r.set_strategy_mode("optimizer", "2", "canary", percent=50, actor="ops", reason="new weights")
    arms = []
    for o in _orders(120):
        arms.append((r.route(o).record["canary"] or {}).get("arm"))
    assert r.rollout.canary is None  # rolled back by itself
    n_canary = arms.index(None)  # the first decision after the rollback has no experiment
    assert arms[:n_canary].count("canary") == 20  # exactly when the guard had its minimum sample
    modes = r.ledger.modes_since(0)
    last = modes[-1]
    assert (last["name"], last["version"], last["mode"]) == ("optimizer", "2", "off")
    assert last["actor"] == "guard:error_rate"
    assert last["guard"]["guard"] == "error_rate" and last["guard"]["samples"] == 20
    assert last["guard"]["value"] > 0.05 and "error rate" in last["reason"]
    assert r.strategy_status()["trips"][0]["guard"] == "error_rate"
    assert r.ledger.verify().ok


def test_on_time_guard_rolls_back_a_canary_that_is_late_against_control(tmp_path, clock):
    guards = GuardOptions(min_outcomes=10, on_time_margin=0.05)
    r = _router(tmp_path, clock, ledger=False, rollout=RolloutOptions(guards=guards))
    _stock_up(r)
    r.add_strategy_version(Farthest())
    r.set_strategy_mode("farthest", "1", "canary", percent=50, actor="ops", reason="try it")
    decisions = r.route_batch(_orders(80))
    for d in decisions:
        # the canary's deliveries are late, the control's on time
        r.observe_outcome(d.order_id, clock.now, on_time=d.record["canary"]["arm"] == "control")
    assert r.rollout.canary is None
    trip = r.strategy_status()["trips"][0]
    assert trip["guard"] == "on_time_vs_control"
    assert trip["value"] == 0.0 and trip["control"] == 1.0 and trip["samples"] == 10
    assert r.rollout.modes[("farthest", "1")]["actor"] == "guard:on_time_vs_control"


def test_latency_guard_trips_on_a_slow_canary(tmp_path, clock):
    guards = GuardOptions(min_latency_samples=5, max_p99_ms=0.0001, min_decisions=10_000)
    r = _router(tmp_path, clock, ledger=False, rollout=RolloutOptions(guards=guards))
    _stock_up(r)
    r.add_strategy_version(Farthest())
    r.set_strategy_mode("farthest", "1", "canary", percent=100, actor="ops", reason="try it")
    r.route_batch(_orders(40))
    assert r.rollout.canary is None
    assert r.strategy_status()["trips"][0]["guard"] == "p99_latency"


# -- versions, replay and hot reload ---------------------------------------------------------------------


def test_a_mode_change_through_one_router_is_picked_up_by_another_without_restart(tmp_path):
    clock = FixedClock()
    opts = RolloutOptions(poll_ms=0)
    a = _router(tmp_path, clock, rollout=opts, strategy_loader=loader)
    b = _router(tmp_path, clock, rollout=opts, strategy_loader=loader)
    _stock_up(a)
    b.refresh_stock()
    body = {"rank": "farthest"}
    version = _version(body)
    strat = loader("holiday", body)
    assert a.add_strategy_version(strat, body=body, author="ops", reason="holiday rules")
    assert not a.add_strategy_version(strat, body={"rank": "farthest", "x": 1}, author="x", reason="again")
    assert b.route(make_order("before")).record["canary"] is None
    a.set_strategy_mode("holiday", version, "canary", percent=100, actor="ops", reason="all in")
    # b never saw the strategy object: it builds it from the ledger's stored body
    d = b.route(make_order("after"))
    assert d.record["canary"] == {"arm": "canary", "strategy": "holiday", "version": version, "percent": 100.0}
    assert d.strategy == "holiday" and d.record["strategy"]["version"] == version
    a.set_strategy_mode("holiday", version, "off", actor="ops", reason="done")
    assert b.route(make_order("off")).record["canary"] is None
    # a third router, started later, replays the canary decision with the recorded version
    c = _router(tmp_path, clock, strategy_loader=loader)
    assert c.replay(d.decision_id).matches
    assert [m["mode"] for m in c.ledger.modes_since(0)] == ["canary", "off"]
    assert c.ledger.get_strategy_version(version)["author"] == "ops"


def test_a_version_put_on_replaces_its_name_and_off_returns_to_the_original(tmp_path, clock):
    r = _router(tmp_path, clock, rollout=RolloutOptions(poll_ms=0))
    _stock_up(r)
    v2 = Farthest("optimizer", "2")
    r.add_strategy_version(v2)
    r.set_strategy_mode("optimizer", "2", "on", actor="ops", reason="new version")
    d = r.route(make_order("on"))
    assert d.record["strategy"]["version"] == "2" and d.record["chosen"]["legs"][0]["node_id"] == "WH-B"
    r.set_strategy_mode("optimizer", "2", "off", actor="ops", reason="back")
    d1 = r.route(make_order("back"))
    assert d1.record["strategy"]["version"] == "1" and d1.record["chosen"]["legs"][0]["node_id"] == "WH-A"
    # replay uses the version each decision used
    assert r.replay(d.decision_id).matches and r.replay(d1.decision_id).matches


def test_replay_of_an_unknown_version_is_refused(tmp_path, clock):
    r = _router(tmp_path, clock)
    _stock_up(r)
    r.add_strategy_version(Farthest("optimizer", "2"))
    r.set_strategy_mode("optimizer", "2", "on", actor="ops", reason="new version")
    d = r.route(make_order("on"))
    fresh = _router(tmp_path, clock)  # knows version 2 of optimizer from nowhere
    assert fresh.rollout.unresolved  # the "on" record cannot be applied: visible, and it stays off
    with pytest.raises(ReplayError, match="version '2'"):
        fresh.replay(d.decision_id)


def test_mode_changes_are_hash_linked_and_an_edit_is_detected(tmp_path, clock):
    r = _router(tmp_path, clock)
    r.add_strategy_version(CheapestStrategy())
    r.set_strategy_mode("cheapest", "1", "shadow", actor="ops", reason="watch")
    r.set_strategy_mode("cheapest", "1", "off", actor="ops", reason="stop")
    assert r.ledger.verify().ok
    url = r.ledger.url
    import sqlite3

    path = url.split("sqlite:///", 1)[1]
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE strategy_modes SET actor = 'someone else' WHERE seq = 1")
    with open_ledger(url) as ledger:
        report = ledger.verify()
    assert not report.ok and "strategy_modes seq 1" in report.reason


def test_bad_mode_changes_are_refused(tmp_path, clock):
    r = _router(tmp_path, clock)
    with pytest.raises(ValueError, match="mode must be one of"):
        r.set_strategy_mode("optimizer", "1", "half", actor="ops", reason="x")
    with pytest.raises(ValueError, match="percent"):
        r.set_strategy_mode("optimizer", "1", "canary", percent=150, actor="ops", reason="x")
    with pytest.raises(ValueError, match="unknown here"):
        r.set_strategy_mode("optimizer", "9", "canary", percent=5, actor="ops", reason="x")
    assert r.ledger.modes_head() == 0


def test_registry_keeps_versions():
    s = default_strategies()
    assert s.get_version("optimizer", "1") is s.get("optimizer")
    assert s.get_version("optimizer", "2") is None
    v2 = Farthest("optimizer", "2")
    s.add_version(v2)
    assert s.get_version("optimizer", "2") is v2 and s.get("optimizer").version == "1"
    assert isinstance(s.get("optimizer"), OptimizerStrategy)


# -- CLI: a strategy file put on canary through the ledger, then status --------------------------------

HOLIDAY = """\
name: holiday
description: the optimizer with late risk dearer before a sale
ranking:
  optimizer:
    weights: {late_risk_usd: 30}
fallback: [nearest]
"""


def test_cli_mode_stores_a_file_version_and_a_running_router_picks_it_up(tmp_path):
    from typer.testing import CliRunner

    from router.cli import app, default_scenario
    from router.demand import generate_orders
    from router.strategy_spec import load_strategy_file, spec_version

    sc = load_scenario(default_scenario())
    orders = generate_orders(sc, 3, seed=5)
    clock = FixedClock(orders[-1].created_at)
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    r = Router(sc, ledger=url, clock=clock, risk_model=None, rollout=RolloutOptions(poll_ms=0))
    path = tmp_path / "holiday.yaml"
    path.write_text(HOLIDAY)
    version = spec_version(load_strategy_file(path, sc))
    runner = CliRunner()
    args = ["strategy", "mode", "holiday", "--file", str(path), "--mode", "canary", "--percent", "100",
            "--actor", "ops", "--reason", "sale week", "--ledger", url]
    res = runner.invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert f"stored holiday version {version[:12]}" in res.output and "canary 100 %" in res.output
    d = r.route(orders[0])
    assert d.record["canary"] == {"arm": "canary", "strategy": "holiday", "version": version, "percent": 100.0}
    assert d.record["strategy"]["version"] == version
    assert r.replay(d.decision_id).matches

    res = runner.invoke(app, ["strategy", "status", "--ledger", url], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "holiday" in res.output and "canary" in res.output and "sale week" in res.output
    res = runner.invoke(app, ["strategy", "status", "--ledger", url, "--json"], catch_exceptions=False)
    status = json.loads(res.output)
    assert status["modes"][0]["mode"] == "canary" and status["versions"][0]["version"] == version
    assert status["health"][0]["arm"] == "canary" and status["health"][0]["decisions"] == 1

    # an unknown version is refused, and nothing is recorded
    bad = ["strategy", "mode", "holiday", "--version", "f" * 64, "--mode", "on", "--actor", "ops", "--reason", "x",
           "--ledger", url]
    res = runner.invoke(app, bad)
    assert res.exit_code == 2 and "not stored in the ledger" in res.output
    res = runner.invoke(app, ["strategy", "mode", "holiday", "--version", version, "--mode", "off",
                              "--actor", "ops", "--reason", "sale over", "--ledger", url], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert r.route(orders[1]).record["canary"] is None
    with open_ledger(url) as led:
        assert [m["mode"] for m in led.modes_since(0)] == ["canary", "off"]


def test_on_postgresql_a_mode_change_reaches_another_router_and_the_log_verifies():
    clock = FixedClock()
    with pg_schema_url() as url:
        sc = load_scenario(SCENARIO)
        opts = RolloutOptions(poll_ms=0)
        a = Router(sc, ledger=url, clock=clock, risk_model=None, rollout=opts, strategy_loader=loader)
        b = Router(sc, ledger=url, clock=clock, risk_model=None, rollout=opts, strategy_loader=loader)
        try:
            body = {"rank": "farthest"}
            version = _version(body)
            a.add_strategy_version(loader("holiday", body), body=body, author="ops", reason="holiday rules")
            a.set_strategy_mode("holiday", version, "shadow", actor="ops", reason="watch")
            d = b.route(make_order("pg1"))
            assert d.record["shadow"]["version"] == version and d.record["canary"]["arm"] == "control"
            a.set_strategy_mode("holiday", version, "off", actor="ops", reason="stop")
            assert "shadow" not in b.route(make_order("pg2")).record
            report = b.ledger.verify()
            assert report.ok and "2 strategy mode changes intact" in report.reason
        finally:
            a.close()
            b.close()
