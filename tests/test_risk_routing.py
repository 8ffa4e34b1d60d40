"""The learned delay risk in routing: the shipped champion, fallbacks, explanations, replay, the life cycle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SCENARIOS

from router.demand import generate_orders
from router.engine import Router
from router.errors import ModelLoadError, ReplayError
from router.features import FEATURES
from router.ledger import open_ledger
from router.legs import ANALYTIC_RISK_VERSION
from router.network import build_network
from router.risk.champion import champion_entry, load_champion, models_dir
from router.risk.lane import LaneRiskModel
from router.scenario import load_scenario
from router.simulation import Simulation

MODELS = ROOT / "models"


@pytest.fixture(scope="module")
def storm():
    return load_scenario(SCENARIOS / "national_storm.yaml")


@pytest.fixture(scope="module")
def champion(storm) -> LaneRiskModel:
    model = load_champion(build_network(storm), MODELS)
    assert isinstance(model, LaneRiskModel), "the national champion ships in models/delay_risk"
    return model


def _route(router: Router, order):
    router.clock = lambda: order.created_at
    return router.route(order)


def test_the_router_uses_the_networks_champion_by_default(storm, champion):
    assert models_dir() == MODELS
    router = Router(storm, ledger=None)
    assert isinstance(router.risk, LaneRiskModel) and router.risk.version == champion.version
    order = generate_orders(storm, 3, seed=4)[0]
    rec = _route(router, order).record
    assert rec["risk_model"]["version"] == champion.version
    assert "fallback" not in rec["risk_model"]
    # the chosen plan's late risk is the model's probability of its one leg's lane
    leg = rec["chosen"]["legs"][0]
    flat = storm.node_index[leg["node_id"]] * router.network.n_options + [
        i for i, k in enumerate(zip(router.network.option_carrier, router.network.option_service))
        if k == (leg["carrier_id"], leg["service"])
    ][0]
    from router.training.rows import record_rows

    rows, lanes = record_rows(router.network, rec)
    assert lanes == [flat]
    p = champion.compiled.predict(rows)[0]
    assert rec["chosen"]["late_risk"] == pytest.approx(1.0 - (1.0 - p), abs=5e-7)  # records keep 6 decimals
    # a network with no trained model routes on the analytic estimate, without a fallback note
    tiny = load_scenario(SCENARIOS / "tiny" / "tiers_and_storm.yaml")
    assert Router(tiny, ledger=None).risk is None


def test_the_loader_refuses_a_model_of_another_network(champion):
    tiny = build_network(load_scenario(SCENARIOS / "tiny" / "tiers_and_storm.yaml"))
    directory = MODELS / "delay_risk" / champion.version
    with pytest.raises(ModelLoadError, match="trained on another network"):
        LaneRiskModel.load(directory, tiny)


def test_a_corrupt_model_falls_back_to_the_analytic_risk_and_the_record_says_so(storm, champion, tmp_path):
    bad = tmp_path / "delay_risk" / champion.version
    shutil.copytree(MODELS / "delay_risk" / champion.version, bad)
    (bad / "model.skops").write_bytes(b"not a skops file at all")
    order = generate_orders(storm, 3, seed=4)[1]
    router = Router(storm, ledger=None, risk_model=bad)
    rec = _route(router, order).record
    assert rec["risk_model"]["version"] == ANALYTIC_RISK_VERSION
    assert "fallback" in rec["risk_model"] and champion.version in rec["risk_model"]["fallback"]
    analytic = _route(Router(storm, ledger=None, risk_model=None), order).record
    assert rec["chosen"]["legs"] == analytic["chosen"]["legs"]
    assert rec["chosen"]["late_risk"] == analytic["chosen"]["late_risk"]
    # the same through the registry: a champion that cannot be loaded
    root = tmp_path
    (root / "delay_risk" / "champions.json").write_text(
        (MODELS / "delay_risk" / "champions.json").read_text(), encoding="utf-8"
    )
    fallback = load_champion(build_network(storm), root)
    assert not isinstance(fallback, LaneRiskModel)
    assert fallback.version == champion.version and "model.skops" in fallback.reason


def test_a_model_failing_at_inference_falls_back_and_is_recorded(storm):
    class Broken:
        version = "broken-1"

        def __call__(self, net, view, ctx, lanes):
            raise RuntimeError("the model ran out of trees")

    class OutOfRange:
        version = "wild-1"

        def __call__(self, net, view, ctx, lanes):
            return np.full(net.n_nodes * net.n_options, 1.5)

    order = generate_orders(storm, 3, seed=4)[2]
    analytic = _route(Router(storm, ledger=None, risk_model=None), order).record
    for model, why in ((Broken(), "ran out of trees"), (OutOfRange(), "outside [0, 1]")):
        rec = _route(Router(storm, ledger=None, risk_model=model), order).record
        assert rec["risk_model"]["version"] == ANALYTIC_RISK_VERSION
        assert why in rec["risk_model"]["fallback"] and model.version in rec["risk_model"]["fallback"]
        assert rec["chosen"]["legs"] == analytic["chosen"]["legs"]


def test_compiled_and_scikit_learn_agree_on_10000_real_rows(storm, champion):
    sim = Simulation(storm, "optimizer", seed=31, max_orders=600, collect_rows=True, explore=0.5, risk_model=None)
    sim.run()
    rows = sim.finish().training["X"]
    rng = np.random.default_rng(0)
    # 10,000 rows: the real ones, and jittered copies of their numeric columns
    numeric = [i for i, (_, kind) in enumerate(FEATURES) if kind != "category"]
    big = rows[rng.integers(0, len(rows), 10_000)].copy()
    big[:, numeric] *= rng.uniform(0.8, 1.2, size=(len(big), len(numeric)))
    sk = champion.model.predict_proba(big)[:, 1]
    fast = champion.compiled.predict(big)
    assert np.abs(sk - fast).max() <= 1e-6
    base, contrib = champion.compiled.contributions(big[:500])
    np.testing.assert_allclose(base + contrib.sum(axis=1), fast[:500], atol=1e-9)


def test_the_rationale_explains_the_risk_of_the_chosen_plan_and_the_runner_up(storm, champion):
    router = Router(storm, ledger=None)
    compared = 0
    for order in generate_orders(storm, 12, seed=9):
        rec = _route(router, order).record
        explain = rec["risk_model"]["explain"]
        assert [e["plan"] for e in explain] == ["chosen", "runner-up"][: len(rec["candidates"])]
        chosen_nodes = {leg[0] for leg in rec["candidates"][0]["legs"]}
        # the runner-up is the plan the sentence compares with: the best one on other nodes
        on_other_nodes = [c for c in rec["candidates"][1:] if {leg[0] for leg in c["legs"]} != chosen_nodes]
        runner = on_other_nodes[0] if on_other_nodes else rec["candidates"][1]
        if on_other_nodes:
            assert f": {runner['legs'][0][0]} by" in rec["rationale"]["sentence"].split("Late risk")[0]
            compared += 1
        for e, cand in zip(explain, [rec["candidates"][0], runner]):
            assert [[leg["node"], leg["carrier"], leg["service"]] for leg in e["legs"]] == [c[:3] for c in cand["legs"]]
            for leg in e["legs"]:
                # the contributions add up to the model's probability
                assert leg["base"] + sum(leg["contributions"].values()) == pytest.approx(leg["p_late"], abs=1e-5)
                assert len(leg["top"]) == 2
        chosen_leg = explain[0]["legs"][0]
        assert chosen_leg["p_late"] == pytest.approx(rec["chosen"]["legs"][0]["late_risk"], abs=1e-6)
        sentence = rec["rationale"]["sentence"]
        assert f"Late risk by model {champion.version}" in sentence
        name, value = chosen_leg["top"][0]
        assert f"{name} {value:+.2f}" in sentence
    assert compared >= 3


def test_replay_loads_the_records_model_version_and_says_when_it_is_missing(storm, champion, tmp_path, monkeypatch):
    ledger = open_ledger(f"sqlite:///{tmp_path / 'l.sqlite'}")
    router = Router(storm, ledger=ledger)
    order = generate_orders(storm, 3, seed=12)[0]
    d = _route(router, order)
    res = router.replay(d.decision_id)
    assert res.matches, res.differences
    # a router on the analytic estimate replays with the record's version, loaded from models/
    other = Router(storm, ledger=ledger, risk_model=None, stock_pool="other")
    assert other.replay(d.decision_id).matches
    # the version is gone from the models folder: one clear sentence
    empty = tmp_path / "models"
    (empty / "delay_risk").mkdir(parents=True)
    monkeypatch.setenv("ROUTER_MODELS_DIR", str(empty))
    with pytest.raises(ReplayError, match=rf"scored by delay-risk model '{champion.version}'.*not in"):
        other.replay(d.decision_id)
    ledger.close()


def test_risk_report_and_a_challenger_from_the_ledger(storm, champion, tmp_path):
    from router.training.workflow import risk_report, train_from_ledger

    root = tmp_path / "models"
    shutil.copytree(MODELS, root)
    url = f"sqlite:///{tmp_path / 'outcomes.sqlite'}"
    ledger = open_ledger(url)
    sim = Simulation(storm, "optimizer", seed=41, horizon_hours=10, ledger=ledger, explore=0.3)
    sim.run()
    sim.finish(record_outcomes=True)
    ledger.close()
    report = risk_report(SCENARIOS / "national_storm.yaml", url, root=root)
    assert report["version"] == champion.version
    assert report["rows"] > 1000
    assert report["card"] == champion.card["metrics_test_window"]["model"]
    assert report["ece_drift"] == pytest.approx(report["recent"]["ece"] - report["card"]["ece"])
    assert report["retrain"] == (report["ece_drift"] > 0.02)
    # a drift threshold below the observed drift says retrain
    strict = risk_report(SCENARIOS / "national_storm.yaml", url, root=root, threshold=report["ece_drift"] - 1e-6)
    assert strict["retrain"] and strict["advice"].startswith("retrain")
    out = train_from_ledger(SCENARIOS / "national_storm.yaml", url, command="test", root=root)
    verdict = out["verdict"]
    assert verdict["champion"]["version"] == champion.version
    assert verdict["challenger"]["version"] == out["version"]
    entry = champion_entry(build_network(storm), root)
    assert entry["version"] == verdict["winner"]
    assert entry["history"][-1]["verdict"]["winner"] == verdict["winner"]
    assert (root / "delay_risk" / out["version"] / "card.json").exists()


@pytest.mark.slow
def test_retraining_the_default_model_from_its_card_command_reproduces_its_metrics(champion, tmp_path):
    card = json.loads((MODELS / "delay_risk" / champion.version / "card.json").read_text())
    command = card["command"].split()
    assert command[:2] == ["router", "train-risk"]
    env = dict(os.environ, ROUTER_MODELS_DIR=str(tmp_path))
    exe = str(Path(sys.executable).with_name("router"))
    done = subprocess.run([exe, *command[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    # The version is named by the hash of the training rows' bytes. numpy's vectorised exp
    # and log differ in the last bit between CPUs (AVX-512 and AVX2 code paths), so on
    # another machine the same command gives the same rows to ~1e-16 under another name:
    # the rows' counts and time ranges must match exactly, the model's and the analytic
    # estimate's metrics to 1e-9, the logistic baseline's to 1e-6 (its iterative fit
    # carries the last bits further).
    made = [p for p in (tmp_path / "delay_risk").iterdir() if p.is_dir()]
    assert len(made) == 1
    again = json.loads((made[0] / "card.json").read_text())
    if made[0].name != champion.version:
        assert again["training"]["data_hash"] != card["training"]["data_hash"]
    for key in ("rows", "late", "calibration_range_hours", "scenarios", "seeds", "explore", "hours"):
        assert again["training"][key] == card["training"][key], key
    for name, metrics in card["metrics_test_window"].items():
        rel = 1e-6 if name == "logistic" else 1e-9
        for key, value in metrics.items():
            assert again["metrics_test_window"][name][key] == pytest.approx(value, rel=rel, abs=1e-12), (name, key)


def test_the_routers_per_region_history_cache_scores_exactly_as_the_model(storm, champion):
    from router.features import lane_features
    from router.legs import lane_metrics

    router = Router(storm, ledger=None)
    scored = 0
    for order in generate_orders(storm, 120, seed=8):
        ctx = router.contexts.build(order, order.created_at, router.state.weather_at_region)
        view = router.state.view(ctx.sku_idx, 1.0)
        lanes = lane_metrics(router.network, view, ctx)
        fast = router.risk(router.network, view, ctx, lanes)
        reference = champion.compiled.predict(lane_features(router.network, view, ctx, lanes))
        usable = (
            router.network.lane_ok & (view.lane_left >= 1.0) & ctx.option_allowed[None, :]
            & (~view.closed & (view.avail > 0).any(axis=1))[:, None]
        ).ravel()
        np.testing.assert_array_equal(fast[usable], reference[usable])
        np.testing.assert_array_equal(fast[~usable], lanes.risk[~usable])  # lanes no plan can use
        scored += int(usable.sum())
    assert scored > 1000
