"""The split search's lower bounds never change a decision.

`scored_candidates` skips split sizes and node subsets whose lower bounds lose to
the best plan found so far (size_bound, the pair grid, the triple bound, the
per-subset bounds). Here every decision of a short national simulation (busy
queues, partial stock, weight tiers, volume limits) is re-decided with every
bound switched off, for each strategy, and the chosen plan and its score must be
the same.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from conftest import SCENARIOS
from test_golden_decisions import GOLDEN

from router.candidates import single_candidates
from router.context import context_from_json
from router.engine import decide
from router.legs import METRIC_FIELDS, lane_metrics
from router.network import build_network
from router.params import StrategyParams
from router.rules import line_feasibility, node_exclusions, usable_options
from router.scenario import load_scenario
from router.scoring import score_candidates
from router.splits import SplitSearch
from router.state import StateView
from router.strategies import default_strategies


@pytest.fixture(scope="module")
def captured():
    """(net, params, skus, [(view, ctx), ...]) of every decision in 90 simulated minutes of national.

    The inputs are the stored ones of ``golden/national_decisions.json.gz`` (seed 7,
    optimizer): busy queues, partial stock, weight tiers, volume limits.
    """
    with gzip.open(GOLDEN, "rt") as f:
        doc = json.load(f)
    net = build_network(load_scenario(SCENARIOS / "national.yaml"))
    params = StrategyParams.model_validate(doc["params"])
    seen = [(StateView.from_json(r["view"]), context_from_json(r["context"])) for r in doc["decisions"]]
    return net, params, net.sku_ids, seen


STRATEGIES = default_strategies()


def _decide(net, v, c, params, skus, strategy, compiled=True):
    return decide(net, v, c, params, skus, STRATEGIES, strategy, compiled_splits=compiled)


def _no_pruning(monkeypatch):
    monkeypatch.setattr(SplitSearch, "beaten", classmethod(lambda cls, lb, best: np.zeros(np.shape(lb), dtype=bool)))
    monkeypatch.setattr(SplitSearch, "cost_lower_bound", lambda self, size: 0.0 if np.isfinite(self.f_min) else np.inf)
    monkeypatch.setattr(SplitSearch, "triple_beaten", lambda self, c, s: False)
    listing = SplitSearch.candidates
    # no bound handed to the subset enumeration either (the compiled loop bounds inside)
    monkeypatch.setattr(SplitSearch, "candidates", lambda self, size, excluded, bound=None: listing(self, size, excluded))


def _chosen(out):
    if not len(out.ranking):
        return None, None
    c = int(out.ranking[0])
    cs = out.cs
    legs = sorted(
        (int(n), int(o), tuple(u.tolist()))
        for n, o, u in zip(cs.leg_node[c], cs.leg_opt[c], cs.leg_units[c])
        if n >= 0
    )
    return legs, float(out.scores.total[c])


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("strategy", ["optimizer", "cheapest", "nearest", "tier_rules"])
def test_bounds_never_change_the_chosen_plan(captured, monkeypatch, strategy, compiled):
    net, params, skus, seen = captured
    assert len(seen) > 800
    pruned = [_chosen(_decide(net, v, c, params, skus, strategy, compiled)) for v, c in seen]
    with monkeypatch.context() as m:
        _no_pruning(m)
        full = [_chosen(_decide(net, v, c, params, skus, strategy, compiled)) for v, c in seen]
    splits = 0
    for (legs_p, score_p), (legs_f, score_f) in zip(pruned, full):
        assert legs_p == legs_f
        assert score_p == score_f
        splits += legs_p is not None and len(legs_p) > 1
    if strategy in ("optimizer", "cheapest"):
        assert splits > 10  # the comparison covered chosen splits, not only single-node plans


def _split_inputs(net, params, skus, v, c):
    u = usable_options(net, v, c)
    ok, ex = node_exclusions(net, v, c, params, u, skus)
    lo = line_feasibility(v, c, params, ok)
    ln = lane_metrics(net, v, c)
    cs = single_candidates(net, v, c, u, lo, ex, ln)
    sc = score_candidates(cs, v, c, params)
    bound = (float(sc.term("cost").values.min()), float(sc.total.min())) if len(cs) else None
    return u, lo, ln, bound


def test_compiled_and_numpy_enumerations_list_the_same_plans(captured, monkeypatch):
    """Same subsets, order, options, units and leg numbers, with and without a bound, sizes 2-3."""
    net, params, skus, seen = captured
    compared = nonempty = 0
    for v, c in seen[::3]:
        if len(c.qty) < 2:
            continue
        u, lo, ln, bound = _split_inputs(net, params, skus, v, c)
        for size in range(2, min(3, len(c.qty)) + 1):
            for b in (None, bound) if bound else (None,):
                out = []
                for compiled in (True, False):
                    search = SplitSearch(net, v, c, params, u, lo, ln, compiled=compiled)
                    assert search.compiled is compiled
                    out.append(search.candidates(size, [], b))
                a, n = out
                for name in ("leg_node", "leg_opt", "leg_units", "source", *METRIC_FIELDS):
                    np.testing.assert_array_equal(getattr(a, name), getattr(n, name), err_msg=name)
                compared += 1
                nonempty += len(a) > 0
    assert compared > 300 and nonempty > 100


def test_bounds_do_prune(captured, monkeypatch):
    """The bounds are what keeps the search cheap: most subsets are never materialised."""
    net, params, skus, seen = captured
    kept = {True: 0, False: 0}
    for v, c in seen[::3]:
        if len(c.qty) < 3:
            continue
        u, lo, ln, bound = _split_inputs(net, params, skus, v, c)
        if bound is None:
            continue
        for bounded in (True, False):
            kept[bounded] += len(SplitSearch(net, v, c, params, u, lo, ln).candidates(3, [], bound if bounded else None))
    assert kept[False] > 1000 and kept[True] < 0.05 * kept[False]
    # the numpy path skips whole sizes: most three-line orders never list a triple
    calls = {2: 0, 3: 0}
    orig = SplitSearch.candidates

    def count(self, size, excluded, bound=None):
        calls[size] = calls.get(size, 0) + 1
        return orig(self, size, excluded, bound)

    monkeypatch.setattr(SplitSearch, "candidates", count)
    for v, c in seen:
        _decide(net, v, c, params, skus, "optimizer", compiled=False)
    multi = sum(1 for _, c in seen if len(c.qty) >= 3)
    assert calls[3] < 0.5 * multi
