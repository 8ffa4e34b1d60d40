"""Batch re-routing: the column model and its solvers, move plans, dry run, apply, replay, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, SHARED_DATA
from scipy import sparse

from router.demand import generate_orders
from router.engine import Router
from router.engine.reroute import (
    FixedClock,
    InvalidRerouteError,
    OpenOrder,
    RerouteConflict,
    RerouteOptions,
    check_reroute,
)
from router.scenario import load_scenario
from router.solver.batch import BatchProblem, check_choice, greedy_sequential, lagrangian, solve_batch
from router.solver.gap import read_gap_file

NATIONAL = ROOT / "scenarios" / "national.yaml"


# ----------------------------------------------------------------- the model
def _problem(cost, usage_rows, capacity, keep):
    """usage_rows: {(order, column): {row: amount}}."""
    cost = np.asarray(cost, dtype=float)
    o, k = cost.shape
    r, c, v = [], [], []
    for (i, j), use in usage_rows.items():
        for row, amt in use.items():
            r.append(row)
            c.append(i * k + j)
            v.append(amt)
    usage = sparse.csr_matrix((v, (r, c)), shape=(len(capacity), o * k))
    return BatchProblem(cost, usage, np.asarray(capacity, dtype=float), np.asarray(keep, dtype=np.int64))


def test_joint_choice_beats_order_by_order_on_a_shared_unit():
    # two orders, one unit at node A (row 0) and plenty at B (row 1). Order 0 is cheap at A (1) and
    # fine at B (2); order 1 needs A badly (1 vs 10 at B). Greedy in arrival order gives A to order 0
    # (total 1 + 10 = 11); the joint optimum gives A to order 1 (2 + 1 = 3). Column 2 is keep (penalty).
    p = _problem(
        [[1.0, 2.0, 100.0], [1.0, 10.0, 100.0]],
        {(0, 0): {0: 1}, (0, 1): {1: 1}, (1, 0): {0: 1}, (1, 1): {1: 1}},
        [1, 5],
        [2, 2],
    )
    greedy = greedy_sequential(p)
    assert greedy.tolist() == [0, 1] and p.objective(greedy) == 11.0
    sol = solve_batch(p, time_limit_s=5)
    assert sol.choice.tolist() == [1, 0]
    assert sol.objective == 3.0 and sol.status == "optimal" and sol.gap == 0.0
    assert check_choice(p, sol.choice) == []
    assert check_choice(p, np.array([0, 0])) == ["row 0: 2 > capacity 1"]


def test_an_ejection_chain_places_an_order_that_no_single_move_can():
    # order 1 can only use the unit at A (row 0) or stay on its keep column (100); order 0 holds that unit
    # and could use B (row 1) for 1 more. No order gains by moving alone, so 1-opt is stuck at 101;
    # moving order 0 to B and order 1 to A costs 2 + 1 = 3.
    from router.solver.batch import _Fill, eject

    p = _problem(
        [[1.0, 2.0, 100.0], [1.0, np.inf, 100.0]],
        {(0, 0): {0: 1}, (0, 1): {1: 1}, (1, 0): {0: 1}},
        [1, 1],
        [2, 2],
    )
    start = np.array([0, 2])
    assert _Fill(p).polish(start, deadline=1e18).tolist() == [0, 2]
    choice, moved = eject(p, start, deadline=1e18)
    assert choice.tolist() == [1, 0] and moved == 1 and p.objective(choice) == 3.0
    assert check_choice(p, choice) == []
    # a chain that would cost more than it saves is undone
    dear = _problem(
        [[1.0, 200.0, 100.0], [1.0, np.inf, 100.0]],
        {(0, 0): {0: 1}, (0, 1): {1: 1}, (1, 0): {0: 1}},
        [1, 1],
        [2, 2],
    )
    choice, moved = eject(dear, start, deadline=1e18)
    assert choice.tolist() == [0, 2] and moved == 0


def test_lagrangian_bound_never_exceeds_the_optimum_and_its_answer_fits():
    rng = np.random.default_rng(3)
    o, k, rows = 60, 4, 12
    cost = rng.uniform(1, 20, size=(o, k))
    cost[:, -1] = 500.0
    use = {}
    for i in range(o):
        for j in range(k - 1):
            use[(i, j)] = {int(rng.integers(rows)): 1.0}
    p = _problem(cost, use, rng.integers(3, 8, size=rows), [k - 1] * o)
    exact = solve_batch(p, time_limit_s=10, method="mip")
    assert exact.status == "optimal"
    lb, choice, obj, _ = lagrangian(p, seconds=2.0)
    assert check_choice(p, choice) == []
    assert lb <= exact.objective + 1e-6
    assert obj >= exact.objective - 1e-6
    auto = solve_batch(p, time_limit_s=10)
    assert auto.objective == pytest.approx(exact.objective)
    cp = solve_batch(p, time_limit_s=10, method="cpsat")
    assert cp.status == "optimal" and cp.objective == pytest.approx(exact.objective)
    assert check_choice(p, cp.choice) == []


def test_lagrangian_multipliers_carry_over_to_a_warm_started_solve():
    rng = np.random.default_rng(5)
    o, k, rows = 80, 4, 10
    cost = rng.uniform(1, 20, size=(o, k))
    cost[:, -1] = 500.0
    use = {(i, j): {int(rng.integers(rows)): 1.0} for i in range(o) for j in range(k - 1)}
    p = _problem(cost, use, rng.integers(3, 8, size=rows), [k - 1] * o)
    got: dict = {}
    lb, _, _, _ = lagrangian(p, seconds=2.0, duals=got)
    u = got["u"]
    assert u.shape == (rows,) and (u >= 0).all() and u.any()  # some rows bind: their multipliers are > 0
    zero_bound = float(cost.min(axis=1).sum())
    assert lb > zero_bound + 1.0
    # one step from the multipliers found gives their bound at once (L(u) of the same model)
    lb1, choice1, _, steps = lagrangian(p, seconds=2.0, iterations=1, u0=u)
    assert steps == 1 and lb1 == pytest.approx(lb, rel=1e-12)
    assert check_choice(p, choice1) == []
    # through solve_batch: the solution carries them, and a later solve starts from them
    first = solve_batch(p, time_limit_s=1.0, method="lagrangian")
    assert first.duals is not None and first.duals.shape == (rows,)
    again = solve_batch(p, time_limit_s=1.0, method="lagrangian", start=first.choice, duals=first.duals)
    assert again.bound >= first.bound - 1e-9 * abs(first.bound) and again.objective <= first.objective + 1e-9


def test_the_batch_model_solves_orlibrary_gap_instances_to_their_optimum():
    # the assignment core of the model: OR-Library gap1 problem 1 (maximisation, optimum 336) as columns
    g = read_gap_file(SHARED_DATA / "gap" / "orlib_gap1-12" / "c0515_1.txt")
    m, n = g.cost.shape
    k = m + 1
    cost = np.zeros((n, k))
    cost[:, :m] = -g.cost.T  # maximise profit = minimise its negative
    cost[:, m] = 1e4  # keep: no agent (never chosen when an assignment fits)
    use = {(j, i): {i: float(g.resource[i, j])} for j in range(n) for i in range(m)}
    p = _problem(cost, use, g.capacity, [m] * n)
    for method in ("auto", "cpsat"):
        sol = solve_batch(p, time_limit_s=10, method=method)
        assert -sol.objective == 336, method
        assert check_choice(p, sol.choice) == []


# ------------------------------------------------------------ on the engine
@pytest.fixture(scope="module")
def routed():
    """300 routed orders on national, stock tight, the busiest node then closed (no ledger)."""
    sc = load_scenario(NATIONAL)
    orders = generate_orders(sc, 300, seed=7)
    now = orders[-1].created_at
    return sc, orders, now


def _router_with_backlog(routed, ledger=None):
    sc, orders, now = routed
    r = Router(sc, ledger=ledger, clock=FixedClock(now), seed=3, stock_pool=None)
    st = r.state
    st.on_hand[:] = np.minimum(st.on_hand, 40)
    if ledger is not None:
        r.refresh_stock()
    backlog = []
    for o in orders:
        d = r.route(o, explain=ledger is not None)
        if d.status == "routed":
            backlog.append(OpenOrder(o, d.decision_id, d.record["chosen"]))
    held: dict[str, int] = {}
    for b in backlog:
        for leg in b.plan["legs"]:
            held[leg["node_id"]] = held.get(leg["node_id"], 0) + 1
    down = max(held, key=held.get)
    return r, backlog, down


def _close(r, node):
    r.state.apply({"type": "node_status", "node": node, "closed": True, "reason": "flood"})


def test_dry_run_moves_orders_off_a_closed_node_and_changes_nothing(routed):
    r, backlog, down = _router_with_backlog(routed)
    _close(r, down)
    reserved, lanes, queue, version = r.state.reserved.copy(), r.state.lane_used.copy(), r.state.queue_orders.copy(), r.state.version
    plan = r.reroute(backlog=backlog, time_limit_s=5)
    # nothing changed
    assert np.array_equal(r.state.reserved, reserved) and np.array_equal(r.state.lane_used, lanes)
    assert np.array_equal(r.state.queue_orders, queue) and r.state.version == version
    assert not plan.applied
    # the independent checker accepts it: coverage, stock, lanes, nothing to a closed node
    assert check_reroute(r, plan) == []
    on_down = [b for b in backlog if any(leg["node_id"] == down for leg in b.plan["legs"])]
    moved = {m.order_id for m in plan.moves}
    unplaced = {u["order_id"] for u in plan.unplaced}
    # every order that was on the closed node either moved or is named as unplaced, with a reason
    assert {b.order.order_id for b in on_down} <= moved | unplaced
    for u in plan.unplaced:
        assert u["reason"]
    for m in plan.moves:
        assert all(leg["node_id"] != down for leg in m.to_plan["legs"])
        # the delta is the sum of the term deltas, and the sentence names both plans
        assert sum(t["delta"] for t in m.terms) == pytest.approx(m.score_delta, abs=1e-4)
        assert m.sentence.startswith("Moved from ") and " to " in m.sentence
    # the objective is no worse than keeping every order where it is
    p = plan.problem
    before = np.array([c.current if c.current >= 0 else c.keep for c in plan.cols])
    assert plan.objective <= p.objective(before) + 1e-6
    assert plan.bound <= plan.objective + 1e-6
    assert plan.kpis_before["orders"] == plan.kpis_after["orders"] == len(backlog)


def test_apply_without_a_ledger_swaps_the_reservations_exactly(routed):
    r, backlog, down = _router_with_backlog(routed)
    _close(r, down)
    plan = r.reroute(backlog=backlog, time_limit_s=5, apply=True)
    assert plan.applied and plan.moves
    # the reservations are now exactly the final plans' units
    moved = {m.order_id: m.to_plan for m in plan.moves}
    want = np.zeros_like(r.state.reserved)
    idx_n = {n: i for i, n in enumerate(r.network.node_ids)}
    idx_k = {s: i for i, s in enumerate(r.network.sku_ids)}
    for b in backlog:
        for leg in moved.get(b.order.order_id, b.plan)["legs"]:
            for line in leg["lines"]:
                want[idx_n[leg["node_id"]], idx_k[line["sku"]]] += line["qty"]
    assert np.array_equal(r.state.reserved, want)
    with pytest.raises(RerouteConflict, match="already applied"):
        from router.engine.reroute import apply_moves

        apply_moves(r, plan)


def test_capacity_below_demand_names_the_unplaced_orders_and_the_rows(routed):
    r, backlog, down = _router_with_backlog(routed)
    _close(r, down)
    # take away every free unit: the closed node's orders have nowhere to go
    r.state.on_hand[:] = r.state.reserved
    plan = r.reroute(backlog=backlog, time_limit_s=3)
    assert plan.unplaced, "nothing fits, so the closed node's orders stay unplaced"
    assert check_reroute(r, plan) == []
    named = [u for u in plan.unplaced if u["rows"]]
    assert named and all(row.startswith(("stock ", "lane ", "picks ")) for u in named for row in u["rows"])
    assert plan.conflicts and plan.conflicts[0]["used"] <= plan.conflicts[0]["capacity"] + 1e-9


def test_bad_input_is_refused_and_changes_nothing(routed):
    r, backlog, _ = _router_with_backlog(routed)
    reserved = r.state.reserved.copy()
    with pytest.raises(InvalidRerouteError) as e:
        r.reroute(backlog=backlog, time_limit_s=0)
    assert e.value.field == "time_limit_s"
    with pytest.raises(InvalidRerouteError) as e:
        r.reroute(backlog=backlog, options=RerouteOptions(top_k=0))
    assert e.value.field == "top_k"
    with pytest.raises(InvalidRerouteError) as e:
        r.reroute(backlog=backlog, options=RerouteOptions(method="simplex"))
    assert e.value.field == "method"
    with pytest.raises(InvalidRerouteError) as e:
        r.reroute(["X"], backlog=backlog)
    assert e.value.field == "backlog"
    assert np.array_equal(r.state.reserved, reserved)


def test_partitions_stitch_into_a_feasible_plan_no_better_than_the_single_bound(routed):
    r, backlog, down = _router_with_backlog(routed)
    _close(r, down)
    single = r.reroute(backlog=backlog, time_limit_s=4)
    parts = r.reroute(backlog=backlog, time_limit_s=4, options=RerouteOptions(partitions=3, solve_partitions=True))
    assert parts.solver["method"] == "partitioned" and parts.solver["partitions"] == 3
    assert check_choice(parts.problem, parts.choice) == []
    assert check_reroute(r, parts) == []
    assert parts.objective >= single.bound - 1e-6


def test_forked_column_generation_gives_the_serial_columns_exactly(routed):
    """Several processes, chunk by chunk, generate exactly the columns one process does, in backlog order."""
    from router.engine.reroute import generate_columns, generate_columns_forked, plan_alloc, released_snapshot

    r, backlog, down = _router_with_backlog(routed)
    _close(r, down)
    opts = RerouteOptions()
    snap = released_snapshot(r.state, [plan_alloc(r.network, oo.plan) for oo in backlog])
    now = r.clock()
    one = generate_columns(r, snap, backlog, now, r.strategy, opts)
    seen: list[tuple[int, int]] = []
    two = generate_columns_forked(r, snap, backlog, now, r.strategy, opts, 2, lambda i, n: seen.append((i, n)), chunk=37)
    assert seen[-1] == (len(backlog), len(backlog)) and len(seen) == -(-len(backlog) // 37)

    def triplets(g):
        o = np.lexsort((g.vals, g.cols_idx, g.rows))
        return g.rows[o], g.cols_idx[o], g.vals[o]

    for a, b in zip(triplets(one), triplets(two)):
        assert np.array_equal(a, b)
    assert one.term_names == two.term_names and len(one.cols) == len(two.cols) == len(backlog)
    for c1, c2 in zip(one.cols, two.cols):
        assert np.array_equal(c1.score, c2.score) and np.array_equal(c1.terms, c2.terms)
        assert (c1.current, c1.keep, c1.kept, c1.skus, c1.note) == (c2.current, c2.keep, c2.kept, c2.skus, c2.note)
        assert all(np.array_equal(x, y) for x, y in zip(c1.picks, c2.picks))
    # and a whole re-route on two workers plans what one worker plans (the solve is seeded)
    p1 = r.reroute(backlog=backlog, time_limit_s=3, options=RerouteOptions(workers=1, method="lagrangian"))
    p2 = r.reroute(backlog=backlog, time_limit_s=3, options=RerouteOptions(workers=2, method="lagrangian"))
    assert p1.timings["column_workers"] == 1 and p2.timings["column_workers"] == 2
    assert check_reroute(r, p2) == []
    assert np.allclose(p1.problem.cost, p2.problem.cost, equal_nan=True)


def test_column_workers_default_to_one_per_core_for_long_backlogs_only():
    from router.engine.reroute import PARALLEL_MIN_ORDERS, column_workers

    assert column_workers(RerouteOptions(), PARALLEL_MIN_ORDERS - 1) == 1
    assert column_workers(RerouteOptions(workers=3), 10) == 3
    import os

    assert column_workers(RerouteOptions(), PARALLEL_MIN_ORDERS) == min(len(os.sched_getaffinity(0)), 8)
    with pytest.raises(InvalidRerouteError) as e:
        RerouteOptions(workers=0).check()
    assert e.value.field == "workers"


# ------------------------------------------------------------- with a ledger
def test_apply_through_the_ledger_supersedes_and_replays(routed, tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    r, _, down = _router_with_backlog(routed, ledger=url)
    _close(r, down)
    n_before = r.ledger.count_decisions()
    plan = r.reroute(time_limit_s=5)  # every open order in the ledger
    assert r.ledger.count_decisions() == n_before, "a dry run writes nothing"
    assert plan.moves
    r.reroute  # noqa: B018
    plan = r.reroute(time_limit_s=5, apply=True)
    assert r.ledger.count_decisions() == n_before + len(plan.moves)
    assert r.ledger.verify().ok
    totals = r.ledger.reserved_totals()
    levels = r.ledger.stock_levels(r.stock_pool)
    for cell, (_, reserved) in levels.items():
        assert totals.get(cell, 0) == reserved, cell
    for m in plan.moves[:10]:
        rec = r.ledger.get_decision(m.new_decision_id)
        assert rec["supersedes"] == m.decision_id and rec["reroute"]["job_id"] == plan.job_id
        assert rec["chosen"]["legs"][0]["node_id"] == m.to_plan["legs"][0]["node_id"]
        # the old decision holds nothing now, the new one the new plan
        assert sum(q for _, _, q in r.ledger.reservations_for(m.decision_id)) == 0
        result = r.replay(m.new_decision_id)
        assert result.matches, result.differences
    # the moved orders are open under their new decisions; a second run finds nothing on the closed node
    again = r.reroute(time_limit_s=3)
    assert not [b for b in again.backlog if any(leg["node_id"] == down for leg in b.plan["legs"])
                and b.order.order_id not in {u["order_id"] for u in again.unplaced}]


def test_ledger_backlog_skips_released_and_unknown_orders(routed, tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    r, backlog, _ = _router_with_backlog(routed, ledger=url)
    first, second = backlog[0].order.order_id, backlog[1].order.order_id
    r.release(first)
    plan = r.reroute([first, second, "NOPE"], time_limit_s=2)
    assert plan.orders == 1
    reasons = {s["order_id"]: s["reason"] for s in plan.skipped}
    assert reasons[first].startswith("released") and reasons["NOPE"].startswith("unknown order")
    with pytest.raises(InvalidRerouteError) as e:
        r.reroute(filter={"tiers": ["vip"], "regions": ["nowhere"]})
    assert e.value.field == "filter.regions"
