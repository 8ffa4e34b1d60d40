"""The order context: what routing needs to know about one order, and the one place that builds it.

:class:`ContextBuilder` turns a validated :class:`~router.domain.Order` into an
:class:`OrderContext` (SKU indices, units, unit weight and volume, miles from every
node, destination region and its weather, hours from the decision to the promise,
the tier's multiplier and node priorities, the allowed services). The router and
the simulator both use it, so a destination or a promise is resolved one way.
The context is stored in every decision record (:func:`context_to_json`) and read
back for replay (:func:`context_from_json`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from router.domain import Destination, Order
from router.legs import destination_lanes, nominal_cost_order
from router.network import Network
from router.scenario import Scenario

__all__ = ["ContextBuilder", "OrderContext", "context_from_json", "context_to_json", "promised_at"]


@dataclass(frozen=True, eq=False)
class OrderContext:
    """What the candidate generator and scores need to know about one order."""

    sku_idx: np.ndarray  # int[K] index into the scenario catalogue
    qty: np.ndarray  # int[K]
    weight_lb: np.ndarray  # float[K] per unit
    volume_cuft: np.ndarray  # float[K] per unit
    dist_miles: np.ndarray  # float[N] node -> destination
    dest_region: int
    dest_weather: float
    promise_hours: float  # from the decision time to the promise
    now_hour_utc: float  # hour of day at decision time
    tier: str
    tier_multiplier: float
    tier_node_rank: np.ndarray  # int[N] position in the tier's node_priority (len = not listed)
    option_allowed: np.ndarray  # bool[O] (service level requested)
    weekday: int = 0  # UTC day of the week at decision time (Monday 0)
    # destination_lanes(net, dist_miles) when the caller caches it per destination;
    # None computes it here (the same expressions, so the same bits)
    dest_lanes: tuple[np.ndarray, np.ndarray] | None = None
    # node indices nearest first (a stable argsort of dist_miles), cached per destination
    # on networks larger than a candidate pool; None: the rules sort when they need it
    node_order: np.ndarray | None = None
    # node indices cheapest first for a nominal parcel (legs.nominal_cost_order), cached
    # with node_order; None: the rules compute it when they need it
    node_cost_order: np.ndarray | None = None


#: Networks with more nodes than this keep each destination's nearest-first node order.
NODE_ORDER_FROM = 24


def promised_at(order: Order, scenario: Scenario) -> datetime:
    """When the order is promised: its own ``promised_by``, else created_at + the tier's promise."""
    tier = scenario.tiers[order.customer.tier]
    return order.promised_by or (order.created_at + timedelta(hours=tier.promise_hours))


class ContextBuilder:
    """Builds the :class:`OrderContext` of validated orders on one network.

    Per destination it caches the miles to every node and the lane geometry
    (transit days and per-unit rates, :func:`~router.legs.destination_lanes`):
    they depend on the destination only, orders to one destination repeat (a
    simulation draws region centroids), and computing them costs about 15 us.
    The cache holds at most ``cache_size`` destinations and is cleared when
    full, so arbitrary live coordinates cannot grow it without limit.
    """

    def __init__(self, scenario: Scenario, network: Network, *, cache_size: int = 4096) -> None:
        self.scenario = scenario
        self.network = network
        self.cache_size = cache_size
        self._tier_rank: dict[str, np.ndarray] = {}
        for name, tier in scenario.tiers.items():
            rank = np.full(network.n_nodes, len(tier.node_priority), dtype=np.int64)
            for pos, nid in enumerate(tier.node_priority):
                rank[scenario.node_index[nid]] = pos
            self._tier_rank[name] = rank
        self.all_options = np.ones(network.n_options, dtype=bool)
        self.service_masks = {
            s: np.array([x == s for x in network.option_service]) for s in set(network.option_service)
        }
        self._dest_cache: dict[
            tuple[float | None, float | None, str | None],
            tuple[np.ndarray, int, tuple, np.ndarray | None, np.ndarray | None],
        ] = {}

    def resolve(self, dest: Destination) -> tuple[float, float, int]:
        """(lat, lon, region index) of a destination: its coordinates, or its region's centroid.

        With coordinates and no region, the nearest region's centroid names the
        region (for weather and demand), while distances use the coordinates.
        """
        net = self.network
        if dest.lat is not None and dest.lon is not None:
            region = self.scenario.region_index[dest.region] if dest.region else net.nearest_region(dest.lat, dest.lon)
            return float(dest.lat), float(dest.lon), int(region)
        region = self.scenario.region_index[dest.region]  # type: ignore[index]
        return float(net.region_lat[region]), float(net.region_lon[region]), int(region)

    def _destination(self, dest: Destination) -> tuple[np.ndarray, int, tuple, np.ndarray | None, np.ndarray | None]:
        key = (dest.lat, dest.lon, dest.region)
        hit = self._dest_cache.get(key)
        if hit is None:
            lat, lon, region = self.resolve(dest)
            miles = self.network.distances_miles(lat, lon)
            miles.setflags(write=False)  # shared by every order to this point
            if len(self._dest_cache) >= self.cache_size:
                self._dest_cache.clear()
            lanes = destination_lanes(self.network, miles)
            for arr in lanes:
                arr.setflags(write=False)
            # The nearest-first order of the nodes, for candidate pools on large networks:
            # sorted once per destination rather than once per order.
            order = cheap = None
            if self.network.n_nodes > NODE_ORDER_FROM:
                order = np.argsort(miles, kind="stable")
                order.setflags(write=False)
                cheap = nominal_cost_order(self.network, miles, lanes[1])
                cheap.setflags(write=False)
            hit = self._dest_cache[key] = (miles, region, lanes, order, cheap)
        return hit

    def build(self, order: Order, now: datetime, weather_at_region: Callable[[int], float]) -> OrderContext:
        """The context of ``order`` decided at ``now``; ``weather_at_region`` reads the live state."""
        net, scenario = self.network, self.scenario
        index = scenario.sku_index
        sku_idx = np.fromiter((index[ln.sku] for ln in order.lines), dtype=np.int64)
        qty = np.fromiter((ln.qty for ln in order.lines), dtype=np.int64)
        miles, region, lanes, node_order, cost_order = self._destination(order.destination)
        tier = scenario.tiers[order.customer.tier]
        hour = now.astimezone(timezone.utc)
        return OrderContext(
            sku_idx=sku_idx,
            qty=qty,
            weight_lb=net.sku_weight_lb[sku_idx],
            volume_cuft=net.sku_volume_cuft[sku_idx],
            dist_miles=miles,
            dest_region=region,
            dest_weather=weather_at_region(region),
            promise_hours=(promised_at(order, scenario) - now).total_seconds() / 3600.0,
            now_hour_utc=hour.hour + hour.minute / 60.0 + hour.second / 3600.0,
            tier=tier.name,
            tier_multiplier=tier.lateness_multiplier,
            tier_node_rank=self._tier_rank[tier.name],
            option_allowed=self.service_masks[order.service_level] if order.service_level else self.all_options,
            weekday=hour.weekday(),
            dest_lanes=lanes,
            node_order=node_order,
            node_cost_order=cost_order,
        )


def context_to_json(ctx: OrderContext) -> dict:
    """The context as stored in a decision record's ``inputs`` (lane geometry is recomputed)."""
    return {
        "sku_idx": ctx.sku_idx.tolist(),
        "qty": ctx.qty.tolist(),
        "weight_lb": ctx.weight_lb.tolist(),
        "volume_cuft": ctx.volume_cuft.tolist(),
        "dist_miles": ctx.dist_miles.tolist(),
        "dest_region": ctx.dest_region,
        "dest_weather": ctx.dest_weather,
        "promise_hours": ctx.promise_hours,
        "now_hour_utc": ctx.now_hour_utc,
        "tier": ctx.tier,
        "tier_multiplier": ctx.tier_multiplier,
        "tier_node_rank": ctx.tier_node_rank.tolist(),
        "option_allowed": ctx.option_allowed.tolist(),
        "weekday": ctx.weekday,
    }


def context_from_json(d: dict) -> OrderContext:
    return OrderContext(
        sku_idx=np.asarray(d["sku_idx"], dtype=np.int64),
        qty=np.asarray(d["qty"], dtype=np.int64),
        weight_lb=np.asarray(d["weight_lb"], dtype=float),
        volume_cuft=np.asarray(d["volume_cuft"], dtype=float),
        dist_miles=np.asarray(d["dist_miles"], dtype=float),
        dest_region=int(d["dest_region"]),
        dest_weather=float(d["dest_weather"]),
        promise_hours=float(d["promise_hours"]),
        now_hour_utc=float(d["now_hour_utc"]),
        tier=str(d["tier"]),
        tier_multiplier=float(d["tier_multiplier"]),
        tier_node_rank=np.asarray(d["tier_node_rank"], dtype=np.int64),
        option_allowed=np.asarray(d["option_allowed"], dtype=bool),
        weekday=int(d.get("weekday", 0)),  # absent in records older than the delay-risk model
    )
