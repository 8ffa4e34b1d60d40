"""Delay-risk features: one function for training and inference, point-in-time by construction."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import SCENARIOS, TINY

from router.engine import Router
from router.features import FEATURES, feature_names, lane_features
from router.ledger import open_ledger
from router.legs import lane_metrics
from router.scenario import load_scenario, parse_scenario
from router.simulation import Simulation, simulate
from router.training.rows import ledger_rows, record_rows

COL = {name: i for i, name in enumerate(feature_names())}


@pytest.fixture(scope="module")
def storm():
    return load_scenario(SCENARIOS / "national_storm.yaml")


def test_rows_rebuilt_from_the_ledger_equal_the_rows_the_simulation_collected(storm, tmp_path):
    ledger = open_ledger(f"sqlite:///{tmp_path / 'l.sqlite'}")
    sim = Simulation(storm, "optimizer", seed=3, max_orders=150, ledger=ledger, collect_rows=True, explore=0.3, risk_model=None)
    sim.run()
    r = sim.finish(record_outcomes=True)
    live = r.training["X"]
    assert len(live) == len(r.legs.order) > 150
    net = sim.router.network
    rebuilt = []
    for _i, did in enumerate(r.decision_ids):
        rec = ledger.get_decision(did)
        if rec["chosen"] is None:
            continue
        rows, _ = record_rows(net, rec)
        rebuilt.append(rows)
    rebuilt = np.concatenate(rebuilt)
    np.testing.assert_array_equal(rebuilt, live)  # NaN-aware, bit for bit
    # and through the outcome records: same rows, same labels, in ledger order
    from_ledger = ledger_rows(storm, ledger.iter_outcomes())
    assert len(from_ledger) == len(live)
    assert from_ledger.late.sum() == r.training["late"].sum()
    key = lambda X: np.lexsort(np.nan_to_num(X, nan=-9).T)  # noqa: E731 - order-free comparison
    np.testing.assert_array_equal(from_ledger.X[key(from_ledger.X)], live[key(live)])
    ledger.close()


def test_the_router_scores_the_same_features_it_records(storm):
    """Inference: the rows a LaneRisk model receives are the features of the recorded inputs."""
    seen = []

    class Spy:
        version = "spy-1"

        def __call__(self, net, view, ctx, lanes):
            x = lane_features(net, view, ctx, lanes)
            seen.append(x)
            return np.full(len(x), 0.25)

    from router.demand import generate_orders

    orders = generate_orders(storm, 5, seed=11)
    router = Router(storm, ledger=None, risk_model=Spy())
    router.clock = lambda: orders[0].created_at
    d = router.route(orders[0])
    assert d.record["risk_model"] == {"version": "spy-1"}
    rows, flat = record_rows(router.network, d.record)
    np.testing.assert_array_equal(rows, seen[0][flat])
    # the plan's late risk is the model's: one leg at 0.25
    assert d.record["chosen"]["late_risk"] == pytest.approx(0.25)


def test_no_row_reads_anything_after_its_decision_time():
    """Two worlds identical until hour 6, then a storm in one: every row decided before it is equal."""
    data = yaml.safe_load((TINY / "tiers_and_storm.yaml").read_text())
    data["stock"] = {n: {"SKU-1": 100_000, "SKU-2": 100_000} for n in ("WH-N", "WH-S")} | {"ST-M": {"SKU-1": 500}}
    data["disruptions"] = []
    calm = parse_scenario(data)
    data["disruptions"] = [
        {"kind": "weather", "region": "north", "severity": 2.0, "start_hour": 6, "end_hour": 20},
        {"kind": "lane_slowdown", "carrier": "acme", "factor": 3.0, "start_hour": 6, "end_hour": 20},
    ]
    stormy = parse_scenario(data)
    a = simulate(calm, "optimizer", seed=2, horizon_hours=12, collect_rows=True, explore=0.3, risk_model=None)
    b = simulate(stormy, "optimizer", seed=2, horizon_hours=12, collect_rows=True, explore=0.3, risk_model=None)
    before_a = a.legs.routed_hours < 6.0
    before_b = b.legs.routed_hours < 6.0
    assert before_a.sum() == before_b.sum() > 20
    np.testing.assert_array_equal(a.training["X"][before_a], b.training["X"][before_b])
    # after the storm starts the features see it (weather at the destination, congestion)
    after = ~before_b
    assert (b.training["X"][after, COL["weather_dest"]] > 0).any()
    assert not np.array_equal(a.training["X"][~before_a], b.training["X"][after])
    # but outcomes may differ before hour 6 too (a parcel in transit meets the storm): labels are the future
    assert b.training["late"][before_b].sum() >= a.training["late"][before_a].sum()


def test_feature_values_by_hand(storm):
    from router.demand import generate_orders

    router = Router(storm, ledger=None, risk_model=None)
    order = generate_orders(storm, 3, seed=5)[1]
    now = order.created_at
    ctx = router.contexts.build(order, now, router.state.weather_at_region)
    hours = (now - storm.start).total_seconds() / 3600.0
    # routed shipments so far today: 3 on fedex options at two nodes, 1 on ups
    net = router.network
    fedex = [o for o in range(net.n_options) if net.option_carrier[o] == "fedex"]
    ups = [o for o in range(net.n_options) if net.option_carrier[o] == "ups"]
    router.state.lane_used[0, fedex[0]] = 2
    router.state.lane_used[1, fedex[-1]] = 1
    router.state.lane_used[2, ups[0]] = 1
    view = router.state.view(ctx.sku_idx, hours)
    lanes = lane_metrics(net, view, ctx)
    x = lane_features(net, view, ctx, lanes).reshape(net.n_nodes, net.n_options, len(FEATURES))
    assert x.shape[-1] == len(FEATURES) == 24
    np.testing.assert_array_equal(x[:, :, COL["slack_h"]], ctx.promise_hours - lanes.eta.reshape(net.n_nodes, -1))
    np.testing.assert_array_equal(x[:, :, COL["analytic_risk"]], lanes.risk.reshape(net.n_nodes, -1))
    assert (x[:, fedex, COL["carrier_volume_today"]] == 3).all()
    assert (x[:, ups, COL["carrier_volume_today"]] == 1).all()
    assert x[0, 0, COL["units"]] == ctx.qty.sum()
    assert x[3, 2, COL["node"]] == 3 and x[3, 2, COL["dest_region"]] == ctx.dest_region
    # WH-ATL closes at hour 6 (national_storm): inside the promise window of an order at hour < 6
    atl = storm.node_index["WH-ATL"]
    expect = 1.0 if hours < 6 and 6 - hours < ctx.promise_hours else 0.0
    assert x[atl, 0, COL["closure_in_window"]] == expect
    assert view.closure_ahead_h[atl] == pytest.approx(max(0.0, 6 - hours))
    other = [n for n in range(net.n_nodes) if n != atl]
    assert (x[other, :, COL["closure_in_window"]] == 0).all()
    # an older record's view (no shipped_today, no closure_ahead_h): NaN, read as missing
    old = view.__class__(**{**view.__dict__, "shipped_today": None, "closure_ahead_h": None})
    y = lane_features(net, old, ctx, lanes)
    assert np.isnan(y[:, COL["carrier_volume_today"]]).all() and np.isnan(y[:, COL["closure_in_window"]]).all()
