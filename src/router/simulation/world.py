"""The simulated world: the delay process the router never sees, only its effects.

The router decides on live state (:class:`~router.state.LiveState`): stock,
reservations, pick queues, scheduled closures, congestion and weather. The world
holds the truth behind that state and feeds it back the way a real warehouse
system and carrier would: ``Shipped`` events when a leg is picked, ``LoadUpdate``
events with the true pick queue, ``StockAdjust`` receipts when stock is
replenished. Its random draws stay inside it.

The physics
-----------
Picking
    Each node picks its legs first in, first out at its true rate: the node's
    ``pick_capacity_per_hour`` times a per-day factor ``exp(sd z - sd^2 / 2)``
    (log-normal with mean 1, ``sd`` = :attr:`WorldParams.pick_rate_sd`), one
    factor per node and UTC day. A leg routed at ``t`` starts when the picker is
    free, ``max(t, free_at[n])``, and takes ``1 / rate`` hours. A node closed by
    a ``node_closure`` window picks nothing inside it: the pick waits for the
    end of the window (its queue keeps growing and is reported as such).
Departure
    A picked parcel leaves at the node's next cut-off (``cutoff_hour_utc``) at or
    after the pick, if the lane (node x carrier service) still has room that day
    (``daily_capacity_shipments``); otherwise, and while the node is closed, it
    waits for the next day's cut-off. Picks complete in routing order per node,
    so the departure is known when the leg is scheduled.
Transit
    ``24 x max(min_days, base_days + miles / miles_per_day)`` (the service's
    TransitModel mean, the formula the router estimates with) x the lane's
    congestion and any ``lane_slowdown`` factor x (1 + weather severity at the
    origin node's region + at the destination region), all as active at the
    departure time, x a log-normal noise of mean 1 and coefficient of variation
    ``sigma_frac`` (``s^2 = ln(1 + sigma_frac^2)``), the noise log-normal
    rather than the TransitModel's normal so that a time is never negative;
    then x the lane's bias x the carrier's volume stretch, plus any exception
    delay (below).
What the router's estimate does not know (the scenario's ``world:`` section)
    Real carriers' on-time rates differ by carrier, lane and season, and a few
    parcels hit exceptions; the router's ETA formula knows none of it, so a
    model trained on outcomes has something to learn.

    * **Lane bias**: each (carrier service ``o``, origin node ``n``,
      destination region ``r``) has a fixed factor, log-normal with mean 1 and
      standard deviation ``lane_bias_sd`` (default 0.15; ``s^2 = ln(1 + sd^2)``),
      drawn as ``f(world_seed, "lane_bias", o, n, r)`` from the scenario's own
      world seed, not the simulation's seed: it is the same in every run and on
      every day, as a real lane's performance is.
    * **Exceptions**: a parcel is hit with the probability of its carrier
      (default 2 %) and then delayed by ``U(24, 72)`` hours
      (``exception_delay_hours``), drawn per parcel from the simulation seed.
    * **Carrier volume stretch**: a carrier's transit on a UTC day (of the
      departure) is multiplied by ``1 + max(0, departures of that carrier that
      day / its daily_capacity_shipments - 1)`` (unlimited by default: 1).

Withdrawing legs (re-routing)
-----------------------------
A leg whose pick has not started (its start is after the current time) is still in
the node's queue, and a re-routing policy may take it back
(:meth:`World.withdraw`): its units are not picked, its lane slot is given back,
and the legs queued behind it at that node are timed again by the same rules (FIFO
at the true rate, never into a closure, never before the current time, then the
first cut-off with lane room). A leg whose pick has started is never withdrawn.
Nothing of this runs unless the simulator calls :meth:`World.enable_withdraw`:
without it the world does exactly what it did before.

Common random numbers
---------------------
Every draw is a pure function of ``(seed, what, key)`` (:mod:`router.simulation.crn`):
the transit noise of order ``i`` on lane (node ``n``, option ``o``) is
``f(seed, "transit", i, n, o)``, its exception draws ``f(seed, "exception", i, n, o)``
(lanes 0 and 1: hit or not, then the delay), and the pick-rate factor of node ``n`` on UTC
day ``d`` is ``f(seed, "pick", n, d)``. The arrivals are
:func:`router.demand.generate_orders` with the same seed. Two strategies that
send order ``i`` down the same lane see the same transit draw, and every
strategy sees the same orders at the same times, so differences in the KPIs
come from the decisions alone. A re-routed order's new legs draw from their own
keys (order ``i``, the new node and option): no other order's draws move.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from router.errors import RouterError
from router.network import Network, haversine_miles
from router.scenario import LaneSlowdown, NodeClosure, Scenario, WeatherEvent
from router.simulation import crn
from router.state import LiveState, LoadUpdate, StockAdjust

__all__ = ["LegRecords", "World", "WorldParams"]

HOURS_PER_DAY = 24.0

# Boundary kinds, in the order they are handled when they fall on the same instant:
# a new day first (lane counters reset), then disruption windows switch, then stock.
_DAY, _CLOCK, _RECEIPT, _REVIEW = 0, 1, 2, 3


@dataclass(frozen=True)
class WorldParams:
    """Knobs of the world's hidden delay process.

    Attributes
    ----------
    pick_rate_sd : float
        Log-scale sd of the per-node, per-day pick-rate factor (0.1: a node picks
        within about +-20 % of its nominal rate on 95 % of days).
    max_slip_days : int
        How many days a parcel may wait for a cut-off with lane room before the
        world gives up with an error (a lane of capacity 0 would wait forever).
    """

    pick_rate_sd: float = 0.1
    max_slip_days: int = 366

    def __post_init__(self) -> None:
        if not (0.0 <= self.pick_rate_sd <= 2.0):
            raise ValueError(f"pick_rate_sd must be in [0, 2], got {self.pick_rate_sd}")
        if self.max_slip_days < 1:
            raise ValueError(f"max_slip_days must be >= 1, got {self.max_slip_days}")


@dataclass(frozen=True, eq=False)
class LegRecords:
    """Every scheduled leg of a run, as arrays in scheduling order (hours since the scenario start)."""

    order: np.ndarray  # int[L] order index
    node: np.ndarray  # int[L]
    option: np.ndarray  # int[L]
    cost_usd: np.ndarray  # float[L] shipping + handling of the leg, as the plan priced it
    routed_hours: np.ndarray  # float[L]
    pick_start_hours: np.ndarray  # float[L]
    pick_done_hours: np.ndarray  # float[L]
    depart_hours: np.ndarray  # float[L]
    transit_hours: np.ndarray  # float[L]
    transit_noise: np.ndarray  # float[L] the log-normal factor drawn for the leg
    delivered_hours: np.ndarray  # float[L]
    lane_bias: np.ndarray | None = None  # float[L] the lane's fixed factor
    exception_hours: np.ndarray | None = None  # float[L] delay added by an exception (0: none)
    volume_stretch: np.ndarray | None = None  # float[L] the carrier's volume factor on the departure day


class World:
    """The true state of nodes, lanes and parcels, advanced in time by the simulator.

    Parameters
    ----------
    scenario : Scenario
        Nodes, lanes, disruption windows and replenishment policy.
    network : Network
        The router's flattened network (the same arrays the router estimates with).
    state : LiveState
        The router's live state; the world writes to it only through events.
    seed : int
        Seed of every draw (see the module docstring).
    params : WorldParams, optional
    """

    def __init__(
        self, scenario: Scenario, network: Network, state: LiveState, *, seed: int, params: WorldParams | None = None
    ) -> None:
        self.scenario = scenario
        self.net = network
        self.state = state
        self.seed = int(seed)
        self.params = params or WorldParams()
        st = scenario.start
        # Cut-offs and days are in UTC; the scenario clock counts hours since ``start``.
        self.start_offset_hours = st.hour + st.minute / 60.0 + st.second / 3600.0 + st.microsecond / 3.6e9
        n_nodes = network.n_nodes
        self._n = n_nodes
        self._node_ids = network.node_ids
        self._cutoff = [float(c) for c in network.cutoff_hour_utc]
        self._cap = network.lane_daily_capacity.tolist()
        self._closures: list[list[tuple[float, float]]] = [[] for _ in range(n_nodes)]
        for d in scenario.disruptions:
            if isinstance(d, NodeClosure):
                self._closures[scenario.node_index[d.node]].append((float(d.start_hour), float(d.end_hour)))
        for cl in self._closures:
            cl.sort()
        self._rates: dict[int, list[float]] = {}
        world = scenario.world
        carriers = list(scenario.carrier_index)
        self._option_carrier_idx = np.array([scenario.carrier_index[c] for c in network.option_carrier], dtype=np.int64)
        p_car = [
            world.carriers[c].exception_probability
            if c in world.carriers and world.carriers[c].exception_probability is not None
            else world.exception_probability
            for c in carriers
        ]
        cap_car = [world.carriers[c].daily_capacity_shipments if c in world.carriers else math.inf for c in carriers]
        self._exception_probability = np.asarray(p_car, dtype=float)[self._option_carrier_idx]
        self._carrier_capacity = np.asarray(cap_car, dtype=float)[self._option_carrier_idx]
        self.free_at = [0.0] * n_nodes
        self.busy_hours = [0.0] * n_nodes
        # Pick completions of all nodes in one heap of (done, leg id, node): advancing
        # touches only the picks that finish, not every node. Per node the picks are
        # FIFO, so ``queued[n]`` (picks not yet finished) is the true queue length.
        self._picks: list[tuple[float, int, int]] = []
        self.queued = [0] * n_nodes
        self._lane_used: dict[tuple[int, int, int], int] = {}
        self._dirty: set[int] = set(range(n_nodes))  # report every node's queue at the first advance
        self.now_hours = 0.0
        self.stats = {
            "shipped_events": 0,
            "shipped_units": 0,
            "load_updates": 0,
            "replenishment_receipts": 0,
            "replenished_units": 0,
            "days": 0,
        }
        # leg bookkeeping: plain lists while running (O(1) appends), arrays at the end
        self._l_order: list[int] = []
        self._l_node: list[int] = []
        self._l_opt: list[int] = []
        self._l_cost: list[float] = []
        self._l_routed: list[float] = []
        self._l_start: list[float] = []
        self._l_done: list[float] = []
        self._l_depart: list[float] = []
        self._l_lines: list[tuple[tuple[str, int], ...] | None] = []
        # withdrawing legs (enable_withdraw): each order's legs, and the legs taken back
        self._order_legs: dict[int, list[int]] | None = None
        self._dead: set[int] = set()
        self.withdrawn_legs = 0

        # The initial backlog (initial_queue_orders) occupies the pickers first, as
        # phantom picks that ship no tracked stock (negative leg ids).
        phantom = 0
        for n, node in enumerate(scenario.nodes):
            for _ in range(math.ceil(node.initial_queue_orders)):
                start, done, service = self._pick(n, self.free_at[n])
                self.free_at[n] = done
                self.busy_hours[n] += service
                phantom -= 1
                heapq.heappush(self._picks, (done, phantom, n))
                self.queued[n] += 1

        # Boundaries of the world's clock: UTC midnights, disruption window edges,
        # replenishment reviews. A heap of (hours, kind, seq, payload).
        self._heap: list[tuple[float, int, int, object]] = []
        self._seq = 0
        # Legs whose delivery is not yet known (departed_days_before), when tracking.
        self._tracking = False
        self._open_legs: list[int] = []
        self._final_day = -(10**9)
        first_midnight = HOURS_PER_DAY - self.start_offset_hours if self.start_offset_hours > 0 else HOURS_PER_DAY
        self._push(first_midnight, _DAY, None)
        for edge in sorted({float(x) for d in scenario.disruptions for x in (d.start_hour, d.end_hour)}):
            if edge > 0.0:
                self._push(edge, _CLOCK, None)
        self._replenish = scenario.spec.replenishment
        if self._replenish is not None:
            self._target = state.on_hand.copy()  # the initial on-hand: the order-up-to level
            self._on_order = np.zeros_like(self._target)
            self._push(float(self._replenish.every_hours), _REVIEW, None)

    # ------------------------------------------------------------------ physics
    def _rate(self, n: int, t: float) -> float:
        """True pick rate (orders/hour) of node ``n`` on the UTC day containing ``t``."""
        day = int((t + self.start_offset_hours) // HOURS_PER_DAY)
        rates = self._rates.get(day)
        if rates is None:
            sd = self.params.pick_rate_sd
            z = crn.normal(crn.key_words(self.seed, "pick", np.arange(self._n), day))
            rates = (self.net.pick_capacity_per_hour * np.exp(sd * z - 0.5 * sd * sd)).tolist()
            self._rates[day] = rates
        return rates[n]

    def _pick(self, n: int, ready: float) -> tuple[float, float, float]:
        """(start, done, service hours) of a pick at node ``n`` whose picker is free at ``ready``."""
        start = ready
        closures = self._closures[n]
        while True:
            service = 1.0 / self._rate(n, start)
            done = start + service
            for s, e in closures:
                # a pick neither starts inside a closure nor runs into one
                if s <= start < e or start < s < done:
                    start = e
                    break
            else:
                return start, done, service

    def _depart(self, n: int, o: int, done: float) -> float:
        """The first cut-off at or after ``done`` when node ``n`` is open and lane (n, o) has room."""
        off = self.start_offset_hours
        cutoff = self._cutoff[n]
        k = math.ceil((done + off - cutoff) / HOURS_PER_DAY)
        cap = self._cap[n][o]
        closures = self._closures[n]
        for _ in range(self.params.max_slip_days):
            dep = HOURS_PER_DAY * k + cutoff - off
            if closures and any(s <= dep < e for s, e in closures):
                k += 1
                continue
            if cap != math.inf:
                key = (n, o, k)
                used = self._lane_used.get(key, 0)
                if used >= cap:
                    k += 1
                    continue
                self._lane_used[key] = used + 1
            return dep
        raise RouterError(
            f"lane {self._node_ids[n]} x option {o} found no cut-off with room within "
            f"{self.params.max_slip_days} days (daily capacity {cap})"
        )

    # ------------------------------------------------------------- scheduling
    def schedule(self, order_index: int, routed_hours: float, legs) -> None:
        """Queue the legs of a routed order for picking; their departure is fixed now.

        Parameters
        ----------
        order_index : int
            Position of the order in the arrival stream (the key of its draws).
        routed_hours : float
            When the router decided (hours since the scenario start).
        legs : iterable of (node, option, lines, cost_usd)
            ``lines`` is a tuple of ``(sku_id, qty)`` the leg ships.
        """
        for n, o, lines, cost in legs:
            ready = routed_hours if routed_hours > self.free_at[n] else self.free_at[n]
            start, done, service = self._pick(n, ready)
            self.free_at[n] = done
            self.busy_hours[n] += service
            dep = self._depart(n, o, done)
            leg_id = len(self._l_order)
            self._l_order.append(order_index)
            self._l_node.append(n)
            self._l_opt.append(o)
            self._l_cost.append(cost)
            self._l_routed.append(routed_hours)
            self._l_start.append(start)
            self._l_done.append(done)
            self._l_depart.append(dep)
            self._l_lines.append(lines)
            if self._tracking:
                self._open_legs.append(leg_id)
            if self._order_legs is not None:
                self._order_legs.setdefault(order_index, []).append(leg_id)
            heapq.heappush(self._picks, (done, leg_id, n))
            self.queued[n] += 1

    # ------------------------------------------------------------- withdrawing
    def enable_withdraw(self) -> None:
        """Keep each order's legs, so that :meth:`waiting_orders` and :meth:`withdraw` can run.

        Call before the first :meth:`schedule`.
        """
        if self._l_order:
            raise RouterError("enable_withdraw must be called before the first leg is scheduled")
        self._order_legs = {}

    def waiting_orders(self, hours: float) -> list[int]:
        """Orders (by index, ascending) none of whose legs has started picking by ``hours``.

        Those are the orders still wholly in the nodes' queues, the ones a re-routing
        policy may move; an order with any leg started (or picked) is released.
        """
        if self._order_legs is None:
            raise RouterError("waiting_orders needs enable_withdraw() before the first leg")
        start = self._l_start
        candidates = {self._l_order[leg] for _, leg, _ in self._picks if leg >= 0 and start[leg] > hours}
        out = []
        for i in sorted(candidates):
            legs = self._order_legs[i]
            if legs and all(start[leg] > hours for leg in legs):
                out.append(i)
        return out

    def withdraw(self, orders, hours: float) -> int:
        """Take the legs of ``orders`` out of the queues at ``hours``; the legs behind them are timed again.

        Every leg of these orders must still be waiting (its pick starts after
        ``hours``; see :meth:`waiting_orders`). The withdrawn legs pick nothing, ship
        nothing and leave no record in :meth:`legs`; their lane slots are given back.
        At each node concerned, the legs still waiting are timed again in their queue
        order by the physics of :meth:`schedule` -- the picker is free at the end of
        the last started pick or at ``hours``, whichever is later -- and their
        departures are the first cut-offs with lane room once the waiting legs' slots
        are given back. Returns the number of legs withdrawn.
        """
        if self._order_legs is None:
            raise RouterError("withdraw needs enable_withdraw() before the first leg")
        start = self._l_start
        gone: set[int] = set()
        for i in orders:
            legs = self._order_legs.get(int(i), [])
            for leg in legs:
                if not start[leg] > hours:
                    raise RouterError(f"order {i}: its leg {leg} started picking at {start[leg]:g} h, not after {hours:g} h")
            gone.update(legs)
            self._order_legs[int(i)] = []
        if not gone:
            return 0
        nodes = sorted({self._l_node[leg] for leg in gone})
        touched: set[int] = set(gone)
        fresh: list[tuple[float, int, int]] = []
        for n in nodes:
            # this node's unfinished picks: started (or phantom) ones stay, waiting ones are timed again
            free = hours
            waiting = []
            for done, leg, m in self._picks:
                if m != n:
                    continue
                if leg < 0 or start[leg] <= hours:
                    free = max(free, done)
                else:
                    waiting.append(leg)
            waiting.sort()  # leg ids are the queue order of a node
            for leg in waiting:  # every waiting leg gives back its time and its lane slot first
                self.busy_hours[n] -= self._l_done[leg] - start[leg]
                self._unbook(n, self._l_opt[leg], self._l_depart[leg])
            for leg in waiting:
                touched.add(leg)
                if leg in gone:
                    continue
                routed = self._l_routed[leg]
                s, done, service = self._pick(n, routed if routed > free else free)
                free = done
                self.busy_hours[n] += service
                start[leg] = s
                self._l_done[leg] = done
                self._l_depart[leg] = self._depart(n, self._l_opt[leg], done)
                fresh.append((done, leg, n))
            self.free_at[n] = free
            self.queued[n] -= sum(1 for leg in waiting if leg in gone)
            self._dirty.add(n)
        self._picks = [e for e in self._picks if e[1] not in touched] + fresh
        heapq.heapify(self._picks)
        for leg in gone:
            self._l_lines[leg] = None
        self._dead |= gone
        if self._tracking:
            self._open_legs = [leg for leg in self._open_legs if leg not in gone]
        self.withdrawn_legs += len(gone)
        return len(gone)

    def _unbook(self, n: int, o: int, dep: float) -> None:
        """Give back the lane slot a departure at ``dep`` took (the inverse of :meth:`_depart`'s booking)."""
        if self._cap[n][o] == math.inf:
            return
        k = round((dep + self.start_offset_hours - self._cutoff[n]) / HOURS_PER_DAY)
        key = (n, o, k)
        self._lane_used[key] -= 1
        if self._lane_used[key] == 0:
            del self._lane_used[key]

    # ------------------------------------------------------------------- time
    def _push(self, hours: float, kind: int, payload: object) -> None:
        heapq.heappush(self._heap, (hours, kind, self._seq, payload))
        self._seq += 1

    def advance(self, hours: float) -> None:
        """Move the world to ``hours``: picks complete, days turn, windows switch, stock arrives.

        Everything that happens in between reaches the router's state as events,
        in time order; the true pick queues are reported last, as a warehouse
        system would report them when the router asks.
        """
        heap = self._heap
        while heap and heap[0][0] <= hours:
            at, kind, _, payload = heapq.heappop(heap)
            self._complete(at)
            self._boundary(at, kind, payload)
        self._complete(hours)
        self._report()
        self.now_hours = hours

    def drain(self) -> None:
        """Complete every queued pick (after the last arrival): all reserved stock ships."""
        self._complete(math.inf)
        self._report()

    def _complete(self, hours: float) -> None:
        """Finish every pick done by ``hours``: its units ship (``Shipped``, one per line)."""
        picks = self._picks
        if not picks or picks[0][0] > hours:
            return
        ship, sku_idx = self.state.ship, self.state.sku_idx
        stats = self.stats
        while picks and picks[0][0] <= hours:
            _, leg, n = heapq.heappop(picks)
            self.queued[n] -= 1
            self._dirty.add(n)
            if leg < 0:
                continue
            # The Shipped event by index (LiveState.ship: the same checks against the
            # reservations); building 3-4 pydantic events per order was a fifth of the
            # world's time.
            for sku, qty in self._l_lines[leg]:  # type: ignore[union-attr]
                ship(n, sku_idx(sku), qty)
                stats["shipped_events"] += 1
                stats["shipped_units"] += qty
            self._l_lines[leg] = None  # shipped: free the memory

    def _report(self) -> None:
        """Report the true pick queue of every node whose queue changed and differs from the state's."""
        if not self._dirty:
            return
        queue = self.state.queue_orders
        for n in sorted(self._dirty):  # sorted: events in a deterministic order
            true_queue = self.queued[n]
            if queue[n] != true_queue:
                self.state.apply(LoadUpdate.model_construct(node=self._node_ids[n], queue_orders=float(true_queue)))
                self.stats["load_updates"] += 1
        self._dirty.clear()

    def _boundary(self, at: float, kind: int, payload: object) -> None:
        if kind == _DAY:
            self.state.new_day()
            self.stats["days"] += 1
            self._push(at + HOURS_PER_DAY, _DAY, None)
        elif kind == _CLOCK:
            # Scheduled windows only change at their edges, so the state's clock is
            # moved here rather than at every arrival (it rebuilds its disruption arrays).
            self.state.set_clock_hours(at)
        elif kind == _REVIEW:
            rep = self._replenish
            position = self.state.on_hand + self._on_order
            delta = np.maximum(self._target - position, 0)
            if rep.lead_time_hours > 0:  # type: ignore[union-attr]
                self._on_order += delta
                self._push(at + rep.lead_time_hours, _RECEIPT, delta)  # type: ignore[union-attr]
            else:
                self._receive(delta)
            self._push(at + rep.every_hours, _REVIEW, None)  # type: ignore[union-attr]
        elif kind == _RECEIPT:
            delta = payload  # type: ignore[assignment]
            self._on_order -= delta  # type: ignore[operator]
            self._receive(delta)  # type: ignore[arg-type]

    def _receive(self, delta: np.ndarray) -> None:
        skus = self.net.sku_ids
        for n, k in zip(*np.nonzero(delta)):
            qty = int(delta[n, k])
            self.state.apply(StockAdjust(node=self._node_ids[n], sku=skus[k], delta=qty))
            self.stats["replenishment_receipts"] += 1
            self.stats["replenished_units"] += qty

    # ------------------------------------------------------------------ transit
    def legs(self, dest_lat: np.ndarray, dest_lon: np.ndarray, dest_region: np.ndarray) -> LegRecords:
        """Draw every leg's transit (vectorised) and return all legs as arrays.

        Parameters
        ----------
        dest_lat, dest_lon : float[M]
            Destination of each order (indexed by order index).
        dest_region : int[M]
            Region index of each order's destination (-1: none).
        """
        keep: slice | np.ndarray = slice(None)
        if self._dead:  # withdrawn legs (re-routing) never left: no record
            keep = np.ones(len(self._l_order), dtype=bool)
            keep[np.fromiter(self._dead, dtype=np.int64, count=len(self._dead))] = False
        order = np.asarray(self._l_order, dtype=np.int64)[keep]
        n = np.asarray(self._l_node, dtype=np.int64)[keep]
        o = np.asarray(self._l_opt, dtype=np.int64)[keep]
        dep = np.asarray(self._l_depart, dtype=float)[keep]
        transit, noise, bias, stretch, exception = self._transit(order, n, o, dep, dest_lat, dest_lon, dest_region)
        return LegRecords(
            order=order,
            node=n,
            option=o,
            cost_usd=np.asarray(self._l_cost, dtype=float)[keep],
            routed_hours=np.asarray(self._l_routed, dtype=float)[keep],
            pick_start_hours=np.asarray(self._l_start, dtype=float)[keep],
            pick_done_hours=np.asarray(self._l_done, dtype=float)[keep],
            depart_hours=dep,
            transit_hours=transit,
            transit_noise=noise,
            delivered_hours=dep + transit,
            lane_bias=bias,
            exception_hours=exception,
            volume_stretch=stretch,
        )

    def departed_days_before(self, hours: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Legs that departed on a UTC day ended by ``hours`` and were not returned before: (leg, order, delivered).

        The delivered times are those :meth:`legs` will give (the same draws); a leg's
        is known only once its departure day is over, because the carrier's volume
        stretch counts every departure of that day. A simulation reports outcomes
        from it while it runs (the service-level controller learns from them).
        """
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        day_now = math.floor((hours + self.start_offset_hours) / HOURS_PER_DAY)
        if day_now <= self._final_day or not self._open_legs:
            self._final_day = max(self._final_day, day_now)
            return empty
        self._final_day = day_now
        open_legs = np.asarray(self._open_legs, dtype=np.int64)
        dep_open = np.asarray([self._l_depart[i] for i in self._open_legs], dtype=float)
        over = np.floor((dep_open + self.start_offset_hours) / HOURS_PER_DAY) < day_now
        if not over.any():
            return empty
        idx = open_legs[over]
        self._open_legs = open_legs[~over].tolist()
        order = np.asarray([self._l_order[i] for i in idx.tolist()], dtype=np.int64)
        n = np.asarray([self._l_node[i] for i in idx.tolist()], dtype=np.int64)
        o = np.asarray([self._l_opt[i] for i in idx.tolist()], dtype=np.int64)
        dep = dep_open[over]
        transit = self._transit(order, n, o, dep, self._dest_lat, self._dest_lon, self._dest_region)[0]
        return idx, order, dep + transit

    def track_deliveries(self, dest_lat: np.ndarray, dest_lon: np.ndarray, dest_region: np.ndarray) -> None:
        """Enable :meth:`departed_days_before` with the orders' destinations (indexed by order index)."""
        self._dest_lat, self._dest_lon, self._dest_region = dest_lat, dest_lon, dest_region
        self._tracking = True

    def _transit(self, order, n, o, dep, dest_lat, dest_lon, dest_region):
        """(transit hours, noise, lane bias, volume stretch, exception hours) of the given legs.

        Each leg's draws are keyed by its own (order, node, option), so a subset gets
        the values the whole set gets, except the volume stretch, which counts the
        carrier's departures per day: a subset must hold every leg of its days.
        """
        net = self.net
        miles = haversine_miles(net.node_lat[n], net.node_lon[n], dest_lat[order], dest_lon[order])
        mean_h = HOURS_PER_DAY * np.maximum(
            net.transit_min_days[o], net.transit_base_days[o] + miles / net.transit_miles_per_day[o]
        )
        congestion = net.lane_base_congestion[n, o] * self._slowdown(n, o, dep)
        weather = self._weather(net.node_region[n], dep) + self._weather(dest_region[order], dep)
        s2 = np.log1p(net.transit_sigma_frac[o] ** 2)
        z = crn.normal(crn.key_words(self.seed, "transit", order, n, o)) if len(order) else np.zeros(0)
        noise = np.exp(np.sqrt(s2) * z - 0.5 * s2)
        bias = self.lane_bias(n, o, np.maximum(dest_region[order], 0))
        stretch = self._volume_stretch(o, dep)
        exception = self._exceptions(order, n, o)
        transit = mean_h * congestion * (1.0 + weather) * noise * bias * stretch + exception
        return transit, noise, bias, stretch, exception

    def lane_bias(self, n: np.ndarray, o: np.ndarray, region: np.ndarray) -> np.ndarray:
        """The fixed transit factor of lanes (option ``o``, node ``n``, destination region), from the world seed."""
        sd = self.scenario.world.lane_bias_sd
        if sd == 0.0 or len(n) == 0:
            return np.ones(len(n))
        s2 = math.log1p(sd * sd)
        z = crn.normal(crn.key_words(self.scenario.world_seed, "lane_bias", o, n, region))
        return np.exp(math.sqrt(s2) * z - 0.5 * s2)

    def _exceptions(self, order: np.ndarray, n: np.ndarray, o: np.ndarray) -> np.ndarray:
        """Hours of exception delay per leg: U(low, high) with the carrier's probability, else 0."""
        if len(order) == 0:
            return np.zeros(0)
        p_opt = self._exception_probability[o]
        words = crn.key_words(self.seed, "exception", order, n, o)
        hit = crn.uniform(words, 0) < p_opt
        lo, hi = self.scenario.world.exception_delay_hours
        return np.where(hit, lo + (hi - lo) * crn.uniform(words, 1), 0.0)

    def _volume_stretch(self, o: np.ndarray, dep: np.ndarray) -> np.ndarray:
        """1 + max(0, departures of the carrier that UTC day / its daily capacity - 1), per leg."""
        cap_opt = self._carrier_capacity[o]
        stretch = np.ones(len(o))
        limited = np.isfinite(cap_opt)
        if not limited.any():
            return stretch
        carrier = self._option_carrier_idx[o]
        day = np.floor((dep + self.start_offset_hours) / HOURS_PER_DAY).astype(np.int64)
        key = carrier * (1 << 32) + (day - day.min())
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        shipped = counts[inverse].astype(float)
        return np.where(limited, 1.0 + np.maximum(0.0, shipped / cap_opt - 1.0), 1.0)

    def _slowdown(self, n: np.ndarray, o: np.ndarray, dep: np.ndarray) -> np.ndarray:
        """Lane slowdown factor active at each departure (the largest of overlapping ones, as LiveState)."""
        slow = np.ones(len(n))
        carriers = np.asarray(self.net.option_carrier)
        for d in self.scenario.disruptions:
            if not isinstance(d, LaneSlowdown):
                continue
            m = (dep >= d.start_hour) & (dep < d.end_hour)
            if d.node is not None:
                m &= n == self.scenario.node_index[d.node]
            if d.carrier is not None:
                m &= carriers[o] == d.carrier
            slow = np.where(m, np.maximum(slow, d.factor), slow)
        return slow

    def _weather(self, region: np.ndarray, dep: np.ndarray) -> np.ndarray:
        """Summed weather severity at ``region`` at each departure time (0 for region -1)."""
        sev = np.zeros(len(region))
        for d in self.scenario.disruptions:
            if isinstance(d, WeatherEvent):
                r = self.scenario.region_index[d.region]
                sev += np.where((region == r) & (dep >= d.start_hour) & (dep < d.end_hour), d.severity, 0.0)
        return sev
