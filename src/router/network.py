"""The network as a graph and as the flat arrays the hot path reads.

networkx is used only here. The graph holds fulfilment nodes, carrier-service
options and demand regions; an edge node -> option is a lane (a carrier picks up
at that node with that service), an edge option -> region says the service
delivers there. At load time the graph is checked (every region reachable from
some node) and flattened into numpy arrays indexed by node ``n`` and option
``o``; routing never touches the graph.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields
from functools import cached_property

import networkx as nx
import numpy as np

from router.errors import InvalidOrderError, ScenarioError
from router.scenario import Scenario

__all__ = ["EARTH_RADIUS_MILES", "Network", "build_network", "haversine_miles"]

EARTH_RADIUS_MILES = 3958.8


def haversine_miles(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in miles; broadcasts over numpy arrays (degrees in)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_MILES * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


@dataclass(frozen=True, eq=False)
class Network:
    """Flat, read-only arrays describing nodes, options (carrier x service) and lanes."""

    graph: nx.DiGraph
    node_ids: tuple[str, ...]
    node_lat: np.ndarray
    node_lon: np.ndarray
    node_region: np.ndarray  # int[N], -1 when unknown
    handling_ship_usd: np.ndarray
    handling_unit_usd: np.ndarray
    handling_carton_usd: np.ndarray
    carton_volume_cuft: np.ndarray
    pick_capacity_per_hour: np.ndarray
    cutoff_hour_utc: np.ndarray

    option_carrier: tuple[str, ...]
    option_service: tuple[str, ...]
    fixed_usd: np.ndarray
    per_unit_usd: np.ndarray
    per_unit_mile_usd: np.ndarray
    per_lb_usd: np.ndarray
    dim_factor: np.ndarray
    tier_bounds: np.ndarray  # float[O, T] ascending, padded with +inf
    tier_rates: np.ndarray  # float[O, T], padded with the last rate
    has_tiers: np.ndarray  # bool[O]
    transit_base_days: np.ndarray
    transit_miles_per_day: np.ndarray
    transit_min_days: np.ndarray
    transit_sigma_frac: np.ndarray

    lane_ok: np.ndarray  # bool[N, O]
    lane_daily_capacity: np.ndarray  # float[N, O], inf = unlimited
    lane_max_volume_cuft: np.ndarray  # float[N, O], inf = unlimited
    lane_base_congestion: np.ndarray  # float[N, O]

    region_ids: tuple[str, ...]
    region_lat: np.ndarray
    region_lon: np.ndarray

    sku_ids: tuple[str, ...]
    sku_weight_lb: np.ndarray
    sku_volume_cuft: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def n_options(self) -> int:
        return len(self.option_carrier)

    @cached_property
    def services(self) -> tuple[str, ...]:
        """Distinct service levels, sorted (the split generator plans one service per order)."""
        return tuple(sorted(set(self.option_service)))

    @cached_property
    def option_service_idx(self) -> np.ndarray:
        """int[O]: index of each option's service in :attr:`services`."""
        return np.array([self.services.index(s) for s in self.option_service], dtype=np.int64)

    @cached_property
    def service_option_mask(self) -> np.ndarray:
        """bool[G, O]: option o is of service level g (the split generator's groups)."""
        return self.option_service_idx[None, :] == np.arange(len(self.services))[:, None]

    @cached_property
    def per_shipment_usd(self) -> np.ndarray:
        """float[N, O]: carrier fixed charge + node handling per shipment, paid by every leg.

        Computed once per network (it was rebuilt per order and per split size on the
        hot path); the expression is the one the split generator used, so values are
        bit-identical.
        """
        return self.fixed_usd[None, :] + self.handling_ship_usd[:, None]

    @cached_property
    def any_weight_tiers(self) -> bool:
        """False when no service bills weight tiers: the tier lookup can be skipped (it adds 0)."""
        return bool(self.has_tiers.any())

    @cached_property
    def any_volume_limit(self) -> bool:
        """False when no lane caps a shipment's volume: the over-volume check can be skipped."""
        return bool(np.isfinite(self.lane_max_volume_cuft).any())

    @cached_property
    def option_labels(self) -> tuple[str, ...]:
        """``carrier service`` of every option, built once (labels are made for every record)."""
        return tuple(f"{c} {s}" for c, s in zip(self.option_carrier, self.option_service))

    def option_label(self, o: int) -> str:
        return self.option_labels[o]

    @cached_property
    def content_hash(self) -> str:
        """blake2b (128 bit) of every array and id of the network (the graph aside, built from them).

        A decision record stores it: replay refuses a router whose network differs
        (another scenario file, or the same file edited), since the stored view and
        context index into these arrays by position.
        """
        h = hashlib.blake2b(digest_size=16)
        for f in fields(self):
            if f.name == "graph":
                continue
            value = getattr(self, f.name)
            h.update(f.name.encode())
            if isinstance(value, np.ndarray):
                a = np.ascontiguousarray(value)
                h.update(f"{a.dtype.str}{a.shape}".encode())
                h.update(a.tobytes())
            else:
                h.update(repr(value).encode())
        return h.hexdigest()

    def nearest_region(self, lat: float, lon: float) -> int:
        """Index of the region whose centroid is closest, -1 when the scenario has none."""
        if not self.region_ids:
            return -1
        return int(np.argmin(haversine_miles(lat, lon, self.region_lat, self.region_lon)))

    def nearest_region_miles(self, lat: float, lon: float) -> tuple[int, float]:
        """The closest region's index and its centroid's distance in miles; (-1, inf) without regions."""
        if not self.region_ids:
            return -1, float("inf")
        miles = haversine_miles(lat, lon, self.region_lat, self.region_lon)
        r = int(np.argmin(miles))
        return r, float(miles[r])

    def region_miles(self, region: int, lat: float, lon: float) -> float:
        """Miles from a region's centroid to a point (scalar math: one pair, no array overhead)."""
        p1, p2 = math.radians(lat), math.radians(float(self.region_lat[region]))
        dl = math.radians(float(self.region_lon[region])) - math.radians(lon)
        a = math.sin((p2 - p1) / 2.0) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2.0) ** 2
        return 2.0 * EARTH_RADIUS_MILES * math.asin(math.sqrt(min(a, 1.0)))

    def check_destination(self, lat: float, lon: float, region: int | None, max_miles: float) -> None:
        """Hard: a destination given by coordinates lies within ``max_miles`` of the region
        it is routed as (``region``, or the nearest when None); otherwise
        :class:`~router.errors.InvalidOrderError` on ``destination``.

        The region carries the destination's weather and disruptions, so a point far from
        every region (London on a US network) would be routed as if it were in the
        nearest one. Without regions there is nothing to compare with: no check.
        """
        if not self.region_ids:
            return
        if region is None:
            region, miles = self.nearest_region_miles(lat, lon)
            which = "the nearest region"
        else:
            miles = self.region_miles(region, lat, lon)
            which = "its region"
        if miles > max_miles:
            raise InvalidOrderError(
                "destination",
                f"({lat:g}, {lon:g}) is {miles:,.0f} mi from {which} {self.region_ids[region]!r} "
                f"(limit {max_miles:,.0f} mi, boundary.max_region_distance_miles): the network does not serve it",
            )

    def distances_miles(self, lat: float, lon: float) -> np.ndarray:
        """Miles from every node to a point."""
        return haversine_miles(self.node_lat, self.node_lon, lat, lon)


def _build_graph(scenario: Scenario) -> nx.DiGraph:
    g = nx.DiGraph()
    for n in scenario.nodes:
        g.add_node(("node", n.id), kind="node")
    for r in scenario.regions:
        g.add_node(("region", r.id), kind="region")
    lanes_by_key: dict[tuple[str, str, str | None], object] = {}
    for lane in scenario.spec.lanes:
        lanes_by_key[(lane.node, lane.carrier, lane.service)] = lane
    for c in scenario.carriers:
        for s in c.services:
            opt = ("option", c.id, s.name)
            g.add_node(opt, kind="option")
            for r in scenario.regions:
                g.add_edge(opt, ("region", r.id))
            for n in scenario.nodes:
                lane = lanes_by_key.get((n.id, c.id, s.name)) or lanes_by_key.get((n.id, c.id, None))  # type: ignore[assignment]
                if lane is not None and not lane.enabled:  # type: ignore[attr-defined]
                    continue
                g.add_edge(
                    ("node", n.id),
                    opt,
                    daily_capacity=getattr(lane, "daily_capacity_shipments", None),
                    max_volume=getattr(lane, "max_shipment_volume_cuft", None),
                    congestion=getattr(lane, "congestion", 1.0),
                )
    return g


def build_network(scenario: Scenario) -> Network:
    """Check the scenario's graph and flatten it into arrays."""
    g = _build_graph(scenario)
    nodes = scenario.nodes
    options = scenario.options
    n_n, n_o = len(nodes), len(options)

    # Every node must have at least one lane, and every region must be reachable,
    # or orders there could never be routed: a scenario error, not a runtime surprise.
    for i, n in enumerate(nodes):
        if g.out_degree(("node", n.id)) == 0:
            raise ScenarioError(f"nodes[{i}]", f"node {n.id!r} has no enabled lane to any carrier")
    if scenario.regions:
        reachable = set()
        for n in nodes:
            reachable |= nx.descendants(g, ("node", n.id))
        for i, r in enumerate(scenario.regions):
            if ("region", r.id) not in reachable:
                raise ScenarioError(f"regions[{i}]", f"region {r.id!r} is reachable from no node")

    lane_ok = np.zeros((n_n, n_o), dtype=bool)
    lane_cap = np.full((n_n, n_o), np.inf)
    lane_vol = np.full((n_n, n_o), np.inf)
    lane_cong = np.ones((n_n, n_o))
    for i, n in enumerate(nodes):
        for o, (cid, sname) in enumerate(options):
            data = g.get_edge_data(("node", n.id), ("option", cid, sname))
            if data is None:
                continue
            lane_ok[i, o] = True
            if data["daily_capacity"] is not None:
                lane_cap[i, o] = float(data["daily_capacity"])
            if data["max_volume"] is not None:
                lane_vol[i, o] = float(data["max_volume"])
            lane_cong[i, o] = float(data["congestion"])

    services = [(c, s) for c in scenario.carriers for s in c.services]
    t_max = max([len(s.cost.weight_tiers_lb) for _, s in services] + [1])
    bounds = np.full((n_o, t_max), np.inf)
    rates = np.zeros((n_o, t_max))
    for o, (_, s) in enumerate(services):
        tb, tr = s.cost.weight_tiers_lb, s.cost.weight_rates_usd
        if tb:
            bounds[o, : len(tb)] = tb
            rates[o, : len(tr)] = tr
            rates[o, len(tr) :] = tr[-1]  # above the last bound the last rate applies

    region_index = scenario.region_index
    return Network(
        graph=g,
        node_ids=tuple(n.id for n in nodes),
        node_lat=np.array([n.lat for n in nodes]),
        node_lon=np.array([n.lon for n in nodes]),
        node_region=np.array([region_index.get(n.region, -1) if n.region else -1 for n in nodes], dtype=np.int64),
        handling_ship_usd=np.array([n.handling_per_shipment_usd for n in nodes]),
        handling_unit_usd=np.array([n.handling_per_unit_usd for n in nodes]),
        handling_carton_usd=np.array([n.handling_per_carton_usd for n in nodes]),
        carton_volume_cuft=np.array([n.carton_volume_cuft for n in nodes]),
        pick_capacity_per_hour=np.array([n.pick_capacity_per_hour for n in nodes]),
        cutoff_hour_utc=np.array([n.cutoff_hour_utc for n in nodes]),
        option_carrier=tuple(c.id for c, _ in services),
        option_service=tuple(s.name for _, s in services),
        fixed_usd=np.array([s.cost.fixed_usd for _, s in services]),
        per_unit_usd=np.array([s.cost.per_unit_usd for _, s in services]),
        per_unit_mile_usd=np.array([s.cost.per_unit_mile_usd for _, s in services]),
        per_lb_usd=np.array([s.cost.per_lb_usd for _, s in services]),
        dim_factor=np.array([c.dim_weight_factor_lb_per_cuft for c, _ in services]),
        tier_bounds=bounds,
        tier_rates=rates,
        has_tiers=np.array([bool(s.cost.weight_tiers_lb) for _, s in services]),
        transit_base_days=np.array([s.transit.base_days for _, s in services]),
        transit_miles_per_day=np.array([s.transit.miles_per_day for _, s in services]),
        transit_min_days=np.array([s.transit.min_days for _, s in services]),
        transit_sigma_frac=np.array([s.transit.sigma_frac for _, s in services]),
        lane_ok=lane_ok,
        lane_daily_capacity=lane_cap,
        lane_max_volume_cuft=lane_vol,
        lane_base_congestion=lane_cong,
        region_ids=tuple(r.id for r in scenario.regions),
        region_lat=np.array([r.lat for r in scenario.regions]),
        region_lon=np.array([r.lon for r in scenario.regions]),
        sku_ids=tuple(s.id for s in scenario.skus),
        sku_weight_lb=np.array([s.unit_weight_lb for s in scenario.skus]),
        sku_volume_cuft=np.array([s.unit_volume_cuft for s in scenario.skus]),
    )
