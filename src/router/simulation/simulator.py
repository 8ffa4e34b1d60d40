"""Run a strategy through a seeded world: every order goes through the real engine.

:func:`simulate` is the whole loop. For each arrival, in time order:

1. the world advances to the arrival time (:meth:`World.advance`): picks that
   finished ship (``Shipped`` events), days turn (``new_day``), disruption
   windows switch (``set_clock_hours``), replenishment arrives, and the true pick
   queues are reported (``LoadUpdate``);
2. the router's injected clock is set to the arrival time and the order is
   routed by :meth:`router.engine.Router.route` (reserve, record, rationale);
3. the chosen plan's legs are queued in the world.

After the last arrival the world drains (every routed order is picked, departs
and is delivered) and the transit times are drawn, vectorised. The result holds
one row per order and per leg as numpy arrays; :mod:`router.simulation.kpis`
summarises it.

Re-routing policy (off by default: ``reroute_every_hours`` / ``reroute_on_disruption``).
At every ``reroute_every_hours`` hours of simulated time, and/or when a scheduled
disruption window (node closure, lane slowdown, weather) starts, before the next
arrival: the world advances to that time, the open orders are collected -- routed
orders none of whose legs has started picking (:meth:`World.waiting_orders`); an
order with any leg started is released and never moved -- and the router re-routes
them jointly (:meth:`Router.reroute` with ``backlog=`` and ``apply=True``: the
reservations swap in its live state). Each moved order's waiting legs leave the
world's queues (:meth:`World.withdraw`) and its new plan's legs are queued as if
routed at that time; its arrival and promise stay. The per-order rows hold the final
plan. The world's physics and draws are unchanged; with the policy off, nothing of it
runs and results are bit for bit those of a run without it. ``SimResult.reroute``
counts the runs, the orders moved per run and the time spent.

Everything in a :class:`SimResult` except ``decision_ids`` (uuid4), ``timings``
(wall clock) and ``reroute`` (its seconds) is a pure function of (scenario,
strategy, seed, horizon, max_orders, re-routing policy) -- with re-routing, as long
as every re-route solve ends before its time limit (``reroute["all_optimal"]``):
:meth:`SimResult.fingerprint` hashes exactly that part.
"""

from __future__ import annotations

import hashlib
import heapq
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from router.context import promised_at
from router.demand import generate_orders
from router.domain import Order
from router.engine import Decision, Ranked, Router
from router.engine.reroute import OpenOrder, RerouteConflict, RerouteOptions
from router.features import FEATURES, lane_features
from router.ledger import DecisionLedger
from router.legs import lane_metrics
from router.scenario import Scenario
from router.simulation import crn
from router.simulation.world import LegRecords, World, WorldParams
from router.strategies import RANDOM, RandomStrategy, StrategySet, default_strategies

__all__ = ["SimResult", "Simulation", "simulate"]


@dataclass(frozen=True, eq=False)
class SimResult:
    """Per-order and per-leg outcomes of one run, as arrays (times in hours since ``start``).

    Orders are indexed by arrival position ``i``; an order with ``shipments == 0``
    was unfulfillable and counts all its lines in ``unfulfilled_lines``.
    """

    scenario: str
    strategy: str
    seed: int
    start: datetime
    horizon_hours: float
    node_ids: tuple[str, ...]
    option_labels: tuple[tuple[str, str], ...]  # (carrier, service) per option index
    tier_names: tuple[str, ...]
    region_ids: tuple[str, ...]

    order_id: tuple[str, ...]
    arrival_hours: np.ndarray  # float[M]
    promise_hours: np.ndarray  # float[M] promised_by, or created_at + tier promise
    delivered_hours: np.ndarray  # float[M] last leg delivered; NaN when unfulfilled
    cost_usd: np.ndarray  # float[M] the plan's shipping + handling (0 when unfulfilled)
    shipments: np.ndarray  # int[M] legs (0 when unfulfilled)
    n_lines: np.ndarray  # int[M]
    unfulfilled_lines: np.ndarray  # int[M]
    tier: np.ndarray  # int[M] index into tier_names
    region: np.ndarray  # int[M] index into region_ids (-1: none)
    node: np.ndarray  # int[M] node of the first leg (-1 when unfulfilled)
    legs: LegRecords
    busy_hours: np.ndarray  # float[N] picking hours per node (initial backlog included)
    stats: dict = field(default_factory=dict)  # deterministic event counters of the world
    decision_ids: tuple[str, ...] = ()  # uuid4 per order: not part of the fingerprint
    timings: dict = field(default_factory=dict)  # wall-clock seconds: not part of the fingerprint
    # with collect_rows: {"X": features of each leg's lane at decision time (legs' order),
    # "late": the leg arrived after the promise, "strategy": who routed it}; not fingerprinted
    training: dict = field(default_factory=dict)
    # with service-level targets: each segment's status at the end of the arrivals
    # (router.targets.SegmentStatus.to_json), and its price after every decision of it
    # as (hours, price) pairs; deterministic, but not part of the fingerprint
    targets: list = field(default_factory=list)
    price_path: dict = field(default_factory=dict)
    # with a re-routing policy: runs, orders open and moved per run, seconds (see
    # Simulation); empty without one; not part of the fingerprint
    reroute: dict = field(default_factory=dict)

    @property
    def n_orders(self) -> int:
        return len(self.order_id)

    @property
    def routed(self) -> np.ndarray:
        """bool[M]: the router found a plan."""
        return self.shipments > 0

    @property
    def delivery_hours(self) -> np.ndarray:
        """float[M]: arrival to delivery of the last leg (NaN when unfulfilled)."""
        return self.delivered_hours - self.arrival_hours

    @property
    def on_time(self) -> np.ndarray:
        """bool[M]: delivered no later than the promise."""
        return self.routed & (np.nan_to_num(self.delivered_hours, nan=np.inf) <= self.promise_hours)

    @property
    def late(self) -> np.ndarray:
        """bool[M]: delivered after the promise."""
        return self.routed & ~self.on_time

    def fingerprint(self) -> str:
        """blake2b of every deterministic field: equal for equal (scenario, strategy, seed) runs."""
        h = hashlib.blake2b(digest_size=16)
        for part in (self.scenario, self.strategy, str(self.seed), self.start.isoformat(), repr(self.horizon_hours)):
            h.update(part.encode())
            h.update(b"\0")
        h.update("\0".join(self.order_id).encode())
        arrays = [
            self.arrival_hours,
            self.promise_hours,
            self.delivered_hours,
            self.cost_usd,
            self.shipments,
            self.n_lines,
            self.unfulfilled_lines,
            self.tier,
            self.region,
            self.node,
            self.busy_hours,
        ]
        arrays += [getattr(self.legs, f) for f in self.legs.__dataclass_fields__]
        for arr in arrays:
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(repr(sorted(self.stats.items())).encode())
        return h.hexdigest()


class Simulation:
    """One run, step by step: :meth:`step` routes the next arrival, :meth:`finish` drains and summarises.

    :func:`simulate` is the usual entry point; the class exists so that tests
    and tools can look at the live state between arrivals.

    Parameters
    ----------
    scenario : Scenario
    strategy : str
        A registered strategy name.
    seed : int
        Seed of the arrivals, the world's draws and the router's solver calls.
    horizon_hours : float, optional
        Arrivals in ``[0, horizon_hours)``; defaults to the scenario's ``horizon_days``.
    max_orders : int, optional
        Keep only the first ``max_orders`` arrivals.
    ledger : DecisionLedger, optional
        Where the router records each decision (and, on request, each outcome).
    world_params : WorldParams, optional
    strategies : StrategySet, optional
        The strategies the router may use (default: the built-ins).
    reroute_every_hours : float, optional
        Re-route the open backlog every this many hours of simulated time (see the
        module docstring); None: never on a timer.
    reroute_on_disruption : bool
        Re-route the open backlog when a scheduled disruption window starts.
    reroute_options : RerouteOptions, optional
        The re-route job's options (default :class:`RerouteOptions`); its
        ``time_limit_s`` bounds each run's solve.
    """

    def __init__(
        self,
        scenario: Scenario,
        strategy: str,
        *,
        seed: int,
        horizon_hours: float | None = None,
        max_orders: int | None = None,
        ledger: DecisionLedger | None = None,
        world_params: WorldParams | None = None,
        strategies: StrategySet | None = None,
        risk_model: object = "champion",
        explore: float = 0.0,
        collect_rows: bool = False,
        reroute_every_hours: float | None = None,
        reroute_on_disruption: bool = False,
        reroute_options: RerouteOptions | None = None,
    ) -> None:
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"explore must be a share in [0, 1], got {explore}")
        self.rerouting = reroute_every_hours is not None or bool(reroute_on_disruption)
        if reroute_every_hours is not None and not (reroute_every_hours > 0 and np.isfinite(reroute_every_hours)):
            raise ValueError(f"reroute_every_hours must be a number of hours > 0, got {reroute_every_hours}")
        if self.rerouting and ledger is not None:
            raise ValueError("re-routing in a simulation runs without a ledger (the moves are not written to one)")
        if self.rerouting and collect_rows:
            raise ValueError("collect_rows does not follow re-routed legs: run it without re-routing")
        if reroute_options is not None:
            reroute_options.check()
        if max_orders is not None and max_orders < 0:
            raise ValueError(f"max_orders must be >= 0, got {max_orders}")
        if horizon_hours is not None and not horizon_hours > 0:
            raise ValueError(f"horizon_hours must be > 0, got {horizon_hours}")
        t0 = time.perf_counter()
        self.scenario = scenario
        self.strategy = strategy
        self.seed = int(seed)
        horizon = horizon_hours if horizon_hours is not None else scenario.spec.horizon_days * 24.0
        if max_orders is None:
            orders = generate_orders(scenario, seed=self.seed, horizon_hours=horizon)
        else:
            # The generator draws the arrival times of the whole horizon first, so these
            # are the first max_orders arrival times of the full run.
            orders = generate_orders(scenario, max_orders, seed=self.seed, horizon_hours=horizon_hours)
            limit = scenario.start + timedelta(hours=horizon)
            orders = [o for o in orders if o.created_at < limit] if horizon_hours is not None else orders
        self.orders: list[Order] = orders
        m = len(orders)
        start = scenario.start
        self.arrival_hours = np.array([(o.created_at - start).total_seconds() / 3600.0 for o in orders])
        if max_orders is not None and m == max_orders and m > 0 and horizon_hours is None:
            # Utilisation is busy hours over the demand window that was simulated.
            horizon = float(self.arrival_hours[-1])
        self.horizon_hours = float(horizon)
        self._now = start
        # A simulation reserves from a stock pool of its own: runs that share a ledger
        # must not share stock.
        pool = f"sim-{scenario.name}-{strategy}-{self.seed}-{uuid.uuid4().hex[:12]}" if ledger is not None else None
        strategies = strategies if strategies is not None else default_strategies()
        self.explore = float(explore)
        if self.explore > 0.0:
            # Exploration: a share of orders is routed by another strategy or by a random
            # feasible candidate, so outcomes also cover lanes the strategy avoids. The
            # record names the strategy that routed (explore_random for the random one).
            strategies = strategies.with_strategy(RandomStrategy(self.seed)) if RANDOM not in strategies else strategies
            self._explorers = [name for name in strategies.names() if name != strategy]
        self.router = Router(
            scenario,
            ledger=ledger,
            strategy=strategy,
            strategies=strategies,
            seed=self.seed,
            clock=self._clock,
            stock_pool=pool,
            risk_model=risk_model,  # type: ignore[arg-type]
        )
        self.collect_rows = collect_rows
        self._rows: list[np.ndarray] = []  # per routed order: the features of its legs' lanes
        self._row_strategy: list[str] = []
        self._seen: tuple | None = None
        if collect_rows:
            self.router.observer = self._observe
        self.ledger = ledger
        net = self.router.network
        self.world = World(scenario, net, self.router.state, seed=self.seed, params=world_params)
        self._node_index = scenario.node_index
        self._opt_index = {key: i for i, key in enumerate(zip(net.option_carrier, net.option_service))}

        tiers = list(scenario.tiers)
        tier_index = {t: i for i, t in enumerate(tiers)}
        self._tier_names = tuple(tiers)
        self.promise_hours = np.empty(m)
        self.tier = np.empty(m, dtype=np.int64)
        self.region = np.empty(m, dtype=np.int64)
        self.dest_lat = np.empty(m)
        self.dest_lon = np.empty(m)
        self.n_lines = np.empty(m, dtype=np.int64)
        contexts = self.router.contexts  # one resolution of destinations and promises, the router's
        for i, o in enumerate(orders):
            self.promise_hours[i] = (promised_at(o, scenario) - start).total_seconds() / 3600.0
            self.tier[i] = tier_index[o.customer.tier]
            lat, lon, r = contexts.resolve(o.destination)
            self.region[i], self.dest_lat[i], self.dest_lon[i] = r, lat, lon
            self.n_lines[i] = len(o.lines)
        self.cost_usd = np.zeros(m)
        self.shipments = np.zeros(m, dtype=np.int64)
        self.unfulfilled_lines = np.zeros(m, dtype=np.int64)
        self.node = np.full(m, -1, dtype=np.int64)
        self.decision_ids: list[str] = []
        # With service-level targets, deliveries are reported to the router as they
        # happen (its controller learns realised on-time from them): per order the legs
        # still on their way and the latest delivery so far; a heap of complete orders.
        self._report_outcomes = self.router.targets is not None
        self._legs_left = np.zeros(m, dtype=np.int64)
        self._last_delivery = np.full(m, -np.inf)
        self._outcome_heap: list[tuple[float, int]] = []
        self.outcomes_reported = 0
        self._price_path: dict[str, list[tuple[float, float]]] = {}
        if self._report_outcomes:
            self.world.track_deliveries(self.dest_lat, self.dest_lon, self.region)
        self.index = 0
        self.routing_s = 0.0
        self.world_s = 0.0
        self.reroute_s = 0.0
        self.reroute_every_hours = None if reroute_every_hours is None else float(reroute_every_hours)
        self.reroute_on_disruption = bool(reroute_on_disruption)
        self.reroute_options = reroute_options or RerouteOptions()
        self.reroute_runs: list[dict] = []
        self._triggers: list[tuple[float, str]] = []
        self._plans: dict[int, dict] = {}  # with re-routing: each routed order's current plan, until released
        if self.rerouting:
            self.world.enable_withdraw()
            self._triggers = self._trigger_times()
            self._position = {o.order_id: i for i, o in enumerate(orders)}
        self.generate_s = time.perf_counter() - t0

    def _clock(self) -> datetime:
        return self._now

    @property
    def done(self) -> bool:
        return self.index >= len(self.orders)

    # ------------------------------------------------------------ re-routing
    def _trigger_times(self) -> list[tuple[float, str]]:
        """(hours, why) of every re-route run in ``(0, horizon)``, in time order; one run per instant."""
        at: dict[float, list[str]] = {}
        h = self.reroute_every_hours
        if h is not None:
            k = 1
            while k * h < self.horizon_hours:
                at.setdefault(k * h, []).append(f"every {h:g} h")
                k += 1
        if self.reroute_on_disruption:
            for d in self.scenario.disruptions:
                if 0.0 < d.start_hour < self.horizon_hours:
                    at.setdefault(float(d.start_hour), []).append(f"{d.kind} starts ({d.name or d.kind})")
        return [(t, "; ".join(dict.fromkeys(why))) for t, why in sorted(at.items())]

    def _fire(self, hours: float) -> None:
        """Run every re-route trigger due by ``hours`` (before the arrival at ``hours`` is routed)."""
        while self._triggers and self._triggers[0][0] <= hours:
            at, why = self._triggers.pop(0)
            self.reroute_at(at, why)

    def reroute_at(self, hours: float, reason: str = "") -> dict:
        """Re-route the open backlog at ``hours`` (not before the world's clock): one run of the policy.

        Returns the run's summary (also kept in ``SimResult.reroute["per_run"]``).
        """
        if not self.rerouting:
            raise ValueError("this simulation has no re-routing policy")
        t0 = time.perf_counter()
        hours = max(float(hours), self.world.now_hours)
        self.world.advance(hours)
        self._now = self.scenario.start + timedelta(hours=hours)
        if self._report_outcomes:
            self._deliver(hours)
        waiting = self.world.waiting_orders(hours)
        still = set(waiting)
        for i in [i for i in self._plans if i not in still]:
            del self._plans[i]  # released: a started pick never becomes open again
        backlog = [OpenOrder(self.orders[i], self.decision_ids[i], self._plans[i]) for i in waiting]
        run: dict = {"at_hours": round(hours, 6), "reason": reason, "open": len(backlog), "moved": 0, "unplaced": 0}
        if backlog:
            opts = self.reroute_options
            try:
                plan = self.router.reroute(backlog=backlog, apply=True, time_limit_s=opts.time_limit_s, options=opts)
            except RerouteConflict as exc:  # nothing changed (cannot happen without other writers)
                run["conflict"] = str(exc)
            else:
                moved = self._requeue(plan.moves, hours)
                run.update(
                    moved=moved,
                    unplaced=len(plan.unplaced),
                    solver=plan.solver.get("method"),
                    status=plan.solver.get("status"),
                    gap=plan.gap,
                    score_before=plan.kpis_before.get("score"),
                    score_after=plan.kpis_after.get("score"),
                )
        run["seconds"] = round(time.perf_counter() - t0, 4)
        self.reroute_runs.append(run)
        self.reroute_s += time.perf_counter() - t0
        return run

    def _requeue(self, moves, hours: float) -> int:
        """Take the moved orders' legs out of the queues and queue their new plans' legs at ``hours``."""
        by_index = {self._position[m.order_id]: m for m in moves}
        moved = sorted(by_index)
        self.world.withdraw(moved, hours)
        for i in moved:
            m = by_index[i]
            plan = self._priced(self.orders[i], m.to_plan, hours)
            legs = self._world_legs(plan)
            self.world.schedule(i, hours, legs)
            self.cost_usd[i] = plan["cost_usd"]
            self.shipments[i] = len(legs)
            self.node[i] = legs[0][0]
            self._legs_left[i] = len(legs)
            self._plans[i] = plan
            if m.new_decision_id:
                self.decision_ids[i] = m.new_decision_id
        # the warehouses report their true queues after the swap
        self.world._report()
        return len(moved)

    def _priced(self, order: Order, plan: dict, hours: float) -> dict:
        """A moved order's new plan as route() records one (leg costs, cost_usd), priced at ``hours``."""
        from router.candidates import from_units
        from router.scoring import score_candidates

        router = self.router
        net = router.network
        ctx = router.contexts.build(order, self._now, router.state.weather_at_region)
        line_of = {net.sku_ids[int(k)]: j for j, k in enumerate(ctx.sku_idx.tolist())}
        nodes, opts, units = [], [], []
        for leg in plan["legs"]:
            u = [0] * len(ctx.qty)
            for line in leg["lines"]:
                u[line_of[line["sku"]]] += int(line["qty"])
            nodes.append(self._node_index[leg["node_id"]])
            opts.append(self._opt_index[(leg["carrier_id"], leg["service"])])
            units.append(u)
        view = router.state.view(ctx.sku_idx, hours)
        cs = from_units(np.asarray(nodes), np.asarray(opts), np.asarray(units, dtype=np.int64), net, view, ctx)
        scores = score_candidates(cs, view, ctx, router.params)
        return router.records.plan_dict(Ranked(cs, scores, np.zeros(1, dtype=np.int64), self.strategy, {}), ctx, 0)

    def _world_legs(self, chosen: dict) -> list[tuple]:
        """A recorded plan's legs as the world queues them: (node, option, lines, cost)."""
        node_index, opt_index = self._node_index, self._opt_index
        return [
            (
                node_index[leg["node_id"]],
                opt_index[(leg["carrier_id"], leg["service"])],
                tuple((ln["sku"], ln["qty"]) for ln in leg["lines"]),
                leg["shipping_cost_usd"] + leg["handling_cost_usd"],
            )
            for leg in chosen["legs"]
        ]

    def reroute_summary(self) -> dict:
        """What the policy did so far: runs, orders open and moved per run, seconds (empty without a policy)."""
        if not self.rerouting:
            return {}
        runs = self.reroute_runs
        n = len(runs)
        moved = [r["moved"] for r in runs]
        return {
            "every_hours": self.reroute_every_hours,
            "on_disruption": self.reroute_on_disruption,
            "options": {k: getattr(self.reroute_options, k) for k in self.reroute_options.__dataclass_fields__},
            "runs": n,
            "runs_with_open_orders": sum(1 for r in runs if r["open"]),
            "open": sum(r["open"] for r in runs),
            "moved": sum(moved),
            "moved_per_run": sum(moved) / n if n else 0.0,
            "max_moved": max(moved, default=0),
            "unplaced": sum(r["unplaced"] for r in runs),
            "withdrawn_legs": self.world.withdrawn_legs,
            "conflicts": sum(1 for r in runs if "conflict" in r),
            "all_optimal": all(r.get("status", "optimal") == "optimal" for r in runs),
            "seconds": round(self.reroute_s, 4),
            "max_seconds": max((r["seconds"] for r in runs), default=0.0),
            "per_run": [dict(r) for r in runs],
        }

    def step(self) -> Decision | None:
        """Advance the world to the next arrival and route it; None when no arrival is left."""
        i = self.index
        if i >= len(self.orders):
            return None
        order = self.orders[i]
        hours = float(self.arrival_hours[i])
        if self._triggers:
            self._fire(hours)
        t0 = time.perf_counter()
        self.world.advance(hours)
        self._now = order.created_at
        if self._report_outcomes:
            self._deliver(hours)
        t1 = time.perf_counter()
        # Without a ledger nobody will review these decisions: skip the rationale.
        name = self.strategy
        if self.explore > 0.0:
            u = crn.uniform(crn.key_words(self.seed, "explore", i), 0)[0]
            if u < self.explore:
                pick = crn.uniform(crn.key_words(self.seed, "explore", i), 1)[0]
                name = self._explorers[int(pick * len(self._explorers))]
        decision = self.router.route(order, strategy=name, explain=self.ledger is not None)
        t2 = time.perf_counter()
        self.decision_ids.append(decision.decision_id)
        if self._report_outcomes:
            self._track_prices(hours)
        # The record's chosen plan is the plain dict the engine recorded (decision record
        # v1); reading it avoids building the pydantic Plan, which the engine does lazily.
        chosen = decision.record["chosen"]
        if chosen is None:
            self.unfulfilled_lines[i] = self.n_lines[i]
        else:
            node_index, opt_index = self._node_index, self._opt_index
            legs = [
                (
                    node_index[leg["node_id"]],
                    opt_index[(leg["carrier_id"], leg["service"])],
                    tuple((ln["sku"], ln["qty"]) for ln in leg["lines"]),
                    leg["shipping_cost_usd"] + leg["handling_cost_usd"],
                )
                for leg in chosen["legs"]
            ]
            self.world.schedule(i, hours, legs)
            self._legs_left[i] = len(legs)
            if self.rerouting:
                self._plans[i] = chosen
            if self.collect_rows:
                self._collect(legs, decision.record["strategy"]["name"] if "strategy" in decision.record else name)
            self.cost_usd[i] = chosen["cost_usd"]
            self.shipments[i] = len(legs)
            self.node[i] = legs[0][0]
        self.index = i + 1
        self.routing_s += t2 - t1
        self.world_s += (t1 - t0) + (time.perf_counter() - t2)
        return decision

    def _track_prices(self, hours: float) -> None:
        """Keep each target segment's price when it changed (the report plots the path)."""
        for key, price in self.router.state.late_price_usd.items():
            path = self._price_path.setdefault(key, [])
            if not path or path[-1][1] != price:
                path.append((round(hours, 4), round(price, 4)))

    def _deliver(self, hours: float) -> None:
        """Report to the router every order whose outcome is known by ``hours``.

        A leg's delivery time is known once its departure day is over (the world's
        rule). An order is on time or late for certain at its promise (delivered by
        then or not), so it is reported at the later of its promise and the first
        arrival after its last leg's departure day: never before it could be known.
        """
        _, order, delivered = self.world.departed_days_before(hours)
        if len(order):
            np.maximum.at(self._last_delivery, order, delivered)
            np.subtract.at(self._legs_left, order, 1)
            for i in np.unique(order[self._legs_left[order] == 0]).tolist():
                heapq.heappush(self._outcome_heap, (float(self.promise_hours[i]), i))
        heap = self._outcome_heap
        while heap and heap[0][0] <= hours:
            at, i = heapq.heappop(heap)
            on_time = bool(self._last_delivery[i] <= self.promise_hours[i])
            self.router.observe_outcome(self.orders[i].order_id, self.scenario.start + timedelta(hours=at), on_time)
            self.outcomes_reported += 1

    def _observe(self, view, ctx, out) -> None:
        self._seen = (view, ctx)

    def _collect(self, legs, strategy: str) -> None:
        """The features of the chosen legs' lanes, from the view and context the decision read."""
        assert self._seen is not None
        view, ctx = self._seen
        net = self.router.network
        x = lane_features(net, view, ctx, lane_metrics(net, view, ctx))
        self._rows.append(x[[n * net.n_options + o for n, o, _, _ in legs]])
        self._row_strategy.extend([strategy] * len(legs))

    def run(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Route every remaining arrival, calling ``progress(done, total)`` about 200 times."""
        total = len(self.orders)
        every = max(1, total // 200)
        while self.index < total:
            self.step()
            if progress is not None and (self.index % every == 0 or self.index == total):
                progress(self.index, total)

    def finish(self, *, record_outcomes: bool = False) -> SimResult:
        """Drain the world, draw transit, and (optionally) write outcomes to the ledger.

        Orders not yet routed when this is called are left out of the result.
        """
        if self._triggers and self.done:
            # the runs due after the last arrival, within the horizon
            self._fire(self.horizon_hours)
        t0 = time.perf_counter()
        self.world.drain()
        m = self.index
        legs = self.world.legs(self.dest_lat, self.dest_lon, self.region)
        delivered = np.full(m, -np.inf)
        np.maximum.at(delivered, legs.order, legs.delivered_hours)
        delivered[self.shipments[:m] == 0] = np.nan
        world_s = self.world_s + time.perf_counter() - t0
        sc, net = self.scenario, self.router.network
        result = SimResult(
            scenario=sc.name,
            strategy=self.strategy,
            seed=self.seed,
            start=sc.start,
            horizon_hours=self.horizon_hours,
            node_ids=net.node_ids,
            option_labels=tuple(zip(net.option_carrier, net.option_service)),
            tier_names=self._tier_names,
            region_ids=net.region_ids,
            order_id=tuple(o.order_id for o in self.orders[:m]),
            arrival_hours=self.arrival_hours[:m].copy(),
            promise_hours=self.promise_hours[:m].copy(),
            delivered_hours=delivered,
            cost_usd=self.cost_usd[:m].copy(),
            shipments=self.shipments[:m].copy(),
            n_lines=self.n_lines[:m].copy(),
            unfulfilled_lines=self.unfulfilled_lines[:m].copy(),
            tier=self.tier[:m].copy(),
            region=self.region[:m].copy(),
            node=self.node[:m].copy(),
            legs=legs,
            busy_hours=np.asarray(self.world.busy_hours, dtype=float),
            stats=dict(self.world.stats),
            targets=self.router.target_report(),
            price_path={k: list(v) for k, v in self._price_path.items()},
            decision_ids=tuple(self.decision_ids),
            timings={},
            reroute=self.reroute_summary(),
        )
        if self.collect_rows:
            x = np.concatenate(self._rows) if self._rows else np.zeros((0, len(FEATURES)))
            late = legs.delivered_hours > self.promise_hours[legs.order]
            # the result is frozen; its training dict is filled in place (it is not fingerprinted)
            result.training.update(
                {"X": x, "late": late, "strategy": np.asarray(self._row_strategy), "transit_h": legs.transit_hours}
            )
        outcomes_s = 0.0
        if record_outcomes and self.ledger is not None:
            t1 = time.perf_counter()
            write_outcomes(result, self.ledger)
            outcomes_s = time.perf_counter() - t1
        total_s = self.generate_s + self.routing_s + world_s + outcomes_s + self.reroute_s
        result.timings.update(
            {
                "generate_s": self.generate_s,
                "routing_s": self.routing_s,
                "world_s": world_s,
                "outcomes_s": outcomes_s,
                **({"reroute_s": self.reroute_s} if self.rerouting else {}),
                "total_s": total_s,
                "decisions_per_s": m / self.routing_s if self.routing_s > 0 else float("nan"),
                "orders_per_s": m / (self.routing_s + world_s) if self.routing_s + world_s > 0 else float("nan"),
            }
        )
        return result


def outcome_bodies(result: SimResult):
    """``(decision_id, body, created_at)`` per delivered order, in delivery order.

    The body is what a live system reports when the last parcel of an order is
    delivered: order id, delivery and promise times, on-time flag, hours from
    order to delivery, and each leg's node, carrier, service, departure and
    delivery. Unfulfilled orders have no delivery and no outcome.
    """
    start = result.start
    legs = result.legs

    def iso(hours: float) -> str:
        return (start + timedelta(hours=float(hours))).isoformat()

    by_order: dict[int, list[int]] = {}
    for j, i in enumerate(legs.order.tolist()):
        by_order.setdefault(i, []).append(j)
    on_time = result.on_time
    routed = np.flatnonzero(result.routed)
    # a live system hears of deliveries in time order; ties by arrival
    for i in routed[np.lexsort((routed, result.delivered_hours[routed]))].tolist():
        delivered = iso(result.delivered_hours[i])
        body = {
            "order_id": result.order_id[i],
            "delivered_at": delivered,
            "promised_by": iso(result.promise_hours[i]),
            "on_time": bool(on_time[i]),
            "delivery_hours": round(float(result.delivered_hours[i] - result.arrival_hours[i]), 6),
            "legs": [
                {
                    "node": result.node_ids[int(legs.node[j])],
                    "carrier": result.option_labels[int(legs.option[j])][0],
                    "service": result.option_labels[int(legs.option[j])][1],
                    "departed_at": iso(legs.depart_hours[j]),
                    "delivered_at": iso(legs.delivered_hours[j]),
                }
                for j in by_order[i]
            ],
        }
        yield result.decision_ids[i], body, delivered


def write_outcomes(result: SimResult, ledger) -> int:
    """Append one outcome record per delivered order to ``ledger``, linked to its decision.

    The ledger protocol has no batch append for outcomes, so each is its own
    transaction. Returns the number written.
    """
    n = 0
    for decision_id, body, created_at in outcome_bodies(result):
        ledger.append_outcome(decision_id, body=body, created_at=created_at)
        n += 1
    return n


def simulate(
    scenario: Scenario,
    strategy: str,
    *,
    seed: int,
    horizon_hours: float | None = None,
    max_orders: int | None = None,
    ledger: object | None = None,
    progress: Callable[[int, int], None] | None = None,
    record_outcomes: bool = False,
    world_params: WorldParams | None = None,
    strategies: StrategySet | None = None,
    risk_model: object = "champion",
    explore: float = 0.0,
    collect_rows: bool = False,
    reroute_every_hours: float | None = None,
    reroute_on_disruption: bool = False,
    reroute_options: RerouteOptions | None = None,
) -> SimResult:
    """Simulate ``strategy`` on ``scenario``: arrivals, routing through the real engine, delivery.

    Parameters
    ----------
    scenario : Scenario
    strategy : str
        A strategy of ``strategies`` (by default the built-ins, ``router.strategies.strategy_names()``).
    seed : int
        One seed for the arrivals, the world's draws (common random numbers, see
        :mod:`router.simulation.world`) and the router's solver calls.
    horizon_hours : float, optional
        Arrivals in ``[0, horizon_hours)``; default: the scenario's ``horizon_days``.
    max_orders : int, optional
        Only the first ``max_orders`` arrivals (the arrival times are those of the
        full run; utilisation is then measured up to the last of them).
    ledger : DecisionLedger, optional
        Record every decision here (slower: one transaction per decision).
    progress : callable(done, total), optional
        Called about 200 times while routing.
    record_outcomes : bool
        With a ledger, also append each delivered order's outcome, linked to its decision.
    world_params : WorldParams, optional
        Knobs of the hidden delay process.
    strategies : StrategySet, optional
        The strategies the router may use (default: the built-ins).
    risk_model : "champion", a model folder, a LaneRisk, or None
        The router's late-risk estimate (see :class:`router.engine.Router`); None: analytic.
    explore : float
        Share of orders routed by another strategy of the set or a random feasible
        candidate (``explore_random``), chosen by a draw keyed on the order.
    collect_rows : bool
        Keep each leg's lane features at decision time and whether it was late
        (``SimResult.training``): delay-risk training rows.
    reroute_every_hours : float, optional
        Re-route the open backlog (orders none of whose legs has started picking)
        every this many simulated hours (see the module docstring). None: never.
    reroute_on_disruption : bool
        Also re-route it when a scheduled disruption window starts.
    reroute_options : RerouteOptions, optional
        Options of each re-route run (default :class:`RerouteOptions`).

    Returns
    -------
    SimResult
        Deterministic in (scenario, strategy, seed, horizon_hours, max_orders, the
        re-routing policy), except ``decision_ids``, ``timings`` and the seconds in
        ``reroute`` (with re-routing: as long as no solve is cut by its time limit).
    """
    sim = Simulation(
        scenario,
        strategy,
        seed=seed,
        horizon_hours=horizon_hours,
        max_orders=max_orders,
        ledger=ledger,  # type: ignore[arg-type]
        world_params=world_params,
        strategies=strategies,
        risk_model=risk_model,
        explore=explore,
        collect_rows=collect_rows,
        reroute_every_hours=reroute_every_hours,
        reroute_on_disruption=reroute_on_disruption,
        reroute_options=reroute_options,
    )
    sim.run(progress)
    return sim.finish(record_outcomes=record_outcomes)
