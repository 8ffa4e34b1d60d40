"""What the simulated world does that the router's estimate does not know: lane bias,
parcel exceptions and carrier volume stretch (scenario ``world:``; docs/simulation.md)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import SCENARIOS, TINY

from router.errors import ScenarioError
from router.network import build_network
from router.scenario import load_scenario, parse_scenario
from router.simulation import World, simulate
from router.state import LiveState


def _tiny(**world) -> dict:
    data = yaml.safe_load((TINY / "tiers_and_storm.yaml").read_text())
    data["stock"] = {n: {"SKU-1": 100_000, "SKU-2": 100_000} for n in ("WH-N", "WH-S")} | {"ST-M": {"SKU-1": 500}}
    data["disruptions"] = []
    if world:
        data["world"] = world
    return data


def _world(sc) -> World:
    net = build_network(sc)
    return World(sc, net, LiveState(net, sc), seed=1)


def test_lane_bias_is_lognormal_with_mean_one_and_sd_015_fixed_by_the_world_seed():
    sc = load_scenario(SCENARIOS / "national.yaml")
    w = _world(sc)
    n_opt, n_nodes, n_reg = len(sc.options), len(sc.nodes), len(sc.regions)
    o, n, r = (a.ravel() for a in np.meshgrid(np.arange(n_opt), np.arange(n_nodes), np.arange(n_reg), indexing="ij"))
    # many lanes: draw the factor of 200 synthetic regions too, for the moments
    big_r = np.repeat(np.arange(200), n_opt * n_nodes)
    big_o = np.tile(np.repeat(np.arange(n_opt), n_nodes), 200)
    big_n = np.tile(np.arange(n_nodes), 200 * n_opt)
    f = w.lane_bias(big_n, big_o, big_r)
    assert f.mean() == pytest.approx(1.0, abs=0.01)
    assert f.std() == pytest.approx(0.15, abs=0.01)
    assert (f > 0).all()
    # the same lanes get the same factor in a world of another simulation seed: it is the scenario's
    net = build_network(sc)
    other = World(sc, net, LiveState(net, sc), seed=999)
    np.testing.assert_array_equal(w.lane_bias(n, o, r), other.lane_bias(n, o, r))
    # and another world seed draws other factors
    data = yaml.safe_load((SCENARIOS / "national.yaml").read_text())
    data["world"] = {"seed": 7}
    moved = _world(parse_scenario(data))
    assert not np.allclose(moved.lane_bias(n, o, r), w.lane_bias(n, o, r))


def test_lane_bias_persists_across_simulation_seeds_and_is_one_when_sd_is_zero():
    sc = parse_scenario(_tiny())
    a = simulate(sc, "nearest", seed=1, horizon_hours=12)
    b = simulate(sc, "nearest", seed=2, horizon_hours=12)
    region_a = a.region[a.legs.order]
    region_b = b.region[b.legs.order]
    bias_a = {(n, o, g): x for n, o, g, x in zip(a.legs.node, a.legs.option, region_a, a.legs.lane_bias)}
    shared = 0
    for n, o, g, x in zip(b.legs.node, b.legs.option, region_b, b.legs.lane_bias):
        if (n, o, g) in bias_a:
            assert bias_a[(n, o, g)] == x
            shared += 1
    assert shared > 50
    flat = simulate(parse_scenario(_tiny(lane_bias_sd=0.0)), "nearest", seed=1, horizon_hours=12)
    assert (flat.legs.lane_bias == 1.0).all()


def test_exceptions_hit_the_carriers_share_of_parcels_and_add_24_to_72_hours():
    sc = parse_scenario(_tiny(exception_probability=0.2, carriers={"acme": {"exception_probability": 0.0}}))
    r = simulate(sc, "cheapest", seed=3, horizon_hours=48)
    legs = r.legs
    carrier = np.array([r.option_labels[o][0] for o in legs.option])
    hit = legs.exception_hours > 0
    assert not hit[carrier == "acme"].any()
    budget = carrier == "budget"
    k, n = int(hit[budget].sum()), int(budget.sum())
    assert n > 300
    # binomial: within 4 standard errors of 20 %
    assert abs(k / n - 0.2) < 4 * np.sqrt(0.2 * 0.8 / n)
    assert legs.exception_hours[hit].min() >= 24.0 and legs.exception_hours[hit].max() <= 72.0
    assert legs.exception_hours[hit].std() > 5.0  # uniform over the range, not a constant
    # the default is 2 %, every carrier
    default = simulate(parse_scenario(_tiny()), "cheapest", seed=3, horizon_hours=24).legs
    share = float((default.exception_hours > 0).mean())
    assert abs(share - 0.02) < 4 * np.sqrt(0.02 * 0.98 / len(default.order))


def test_volume_stretch_is_one_plus_the_days_excess_over_the_carriers_capacity():
    sc = parse_scenario(_tiny(carriers={"budget": {"daily_capacity_shipments": 40}}))
    r = simulate(sc, "cheapest", seed=5, horizon_hours=48)
    legs = r.legs
    carrier = np.array([r.option_labels[o][0] for o in legs.option])
    off = sc.start.hour + sc.start.minute / 60.0
    day = np.floor((legs.depart_hours + off) / 24.0)
    expected = np.ones(len(day))
    for d in np.unique(day):
        sel = (carrier == "budget") & (day == d)
        expected[sel] = 1.0 + max(0.0, sel.sum() / 40.0 - 1.0)
    np.testing.assert_array_equal(legs.volume_stretch, expected)
    assert legs.volume_stretch.max() > 1.5  # the capacity was exceeded on some day
    unlimited = simulate(parse_scenario(_tiny()), "cheapest", seed=5, horizon_hours=48)
    assert (unlimited.legs.volume_stretch == 1.0).all()


def test_world_fields_are_checked():
    with pytest.raises(ScenarioError, match=r"world\.carriers\.nope.*unknown carrier"):
        parse_scenario(_tiny(carriers={"nope": {"exception_probability": 0.1}}))
    with pytest.raises(ScenarioError, match="exception_delay_hours"):
        parse_scenario(_tiny(exception_delay_hours=[72, 24]))
    with pytest.raises(ScenarioError, match="exception_probability"):
        parse_scenario(_tiny(exception_probability=1.5))
