"""The academic benchmark: online fulfilment on the Jasin & Sinha network against the hindsight bound.

Protocol (Jasin & Sinha, Operations Research 63(6) 2015; Ma, M&SOM 2023; Acimovic &
Graves, M&SOM 17(1) 2015), on ``scenarios/us_jasin_sinha.yaml``:

* 10 fulfilment centres, 99 cities; an order comes from a city with probability
  proportional to its population; it holds 1-5 distinct items (size uniform, items
  uniform among 100), one unit each; T arrivals (5,000; ``--quick`` 300 on 2 seeds,
  with half the sampled futures per order-LP re-solve and at most 4 LP solves per
  policy: a transportation LP takes about a second whatever T is).
* Each seed draws a new world: each centre carries each item with probability 0.5
  (an empty row is redrawn, so every item is somewhere); an item's total stock is
  its expected demand T x 3 / 100, split over the centres that carry it in
  proportion to the population each is the nearest carrier for (the very rule of
  ``scripts/build_scenarios.py``, imported from it).
* Cost: $8.759 per package + ($0.423 + $0.000541 x miles) per unit; an unfulfilled
  unit costs 2 x $8.759 + 2 x the worst per-unit cost to its city.
* Every online policy routes every order through the real engine
  (``Router.route``, ``max_splits`` 5, weights that do not exist in the papers --
  ETA, lateness, late risk, load, split -- set to 0). Items that no centre holds any
  more are left unfulfilled before routing (the engine routes what can ship).
* Policies, all on the same arrivals and stock (a run reports myopic, dual-once,
  dual-resolve, dual-tuned and order-lp-track unless ``--policies`` says otherwise):

  - ``myopic``: the ``cheapest`` strategy, the cheapest plan for this order now;
  - ``dual-once``: Acimovic & Graves' transportation LP over the expected demand
    of the whole horizon, solved once; its supply duals become stock prices that
    the optimizer adds to cost (the ``stock_value`` term);
  - ``dual-resolve``: the same LP re-solved every R arrivals on the stock left
    and the expected remaining demand (remaining arrivals x per city-item rates);
  - ``dual-tuned``: the same prices with the best setting of :data:`DUAL_GRIDS` on the
    tuning seeds (:data:`DUAL_TUNED`): re-solve period, smoothing as in
    ``order-lp-smooth``, tracking as in ``order-lp-track``, and a weight on the prices;
  - ``order-lp-resolve``: prices from the order-level LP (packages >= items, the
    hindsight model) over *sampled* futures -- 20 samples of 100 orders drawn from
    the demand model (never the real arrivals), stock scaled to the sample, duals
    averaged -- re-solved every R arrivals, so the prices also value keeping an
    order's items together;
  - ``order-lp-smooth``: the same re-solves, exponentially averaged over time
    (each new solve weighs 0.5, the running price the rest), so that the noise of
    one re-solve's samples and degenerate duals averages out across re-solves.
  - ``order-lp-track``: three changes to ``order-lp-smooth``. Each re-solve draws 10
    futures of 200 orders (as many orders as 20 x 100, but each future's stock is
    scaled down half as far, so its per-centre, per-item demand is less of a lottery);
    it re-solves every T/50 arrivals with weight 0.3; and between re-solves the
    prices follow the stock as it is spent (``track_prices``: a unit used faster than
    ``stock / arrivals left`` raises that centre's price for the item by $0.25, an
    idle one lowers it, never below 0), republished after every order. It sees
    the demand model, the count of arrivals left and the stock only, never the
    realised arrivals.

* Hindsight: the LP relaxation over the realised arrivals with the same stock (a
  lower bound on every policy); an integer Lagrangian bound (tighter, still below
  the hindsight MIP); the MIP itself with ``--mip-time`` (it solves to 1.6 % in 60 s
  at 200 arrivals, not at 1,000).

Seeds. A seed draws a whole world (carry pattern, stock, arrivals). The settings of
``order-lp-track`` and ``dual-tuned`` were chosen on the tuning seeds 1-3; the report
runs on the held-out seeds 101-105, which no choice looked at. The tuning-seed figures
are kept apart (``TUNING_GAP_SHARE``, from the runs that chose the settings).

Reported per seed, and over seeds as the mean with its 95 % Student-t interval: cost per
order, packages per order, units unfulfilled, and the share of the myopic-to-hindsight-LP
gap each policy closes, (myopic - policy) / (myopic - LP). ``order-lp-track`` is set
against every other policy by the paired difference per seed (gap points and $/order),
and a winner is called only where the 95 % interval of that difference excludes 0. The
headline pair is ``order-lp-track`` against ``dual-tuned``: the dual-price baseline with
its knobs (re-solve period, smoothing, tracking step, price weight) tuned on the tuning
seeds with about the same effort (``--tune``, :data:`DUAL_GRIDS`). Also: which policies reach
the project's target of a mean share >= 50 %; published reference: Acimovic & Graves' LP
pricing closes about 36 %. Progress and the machine go to stderr; the last stdout line is
one JSON object.

    python benchmarks/jasin_sinha.py --quick                 # 300 arrivals, seeds 101-102 (CI smoke)
    python benchmarks/jasin_sinha.py                         # 5,000 arrivals, seeds 101-105
    python benchmarks/jasin_sinha.py --tune [--grid full] [--processes 2]  # screen on seeds 1-3
    python benchmarks/jasin_sinha.py --seeds 1-3 --policies all [--mip-time 120]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml
from protocol import interval, machine_facts, paired, parse_seeds  # benchmarks/protocol

from router import Order, Router
from router.params import StrategyParams
from router.scenario import parse_scenario
from router.solver.lp import (
    FulfilmentCosts,
    OrderList,
    fulfilment_lp,
    fulfilment_prices,
    lagrangian_bound,
    track_prices,
    transport_prices,
)

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "us_jasin_sinha.yaml"
T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
N_ITEMS = 100
SIZE_MIN, SIZE_MAX = 1, 5
P_CARRY = 0.5
FIXED_USD, UNIT_USD, MILE_USD = 8.759, 0.423, 0.000541
PUBLISHED_GAP_SHARE = 0.36  # Acimovic & Graves (2015)
TARGET_GAP_SHARE = 0.5  # the project's target: mean over the seeds


def _build_scenarios_module():
    """scripts/build_scenarios.py, for its stock rule (apportion, nearest_demand) and geometry."""
    spec = importlib.util.spec_from_file_location("build_scenarios", ROOT / "scripts" / "build_scenarios.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_scenarios", mod)  # its dataclasses look their module up there
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


_BS = _build_scenarios_module()

# The params every policy shares: the papers know only cost, so the terms they lack weigh 0.
PAPER_PARAMS = dict(
    max_splits=5,
    max_candidate_nodes=10,
    eta_hour_usd=0.0,
    late_hour_usd=0.0,
    late_risk_usd=0.0,
    load_usd=0.0,
    split_penalty_usd=0.0,
)


# ------------------------------------------------------------------------ world


@dataclass
class World:
    """One seed's instance: stock, arrivals, costs, and the base scenario with that stock."""

    seed: int
    doc: dict  # the scenario mapping with this world's stock
    node_ids: list[str]
    sku_ids: list[str]
    city_ids: list[str]
    city_p: np.ndarray  # float[J] arrival probability per city
    stock: np.ndarray  # int[N, K] initial
    arrivals: OrderList
    costs: FulfilmentCosts

    @property
    def n_arrivals(self) -> int:
        return len(self.arrivals)

    def item_rate(self) -> np.ndarray:
        """float[J, K]: expected units of item k from city j per arrival (p_j x E[size] / K)."""
        return self.city_p[:, None] * ((SIZE_MIN + SIZE_MAX) / 2.0 / N_ITEMS) * np.ones((1, N_ITEMS))


def draw_orders(rng: np.random.Generator, city_p: np.ndarray, n: int) -> OrderList:
    """``n`` orders from the demand model: city by population, 1-5 distinct uniform items."""
    city = rng.choice(len(city_p), size=n, p=city_p)
    size = rng.integers(SIZE_MIN, SIZE_MAX + 1, size=n)
    items = np.full((n, SIZE_MAX), -1, dtype=np.int64)
    # distinct items: the first `size` of a random permutation (argsort of uniforms)
    perm = np.argsort(rng.random((n, N_ITEMS)), axis=1)[:, :SIZE_MAX]
    cols = np.arange(SIZE_MAX)[None, :] < size[:, None]
    items[cols] = perm[cols]
    return OrderList(city.astype(np.int64), items)


def build_world(seed: int, n_arrivals: int, base: dict | None = None) -> World:
    """Draw one seed's carry pattern, stock and arrivals (see the module docstring)."""
    base = base if base is not None else yaml.safe_load(SCENARIO.read_text())
    rng = np.random.default_rng([2015, seed])
    nodes, regions = base["nodes"], base["regions"]
    n_lat = np.array([n["lat"] for n in nodes])
    n_lon = np.array([n["lon"] for n in nodes])
    r_lat = np.array([r["lat"] for r in regions])
    r_lon = np.array([r["lon"] for r in regions])
    r_w = np.array([r["demand_weight"] for r in regions], float)
    city_p = r_w / r_w.sum()
    n_nodes = len(nodes)
    per_item = int(round(n_arrivals * (SIZE_MIN + SIZE_MAX) / 2.0 / N_ITEMS))  # expected demand of one item
    stock = np.zeros((n_nodes, N_ITEMS), dtype=np.int64)
    for k in range(N_ITEMS):
        row = rng.random(n_nodes) < P_CARRY
        while not row.any():  # every item at >= 1 centre
            row = rng.random(n_nodes) < P_CARRY
        w = _BS.nearest_demand(n_lat, n_lon, r_lat, r_lon, r_w, row)
        stock[row, k] = _BS.apportion(per_item, w, minimum=1) if per_item >= row.sum() else _spread(per_item, w)
    arrivals = draw_orders(rng, city_p, n_arrivals)
    sku_ids = [s["id"] for s in base["skus"]]
    node_ids = [n["id"] for n in nodes]
    doc = dict(base)
    doc["stock"] = {
        node_ids[n]: {sku_ids[k]: int(stock[n, k]) for k in range(N_ITEMS) if stock[n, k] > 0} for n in range(n_nodes)
    }
    miles = _BS.distance_matrix(n_lat, n_lon, r_lat, r_lon)  # [N, J], the engine's haversine
    unit = UNIT_USD + MILE_USD * miles
    costs = FulfilmentCosts(FIXED_USD, unit, 2.0 * FIXED_USD + 2.0 * unit.max(axis=0))
    return World(seed, doc, node_ids, sku_ids, [r["id"] for r in regions], city_p, stock, arrivals, costs)


def _spread(total: int, w: np.ndarray) -> np.ndarray:
    """Largest-remainder split without a minimum (tiny smoke worlds have fewer units than centres)."""
    ideal = total * np.asarray(w, float) / max(float(np.sum(w)), 1e-12)
    q = np.floor(ideal).astype(np.int64)
    q[np.argsort(-(ideal - q), kind="stable")[: total - int(q.sum())]] += 1
    return q


# --------------------------------------------------------------------- policies


@dataclass(frozen=True)
class Policy:
    """An online policy: an engine strategy plus, optionally, a stock-pricing rule.

    ``price`` maps (world, arrivals so far, available stock) to float[N, K] USD prices;
    it runs at t = 0 and, when ``every`` > 0, again every ``every`` arrivals. With
    ``track`` > 0 the prices between two solves follow the stock as it is spent (see
    :func:`track_prices`), and are republished after every order.
    """

    name: str
    strategy: str
    price: Callable[[World, int, np.ndarray], np.ndarray] | None = None
    every: int = 0
    weight: float = 1.0  # StrategyParams.stock_value_weight
    track: float = 0.0  # USD per unit of over- or under-use, see track_prices


def transport_unit_cost(world: World, fixed_share: float) -> np.ndarray:
    """Per-unit cost of the transportation LP: the per-unit rate plus a share of the package charge."""
    return world.costs.unit_usd + fixed_share * world.costs.fixed_usd


def dual_prices(fixed_share: float) -> Callable[[World, int, np.ndarray], np.ndarray]:
    """Acimovic & Graves: duals of the transportation LP over the expected remaining demand."""

    def price(world: World, t: int, avail: np.ndarray) -> np.ndarray:
        demand = (world.n_arrivals - t) * world.item_rate()
        unmet = world.costs.unmet_usd
        return transport_prices(
            transport_unit_cost(world, fixed_share), avail, demand, unmet_usd=unmet
        ).prices_usd

    return price


def order_lp_prices(
    samples: int = 20, max_orders: int = 100, lagrangian_steps: int = 0, fast: bool = False
) -> Callable[[World, int, np.ndarray], np.ndarray]:
    """Duals of the order-level LP over a sampled future (``samples`` draws, averaged).

    The future is drawn from the demand model with its own seed: the policy never
    sees the real arrivals. At most ``max_orders`` orders are drawn; the stock is
    scaled by the same factor (the fluid scaling of the LP: prices of a problem
    scaled down in demand and supply alike approximate those of the full one).
    With ``lagrangian_steps`` the LP duals are refined by that many subgradient
    steps of :func:`~router.solver.lp.lagrangian_bound` (integer-aware prices).
    ``fast`` solves each sample with :func:`~router.solver.lp.fulfilment_prices`
    (the same LP through SciPy, about 0.7x the time) instead of
    :func:`~router.solver.lp.fulfilment_lp`.
    """
    solve = fulfilment_prices if fast else fulfilment_lp

    def price(world: World, t: int, avail: np.ndarray) -> np.ndarray:
        left = world.n_arrivals - t
        m = min(left, max_orders)
        out = np.zeros(avail.shape)
        for s in range(samples):
            rng = np.random.default_rng([7, world.seed, t, s])
            future = draw_orders(rng, world.city_p, m)
            supply = avail * (m / left)
            res = solve(future, world.costs, supply)
            prices = res.prices_usd
            if lagrangian_steps:
                prices = lagrangian_bound(
                    future, world.costs, supply, upper_usd=1.02 * res.objective_usd,
                    start_prices=prices, iterations=lagrangian_steps,
                ).prices_usd
            out += prices
        return out / samples

    return price


def smoothed(
    price: Callable[[World, int, np.ndarray], np.ndarray], alpha: float
) -> Callable[[World, int, np.ndarray], np.ndarray]:
    """Exponential average over successive re-solves: p_t = alpha x new + (1 - alpha) x p_(t-1).

    Each re-solve is a fresh, noisy estimate (new samples, degenerate duals); the average
    keeps what successive solves agree on. It restarts at t = 0 (a new run).
    """
    state: dict[int, np.ndarray] = {}

    def smooth(world: World, t: int, avail: np.ndarray) -> np.ndarray:
        new = price(world, t, avail)
        prev = state.get(world.seed)
        state[world.seed] = new if t == 0 or prev is None else alpha * new + (1.0 - alpha) * prev
        return state[world.seed]

    return smooth


SMOOTH_ALPHA = 0.5
# order-lp-track: chosen on the tuning seeds 1-3 at T = 5,000 (the screening is in the
# comment of default_policies and in benchmarks/README.md); never looked at seeds 101+.
TRACK_ORDERS = 200  # orders per sampled future
TRACK_ALPHA = 0.3  # smoothing weight of each re-solve
TRACK_STEP_USD = 0.25  # track_prices step per unit of deviation
TRACK_RESOLVES = 50  # re-solves per horizon: every T/50 arrivals

# The seeds. Settings are chosen on TUNE_SEEDS and reported on HELD_OUT_SEEDS; a seed
# draws the whole world (carry pattern, stock, arrivals), so the two sets share nothing.
TUNE_SEEDS = (1, 2, 3)
HELD_OUT_SEEDS = (101, 102, 103, 104, 105)
QUICK_SEEDS = (101, 102)
QUICK_ARRIVALS = 300
# A transportation LP takes about 1 s whatever T is (its size is centres x cities x
# items), so --quick caps every LP policy at this many solves per run.
QUICK_MAX_SOLVES = 4


@dataclass(frozen=True)
class DualSetting:
    """The knobs of the dual-price baseline (Acimovic & Graves' transportation LP prices).

    ``resolves`` re-solves per horizon (every T / resolves arrivals; 0: priced once);
    ``alpha`` the weight of each re-solve in the running prices (1: no smoothing, see
    :func:`smoothed`); ``track_usd`` the step of :func:`track_prices` between solves
    (0: none); ``weight`` scales the prices in the score (``stock_value_weight``).
    These are the devices ``order-lp-track`` was tuned over, so the baseline gets them
    too. (A share of the package charge added to the LP's per-unit cost is no knob: it
    shifts every arc to a city alike, which leaves the supply duals as they are.)
    """

    resolves: int = 20
    alpha: float = 1.0
    track_usd: float = 0.0
    weight: float = 1.0

    def label(self) -> str:
        every = f"T/{self.resolves}" if self.resolves else "once"
        return f"every {every}, alpha {self.alpha:g}, track ${self.track_usd:g}, weight {self.weight:g}"

    def policy(self, name: str, n_arrivals: int, max_solves: int = 0) -> Policy:
        price = dual_prices(0.0)
        if self.alpha < 1.0:
            price = smoothed(price, self.alpha)
        every = _every(n_arrivals, self.resolves, max_solves)
        return Policy(name, "optimizer", price, every, weight=self.weight, track=self.track_usd)


def _every(n_arrivals: int, resolves: int, max_solves: int = 0) -> int:
    """Arrivals between re-solves for ``resolves`` per horizon, at most ``max_solves`` solves (0: no cap)."""
    if resolves <= 0:
        return 0
    if max_solves:
        resolves = min(resolves, max_solves)
    return max(n_arrivals // resolves, 1)


# dual-resolve as the papers run it, and the centre of the tuning grid.
DUAL_BASE = DualSetting(resolves=20)
# The tuning grids of the dual-price baseline (``--tune [--grid full]``), screened on
# TUNE_SEEDS at T = 5,000 only. Stage 1 moves one knob at a time away from DUAL_BASE to
# each of its levels. Stage 2 sets every knob that beat DUAL_BASE to its best level
# (mean gap share over the tuning seeds); the full grid also screens each of those
# combinations with one knob left at its base value. The chosen setting is the best
# mean of every setting screened.
#
# order-lp-track's own screening was of the same kind: about 8 settings on the 3 tuning
# seeds, one knob at a time and then combined, and a few more on seed 1. The full grid
# (up to 10 + 5 settings x 3 seeds) is more than that; the reduced grid (6 + 1 settings
# x 3 seeds) is about the same, and is the one that chose DUAL_TUNED: a run of T = 5,000
# with 50 transportation LPs takes about 70 s alone on 2 cores, and several times that
# beside other work.
DUAL_GRIDS = {
    "full": {
        "resolves": (10, 50),
        "alpha": (0.5, 0.3),
        "track_usd": (0.25, 0.5, 1.0),  # order-lp-track's step was screened at 0.25-2 on seed 1
        "weight": (0.5, 1.5),
    },
    "reduced": {
        "resolves": (50,),  # order-lp-track's re-solve period
        "alpha": (0.3,),  # and its smoothing
        "track_usd": (0.25, 1.0),  # its tracking step, and a larger one (these duals run larger)
        "weight": (1.5,),
    },
}
LEAVE_ONE_OUT = {"full": True, "reduced": False}
# dual-tuned: the setting `--tune` chose (the reduced grid, seeds 1-3, T = 5,000, run of
# 2026-12-01, 34 min on 2 processes). Stage 1, mean gap share (seeds 1 / 2 / 3): the base
# (every T/20) 13.8 % (14.5 / 15.8 / 11.0); every T/50 14.9 %; alpha 0.3 9.4 %; tracking
# $0.25 17.3 %, $1 12.8 %; weight 1.5 21.5 % (22.6 / 22.5 / 19.6). Stage 2, T/50 with
# tracking $0.25 and weight 1.5: 19.9 %. Weight 1.5 is the edge of the grid.
DUAL_TUNED = DualSetting(resolves=20, weight=1.5)
# Mean gap share on the tuning seeds 1-3 at T = 5,000, as measured when the settings were
# chosen. Reported apart from the held-out figures: they are what the choice saw.
TUNING_GAP_SHARE = {
    "order-lp-track": 0.5284,  # full run of 2026-11-22 (52.8 %: 53.2 / 54.8 / 50.6)
    "dual-tuned": 0.2154,  # the --tune run of 2026-12-01 (22.6 / 22.5 / 19.6)
}
OURS = "order-lp-track"
BASELINE = "dual-tuned"


def default_policies(
    n_arrivals: int,
    *,
    resolve_every: int | None = None,
    samples: int = 20,
    track_every: int | None = None,
    track_samples: int | None = None,
    max_solves: int = 0,
) -> list[Policy]:
    """Every policy of the benchmark, myopic first (the reference of the gap share).

    ``resolve_every`` is the re-pricing period of ``dual-resolve``, ``order-lp-resolve``
    and ``order-lp-smooth`` (default T/20). ``order-lp-track`` re-solves every
    ``track_every`` arrivals (default T/50) with ``track_samples`` sampled futures
    (default half of ``samples``: its futures are twice as large). ``dual-tuned`` uses
    :data:`DUAL_TUNED`. ``max_solves`` caps the solves of every LP policy (0: no cap).
    """
    resolve_every = resolve_every or _every(n_arrivals, 20, max_solves)
    track_every = track_every or _every(n_arrivals, TRACK_RESOLVES, max_solves)
    track_samples = track_samples or max(samples // 2, 1)
    return [
        Policy("myopic", "cheapest"),
        Policy("dual-once", "optimizer", dual_prices(0.0)),
        Policy("dual-resolve", "optimizer", dual_prices(0.0), resolve_every),
        DUAL_TUNED.policy("dual-tuned", n_arrivals, max_solves),
        # 20 sampled futures of 100 orders each, averaged: the duals of one sample are
        # degenerate and noisy (1 sample of 1,000 orders closed 12 % of the gap on seed 1
        # at T = 1,000; 3 x 1,000: 27 %; 20 x 100: 29 %, at a tenth of the LP time).
        Policy("order-lp-resolve", "optimizer", order_lp_prices(samples), resolve_every),
        # The same solves, exponentially averaged over time (SMOOTH_ALPHA): at T = 5,000,
        # seeds 1-2, +3 points over the unsmoothed prices at no extra LP time; re-solving
        # every T/50 instead gained under 1 point at 2.3x the LP time, and scaling the
        # prices (stock_value_weight 0.8 or 1.3) nothing.
        Policy("order-lp-smooth", "optimizer", smoothed(order_lp_prices(samples), SMOOTH_ALPHA), resolve_every),
        # Screened at T = 5,000 on the tuning seeds 1-3 (gap closed, mean; order-lp-smooth
        # 47.8 %): futures of 200 orders instead of 100 (10 of them, as many orders per
        # solve): 50.1 %, the largest single gain, +4.6 points on seed 3; 5 x 400: 50.1 %;
        # 40 x 100: 48.7 %. Re-solving every T/50 with alpha 0.3: 49.2 %. Tracking the
        # stock between solves (track_prices, $0.25 a unit): +0.9 to +1.3 points on top
        # of either. All three: 52.5 % (52.4 / 54.0 / 51.1).
        Policy(
            "order-lp-track",
            "optimizer",
            smoothed(order_lp_prices(track_samples, TRACK_ORDERS, fast=True), TRACK_ALPHA),
            track_every,
            track=TRACK_STEP_USD,
        ),
    ]


# The policies a run reports unless --policies says otherwise: the headline pair
# (OURS and BASELINE) and the papers' references. order-lp-resolve and order-lp-smooth
# are the steps from the papers to order-lp-track; at about 100 s a seed each they run
# on request (--policies all).
DEFAULT_NAMES = ("myopic", "dual-once", "dual-resolve", BASELINE, OURS)
QUICK_NAMES = ("myopic", BASELINE, OURS)

# ------------------------------------------------------------------------ runs


@dataclass
class PolicyRun:
    name: str
    cost_usd: float = 0.0
    packages: int = 0
    units_shipped: int = 0
    units_unmet: int = 0
    orders: int = 0
    pricing_s: float = 0.0
    routing_s: float = 0.0
    fallbacks: int = 0
    solves: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def cost_per_order(self) -> float:
        return self.cost_usd / max(self.orders, 1)

    @property
    def packages_per_order(self) -> float:
        return self.packages / max(self.orders, 1)


def run_policy(world: World, policy: Policy, *, progress: Callable[[str], None] | None = None) -> PolicyRun:
    """Route every arrival of ``world`` through a fresh Router with ``policy``; tally the papers' cost."""
    sc = parse_scenario(world.doc, source="us_jasin_sinha (benchmark world)")
    params = StrategyParams(**PAPER_PARAMS, stock_value_weight=policy.weight)
    router = Router(sc, ledger=None, params=params, strategy=policy.strategy, seed=world.seed)
    router.clock = lambda: T0
    state = router.state
    costs = world.costs
    out = PolicyRun(policy.name)
    city, items = world.arrivals.city, world.arrivals.items
    sku_ids, city_ids = world.sku_ids, world.city_ids
    tracked = policy.price is not None and policy.track > 0
    base = correction = before = None
    for t in range(world.n_arrivals):
        if policy.price is not None and (t == 0 or (policy.every and t % policy.every == 0)):
            t0 = time.perf_counter()
            base = policy.price(world, t, state.available().astype(float))
            correction = np.zeros_like(base)
            state.set_stock_prices(base)
            out.pricing_s += time.perf_counter() - t0
            out.solves += 1
        if tracked:
            before = state.available().astype(float)
        j = int(city[t])
        its = items[t][items[t] >= 0]
        out.orders += 1
        left = state.available()[:, its].sum(axis=0)
        ship = its[left > 0]
        n_unmet = int(len(its) - len(ship))
        out.units_unmet += n_unmet
        out.cost_usd += n_unmet * float(costs.unmet_usd[j])
        if len(ship):
            order = Order.model_validate(
                {
                    "order_id": f"s{world.seed}-{t}",
                    "customer": {"customer_id": f"c{t}"},
                    "destination": {"region": city_ids[j]},
                    "lines": [{"sku": sku_ids[k], "qty": 1} for k in ship.tolist()],
                    "created_at": T0,
                }
            )
            t0 = time.perf_counter()
            d = router.route(order)
            out.routing_s += time.perf_counter() - t0
            if d.status != "routed":  # pragma: no cover - every line has stock somewhere
                out.units_unmet += len(ship)
                out.cost_usd += len(ship) * float(costs.unmet_usd[j])
                continue
            if d.strategy != policy.strategy:
                out.fallbacks += 1
            plan = d.plan
            out.cost_usd += plan.cost_usd
            out.packages += len(plan.legs)
            out.units_shipped += len(ship)
        if tracked:
            t0 = time.perf_counter()
            used = before - state.available()
            prices, correction = track_prices(base, correction, before, used, world.n_arrivals - t, policy.track)
            state.set_stock_prices(prices)
            out.pricing_s += time.perf_counter() - t0
        if progress and (t + 1) % 1000 == 0:
            progress(f"  {policy.name}: {t + 1}/{world.n_arrivals} orders, ${out.cost_per_order:.3f}/order")
    return out


# The hindsight LP of 5,000 orders takes 25 s alone on 2 cores, and over 120 s (the
# library's default limit) beside other work; at the limit it returns no solution.
HINDSIGHT_LP_LIMIT_S = 3600.0


def hindsight_lp(world: World):
    """The hindsight LP over ``world``'s arrivals; raises unless solved to optimality (never a silent NaN)."""
    lp = fulfilment_lp(world.arrivals, world.costs, world.stock, time_limit_s=HINDSIGHT_LP_LIMIT_S)
    if lp.status != "optimal":
        raise RuntimeError(f"seed {world.seed}: hindsight LP ended {lp.status!r} after {lp.seconds:.0f} s")
    return lp


def gap_share(myopic: float, policy: float, bound: float) -> float:
    """Share of the myopic-to-bound gap a policy closes: (myopic - policy) / (myopic - bound)."""
    gap = myopic - bound
    return float((myopic - policy) / gap) if gap > 1e-9 else float("nan")


def run_seed(
    seed: int,
    n_arrivals: int,
    *,
    policies: list[Policy] | None = None,
    mip_time_s: float = 0.0,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """One world: every policy on the same arrivals and stock, the hindsight LP (and MIP).

    Returns a dict with, per policy, cost and packages per order, units unfulfilled,
    the gap share closed, and timing; plus the hindsight bound(s).
    """
    world = build_world(seed, n_arrivals)
    policies = policies if policies is not None else default_policies(n_arrivals)
    t0 = time.perf_counter()
    lp = hindsight_lp(world)
    res: dict = {
        "seed": seed,
        "arrivals": n_arrivals,
        "hindsight_lp": {
            "cost_per_order": lp.objective_usd / n_arrivals,
            "packages_per_order": lp.packages / n_arrivals,
            "units_unmet": lp.units_unmet,
            "seconds": round(lp.seconds, 2),
        },
    }
    if progress:
        progress(f"seed {seed}: hindsight LP ${lp.objective_usd / n_arrivals:.3f}/order ({time.perf_counter() - t0:.1f} s)")
    if mip_time_s > 0:
        mip = fulfilment_lp(world.arrivals, world.costs, world.stock, integer=True, time_limit_s=mip_time_s)
        res["hindsight_mip"] = {
            "status": mip.status,
            "cost_per_order": mip.objective_usd / n_arrivals if np.isfinite(mip.objective_usd) else None,
            "bound_per_order": mip.bound_usd / n_arrivals,
            "packages_per_order": mip.packages / n_arrivals if np.isfinite(mip.packages) else None,
            "seconds": round(mip.seconds, 2),
        }
        if progress:
            progress(f"seed {seed}: hindsight MIP {mip.status} ${mip.objective_usd / n_arrivals:.3f}/order ({mip.seconds:.1f} s)")
    runs = {}
    for pol in policies:
        runs[pol.name] = r = run_policy(world, pol, progress=progress)
        if progress:
            progress(
                f"seed {seed}: {pol.name:18} ${r.cost_per_order:.3f}/order, {r.packages_per_order:.3f} packages/order "
                f"(routing {r.routing_s:.1f} s, pricing {r.pricing_s:.1f} s in {r.solves} solves)"
            )
    myopic = runs[policies[0].name].cost_usd
    # The integer Lagrangian bound (each order's plan integer, supply rows priced) lies
    # between the LP and the hindsight MIP: (myopic - it) / (myopic - LP) is the most of
    # the LP gap that even a clairvoyant policy could close.
    best_cost = min(r.cost_usd for r in runs.values())
    lag = lagrangian_bound(
        world.arrivals, world.costs, world.stock, upper_usd=best_cost, start_prices=lp.prices_usd, iterations=60
    )
    res["hindsight_lagrangian"] = {
        "cost_per_order": lag.bound_usd / n_arrivals,
        "ceiling_gap_share": gap_share(myopic, lag.bound_usd, lp.objective_usd),
        "seconds": round(lag.seconds, 2),
    }
    if progress:
        progress(f"seed {seed}: Lagrangian bound ${lag.bound_usd / n_arrivals:.3f}/order ({lag.seconds:.1f} s)")
    res["policies"] = {
        name: {
            "cost_per_order": r.cost_per_order,
            "packages_per_order": r.packages_per_order,
            "units_unmet": r.units_unmet,
            "gap_share": gap_share(myopic, r.cost_usd, lp.objective_usd),
            "routing_ms_per_order": 1000.0 * r.routing_s / max(r.orders, 1),
            "pricing_s": round(r.pricing_s, 2),
            "fallbacks": r.fallbacks,
        }
        for name, r in runs.items()
    }
    return res


# ------------------------------------------------------------------------- main


@dataclass(frozen=True)
class RunConfig:
    """What a worker needs to rebuild the policies of a run (policies hold closures, configs pickle)."""

    n_arrivals: int
    names: tuple[str, ...]
    resolve_every: int | None = None
    samples: int = 20
    track_every: int | None = None
    max_solves: int = 0
    mip_time_s: float = 0.0

    def policies(self) -> list[Policy]:
        every = default_policies(
            self.n_arrivals, resolve_every=self.resolve_every, samples=self.samples,
            track_every=self.track_every, max_solves=self.max_solves,
        )
        return [p for i, p in enumerate(every) if i == 0 or p.name in self.names]


def _stderr_progress(t0: float, prefix: str = "") -> Callable[[str], None]:
    def progress(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f} s] {prefix}{msg}", file=sys.stderr, flush=True)

    return progress


def _seed_job(cfg: RunConfig, seed: int, t0: float) -> dict:
    return run_seed(
        seed, cfg.n_arrivals, policies=cfg.policies(), mip_time_s=cfg.mip_time_s,
        progress=_stderr_progress(t0),  # perf_counter is system-wide (CLOCK_MONOTONIC): t0 holds in a worker
    )


def _map(fn: Callable, jobs: list[tuple], processes: int, on_done: Callable[[int, object], None] | None = None) -> list:
    """``fn(*job)`` for every job, in job order; with ``processes`` > 1 on that many spawned processes.

    The results are the same either way: every figure here is a cost, not a timing, and
    every random draw is keyed by its seed.
    """
    out: list = [None] * len(jobs)
    if processes <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs):
            out[i] = fn(*job)
            if on_done:
                on_done(i, out[i])
        return out
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(processes, len(jobs)), mp_context=ctx) as pool:
        futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
        for fut in as_completed(futures):
            i = futures[fut]
            out[i] = fut.result()
            if on_done:
                on_done(i, out[i])
    return out


# --------------------------------------------------------------------- tuning


def _tune_job(setting: DualSetting | None, seed: int, n_arrivals: int) -> float | tuple[float, float]:
    """One run on a tuning world: the dual-price baseline's total cost (USD) with ``setting``,
    or with ``setting`` None the two ends of the gap, (myopic cost, hindsight LP cost)."""
    world = build_world(seed, n_arrivals)
    if setting is None:
        myopic = run_policy(world, Policy("myopic", "cheapest")).cost_usd
        return myopic, hindsight_lp(world).objective_usd
    return run_policy(world, setting.policy("dual", n_arrivals)).cost_usd


def _stage1(base: DualSetting, grid: dict) -> list[DualSetting]:
    return [base] + [replace(base, **{knob: level}) for knob, levels in grid.items() for level in levels]


def _stage2(base: DualSetting, best: dict, leave_one_out: bool) -> list[DualSetting]:
    """All knobs that beat the base at their best level together (and each combination with one left out)."""
    if len(best) < 2:
        return []
    out = [replace(base, **best)]
    if leave_one_out and len(best) >= 3:
        out += [replace(base, **{k: v for k, v in best.items() if k != drop}) for drop in best]
    return out


def tune(
    n_arrivals: int, seeds: list[int], *, grid: str = "reduced", processes: int = 1, progress: Callable[[str], None]
) -> dict:
    """Screen ``DUAL_GRIDS[grid]`` on ``seeds`` (two stages, see the grids' comment); return every figure."""
    levels = DUAL_GRIDS[grid]
    refs: dict[int, tuple[float, float]] = {}  # seed -> (myopic, hindsight LP) cost, USD
    costs: dict[tuple[DualSetting, int], float] = {}
    screened: dict[DualSetting, list[float]] = {}

    def mean_gap(setting: DualSetting) -> float:
        return float(np.mean(screened[setting]))

    def screen(stage: str, settings: list[DualSetting]) -> None:
        todo = [st for st in dict.fromkeys(settings) if st not in screened]
        # the gap's two ends run in the first stage's pool, beside the first settings
        jobs = [(None, s, n_arrivals) for s in seeds if s not in refs] + [(st, s, n_arrivals) for st in todo for s in seeds]
        progress(f"{stage}: {len(todo)} settings x {len(seeds)} seeds = {len(jobs)} runs")

        def done(i: int, out: object) -> None:
            st, s, _ = jobs[i]
            if st is None:
                myopic, lp = out  # type: ignore[misc]
                progress(f"  {stage} run {i + 1}/{len(jobs)}: seed {s}: myopic ${myopic / n_arrivals:.3f}/order, "
                         f"hindsight LP ${lp / n_arrivals:.3f}/order")
            else:
                progress(f"  {stage} run {i + 1}/{len(jobs)}: {st.label()}, seed {s}: ${float(out) / n_arrivals:.3f}/order")

        for (st, s, _), out in zip(jobs, _map(_tune_job, jobs, processes, done)):
            if st is None:
                refs[s] = out
            else:
                costs[st, s] = out
        for st in todo:
            screened[st] = [gap_share(refs[s][0], costs[st, s], refs[s][1]) for s in seeds]
            progress(f"{stage}: {st.label()}: {100 * mean_gap(st):.1f} % "
                     f"({' / '.join(f'{100 * g:.1f}' for g in screened[st])})")

    screen("stage 1", _stage1(DUAL_BASE, levels))
    best: dict = {}
    for knob, knob_levels in levels.items():
        level = max(knob_levels, key=lambda v: mean_gap(replace(DUAL_BASE, **{knob: v})))
        if mean_gap(replace(DUAL_BASE, **{knob: level})) > mean_gap(DUAL_BASE):
            best[knob] = level
    progress(f"stage 1: knobs that beat the base at their best level: {best or 'none'}")
    screen("stage 2", _stage2(DUAL_BASE, best, LEAVE_ONE_OUT[grid]))
    chosen = max(screened, key=mean_gap)
    return {
        "base": asdict(DUAL_BASE),
        "grid_name": grid,
        "grid": {k: list(v) for k, v in levels.items()},
        "stage1_best_levels": best,
        "screened": [
            {"setting": asdict(st), "gap_share_per_seed": [round(g, 4) for g in gaps], "gap_share": round(mean_gap(st), 4),
             "cost_per_order_per_seed": [round(costs[st, s] / n_arrivals, 4) for s in seeds]}
            for st, gaps in screened.items()
        ],
        "myopic_cost_per_order": [round(refs[s][0] / n_arrivals, 4) for s in seeds],
        "hindsight_lp_cost_per_order": [round(refs[s][1] / n_arrivals, 4) for s in seeds],
        "chosen": asdict(chosen),
        "chosen_label": chosen.label(),
        "chosen_gap_share": round(mean_gap(chosen), 4),
        "chosen_gap_share_per_seed": [round(g, 4) for g in screened[chosen]],
    }


# ---------------------------------------------------------------------- report


def _table(results: list[dict]) -> str:
    names = list(results[0]["policies"])
    rows = [f"{'policy':20}{'seed':>6}{'$/order':>10}{'pkg/order':>11}{'unmet':>8}{'gap closed':>12}"]
    for res in results:
        lp = res["hindsight_lp"]
        for name in names:
            p = res["policies"][name]
            rows.append(
                f"{name:20}{res['seed']:>6}{p['cost_per_order']:>10.3f}{p['packages_per_order']:>11.3f}"
                f"{p['units_unmet']:>8d}{100 * p['gap_share']:>11.1f}%"
            )
        rows.append(f"{'hindsight LP':20}{res['seed']:>6}{lp['cost_per_order']:>10.3f}{lp['packages_per_order']:>11.3f}"
                    f"{lp['units_unmet']:>8.1f}{100.0:>11.1f}%")
        g = res["hindsight_lagrangian"]
        rows.append(f"{'Lagrangian bound':20}{res['seed']:>6}{g['cost_per_order']:>10.3f}{'':>11}{'':>8}"
                    f"{'(<= ' + format(100 * g['ceiling_gap_share'], '.0f') + '%)':>12}")
        if "hindsight_mip" in res and res["hindsight_mip"]["cost_per_order"] is not None:
            m = res["hindsight_mip"]
            rows.append(f"{'hindsight MIP':20}{res['seed']:>6}{m['cost_per_order']:>10.3f}{m['packages_per_order']:>11.3f}"
                        f"{'':>8}{'(' + m['status'] + ')':>12}")
        rows.append("")
    rows.append(f"mean over seeds {[r['seed'] for r in results]}, gap closed with its 95 % t-interval")
    for name in names:
        c = np.mean([r["policies"][name]["cost_per_order"] for r in results])
        k = np.mean([r["policies"][name]["packages_per_order"] for r in results])
        iv = interval([r["policies"][name]["gap_share"] for r in results])
        ci = "" if iv["ci95"][0] is None else f"  [{100 * iv['ci95'][0]:.1f}, {100 * iv['ci95'][1]:.1f}]"
        rows.append(f"{name:20}{'':>6}{c:>10.3f}{k:>11.3f}{'':>8}{100 * iv['mean']:>11.1f}%{ci}")
    c = np.mean([r["hindsight_lp"]["cost_per_order"] for r in results])
    k = np.mean([r["hindsight_lp"]["packages_per_order"] for r in results])
    rows.append(f"{'hindsight LP':20}{'':>6}{c:>10.3f}{k:>11.3f}")
    return "\n".join(rows)


def _comparisons(results: list[dict], names: list[str]) -> dict:
    """OURS against every other policy but myopic: paired differences per seed, with the winner rule."""
    if OURS not in names:
        return {}
    out = {}
    for other in names[1:]:
        if other == OURS:
            continue
        gap = {nm: [r["policies"][nm]["gap_share"] for r in results] for nm in (OURS, other)}
        cost = {nm: [r["policies"][nm]["cost_per_order"] for r in results] for nm in (OURS, other)}
        out[other] = {
            "gap_share_points": paired(gap[OURS], gap[other], (OURS, other), lower_is_better=False, scale=100.0, digits=2),
            "cost_per_order_usd": paired(cost[OURS], cost[other], (OURS, other), lower_is_better=True),
        }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_ARRIVALS} arrivals, seeds {QUICK_SEEDS}, the headline policies only, at most "
                    f"{QUICK_MAX_SOLVES} LP solves per policy, no MIP (CI smoke)")
    ap.add_argument("--arrivals", type=int, default=None, help=f"arrivals per seed (default 5,000; quick {QUICK_ARRIVALS})")
    ap.add_argument("--seeds", default=None,
                    help="seeds to report on, e.g. 101-105 or 101,102 (default the held-out seeds "
                    f"{','.join(map(str, HELD_OUT_SEEDS))}; quick {','.join(map(str, QUICK_SEEDS))})")
    ap.add_argument("--tune", action="store_true",
                    help="screen the dual-price baseline's grid (DUAL_GRIDS) on the tuning seeds instead of reporting")
    ap.add_argument("--grid", choices=sorted(DUAL_GRIDS), default="reduced",
                    help="--tune's grid (default %(default)s, the one that chose DUAL_TUNED)")
    ap.add_argument("--tune-seeds", default=",".join(map(str, TUNE_SEEDS)),
                    help="seeds --tune screens on (default %(default)s, the seeds the script's settings were chosen on)")
    ap.add_argument("--processes", type=int, default=1,
                    help="worker processes over seeds (or tuning runs); the figures are the same (default 1)")
    ap.add_argument("--resolve-every", type=int, default=None, help="re-pricing period R (default T / 20)")
    ap.add_argument("--samples", type=int, default=None, help="sampled futures per order-LP re-solve (default 20; quick 10)")
    ap.add_argument(
        "--track-every", type=int, default=None,
        help=f"re-pricing period of order-lp-track (default T / {TRACK_RESOLVES}; quick T / {QUICK_MAX_SOLVES})",
    )
    ap.add_argument(
        "--policies", default=None,
        help="comma-separated policy names to run, or 'all' (default: " + ",".join(DEFAULT_NAMES)
        + "; myopic always runs, as the gap's reference)",
    )
    ap.add_argument(
        "--mip-time", type=float, default=0.0,
        help="hindsight MIP time limit per seed, s (default 0: skip; at 1,000 arrivals HiGHS finds no good "
        "incumbent in 30 s, at 200 it is within 1.6 %% in 60 s)",
    )
    args = ap.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds) if args.seeds else list(QUICK_SEEDS if args.quick else HELD_OUT_SEEDS)
        tune_seeds = parse_seeds(args.tune_seeds)
    except ValueError as exc:
        ap.error(str(exc))
    n = args.arrivals or (QUICK_ARRIVALS if args.quick else 5000)
    t0 = time.perf_counter()
    progress = _stderr_progress(t0)
    machine = machine_facts()
    progress("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))

    if args.tune:
        res = tune(n, tune_seeds, grid=args.grid, processes=args.processes, progress=progress)
        print(f"\n{'setting':64}{'gap closed, seeds ' + ' / '.join(map(str, tune_seeds)):>36}{'mean':>8}")
        for row in sorted(res["screened"], key=lambda r: -r["gap_share"]):
            st = DualSetting(**row["setting"])
            per = " / ".join(f"{100 * g:.1f}" for g in row["gap_share_per_seed"])
            print(f"{st.label():64}{per:>36}{100 * row['gap_share']:>7.1f}%")
        print(f"\nchosen: DUAL_TUNED = {DualSetting(**res['chosen'])!r}")
        print(json.dumps({"bench": "jasin_sinha_tune", "arrivals": n, "tune_seeds": tune_seeds, **res,
                          "seconds": round(time.perf_counter() - t0, 1), "machine": machine}))
        return

    # --quick halves the sampled futures and caps every LP policy at QUICK_MAX_SOLVES solves:
    # a smoke run of the headline policies in about a minute.
    samples = args.samples or (10 if args.quick else 20)
    max_solves = QUICK_MAX_SOLVES if args.quick else 0
    every = args.resolve_every or _every(n, 20, max_solves)
    track_every = args.track_every or _every(n, TRACK_RESOLVES, max_solves)
    known = [p.name for p in default_policies(1)]
    if args.policies == "all":
        names = tuple(known)
    elif args.policies:
        names = tuple(nm.strip() for nm in args.policies.split(",") if nm.strip())
        unknown = set(names) - set(known)
        if unknown:
            ap.error(f"unknown policies {sorted(unknown)}; known: {known}")
    else:
        names = QUICK_NAMES if args.quick else DEFAULT_NAMES
    cfg = RunConfig(n, tuple(names), every, samples, track_every, max_solves, args.mip_time)
    held_out = not set(seeds) & set(TUNE_SEEDS)
    if not held_out:
        progress(f"seeds {sorted(set(seeds) & set(TUNE_SEEDS))} are tuning seeds: these figures are not held out")

    def seed_done(i: int, res: object) -> None:
        progress(f"seed {seeds[i]} done")

    results = _map(_seed_job, [(cfg, s, t0) for s in seeds], args.processes, seed_done)
    print(_table(results))
    names = list(results[0]["policies"])
    per_seed = {nm: [r["policies"][nm]["gap_share"] for r in results] for nm in names}
    gap_iv = {nm: interval(per_seed[nm]) for nm in names[1:]}
    mean_gap = {nm: float(np.mean(per_seed[nm])) for nm in names}
    best = max(names[1:] or names, key=lambda nm: mean_gap[nm])  # myopic only when it ran alone
    reached = [nm for nm in names[1:] if mean_gap[nm] >= TARGET_GAP_SHARE]
    versus = _comparisons(results, names)
    headline = OURS if OURS in names else best
    print(
        f"\ntarget: a mean gap share >= {100 * TARGET_GAP_SHARE:.0f} % -- "
        + (f"reached by {', '.join(f'{nm} ({100 * mean_gap[nm]:.1f} %)' for nm in reached)}" if reached
           else f"not reached; best {best} ({100 * mean_gap[best]:.1f} %)")
    )
    for other, cmp in versus.items():
        g = cmp["gap_share_points"]
        lo, hi = g["ci95"]
        ci = "no interval with one seed" if lo is None else f"95 % interval [{lo:+.2f}, {hi:+.2f}]"
        print(f"{OURS} - {other}: {g['mean']:+.2f} points of the gap ({ci}) -> {g['winner']}")
    summary = {
        "bench": "jasin_sinha",
        "arrivals": n,
        "seeds": seeds,
        "held_out": held_out,
        "tune_seeds": list(TUNE_SEEDS),
        "resolve_every": every,
        "samples": samples,
        "track_every": track_every,
        "settings": {OURS: {"orders_per_future": TRACK_ORDERS, "alpha": TRACK_ALPHA, "track_usd": TRACK_STEP_USD,
                            "resolves": TRACK_RESOLVES},
                     BASELINE: asdict(DUAL_TUNED), "dual-resolve": asdict(DUAL_BASE)},
        "headline": {
            "policy": headline,
            "gap_share": gap_iv[headline]["mean"] if headline in gap_iv else None,
            "ci95": gap_iv[headline]["ci95"] if headline in gap_iv else None,
            "seeds": seeds,
            "tuning_seeds_gap_share": TUNING_GAP_SHARE.get(headline),
        },
        "vs_tuned_baseline": versus.get(BASELINE),
        "cost_per_order": {
            **{nm: round(float(np.mean([r["policies"][nm]["cost_per_order"] for r in results])), 4) for nm in names},
            "hindsight_lp": round(float(np.mean([r["hindsight_lp"]["cost_per_order"] for r in results])), 4),
            "lagrangian_bound": round(
                float(np.mean([r["hindsight_lagrangian"]["cost_per_order"] for r in results])), 4
            ),
        },
        "packages_per_order": {
            nm: round(float(np.mean([r["policies"][nm]["packages_per_order"] for r in results])), 4) for nm in names
        },
        "gap_share": {nm: round(mean_gap[nm], 4) for nm in names[1:]},
        "gap_share_ci95": {nm: iv["ci95"] for nm, iv in gap_iv.items()},
        "gap_share_per_seed": {nm: [round(g, 4) for g in per_seed[nm]] for nm in names[1:]},
        "tuning_seeds_gap_share": {nm: g for nm, g in TUNING_GAP_SHARE.items() if nm in names},
        "ours_vs": versus,
        "best_policy": best,
        "best_gap_share": round(mean_gap[best], 4),
        "published_gap_share": PUBLISHED_GAP_SHARE,
        "target_gap_share": TARGET_GAP_SHARE,
        "target_met": mean_gap[best] >= TARGET_GAP_SHARE,
        "target_met_by": reached,
        "seconds": round(time.perf_counter() - t0, 1),
        "processes": args.processes,
        "machine": machine,
    }
    mips = [r.get("hindsight_mip") for r in results if r.get("hindsight_mip")]
    if mips:
        summary["hindsight_mip"] = [
            {"status": m["status"], "cost_per_order": m["cost_per_order"] and round(m["cost_per_order"], 4)}
            for m in mips
        ]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
