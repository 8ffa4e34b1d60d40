"""Live state: what a real system knows right now, as numpy arrays.

Stock and reservations per node x SKU, node load (pick queue, throughput,
closures), lane congestion and usage per node x option, weather per region.
Every change goes through :meth:`LiveState.apply` (validated events) or the
atomic :meth:`LiveState.try_reserve`; each bumps ``version``.

Stock also has a *value*: a shadow price per node x SKU (USD per unit, default 0)
that a pricing job publishes (:class:`StockPrices`, :meth:`LiveState.set_stock_prices`),
e.g. the duals of a transportation LP over the expected remaining demand
(Acimovic & Graves 2015). The ``stock_value`` score term charges it, so a plan that
uses up a unit that future demand will miss pays for it now. A decision
record names the state it saw by that version and by ``StateView.state_hash``,
a content hash of exactly the slice the decision read (see :func:`view_hash`);
``LiveState.content_hash`` still fingerprints every array of the whole state.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from router.errors import InvalidEventError, pydantic_field_error
from router.network import Network
from router.scenario import LaneSlowdown, NodeClosure, Scenario, WeatherEvent

__all__ = [
    "CongestionUpdate",
    "Event",
    "LiveState",
    "LoadUpdate",
    "NodeStatus",
    "Shipped",
    "StateView",
    "StockAdjust",
    "StockPrices",
    "StockSet",
    "WeatherUpdate",
    "parse_event",
    "view_hash",
]

HOURS_PER_DAY = 24.0


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StockSet(_Event):
    """A cycle count: on-hand units of a SKU at a node are now ``on_hand``."""

    type: Literal["stock_set"] = "stock_set"
    node: str
    sku: str
    on_hand: int = Field(ge=0)


class StockAdjust(_Event):
    """A receipt (delta > 0) or shrinkage (delta < 0)."""

    type: Literal["stock_adjust"] = "stock_adjust"
    node: str
    sku: str
    delta: int


class Shipped(_Event):
    """Reserved units left the building: on-hand and reserved both drop by ``qty``."""

    type: Literal["shipped"] = "shipped"
    node: str
    sku: str
    qty: int = Field(gt=0)


class LoadUpdate(_Event):
    """The node's warehouse system reports its pick queue and, optionally, throughput."""

    type: Literal["load_update"] = "load_update"
    node: str
    queue_orders: float = Field(ge=0.0)
    throughput_per_hour: float | None = Field(default=None, gt=0.0)


class CongestionUpdate(_Event):
    """Transit on matching lanes takes ``factor`` times longer (None matches all)."""

    type: Literal["congestion_update"] = "congestion_update"
    carrier: str | None = None
    service: str | None = None
    node: str | None = None
    factor: float = Field(ge=1.0, le=10.0)


class NodeStatus(_Event):
    type: Literal["node_status"] = "node_status"
    node: str
    closed: bool
    reason: str = ""


class WeatherUpdate(_Event):
    type: Literal["weather_update"] = "weather_update"
    region: str
    severity: float = Field(ge=0.0, le=5.0)


UnitPriceUsd = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class StockPrices(_Event):
    """Shadow prices of stock: ``prices[node][sku]`` is what one unit there is worth (USD).

    The opportunity cost of shipping the unit now instead of keeping it for the
    demand still expected (Acimovic & Graves 2015). Prices are >= 0 and finite: a
    negative price would reward using stock and break the split-size lower bounds,
    which assume every non-cost term is >= 0. With ``replace`` (the default) the
    event is the whole price list and every cell it does not name becomes 0; with
    ``replace=False`` only the named cells change.
    """

    type: Literal["stock_prices"] = "stock_prices"
    prices: dict[str, dict[str, UnitPriceUsd]]
    replace: bool = True


Event = Annotated[
    StockSet | StockAdjust | Shipped | LoadUpdate | CongestionUpdate | NodeStatus | WeatherUpdate | StockPrices,
    Field(discriminator="type"),
]
_EVENT_ADAPTER: TypeAdapter = TypeAdapter(Event)


def parse_event(data: object) -> Event:
    """Validate a mapping from outside as one of the event types; errors name the field.

    Strict about types, as orders are: ``"qty": "2"``, ``2.0`` or ``true`` for a count
    and ``"closed": "no"`` are refused, not coerced (an int is a valid float). Events
    built in Python from the classes themselves are not affected.
    """
    try:
        return _EVENT_ADAPTER.validate_python(data, strict=True)
    except ValidationError as exc:
        raise pydantic_field_error(exc, InvalidEventError) from None


def view_hash(
    avail: np.ndarray,
    queue_orders: np.ndarray,
    throughput_per_hour: np.ndarray,
    closed: np.ndarray,
    closed_reason: tuple[str, ...],
    congestion: np.ndarray,
    lane_left: np.ndarray,
    weather_node: np.ndarray,
    stock_price: np.ndarray | None = None,
    shipped_today: np.ndarray | None = None,
    closure_ahead_h: np.ndarray | None = None,
    late_risk_usd: float | None = None,
) -> str:
    """blake2b (128 bit) of every number and reason a decision reads.

    ``stock_price`` (the order's SKUs' shadow prices) is hashed only when some price
    is set, so an unpriced view hashes exactly as it did before prices existed.

    Why the view and not the whole state: the whole state (every SKU at every
    node) changes with every reservation, so hashing it cost ~30 us per decision,
    and it named data the decision never looked at. The view's hash is
    recomputable from the record alone (``StateView.from_json(...).recompute_hash()``),
    so a replay can check that its inputs are the ones the decision read.
    """
    h = hashlib.blake2b(digest_size=16)
    for arr, dtype in (
        (avail, np.int64),
        (queue_orders, np.float64),
        (throughput_per_hour, np.float64),
        (closed, np.bool_),
        (congestion, np.float64),
        (lane_left, np.float64),
        (weather_node, np.float64),
    ):
        a = np.ascontiguousarray(arr, dtype=dtype)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    h.update("\x1f".join(closed_reason).encode())
    # Fields added later are hashed only when present, so older records' views hash as they did.
    late = None if late_risk_usd is None else np.array([late_risk_usd], dtype=np.float64)
    for name, extra in (
        ("stock_price", stock_price),
        ("shipped_today", shipped_today),
        ("closure_ahead_h", closure_ahead_h),
        ("late_risk_usd", late),
    ):
        if extra is not None:
            a = np.ascontiguousarray(extra, dtype=np.float64)
            h.update(name.encode() + str(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()


#: How a fresh view is stored and hashed (``StateView.encoding``). 1: every node x option
#: grid as a dense list, the hash a blake2b of the dense arrays (records before 2026-12-02).
#: 2: a grid is stored as its cells that differ from the field's default (congestion 1.0,
#: lane capacity left unlimited) when they are fewer than half, and the hash covers
#: exactly what is stored. On a network of hundreds of stores a dense view was ~10,000
#: numbers per decision, and writing and hashing them was the largest cost that grew
#: with the node count; most of those cells are the default.
VIEW_ENCODING = 2

_INF_AS = -1.0  # JSON has no infinity: -1 stands for "unlimited" / "none scheduled"


def _compact_grid(arr: np.ndarray, default: float) -> tuple[np.ndarray | None, np.ndarray]:
    """(flat indices, values) of the cells unlike ``default``; indices None: dense (values are every cell).

    Empty values with indices: every cell is the default. The choice depends only on the
    array, so a view read back from its record compacts to the same arrays (and hash).
    """
    flat = np.ascontiguousarray(arr, dtype=np.float64).ravel()
    idx = np.flatnonzero(flat != default)
    if 2 * len(idx) >= len(flat) and len(flat):
        return None, flat
    return idx.astype(np.int64), flat[idx]


def view_hash_v2(view: StateView, congestion: tuple, lane_left: tuple) -> str:
    """sha256 (first 128 bits) of what an encoding-2 view stores: the per-node arrays and the compact grids.

    sha256 rather than blake2b: with the CPU's SHA instructions it hashes about twice
    as fast here, and the version of the encoding says which digest a record carries.
    """
    h = hashlib.sha256(b"view/2")
    for arr, dtype in (
        (view.avail, np.int64),
        (view.queue_orders, np.float64),
        (view.throughput_per_hour, np.float64),
        (view.closed, np.bool_),
        (view.weather_node, np.float64),
    ):
        a = np.ascontiguousarray(arr, dtype=dtype)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    h.update(str(view.congestion.shape).encode())
    for name, (idx, val) in (("congestion", congestion), ("lane_left", lane_left)):
        h.update(name.encode() + (b"dense" if idx is None else idx.tobytes() + b"|"))
        h.update(val.tobytes())
    h.update("\x1f".join(view.closed_reason).encode())
    late = None if view.late_risk_usd is None else np.array([view.late_risk_usd], dtype=np.float64)
    for name, extra in (
        ("stock_price", view.stock_price),
        ("shipped_today", view.shipped_today),
        ("closure_ahead_h", view.closure_ahead_h),
        ("late_risk_usd", late),
    ):
        if extra is not None:
            a = np.ascontiguousarray(extra, dtype=np.float64)
            h.update(name.encode() + str(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()[:32]


@dataclass(frozen=True, eq=False)
class StateView:
    """The slice of live state one routing decision reads (stored for replay).

    Arrays over all nodes ``N`` and options ``O``; stock only for the order's SKUs.
    """

    avail: np.ndarray  # int[N, K] on-hand minus reserved, for the order's SKUs
    queue_orders: np.ndarray  # float[N]
    throughput_per_hour: np.ndarray  # float[N]
    closed: np.ndarray  # bool[N]
    closed_reason: tuple[str, ...]  # per node, "" when open
    congestion: np.ndarray  # float[N, O] transit multiplier (base x live x scheduled)
    lane_left: np.ndarray  # float[N, O] shipments left today (inf = unlimited)
    weather_node: np.ndarray  # float[N] severity at the node's region
    version: int
    # float[N, K] USD per unit of the order's SKUs (see StockPrices); None when no
    # price is set anywhere, which scores exactly like all zeros
    stock_price: np.ndarray | None = None
    # float[O] shipments routed today per carrier option, summed over nodes (the
    # carriers' volume so far today, a delay-risk feature); None in older records
    shipped_today: np.ndarray | None = None
    # float[N] hours from the decision to the start of the node's next scheduled
    # closure (0: closed now, inf: none scheduled); None in older records
    closure_ahead_h: np.ndarray | None = None
    # USD for a certain miss of this order's promise, set by the service-level
    # controller for the order's target segment (router.targets); None: the strategy's
    # fixed late_risk_usd x the tier multiplier (no target, or an older record)
    late_risk_usd: float | None = None
    # The hash a stored record carried (from_json); None for a fresh view, whose
    # hash is computed on first use (see state_hash).
    stored_hash: str | None = None
    # How this view is stored and hashed (VIEW_ENCODING; 1 for records written before it)
    encoding: int = VIEW_ENCODING

    @cached_property
    def state_hash(self) -> str:
        """:func:`view_hash` of the fields above (or the stored record's hash).

        Computed on first use, not when the view is taken: a decision without a
        full record (``route(explain=False)``, the simulator's path) never reads
        it, and hashing costs about 15 us of a 0.3 ms decision. A view is a
        private copy, so hashing later gives the same digest.
        """
        if self.stored_hash is not None:
            return self.stored_hash
        return view_hash_v2(self, *self._grids) if self.encoding >= 2 else self.recompute_hash()

    def recompute_hash(self) -> str:
        """The hash of this view's contents (equals ``state_hash`` unless they were altered).

        :func:`view_hash_v2` for an encoding-2 view, :func:`view_hash` for one read from an
        older record.
        """
        if self.encoding >= 2:
            return view_hash_v2(self, *self._compact_grids())
        return view_hash(
            self.avail,
            self.queue_orders,
            self.throughput_per_hour,
            self.closed,
            self.closed_reason,
            self.congestion,
            self.lane_left,
            self.weather_node,
            self.stock_price,
            self.shipped_today,
            self.closure_ahead_h,
            self.late_risk_usd,
        )

    def _compact_grids(self) -> tuple[tuple, tuple]:
        return _compact_grid(self.congestion, 1.0), _compact_grid(self.lane_left, np.inf)

    @cached_property
    def _grids(self) -> tuple[tuple, tuple]:
        # computed once per fresh view, shared by its hash and its JSON
        return self._compact_grids()

    def to_json(self) -> dict:
        # Node x SKU and node x option grids are stored as flat lists, row-major (the
        # reader reshapes them by the node count): a list of floats is one object for the
        # garbage collector, where a nested list is one per node, and on a network of
        # hundreds of stores those lists made the collector stall decisions for 0.2 s.
        out = {
            "avail": self.avail.ravel().tolist(),
            "n_options": int(self.congestion.shape[1]),
            "queue_orders": self.queue_orders.tolist(),
            "throughput_per_hour": self.throughput_per_hour.tolist(),
            "closed": self.closed.tolist(),
            "closed_reason": list(self.closed_reason),
            # The common cases are stored as null: no congestion anywhere (all 1.0), no
            # daily lane limit anywhere (all infinite); this halves a calm record's inputs.
            "congestion": None,
            "lane_left": None,
            "weather_node": self.weather_node.tolist(),
            "version": self.version,
            "state_hash": self.state_hash,
        }
        if self.encoding >= 2:
            congestion, lane_left = self._grids
            out["encoding"] = self.encoding
            out["congestion"] = _grid_json(*congestion, infinite=False)
            out["lane_left"] = _grid_json(*lane_left, infinite=True)
        else:  # a view read from an older record writes back as it was read
            out["congestion"] = None if bool((self.congestion == 1.0).all()) else self.congestion.ravel().tolist()
            out["lane_left"] = (
                None
                if bool(np.isinf(self.lane_left).all())
                else np.where(np.isinf(self.lane_left), _INF_AS, self.lane_left).ravel().tolist()
            )
        if self.stock_price is not None:  # absent when unpriced: older records read the same
            out["stock_price"] = self.stock_price.ravel().tolist()
        if self.shipped_today is not None:
            out["shipped_today"] = self.shipped_today.tolist()
        if self.closure_ahead_h is not None:
            # JSON has no infinity: -1 stands for "no closure scheduled"
            out["closure_ahead_h"] = np.where(np.isinf(self.closure_ahead_h), -1.0, self.closure_ahead_h).tolist()
        if self.late_risk_usd is not None:
            out["late_risk_usd"] = self.late_risk_usd
        return out

    @classmethod
    def from_json(cls, data: dict) -> StateView:
        return cls(
            avail=np.asarray(data["avail"], dtype=np.int64).reshape(len(data["queue_orders"]), -1),
            queue_orders=np.asarray(data["queue_orders"], dtype=float),
            throughput_per_hour=np.asarray(data["throughput_per_hour"], dtype=float),
            closed=np.asarray(data["closed"], dtype=bool),
            closed_reason=tuple(data["closed_reason"]),
            congestion=_grid(data["congestion"], len(data["queue_orders"]), data, 1.0),
            lane_left=_grid(data["lane_left"], len(data["queue_orders"]), data, np.inf, negative_is_inf=True),
            weather_node=np.asarray(data["weather_node"], dtype=float),
            version=int(data["version"]),
            stored_hash=str(data["state_hash"]),
            encoding=int(data.get("encoding", 1)),
            stock_price=None
            if data.get("stock_price") is None
            else np.asarray(data["stock_price"], dtype=float).reshape(len(data["queue_orders"]), -1),
            shipped_today=None if data.get("shipped_today") is None else np.asarray(data["shipped_today"], dtype=float),
            closure_ahead_h=None
            if data.get("closure_ahead_h") is None
            else np.where(
                np.asarray(data["closure_ahead_h"], dtype=float) < 0, np.inf, np.asarray(data["closure_ahead_h"], dtype=float)
            ),
            late_risk_usd=None if data.get("late_risk_usd") is None else float(data["late_risk_usd"]),
        )


def _grid_json(idx: np.ndarray | None, val: np.ndarray, *, infinite: bool) -> list | dict | None:
    """The JSON form of a compact grid: null (all default), ``{"idx", "val"}`` or a dense flat list."""
    if idx is None:
        return (np.where(np.isinf(val), _INF_AS, val) if infinite else val).tolist()
    if len(idx) == 0:
        return None
    # the cells unlike the default; a lane's capacity left is finite there (the default is unlimited)
    return {"idx": idx.tolist(), "val": val.tolist()}


def _grid(value, n_nodes: int, data: dict, fill: float, *, negative_is_inf: bool = False) -> np.ndarray:
    """A node x option array from its JSON form; null: 'fill everywhere'.

    Forms: a flat list (row-major), a nested list (older records), or ``{"idx", "val"}``:
    the cells unlike ``fill`` by flat index (encoding 2).
    """
    if value is None:
        return np.full((n_nodes, int(data.get("n_options", 0)) or 1), fill, dtype=float)
    if isinstance(value, dict):
        out = np.full(n_nodes * (int(data.get("n_options", 0)) or 1), fill, dtype=float)
        out[np.asarray(value["idx"], dtype=np.int64)] = np.asarray(value["val"], dtype=float)
        return out.reshape(n_nodes, -1)
    arr = np.asarray(value, dtype=float).reshape(n_nodes, -1)
    return np.where(arr < 0, np.inf, arr) if negative_is_inf else arr


class LiveState:
    """Mutable live state behind one lock; everything else reads copies (views)."""

    def __init__(self, network: Network, scenario: Scenario | None = None) -> None:
        self.network = network
        self.scenario = scenario
        n, o, k = network.n_nodes, network.n_options, len(network.sku_ids)
        r = len(network.region_ids)
        self._node_index = {nid: i for i, nid in enumerate(network.node_ids)}
        self._sku_index = {sid: i for i, sid in enumerate(network.sku_ids)}
        self._region_index = {rid: i for i, rid in enumerate(network.region_ids)}
        self.on_hand = np.zeros((n, k), dtype=np.int64)
        self.reserved = np.zeros((n, k), dtype=np.int64)
        # Where stock truly lives when this state is a cache of a shared store (the
        # ledger's stock table): ``stock_sink(node, sku, change)`` applies a stock
        # change there first and returns the cell's (on_hand, reserved) after it, or
        # raises and nothing changes here. None: this state is the truth.
        self.stock_sink: Callable[[int, int, dict], tuple[int, int]] | None = None
        # Shadow price of a unit per node x SKU (USD); _priced is False while all are 0,
        # so views, hashes and records of an unpriced state stay exactly as before.
        self.stock_price_usd = np.zeros((n, k))
        self._priced = False
        self.queue_orders = np.zeros(n)
        self.throughput_per_hour = network.pick_capacity_per_hour.astype(float).copy()
        self.closed_manual = np.zeros(n, dtype=bool)
        self.closed_reason_manual = [""] * n
        self.congestion_live = np.ones((n, o))
        self.lane_used = np.zeros((n, o))
        self.weather_manual = np.zeros(r)
        # Scheduled disruptions (from the scenario's time windows), recomputed by set_clock_hours.
        self.closed_sched = np.zeros(n, dtype=bool)
        self.closed_reason_sched = [""] * n
        self.slow_sched = np.ones((n, o))
        self.weather_sched = np.zeros(r)
        self.clock_hours = 0.0
        # scheduled closures per node, sorted (for closure_ahead)
        windows: dict[int, list[tuple[float, float]]] = {}
        for d in scenario.disruptions if scenario is not None else ():
            if isinstance(d, NodeClosure):
                windows.setdefault(self._node_index[d.node], []).append((float(d.start_hour), float(d.end_hour)))
        self._closure_windows = [(i, sorted(w)) for i, w in sorted(windows.items())]
        self._no_closures = np.full(n, np.inf)
        # Lateness prices per target segment (USD for a certain miss), published by the
        # service-level controller (router.targets) after each decision; a segment not
        # listed routes on the strategy's fixed late_risk_usd.
        self.late_price_usd: dict[str, float] = {}
        self.version = 0
        self._open_reasons = ("",) * n  # the closed_reason of a view when no node is closed
        self._hash: str | None = None
        self._hash_version = -1
        self.lock = threading.RLock()
        if scenario is not None:
            for node_id, row in scenario.spec.stock.items():
                i = self._node_index[node_id]
                for sku, qty in row.items():
                    self.on_hand[i, self._sku_index[sku]] = qty
            self.queue_orders[:] = [nd.initial_queue_orders for nd in scenario.nodes]
            self.set_clock_hours(0.0)

    def detached_copy(self) -> LiveState:
        """A copy that owns its arrays, with its own lock and no stock sink: the truth of nothing.

        Batch re-routing plans on such a copy (the backlog's reservations given back in
        it) while this state keeps serving route(); the copy pickles, so partitions can
        plan on it in other processes.
        """
        with self.lock:
            out = copy.copy(self)
            for name, value in vars(self).items():
                if isinstance(value, np.ndarray):
                    setattr(out, name, value.copy())
                elif isinstance(value, (list, dict)):
                    setattr(out, name, copy.copy(value))
        out.stock_sink = None
        out.lock = threading.RLock()
        return out

    def __getstate__(self) -> dict:
        data = dict(vars(self))
        data.pop("lock", None)
        data["stock_sink"] = None
        return data

    def __setstate__(self, data: dict) -> None:
        vars(self).update(data)
        self.lock = threading.RLock()

    # ----------------------------------------------------------------- lookups
    def node_idx(self, node_id: str, field: str = "node") -> int:
        try:
            return self._node_index[node_id]
        except KeyError:
            raise InvalidEventError(field, f"unknown node {node_id!r}") from None

    def sku_idx(self, sku: str, field: str = "sku") -> int:
        try:
            return self._sku_index[sku]
        except KeyError:
            raise InvalidEventError(field, f"unknown sku {sku!r}") from None

    def available(self) -> np.ndarray:
        return self.on_hand - self.reserved

    # ------------------------------------------------------------------ hashing
    def content_hash(self) -> str:
        """blake2b of every array; cached until the next change."""
        with self.lock:
            if self._hash_version != self.version:
                h = hashlib.blake2b(digest_size=16)
                for arr in (
                    self.on_hand,
                    self.reserved,
                    self.queue_orders,
                    self.throughput_per_hour,
                    self.closed_manual,
                    self.closed_sched,
                    self.congestion_live,
                    self.slow_sched,
                    self.lane_used,
                    self.weather_manual,
                    self.weather_sched,
                ):
                    h.update(np.ascontiguousarray(arr).tobytes())
                if self._priced:
                    h.update(np.ascontiguousarray(self.stock_price_usd).tobytes())
                for key in sorted(self.late_price_usd):
                    h.update(f"{key}={self.late_price_usd[key]!r};".encode())
                self._hash = h.hexdigest()
                self._hash_version = self.version
            return self._hash  # type: ignore[return-value]

    def _touch(self) -> None:
        self.version += 1

    # ------------------------------------------------------------------- views
    def view(self, sku_idx: np.ndarray, at_hours: float | None = None, price_segment: str | None = None) -> StateView:
        """Copy the slice a decision needs: all nodes and lanes, the order's SKUs only.

        ``at_hours`` (hours since the scenario start: the decision time) fills
        ``closure_ahead_h`` from the scenario's scheduled closures; without it the
        view leaves that field out. ``price_segment`` (the order's target segment)
        fills ``late_risk_usd`` with that segment's lateness price when one is set.
        ``state_hash`` is :func:`view_hash` of the copied slice.
        """
        net = self.network
        with self.lock:
            closed = self.closed_manual | self.closed_sched
            if closed.any():
                reasons = tuple(
                    (self.closed_reason_manual[i] or self.closed_reason_sched[i] or "closed") if c else ""
                    for i, c in enumerate(closed.tolist())
                )
            else:
                reasons = self._open_reasons
            weather = self.weather_manual + self.weather_sched
            wn = np.where(net.node_region >= 0, weather[net.node_region] if len(weather) else 0.0, 0.0)
            avail = self.on_hand[:, sku_idx] - self.reserved[:, sku_idx]
            queue = self.queue_orders.copy()
            throughput = self.throughput_per_hour.copy()
            congestion = net.lane_base_congestion * self.congestion_live * self.slow_sched
            lane_left = np.maximum(net.lane_daily_capacity - self.lane_used, 0.0)
            weather_node = np.asarray(wn, dtype=float)
            price = self.stock_price_usd[:, sku_idx] if self._priced else None
            version = self.version
            shipped_today = self.lane_used.sum(axis=0)
            late = None if price_segment is None else self.late_price_usd.get(price_segment)
        return StateView(
            avail=avail,
            queue_orders=queue,
            throughput_per_hour=throughput,
            closed=closed,
            closed_reason=reasons,
            congestion=congestion,
            lane_left=lane_left,
            weather_node=weather_node,
            version=version,
            stock_price=price,
            shipped_today=shipped_today,
            closure_ahead_h=None if at_hours is None else self.closure_ahead(at_hours),
            late_risk_usd=late,
        )

    def closure_ahead(self, at_hours: float) -> np.ndarray:
        """float[N]: hours from ``at_hours`` to the start of each node's next scheduled closure.

        0 while a scheduled closure is on, inf when none is scheduled later. Closure
        windows are in the scenario, known in advance, so this is point-in-time.
        """
        out = self._no_closures.copy()
        for n, windows in self._closure_windows:
            for start, end in windows:
                if end > at_hours:
                    out[n] = max(0.0, start - at_hours)
                    break
        return out

    def weather_at_region(self, region: int) -> float:
        if region < 0:
            return 0.0
        return float(self.weather_manual[region] + self.weather_sched[region])

    # ------------------------------------------------------------ reservations
    def try_reserve(self, node_idx: Sequence[int] | np.ndarray, sku_idx: Sequence[int] | np.ndarray,
                    qty: Sequence[int] | np.ndarray, lanes: Sequence[tuple[int, int]] = ()) -> bool:
        """Check-and-reserve as one step under the lock: all allocations or none.

        ``lanes`` is a sequence of (node index, option index) used by the plan; each
        counts one shipment against the lane's daily capacity and one order in the
        node's pick queue.
        """
        # Aggregate first: two allocations of one (node, sku) must fit together. A plan
        # touches a handful of cells, so a dict beats a full N x K scratch array (the
        # rest of the array is untouched, and reserved <= on_hand holds there already).
        need: dict[tuple[int, int], int] = {}
        def as_list(x):
            return x if isinstance(x, list) else np.asarray(x).tolist()

        for n, k, q in zip(as_list(node_idx), as_list(sku_idx), as_list(qty)):
            need[(n, k)] = need.get((n, k), 0) + q
        with self.lock:
            on_hand, reserved = self.on_hand, self.reserved
            for (n, k), q in need.items():
                if on_hand[n, k] - reserved[n, k] - q < 0:
                    return False
            for n, o in lanes:
                if self.lane_used[n, o] + 1 > self.network.lane_daily_capacity[n, o]:
                    return False
            for (n, k), q in need.items():
                reserved[n, k] += q
            for n, o in lanes:
                self.lane_used[n, o] += 1
            for n in {n for n, _ in lanes}:
                self.queue_orders[n] += 1.0
            self._touch()
            return True

    def release(self, node_idx: Sequence[int] | np.ndarray, sku_idx: Sequence[int] | np.ndarray,
                qty: Sequence[int] | np.ndarray, lanes: Sequence[tuple[int, int]] = ()) -> None:
        """Undo a reservation (an override moved it, or the ledger write failed)."""
        # as int arrays: an empty plan's [] would otherwise be a float index
        node_idx, sku_idx = np.asarray(node_idx, dtype=np.int64), np.asarray(sku_idx, dtype=np.int64)
        qty = np.asarray(qty, dtype=np.int64)
        with self.lock:
            np.subtract.at(self.reserved, (node_idx, sku_idx), qty)
            if np.any(self.reserved < 0):
                np.add.at(self.reserved, (node_idx, sku_idx), qty)
                raise InvalidEventError("qty", "release exceeds what is reserved")
            for n, o in lanes:
                self.lane_used[n, o] = max(0.0, self.lane_used[n, o] - 1)
            for n in {n for n, _ in lanes}:
                self.queue_orders[n] = max(0.0, self.queue_orders[n] - 1.0)
            self._touch()

    # ------------------------------------------------------------------ prices
    def set_late_price(self, segment: str, price_usd: float) -> int:
        """Publish the lateness price of a target segment (USD for a certain miss); returns the new version.

        The service-level controller's output (:class:`router.targets.LatePriceController`):
        the next decision of that segment reads it in its view, so the record holds it
        and a replay prices lateness exactly as the decision did.
        """
        price = float(price_usd)
        if not (np.isfinite(price) and price >= 0.0):
            raise InvalidEventError("late_price_usd", f"must be a finite number >= 0, got {price_usd!r}")
        with self.lock:
            self.late_price_usd[segment] = price
            self._touch()
            return self.version

    def set_stock_prices(self, prices_usd: np.ndarray) -> int:
        """Replace every shadow price at once (float[N, K], USD per unit); returns the new version.

        The bulk form of :class:`StockPrices` for a pricing job that re-solves its LP
        over the whole network. Prices must be finite and >= 0 (see
        :class:`StockPrices` for why); a bad array raises
        :class:`~router.errors.InvalidEventError` and changes nothing.
        """
        arr = np.array(prices_usd, dtype=float)  # a private copy
        want = self.stock_price_usd.shape
        if arr.shape != want:
            raise InvalidEventError("prices", f"shape {arr.shape} is not nodes x skus {want}")
        bad = ~np.isfinite(arr) | (arr < 0.0)
        if bad.any():
            n, k = (int(i) for i in np.argwhere(bad)[0])
            raise InvalidEventError(
                f"prices.{self.network.node_ids[n]}.{self.network.sku_ids[k]}",
                f"{arr[n, k]!r} is not a finite price >= 0 USD per unit",
            )
        with self.lock:
            self.stock_price_usd = arr
            self._priced = bool(arr.any())
            self._touch()
            return self.version

    # ------------------------------------------------------------------ events
    def _ship(self, n: int, k: int, qty: int) -> None:
        if qty > self.reserved[n, k]:
            raise InvalidEventError("qty", f"ships {qty} but only {self.reserved[n, k]} are reserved")
        if self.stock_sink is not None:
            self._store(n, k, {"ship": qty})
            return
        self.on_hand[n, k] -= qty
        self.reserved[n, k] -= qty

    def _store(self, n: int, k: int, change: dict) -> None:
        """Apply a stock change to the shared store, then take the cell's levels from it."""
        on_hand, reserved = self.stock_sink(n, k, change)  # type: ignore[misc]
        self.on_hand[n, k] = on_hand
        self.reserved[n, k] = reserved

    def ship(self, node: int, sku: int, qty: int) -> int:
        """:class:`Shipped` by node and SKU index: on-hand and reserved both drop by ``qty``.

        The same checks and effect as ``apply(Shipped(...))``, for a caller that already
        holds indices: the simulator's warehouses report three or four shipments per
        order, and building and validating a pydantic event cost more than applying it.
        """
        if not qty > 0:
            raise InvalidEventError("qty", f"{qty!r} is not a positive number of units")
        with self.lock:
            self._ship(node, sku, qty)
            self._touch()
            return self.version

    def apply(self, event: Event | dict) -> int:
        """Apply one validated event; returns the new version. Bad events change nothing."""
        if isinstance(event, dict):
            event = parse_event(event)
        with self.lock:
            if isinstance(event, StockSet):
                n, k = self.node_idx(event.node), self.sku_idx(event.sku)
                if event.on_hand < self.reserved[n, k]:
                    raise InvalidEventError(
                        "on_hand",
                        f"{event.on_hand} is below the {self.reserved[n, k]} units reserved "
                        f"of {event.sku} at {event.node}",
                    )
                if self.stock_sink is not None:
                    self._store(n, k, {"set_on_hand": event.on_hand})
                else:
                    self.on_hand[n, k] = event.on_hand
            elif isinstance(event, StockAdjust):
                n, k = self.node_idx(event.node), self.sku_idx(event.sku)
                new = self.on_hand[n, k] + event.delta
                if new < self.reserved[n, k]:
                    raise InvalidEventError(
                        "delta",
                        f"would leave {new} on hand, below the {self.reserved[n, k]} units reserved "
                        f"of {event.sku} at {event.node}",
                    )
                if self.stock_sink is not None:
                    self._store(n, k, {"delta": event.delta})
                else:
                    self.on_hand[n, k] = new
            elif isinstance(event, Shipped):
                self._ship(self.node_idx(event.node), self.sku_idx(event.sku), event.qty)
            elif isinstance(event, LoadUpdate):
                n = self.node_idx(event.node)
                self.queue_orders[n] = event.queue_orders
                if event.throughput_per_hour is not None:
                    self.throughput_per_hour[n] = event.throughput_per_hour
            elif isinstance(event, CongestionUpdate):
                mask = self._lane_mask(event.node, event.carrier, event.service)
                self.congestion_live[mask] = event.factor
            elif isinstance(event, NodeStatus):
                n = self.node_idx(event.node)
                self.closed_manual[n] = event.closed
                self.closed_reason_manual[n] = event.reason if event.closed else ""
            elif isinstance(event, WeatherUpdate):
                try:
                    r = self._region_index[event.region]
                except KeyError:
                    raise InvalidEventError("region", f"unknown region {event.region!r}") from None
                self.weather_manual[r] = event.severity
            elif isinstance(event, StockPrices):
                # every name is checked before any price changes: a bad event changes nothing
                new = np.zeros_like(self.stock_price_usd) if event.replace else self.stock_price_usd.copy()
                for node, row in event.prices.items():
                    n = self.node_idx(node, field=f"prices.{node}")
                    for sku, price in row.items():
                        new[n, self.sku_idx(sku, field=f"prices.{node}.{sku}")] = price
                self.stock_price_usd = new
                self._priced = bool(new.any())
            else:  # pragma: no cover - the union is closed
                raise InvalidEventError("type", f"unsupported event {type(event).__name__}")
            self._touch()
            return self.version

    def _lane_mask(self, node: str | None, carrier: str | None, service: str | None) -> np.ndarray:
        net = self.network
        rows = np.ones(net.n_nodes, dtype=bool)
        if node is not None:
            rows = np.zeros(net.n_nodes, dtype=bool)
            rows[self.node_idx(node)] = True
        cols = np.ones(net.n_options, dtype=bool)
        if carrier is not None:
            if carrier not in net.option_carrier:
                raise InvalidEventError("carrier", f"unknown carrier {carrier!r}")
            cols &= np.array([c == carrier for c in net.option_carrier])
        if service is not None:
            if service not in net.option_service:
                raise InvalidEventError("service", f"unknown service {service!r}")
            cols &= np.array([s == service for s in net.option_service])
        return rows[:, None] & cols[None, :]

    # ------------------------------------------------------------------- clock
    def set_clock_hours(self, hours: float) -> None:
        """Move the scenario clock: scheduled disruption windows switch on and off."""
        if self.scenario is None:
            self.clock_hours = hours
            return
        net = self.network
        closed = np.zeros(net.n_nodes, dtype=bool)
        reasons = [""] * net.n_nodes
        slow = np.ones((net.n_nodes, net.n_options))
        weather = np.zeros(len(net.region_ids))
        for d in self.scenario.disruptions:
            if not (d.start_hour <= hours < d.end_hour):
                continue
            label = d.name or d.kind
            if isinstance(d, NodeClosure):
                i = self._node_index[d.node]
                closed[i] = True
                reasons[i] = f"closed ({label})"
            elif isinstance(d, LaneSlowdown):
                mask = self._lane_mask(d.node, d.carrier, None)
                slow[mask] = np.maximum(slow[mask], d.factor)
            elif isinstance(d, WeatherEvent):
                weather[self._region_index[d.region]] += d.severity
        with self.lock:
            self.clock_hours = hours
            changed = (
                not np.array_equal(closed, self.closed_sched)
                or not np.array_equal(slow, self.slow_sched)
                or not np.array_equal(weather, self.weather_sched)
            )
            if changed:
                self.closed_sched, self.closed_reason_sched = closed, reasons
                self.slow_sched, self.weather_sched = slow, weather
                self._touch()

    def drain(self, hours: float) -> None:
        """Let ``hours`` of picking happen: queues shrink by throughput x hours."""
        if hours <= 0:
            return
        with self.lock:
            self.queue_orders = np.maximum(self.queue_orders - self.throughput_per_hour * hours, 0.0)
            self._touch()

    def new_day(self) -> None:
        """Reset lane usage counters (daily capacities)."""
        with self.lock:
            self.lane_used[:] = 0.0
            self._touch()
