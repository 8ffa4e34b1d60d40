"""Reservations on the live state: try_reserve, release, ship and the stock events, directly.

The routing tests reach these only through ``route()``, which checks stock itself
before it reserves, so they cannot see a broken check here. These tests call the
state's methods on the tiny scenarios and assert the exact numbers.

two_warehouses_one_carrier: WH-A holds SKU-1 x 10 and SKU-2 x 5, WH-B holds SKU-1 x 10
and SKU-3 x 5; one option (parcel ground), no daily lane limit.
tiers_and_storm: WH-N, ST-M, WH-S; options acme ground, acme express, budget ground,
budget 2day; WH-N's two budget lanes take 10 shipments a day.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from conftest import TINY

from router.errors import InvalidEventError
from router.network import build_network
from router.scenario import load_scenario
from router.state import LiveState, Shipped, StockAdjust, StockSet


def live_state(name: str = "two_warehouses_one_carrier") -> LiveState:
    sc = load_scenario(TINY / f"{name}.yaml")
    return LiveState(build_network(sc), sc)


def snapshot(st: LiveState) -> dict:
    """Everything a reservation may touch, copied."""
    return {
        "on_hand": st.on_hand.copy(),
        "reserved": st.reserved.copy(),
        "lane_used": st.lane_used.copy(),
        "queue_orders": st.queue_orders.copy(),
        "version": st.version,
        "content_hash": st.content_hash(),
    }


def assert_unchanged(st: LiveState, before: dict) -> None:
    after = snapshot(st)
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(after[key], value), key
        else:
            assert after[key] == value, key


def cell(st: LiveState, node: str, sku: str) -> tuple[int, int]:
    return st.node_idx(node), st.sku_idx(sku)


# ------------------------------------------------------------------ try_reserve


def test_reserve_and_release_move_reserved_and_available_by_exactly_the_quantities():
    st = live_state()
    a1, b1, a2 = cell(st, "WH-A", "SKU-1"), cell(st, "WH-B", "SKU-1"), cell(st, "WH-A", "SKU-2")
    v0 = st.version

    assert st.try_reserve([a1[0]], [a1[1]], [3]) is True
    assert st.reserved[a1] == 3 and st.available()[a1] == 7 and st.on_hand[a1] == 10
    assert st.version == v0 + 1

    # numpy arrays work as lists do; two cells in one call
    assert st.try_reserve(np.array([a1[0], b1[0]]), np.array([a1[1], b1[1]]), np.array([2, 4])) is True
    assert st.reserved[a1] == 5 and st.available()[a1] == 5
    assert st.reserved[b1] == 4 and st.available()[b1] == 6
    assert st.version == v0 + 2

    st.release([a1[0]], [a1[1]], [4])
    assert st.reserved[a1] == 1 and st.available()[a1] == 9
    assert st.reserved[b1] == 4 and st.reserved[a2] == 0
    assert st.version == v0 + 3
    # every other cell is untouched, and on-hand never moves on reserve or release
    expected = np.zeros_like(st.reserved)
    expected[a1], expected[b1] = 1, 4
    assert np.array_equal(st.reserved, expected)
    assert st.on_hand.tolist() == [[10, 5, 0], [10, 0, 5]]


def test_exactly_the_available_units_fit_and_one_more_does_not():
    st = live_state()
    n, k = cell(st, "WH-A", "SKU-2")  # 5 on hand
    assert st.try_reserve([n], [k], [4]) is True
    before = snapshot(st)
    assert st.try_reserve([n], [k], [2]) is False
    assert_unchanged(st, before)
    assert st.try_reserve([n], [k], [1]) is True
    assert st.reserved[n, k] == 5 and st.available()[n, k] == 0
    before = snapshot(st)
    assert st.try_reserve([n], [k], [1]) is False
    assert_unchanged(st, before)


def test_a_sku_a_node_does_not_hold_cannot_be_reserved_there():
    st = live_state()
    n, k = cell(st, "WH-B", "SKU-2")  # 0 on hand
    before = snapshot(st)
    assert st.try_reserve([n], [k], [1]) is False
    assert_unchanged(st, before)


def test_two_allocations_of_one_cell_in_one_call_must_fit_together():
    st = live_state()
    n, k = cell(st, "WH-A", "SKU-2")  # 5 on hand: 3 and 3 each fit, together they do not
    before = snapshot(st)
    assert st.try_reserve([n, n], [k, k], [3, 3]) is False
    assert_unchanged(st, before)
    assert st.try_reserve([n, n], [k, k], [3, 2]) is True
    assert st.reserved[n, k] == 5 and st.version == before["version"] + 1


@pytest.mark.parametrize("failing_first", [False, True])
def test_a_plan_with_one_line_that_does_not_fit_reserves_nothing(failing_first):
    st = live_state()
    fits, short = cell(st, "WH-A", "SKU-1"), cell(st, "WH-B", "SKU-3")  # 10 and 5 on hand
    lines = [(*fits, 2), (*short, 6)]
    if failing_first:
        lines.reverse()
    nodes, skus, qty = (list(x) for x in zip(*lines))
    before = snapshot(st)
    assert st.try_reserve(nodes, skus, qty, lanes=[(fits[0], 0), (short[0], 0)]) is False
    # no cell, no lane use, no queue change, no new version
    assert_unchanged(st, before)


def test_a_full_lane_refuses_the_whole_plan_even_when_the_stock_fits():
    st = live_state("tiers_and_storm")
    n, k = cell(st, "WH-N", "SKU-1")  # 10 on hand
    s, k2 = cell(st, "WH-S", "SKU-2")
    budget_ground = 2
    assert st.network.lane_daily_capacity[n, budget_ground] == 10
    for i in range(10):
        assert st.try_reserve([n], [k], [1], lanes=[(n, budget_ground)]) is True, i
    view = st.view(np.array([k]))
    assert view.lane_left[n, budget_ground] == 0.0
    assert st.lane_used[n, budget_ground] == 10
    # stock for the 11th shipment is there (SKU-2 at WH-N), the lane is not
    before = snapshot(st)
    assert st.try_reserve([n], [st.sku_idx("SKU-2")], [1], lanes=[(n, budget_ground)]) is False
    assert_unchanged(st, before)
    # a two-leg plan whose other lane is free is refused as a whole too
    assert st.try_reserve([s, n], [k2, st.sku_idx("SKU-2")], [1, 1], lanes=[(s, 0), (n, budget_ground)]) is False
    assert_unchanged(st, before)
    # the other budget lane of WH-N has its own count
    assert st.try_reserve([n], [st.sku_idx("SKU-2")], [1], lanes=[(n, 3)]) is True
    assert st.lane_used[n, 3] == 1
    # a new day frees the lane
    st.new_day()
    assert st.try_reserve([n], [st.sku_idx("SKU-2")], [1], lanes=[(n, budget_ground)]) is True
    assert st.lane_used[n, budget_ground] == 1


def test_each_lane_counts_one_shipment_and_each_node_one_order_in_its_queue():
    st = live_state("tiers_and_storm")
    wn, sm, ws = st.node_idx("WH-N"), st.node_idx("ST-M"), st.node_idx("WH-S")
    k1, k2 = st.sku_idx("SKU-1"), st.sku_idx("SKU-2")
    queue0 = st.queue_orders.copy()
    # WH-N ships over two lanes (two parcels, one order in its queue), WH-S over one
    lanes = [(wn, 0), (wn, 2), (ws, 1)]
    assert st.try_reserve([wn, wn, ws], [k1, k2, k1], [1, 1, 2], lanes=lanes) is True
    used = np.zeros_like(st.lane_used)
    used[wn, 0] = used[wn, 2] = used[ws, 1] = 1
    assert np.array_equal(st.lane_used, used)
    assert st.queue_orders[wn] == queue0[wn] + 1.0
    assert st.queue_orders[ws] == queue0[ws] + 1.0
    assert st.queue_orders[sm] == queue0[sm]
    assert st.view(np.array([k1])).lane_left[wn, 2] == 9.0
    # release with the same lanes undoes it exactly
    st.release([wn, wn, ws], [k1, k2, k1], [1, 1, 2], lanes=lanes)
    assert not st.lane_used.any() and np.array_equal(st.queue_orders, queue0)
    assert not st.reserved.any()


def test_no_lanes_means_no_lane_use_and_no_queue_change():
    st = live_state()
    n, k = cell(st, "WH-A", "SKU-1")
    queue0 = st.queue_orders.copy()
    assert st.try_reserve([n], [k], [1]) is True
    assert not st.lane_used.any() and np.array_equal(st.queue_orders, queue0)


# ---------------------------------------------------------------------- release


def test_release_of_more_than_is_reserved_raises_and_changes_nothing():
    st = live_state()
    a1, a2 = cell(st, "WH-A", "SKU-1"), cell(st, "WH-A", "SKU-2")
    assert st.try_reserve([a1[0], a2[0]], [a1[1], a2[1]], [2, 1], lanes=[(a1[0], 0)]) is True
    before = snapshot(st)
    with pytest.raises(InvalidEventError) as exc:
        st.release([a1[0]], [a1[1]], [3])
    assert (exc.value.field, exc.value.reason) == ("qty", "release exceeds what is reserved")
    assert_unchanged(st, before)
    # two entries of one cell that together exceed it, next to a valid one: none applies
    with pytest.raises(InvalidEventError):
        st.release([a2[0], a1[0], a1[0]], [a2[1], a1[1], a1[1]], [1, 2, 1], lanes=[(a1[0], 0)])
    assert_unchanged(st, before)
    # a cell with nothing reserved
    b3 = cell(st, "WH-B", "SKU-3")
    with pytest.raises(InvalidEventError):
        st.release([b3[0]], [b3[1]], [1])
    assert_unchanged(st, before)
    # exactly what is reserved is fine, and leaves zero
    st.release([a1[0], a2[0]], [a1[1], a2[1]], [2, 1], lanes=[(a1[0], 0)])
    assert not st.reserved.any() and st.version == before["version"] + 1


def test_release_of_lanes_never_takes_usage_or_queues_below_zero():
    st = live_state("tiers_and_storm")
    wn, ws = st.node_idx("WH-N"), st.node_idx("WH-S")
    k = st.sku_idx("SKU-1")
    st.queue_orders[:] = 0.0
    assert st.try_reserve([wn], [k], [1], lanes=[(wn, 0)]) is True
    # release names a lane and a node that were never used
    st.release([wn], [k], [1], lanes=[(wn, 0), (ws, 1)])
    assert not st.lane_used.any() and (st.lane_used >= 0).all()
    assert st.queue_orders.tolist() == [0.0, 0.0, 0.0]
    # a lane used twice drops to once
    assert st.try_reserve([wn], [k], [1], lanes=[(wn, 0)]) is True
    assert st.try_reserve([wn], [k], [1], lanes=[(wn, 0)]) is True
    st.release([wn], [k], [1], lanes=[(wn, 0)])
    assert st.lane_used[wn, 0] == 1
    st.release([wn], [k], [1], lanes=[(wn, 0)])
    assert st.queue_orders.tolist() == [0.0, 0.0, 0.0]
    # a queue above one drops by exactly one per release
    st.queue_orders[wn] = 2.5
    assert st.try_reserve([wn], [k], [1], lanes=[(wn, 0)]) is True
    st.release([wn], [k], [1], lanes=[(wn, 0)])
    assert st.queue_orders[wn] == 2.5


def test_an_empty_release_changes_nothing_but_the_version():
    st = live_state()
    before = snapshot(st)
    st.release([], [], [])
    assert st.version == before["version"] + 1
    assert np.array_equal(st.reserved, before["reserved"])


# ------------------------------------------------------------------------- ship


def test_ship_takes_units_off_hand_and_reservation_and_refuses_more_than_reserved():
    st = live_state()
    n, k = cell(st, "WH-A", "SKU-1")
    assert st.try_reserve([n], [k], [3]) is True
    v = st.version
    assert st.ship(n, k, 2) == v + 1 == st.version
    assert (st.on_hand[n, k], st.reserved[n, k], st.available()[n, k]) == (8, 1, 7)
    before = snapshot(st)
    with pytest.raises(InvalidEventError) as exc:
        st.ship(n, k, 2)
    assert exc.value.field == "qty" and "ships 2 but only 1 are reserved" in exc.value.reason
    assert_unchanged(st, before)
    for bad in (0, -1):
        with pytest.raises(InvalidEventError) as exc:
            st.ship(n, k, bad)
        assert (exc.value.field, exc.value.reason) == ("qty", f"{bad} is not a positive number of units")
        assert_unchanged(st, before)
    # exactly what is reserved ships
    assert st.ship(n, k, 1) == before["version"] + 1
    assert (st.on_hand[n, k], st.reserved[n, k]) == (7, 0)


def test_the_shipped_event_is_ship_by_name():
    st = live_state()
    n, k = cell(st, "WH-B", "SKU-3")
    assert st.try_reserve([n], [k], [4]) is True
    v = st.apply(Shipped(node="WH-B", sku="SKU-3", qty=3))
    assert v == st.version
    assert (st.on_hand[n, k], st.reserved[n, k]) == (2, 1)
    before = snapshot(st)
    with pytest.raises(InvalidEventError, match="ships 2 but only 1 are reserved"):
        st.apply({"type": "shipped", "node": "WH-B", "sku": "SKU-3", "qty": 2})
    assert_unchanged(st, before)
    with pytest.raises(InvalidEventError) as exc:
        st.apply(Shipped(node="WH-Z", sku="SKU-3", qty=1))
    assert exc.value.field == "node"
    assert_unchanged(st, before)


# ------------------------------------------------------------------ stock events


def test_stock_set_may_not_go_below_what_is_reserved():
    st = live_state()
    n, k = cell(st, "WH-A", "SKU-2")
    assert st.try_reserve([n], [k], [3]) is True
    before = snapshot(st)
    with pytest.raises(InvalidEventError) as exc:
        st.apply(StockSet(node="WH-A", sku="SKU-2", on_hand=2))
    assert exc.value.field == "on_hand"
    assert "2 is below the 3 units reserved of SKU-2 at WH-A" in exc.value.reason
    assert_unchanged(st, before)
    # down to exactly the reservation, then up
    assert st.apply(StockSet(node="WH-A", sku="SKU-2", on_hand=3)) == before["version"] + 1
    assert st.on_hand[n, k] == 3 and st.available()[n, k] == 0
    st.apply({"type": "stock_set", "node": "WH-A", "sku": "SKU-2", "on_hand": 9})
    assert st.on_hand[n, k] == 9 and st.reserved[n, k] == 3
    with pytest.raises(InvalidEventError) as exc:
        st.apply(StockSet(node="WH-A", sku="SKU-9", on_hand=1))
    assert exc.value.field == "sku"


def test_stock_adjust_adds_the_delta_and_may_not_go_below_what_is_reserved():
    st = live_state()
    n, k = cell(st, "WH-B", "SKU-3")  # 5 on hand
    assert st.try_reserve([n], [k], [2]) is True
    st.apply(StockAdjust(node="WH-B", sku="SKU-3", delta=4))
    assert st.on_hand[n, k] == 9
    st.apply(StockAdjust(node="WH-B", sku="SKU-3", delta=-3))
    assert st.on_hand[n, k] == 6
    before = snapshot(st)
    with pytest.raises(InvalidEventError) as exc:
        st.apply(StockAdjust(node="WH-B", sku="SKU-3", delta=-5))
    assert exc.value.field == "delta"
    assert "would leave 1 on hand, below the 2 units reserved of SKU-3 at WH-B" in exc.value.reason
    assert_unchanged(st, before)
    # down to exactly the reservation is allowed
    assert st.apply(StockAdjust(node="WH-B", sku="SKU-3", delta=-4)) == before["version"] + 1
    assert st.on_hand[n, k] == 2 and st.available()[n, k] == 0
    # and other cells never move
    assert st.on_hand.tolist() == [[10, 5, 0], [10, 0, 2]]


def test_a_stock_event_for_a_cell_with_no_reservation_sets_it_exactly():
    st = live_state()
    st.apply(StockSet(node="WH-B", sku="SKU-2", on_hand=0))
    st.apply(StockAdjust(node="WH-B", sku="SKU-2", delta=0))
    assert st.on_hand.tolist() == [[10, 5, 0], [10, 0, 5]]
    with pytest.raises(InvalidEventError):
        st.apply(StockAdjust(node="WH-B", sku="SKU-2", delta=-1))


# ------------------------------------------------------------------- contention


def test_threads_competing_for_scarce_stock_get_exactly_the_stock_and_never_more():
    """8 threads x 200 one-unit attempts on 5 + 5 scarce units and one 10-unit cell."""
    st = live_state()
    cells = [cell(st, "WH-A", "SKU-2"), cell(st, "WH-B", "SKU-3"), cell(st, "WH-A", "SKU-1")]
    stock = [int(st.on_hand[c]) for c in cells]
    assert stock == [5, 5, 10]
    wins = [[0] * len(cells) for _ in range(8)]
    oversold: list[tuple[int, int, int, int]] = []  # an assert inside a thread would not fail the test
    start = threading.Barrier(8)
    v0 = st.version

    def worker(t: int) -> None:
        start.wait()
        for i in range(200):
            j = (t + i) % len(cells)
            n, k = cells[j]
            if st.try_reserve([n], [k], [1]):
                wins[t][j] += 1
            # the invariant holds at every moment another thread can observe
            reserved, on_hand = int(st.reserved[n, k]), int(st.on_hand[n, k])
            if reserved > on_hand:
                oversold.append((n, k, reserved, on_hand))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    # Switching threads every few microseconds instead of every 5 ms puts many more
    # switches between a check and its write: a check-and-reserve that is not atomic
    # is then caught often, though not on every run. A missing stock check fails always.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert oversold == []
    per_cell = [sum(w[j] for w in wins) for j in range(len(cells))]
    assert per_cell == stock  # exactly the stock, never more
    assert [int(st.reserved[c]) for c in cells] == stock
    assert (st.available() >= 0).all()
    assert st.version == v0 + sum(stock)  # one version per successful reservation, none per refusal
