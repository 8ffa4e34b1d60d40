"""The live events other than stock: what each changes in the view a decision reads.

tiers_and_storm at hour 40 (no disruption window open): nodes WH-N, ST-M, WH-S (only
ST-M lies in a region, mid); options acme ground, acme express, budget ground,
budget 2day; every lane's congestion starts at 1.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY

from router.errors import InvalidEventError
from router.network import build_network
from router.scenario import load_scenario
from router.state import CongestionUpdate, LiveState, LoadUpdate, NodeStatus, WeatherUpdate

ACME_GROUND, ACME_EXPRESS, BUDGET_GROUND, BUDGET_2DAY = range(4)


@pytest.fixture
def st() -> LiveState:
    sc = load_scenario(TINY / "tiers_and_storm.yaml")
    state = LiveState(build_network(sc), sc)
    state.set_clock_hours(40.0)
    return state


def congestion(st: LiveState) -> np.ndarray:
    return st.view(np.array([0])).congestion


def test_congestion_without_filters_slows_every_lane(st):
    st.apply(CongestionUpdate(factor=1.5))
    assert np.array_equal(congestion(st), np.full((3, 4), 1.5))


@pytest.mark.parametrize(
    ("event", "lanes"),
    [
        ({"carrier": "budget"}, [(n, o) for n in range(3) for o in (BUDGET_GROUND, BUDGET_2DAY)]),
        ({"service": "ground"}, [(n, o) for n in range(3) for o in (ACME_GROUND, BUDGET_GROUND)]),
        ({"node": "ST-M"}, [(1, o) for o in range(4)]),
        ({"node": "WH-S", "carrier": "acme", "service": "express"}, [(2, ACME_EXPRESS)]),
        # both filters apply: budget's ground lanes, not acme's
        ({"carrier": "budget", "service": "ground"}, [(n, BUDGET_GROUND) for n in range(3)]),
    ],
)
def test_congestion_slows_exactly_the_matching_lanes(st, event, lanes):
    v = st.version
    assert st.apply(CongestionUpdate(factor=2.0, **event)) == v + 1
    expected = np.ones((3, 4))
    for n, o in lanes:
        expected[n, o] = 2.0
    assert np.array_equal(congestion(st), expected)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"carrier": "pigeon"}, "carrier"),
        ({"service": "teleport"}, "service"),
        ({"node": "WH-Z"}, "node"),
    ],
)
def test_congestion_for_an_unknown_lane_raises_and_changes_nothing(st, event, field):
    v, h = st.version, st.content_hash()
    with pytest.raises(InvalidEventError) as exc:
        st.apply(CongestionUpdate(factor=2.0, **event))
    assert exc.value.field == field and repr(next(iter(event.values()))) in exc.value.reason
    assert st.version == v and st.content_hash() == h


def test_load_update_sets_the_queue_and_keeps_or_sets_throughput(st):
    st.apply(LoadUpdate(node="ST-M", queue_orders=42.0))
    view = st.view(np.array([0]))
    assert view.queue_orders.tolist() == [0.0, 42.0, 0.0]
    assert view.throughput_per_hour.tolist() == [100.0, 10.0, 100.0]
    st.apply(LoadUpdate(node="ST-M", queue_orders=7.0, throughput_per_hour=25.0))
    view = st.view(np.array([0]))
    assert view.queue_orders.tolist() == [0.0, 7.0, 0.0]
    assert view.throughput_per_hour.tolist() == [100.0, 25.0, 100.0]


def test_a_node_closes_with_its_reason_and_reopens_without_one(st):
    st.apply(NodeStatus(node="WH-N", closed=True, reason="fire drill"))
    view = st.view(np.array([0]))
    assert view.closed.tolist() == [True, False, False]
    assert view.closed_reason == ("fire drill", "", "")
    st.apply(NodeStatus(node="WH-N", closed=False, reason="all clear"))
    view = st.view(np.array([0]))
    assert not view.closed.any() and view.closed_reason == ("", "", "")


def test_a_reopened_node_keeps_no_reason_that_could_mask_a_scheduled_closure(st):
    # WH-S is closed by the scenario from hour 0 to 24 ("WH-S power outage")
    st.apply(NodeStatus(node="WH-S", closed=True, reason="flood"))
    st.apply(NodeStatus(node="WH-S", closed=False, reason="water gone"))
    st.set_clock_hours(1.0)
    view = st.view(np.array([0]))
    assert view.closed.tolist() == [False, False, True]
    assert view.closed_reason == ("", "", "closed (WH-S power outage)")


def test_weather_reaches_the_nodes_of_its_region_and_an_unknown_region_is_refused(st):
    st.apply(WeatherUpdate(region="mid", severity=2.5))
    assert st.view(np.array([0])).weather_node.tolist() == [0.0, 2.5, 0.0]
    v, h = st.version, st.content_hash()
    with pytest.raises(InvalidEventError) as exc:
        st.apply(WeatherUpdate(region="atlantis", severity=1.0))
    assert exc.value.field == "region" and exc.value.reason == "unknown region 'atlantis'"
    assert st.version == v and st.content_hash() == h
