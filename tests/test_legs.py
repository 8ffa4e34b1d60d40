"""One leg, one price: every path that prices a leg agrees with the leg physics of router.legs.

Four paths price a shipment: the generic :func:`~router.legs.leg_metrics` (split
plans, solver plans), the gathered :func:`~router.legs.single_leg_metrics`
(single-node plans), the split search's linear price (``per_shipment_usd`` plus
:func:`~router.legs.unit_cost_matrix`, which the compiled kernel and the bounds
use), and the split MIP's :func:`~router.solver.split.arc_cost`. On real orders
of the national network (weight tiers, dimensional weight, per-mile rates,
cartons) they must give the same cost for the same leg; the linear price is exact
when billable weight is the actual weight and no weight tier applies, and a lower
bound otherwise (which is what makes the split bounds safe).
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from conftest import SCENARIOS
from test_golden_decisions import GOLDEN

from router.candidates import CandidateSet, single_candidates
from router.context import context_from_json
from router.legs import lane_metrics, leg_metrics, unit_cost_matrix
from router.network import build_network
from router.params import StrategyParams
from router.rules import line_feasibility, usable_options
from router.scenario import load_scenario
from router.solver.choose import build_split_problem
from router.solver.split import arc_cost
from router.state import StateView


@pytest.fixture(scope="module")
def world():
    with gzip.open(GOLDEN, "rt") as f:
        doc = json.load(f)
    net = build_network(load_scenario(SCENARIOS / "national.yaml"))
    params = StrategyParams.model_validate(doc["params"])
    inputs = [(StateView.from_json(r["view"]), context_from_json(r["context"])) for r in doc["decisions"][::25]]
    return net, params, inputs


def test_every_path_prices_a_leg_the_same(world):
    net, params, inputs = world
    assert net.any_weight_tiers  # the comparison covers tiered services
    compared = linear_exact = 0
    for view, ctx in inputs:
        usable = usable_options(net, view, ctx)
        everyone = np.ones(net.n_nodes, dtype=bool)
        line_ok = line_feasibility(view, ctx, params, everyone)
        lanes = lane_metrics(net, view, ctx)
        # path 2: single-node plans (only nodes that hold every line)
        singles = single_candidates(net, view, ctx, usable, line_ok, [], lanes)
        single_cost = {
            (int(n), int(o)): float(s + h)
            for n, o, s, h in zip(
                singles.leg_node[:, 0], singles.leg_opt[:, 0], singles.leg_shipping_usd[:, 0], singles.leg_handling_usd[:, 0]
            )
        }
        # path 4: the MIP's arcs, over every open node
        problem, arc_node, arc_opt = build_split_problem(net, view, ctx, params, everyone)
        arc_of = {(int(n), int(o)): a for a, (n, o) in enumerate(zip(arc_node, arc_opt))}
        unit_all = unit_cost_matrix(net, ctx)
        for (n, o), a in arc_of.items():
            units = ctx.qty.astype(np.int64)
            # path 1: the generic leg metrics on a one-leg plan
            cs = CandidateSet(
                np.array([[n]]), np.array([[o]]), units[None, None, :].copy(), np.zeros(1, dtype=np.int64)
            )
            leg_metrics(cs, net, view, ctx, lanes)
            generic = float(cs.leg_shipping_usd[0, 0] + cs.leg_handling_usd[0, 0])
            mip = arc_cost(problem, a, units)[0] - params.split_penalty_usd
            assert mip == pytest.approx(generic, rel=1e-9, abs=1e-9), (n, o)
            if (n, o) in single_cost:
                assert single_cost[(n, o)] == generic  # bit for bit
            # path 3: the split search's linear price: exact without tiers and dim weight, else a lower bound
            linear = float(net.per_shipment_usd[n, o] + unit_all[n, o].sum())
            weight = float(cs.leg_weight_lb[0, 0])
            plain = cs.leg_billable_lb[0, 0] == weight and not net.has_tiers[o]
            if plain:
                assert linear == pytest.approx(generic, rel=1e-9, abs=1e-9), (n, o)
                linear_exact += 1
            else:
                assert linear <= generic + 1e-9, (n, o)
            compared += 1
    assert compared > 1000 and linear_exact > 100
