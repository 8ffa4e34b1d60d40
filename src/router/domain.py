"""Boundary data of the router: frozen pydantic models, validated once.

Everything a caller hands to the router (an :class:`Order`) and everything the
router hands back (a :class:`Plan` with its :class:`Leg` s) is defined here.
Models are immutable (``frozen=True``) and strict about unknown fields
(``extra="forbid"``) so that a typo in a request is an error, not a silently
ignored key. Units are part of every field name: miles, lb, cubic feet (cuft),
USD, hours.

The models of an incoming order (:class:`Order`, :class:`OrderLine`,
:class:`Destination`) are also strict about types: a number
must be a number (``"qty": "2"``, ``2.0`` and ``true`` are refused; an int is a
valid float) and a time must be an ISO 8601 string or a datetime (an epoch number
is refused: seconds or milliseconds cannot be told apart). Strictness is per
field rather than ``strict=True`` on the whole model because JSON has no datetime
type: ``"created_at": "2026-11-02T12:00:00Z"`` must still parse. Scenario models
stay lax: YAML is typed already and written by the people who run the router.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from router.errors import InvalidOrderError
from router.params import BoundaryParams

__all__ = [
    "Carrier",
    "CostModel",
    "Customer",
    "Destination",
    "Lane",
    "Node",
    "ServiceLevel",
    "Sku",
    "Tier",
    "TransitModel",
    "Leg",
    "LegLine",
    "Location",
    "Order",
    "OrderLine",
    "Plan",
    "check_created_at",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Location(_Frozen):
    """A point on Earth in decimal degrees (WGS84)."""

    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)


class Sku(_Frozen):
    """A stock-keeping unit with the physical facts carriers bill by."""

    id: str = Field(min_length=1)
    unit_weight_lb: float = Field(default=1.0, ge=0.0)
    unit_volume_cuft: float = Field(default=0.1, ge=0.0)
    value_usd: float = Field(default=20.0, ge=0.0)


class Node(_Frozen):
    """A fulfilment node: warehouse, store or distribution centre.

    Handling cost = per shipment + per unit + per carton, where cartons are
    ``shipped volume / carton_volume_cuft`` (fractional, as the parcel literature bills it).
    Orders picked before ``cutoff_hour_utc`` leave the same day; later ones the next day.
    """

    id: str = Field(min_length=1)
    kind: Literal["warehouse", "store", "dc"] = "warehouse"
    name: str = ""
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    region: str | None = None
    handling_per_shipment_usd: float = Field(default=0.0, ge=0.0)
    handling_per_unit_usd: float = Field(default=0.0, ge=0.0)
    handling_per_carton_usd: float = Field(default=0.0, ge=0.0)
    carton_volume_cuft: float = Field(default=1.0, gt=0.0)
    pick_capacity_per_hour: float = Field(default=100.0, gt=0.0)
    cutoff_hour_utc: float = Field(default=20.0, ge=0.0, lt=24.0)
    initial_queue_orders: float = Field(default=0.0, ge=0.0)


class CostModel(_Frozen):
    """What one shipment costs with one carrier service.

    shipping_usd = fixed_usd + units x (per_unit_usd + per_unit_mile_usd x miles)
                   + per_lb_usd x billable_lb + tier_rate(billable_lb)
    where billable_lb = max(actual lb, dim factor x cuft) and tier_rate is the
    flat rate of the first tier whose bound is >= billable_lb (the last rate above
    the last bound; nothing when no tiers are given).
    """

    fixed_usd: float = Field(default=0.0, ge=0.0)
    per_unit_usd: float = Field(default=0.0, ge=0.0)
    per_unit_mile_usd: float = Field(default=0.0, ge=0.0)
    per_lb_usd: float = Field(default=0.0, ge=0.0)
    weight_tiers_lb: tuple[float, ...] = ()
    weight_rates_usd: tuple[float, ...] = ()

    @model_validator(mode="after")
    def _tiers(self) -> CostModel:
        if len(self.weight_tiers_lb) != len(self.weight_rates_usd):
            raise ValueError(
                f"weight_tiers_lb has {len(self.weight_tiers_lb)} bounds but weight_rates_usd "
                f"has {len(self.weight_rates_usd)} rates: they must pair up"
            )
        if any(b <= a for a, b in zip(self.weight_tiers_lb, self.weight_tiers_lb[1:])):
            raise ValueError("weight_tiers_lb must be strictly increasing")
        if any(r < 0 for r in self.weight_rates_usd):
            raise ValueError("weight_rates_usd must be >= 0")
        return self


class TransitModel(_Frozen):
    """Door-to-door transit time of a service, from the moment the parcel leaves the node.

    mean transit_hours = 24 x max(min_days, base_days + miles / miles_per_day);
    the spread is a normal with sd = sigma_frac x mean (truncated at min_days).
    """

    base_days: float = Field(default=1.0, ge=0.0)
    miles_per_day: float = Field(default=500.0, gt=0.0)
    min_days: float = Field(default=0.5, ge=0.0)
    sigma_frac: float = Field(default=0.15, ge=0.0, le=2.0)


class ServiceLevel(_Frozen):
    """A carrier's product, e.g. ground, 2day, overnight."""

    name: str = Field(min_length=1)
    cost: CostModel = CostModel()
    transit: TransitModel = TransitModel()


class Carrier(_Frozen):
    id: str = Field(min_length=1)
    name: str = ""
    dim_weight_factor_lb_per_cuft: float = Field(
        default=0.0, ge=0.0, description="billable weight = max(actual, factor x volume); 0 = actual"
    )
    services: tuple[ServiceLevel, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_services(self) -> Carrier:
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise ValueError(f"carrier {self.id} lists a service twice: {names}")
        return self


class Lane(_Frozen):
    """Limits of one node x carrier (x service) pairing; absent lanes exist with no limits.

    ``service=None`` applies to every service of the carrier. ``enabled=False``
    removes the pairing (the carrier does not pick up at that node).
    """

    node: str
    carrier: str
    service: str | None = None
    enabled: bool = True
    daily_capacity_shipments: int | None = Field(default=None, ge=0)
    max_shipment_volume_cuft: float | None = Field(default=None, ge=0.0)
    congestion: float = Field(default=1.0, ge=1.0, le=10.0, description="transit multiplier")


class Tier(_Frozen):
    """A customer tier: its default promise and how much a miss weighs."""

    name: str = Field(min_length=1)
    promise_hours: float = Field(default=120.0, gt=0.0)
    lateness_multiplier: float = Field(default=1.0, ge=0.0)
    node_priority: tuple[str, ...] = Field(
        default=(), description="tier_rules strategy: preferred nodes, best first"
    )


class Destination(_Frozen):
    """Where an order goes: coordinates, or a region the scenario knows.

    At least one is required; with only a region the region's centroid is used.
    Coordinates far from every region are refused by the router (the scenario's
    ``boundary.max_region_distance_miles``).
    """

    lat: float | None = Field(default=None, ge=-90.0, le=90.0, strict=True)
    lon: float | None = Field(default=None, ge=-180.0, le=180.0, strict=True)
    region: str | None = Field(default=None, min_length=1)
    postal_code: str | None = None

    @model_validator(mode="after")
    def _coordinates_or_region(self) -> Destination:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("destination needs both lat and lon, or neither (then a region)")
        if self.lat is None and self.region is None:
            raise ValueError("destination has no coordinates: give lat and lon, or a known region")
        return self


class Customer(_Frozen):
    """The buyer. ``tier`` must be one of the scenario's tiers (e.g. standard/plus/vip)."""

    customer_id: str = Field(min_length=1)
    tier: str = Field(default="standard", min_length=1)


class OrderLine(_Frozen):
    """One SKU and how many units of it were ordered."""

    sku: str = Field(min_length=1)
    qty: int = Field(gt=0, le=1_000_000, strict=True)


class Order(_Frozen):
    """An order as an upstream service sends it.

    ``promised_by`` is the delivery promise; when absent the customer's tier
    promise from the scenario applies (e.g. vip: 48 hours after ``created_at``).
    ``service_level``, when given, restricts the carrier services considered.
    The router refuses an order whose ``created_at`` lies in the future of its
    clock or too far in its past (the scenario's ``boundary`` limits): the promise
    counts from ``created_at``, so a stale one would be routed as hours late.
    """

    order_id: str = Field(min_length=1, max_length=200)
    customer: Customer
    destination: Destination
    lines: tuple[OrderLine, ...] = Field(min_length=1, max_length=200)
    value_usd: float = Field(default=0.0, ge=0.0, strict=True)
    created_at: datetime
    promised_by: datetime | None = None
    service_level: str | None = None

    @field_validator("created_at", "promised_by", mode="before")
    @classmethod
    def _no_epoch_numbers(cls, value: object) -> object:
        # pydantic would read a number as Unix time, guessing seconds or milliseconds
        # from its size: a wrong guess is off by decades, so ask for ISO 8601.
        if isinstance(value, (int, float)):
            raise ValueError(f"give an ISO 8601 time such as 2026-11-02T12:00:00Z, not the number {value!r}")
        return value

    @field_validator("created_at", "promised_by")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        # Naive datetimes are ambiguous across services; UTC is the only sane default.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Order:
        skus = [line.sku for line in self.lines]
        if len(set(skus)) != len(skus):
            dup = sorted({s for s in skus if skus.count(s) > 1})
            raise ValueError(f"lines repeat sku {dup}: merge them into one line per sku")
        if self.promised_by is not None and self.promised_by <= self.created_at:
            raise ValueError("promised_by must be after created_at")
        return self


def _duration(hours: float) -> str:
    return f"{hours * 60:.0f} min" if hours < 1.0 else f"{hours:,.1f} h"


def check_created_at(order: Order, now: datetime, limits: BoundaryParams) -> None:
    """Hard: ``created_at`` lies between ``max_order_age_hours`` before ``now`` and
    ``max_clock_skew_minutes`` after it; otherwise :class:`InvalidOrderError` on ``created_at``.

    ``now`` is the router's clock (the wall clock, or the time a simulation or replay
    injects). The promise counts from ``created_at`` while the decision is taken at
    ``now``: an order stamped weeks ago would be routed as hundreds of hours late, one
    stamped in the future with more time than it has.
    """
    ahead_hours = (order.created_at - now).total_seconds() / 3600.0
    if ahead_hours * 60.0 > limits.max_clock_skew_minutes:
        raise InvalidOrderError(
            "created_at",
            f"{order.created_at.isoformat()} is {_duration(ahead_hours)} ahead of the router's clock "
            f"({now.isoformat()}); at most {limits.max_clock_skew_minutes:g} min of clock skew is accepted "
            "(boundary.max_clock_skew_minutes)",
        )
    if -ahead_hours > limits.max_order_age_hours:
        raise InvalidOrderError(
            "created_at",
            f"{order.created_at.isoformat()} is {_duration(-ahead_hours)} before the router's clock "
            f"({now.isoformat()}), over the {limits.max_order_age_hours:g} h limit (boundary.max_order_age_hours): "
            "the promise counts from created_at, so the order would be routed as already late; route orders "
            "when they are placed, or give the router their time with Router(clock=...)",
        )


class LegLine(_Frozen):
    """Units of one SKU carried by a leg."""

    sku: str
    qty: int = Field(gt=0)


class Leg(_Frozen):
    """One shipment: a node ships some lines with one carrier service."""

    node_id: str
    carrier_id: str
    service: str
    lines: tuple[LegLine, ...]
    distance_miles: float
    shipping_cost_usd: float
    handling_cost_usd: float
    eta_hours: float
    late_risk: float

    @property
    def cost_usd(self) -> float:
        return self.shipping_cost_usd + self.handling_cost_usd


class Plan(_Frozen):
    """How an order is fulfilled: one or more legs that together cover every line."""

    legs: tuple[Leg, ...]
    cost_usd: float
    eta_hours: float
    promise_hours: float
    late_risk: float
    score: float
    kind: Literal["single", "split"] = "single"

    @property
    def shipments(self) -> int:
        return len(self.legs)

    def units_by_sku(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for leg in self.legs:
            for line in leg.lines:
                out[line.sku] = out.get(line.sku, 0) + line.qty
        return out
