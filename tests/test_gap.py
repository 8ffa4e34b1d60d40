"""The assignment core of batch re-routing, on public GAP instances with known optima."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import SHARED_DATA

from router.solver.gap import GapProblem, read_gap_file, solve_gap

GAP = SHARED_DATA / "gap"
BOUNDS = (
    {r["instance"]: r for r in csv.DictReader((GAP / "bounds.csv").read_text().splitlines())}
    if (GAP / "bounds.csv").exists()
    else {}
)
ORLIB = sorted(name for name, r in BOUNDS.items() if r["file"].startswith("orlib_gap1-12/"))


def _check(p: GapProblem, assign: np.ndarray) -> None:
    """An independent check: every job on one allowed agent, every capacity kept."""
    assert assign.shape == (p.n_jobs,) and (assign >= 0).all() and (assign < p.n_agents).all()
    load = np.zeros(p.n_agents)
    for j, i in enumerate(assign.tolist()):
        load[i] += p.resource[i, j]
    assert (load <= p.capacity).all()


def test_the_orlib_files_are_all_here():
    assert len(ORLIB) == 60, "../shared/data/gap/orlib_gap1-12 is incomplete"


@pytest.mark.parametrize("name", ORLIB)
def test_orlib_gap1_12_are_solved_to_their_proven_optimum(name):
    row = BOUNDS[name]
    p = read_gap_file(GAP / row["file"])
    # maximisation instances: the optimum of -profit is -(best known profit)
    s = solve_gap(GapProblem(-p.cost, p.resource, p.capacity), time_limit_s=20.0)
    _check(p, s.assign)
    assert s.status == "optimal"
    assert -s.objective == pytest.approx(float(row["ub"])) and s.gap == 0.0


def test_a_small_case_by_hand_and_its_bound():
    # two agents of capacity 3; three jobs of size 2, 1, 1: agent 0 is cheaper for all of them
    cost = np.array([[1.0, 1.0, 1.0], [5.0, 3.0, 3.0]])
    res = np.array([[2, 1, 1], [2, 1, 1]])
    p = GapProblem(cost, res, np.array([3, 3]))
    s = solve_gap(p, time_limit_s=5.0)
    # agent 0 takes the big job and one small one (cost 2), agent 1 the other small one (3)
    assert s.objective == 5.0 and s.status == "optimal" and s.bound == pytest.approx(5.0)
    _check(p, s.assign)


def test_an_overfull_instance_is_reported_infeasible():
    p = GapProblem(np.ones((2, 3)), np.full((2, 3), 2), np.array([2, 3]))  # room for 2 jobs of 3
    s = solve_gap(p, time_limit_s=5.0)
    assert s.status == "infeasible" and s.assign is None


def test_non_integer_costs_are_priced_exactly():
    rng = np.random.default_rng(4)
    cost = rng.uniform(0.0, 10.0, (4, 30))
    res = rng.integers(1, 10, (4, 30))
    p = GapProblem(cost, res, np.full(4, int(res.sum() / 3)))
    s = solve_gap(p, time_limit_s=10.0)
    _check(p, s.assign)
    assert s.objective == pytest.approx(float(cost[s.assign, np.arange(30)].sum()))
    assert s.bound <= s.objective + 1e-6


def test_a_larger_instance_gets_within_a_small_gap_of_the_best_known():
    row = BOUNDS["c10100"]
    p = read_gap_file(GAP / row["file"])
    s = solve_gap(p, time_limit_s=10.0)
    _check(p, s.assign)
    assert s.objective <= float(row["ub"]) * 1.01
    assert s.bound <= float(row["ub"]) + 1e-6  # a true lower bound
