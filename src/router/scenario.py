"""Scenario files: load, validate, and cross-check a YAML world description.

A scenario is the network (nodes, regions, carriers, lanes), the catalogue
(SKUs) and its initial stock, the customer tiers with their promises, the demand
process, disruptions in time windows, and default strategy params. The format is
documented field by field in docs/scenarios.md. Every error names the field by
its path in the file, e.g. ``lanes[3].node: unknown node 'WH-Z'``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from router.domain import Carrier, Lane, Node, Sku, Tier
from router.errors import ScenarioError, pydantic_field_error
from router.params import BoundaryParams, ServiceTargets, StrategyParams

__all__ = [
    "DemandSpec",
    "Disruption",
    "LaneSlowdown",
    "NodeClosure",
    "Peak",
    "Region",
    "Replenishment",
    "Scenario",
    "WeatherEvent",
    "WorldSpec",
    "CarrierWorld",
    "load_scenario",
    "parse_scenario",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Region(_Frozen):
    """A demand region (a city or metro area) with its centroid and share of demand."""

    id: str = Field(min_length=1)
    name: str = ""
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    demand_weight: float = Field(default=1.0, ge=0.0)


class Peak(_Frozen):
    """Demand multiplied by ``multiplier`` between two hours since the scenario start."""

    start_hour: float = Field(ge=0.0)
    end_hour: float = Field(gt=0.0)
    multiplier: float = Field(gt=0.0)


class DemandSpec(_Frozen):
    """The order arrival process (used by the demo and the simulator)."""

    orders_per_day: float = Field(default=5000.0, gt=0.0)
    hourly_profile: tuple[float, ...] = Field(default=(1.0,) * 24)
    peaks: tuple[Peak, ...] = ()
    tier_mix: dict[str, float] = Field(default_factory=lambda: {"standard": 1.0})
    lines_per_order_min: int = Field(default=1, ge=1)
    lines_per_order_max: int = Field(default=3, ge=1)
    units_per_line_min: int = Field(default=1, ge=1)
    units_per_line_max: int = Field(default=2, ge=1)
    sku_zipf_exponent: float = Field(default=0.0, ge=0.0, description="0 = uniform popularity")

    @field_validator("hourly_profile")
    @classmethod
    def _profile(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) != 24 or any(x < 0 for x in v) or sum(v) <= 0:
            raise ValueError("hourly_profile needs 24 non-negative weights with a positive sum")
        return v

    @model_validator(mode="after")
    def _ranges(self) -> DemandSpec:
        if self.lines_per_order_max < self.lines_per_order_min:
            raise ValueError("lines_per_order_max must be >= lines_per_order_min")
        if self.units_per_line_max < self.units_per_line_min:
            raise ValueError("units_per_line_max must be >= units_per_line_min")
        if not self.tier_mix or any(p < 0 for p in self.tier_mix.values()) or sum(self.tier_mix.values()) <= 0:
            raise ValueError("tier_mix needs non-negative shares with a positive sum")
        return self


class _Window(_Frozen):
    start_hour: float = Field(ge=0.0, description="hours since the scenario start")
    end_hour: float = Field(gt=0.0)
    name: str = ""

    @model_validator(mode="after")
    def _window(self):  # type: ignore[no-untyped-def]
        if self.end_hour <= self.start_hour:
            raise ValueError("end_hour must be after start_hour")
        return self


class NodeClosure(_Window):
    kind: Literal["node_closure"] = "node_closure"
    node: str


class LaneSlowdown(_Window):
    """Transit on matching lanes is multiplied by ``factor`` (None matches all)."""

    kind: Literal["lane_slowdown"] = "lane_slowdown"
    carrier: str | None = None
    node: str | None = None
    factor: float = Field(ge=1.0, le=10.0)


class WeatherEvent(_Window):
    """Regional weather: transit to, and from nodes in, the region take (1 + severity) longer."""

    kind: Literal["weather"] = "weather"
    region: str
    severity: float = Field(gt=0.0, le=5.0)


Disruption = Annotated[NodeClosure | LaneSlowdown | WeatherEvent, Field(discriminator="kind")]


class Replenishment(_Frozen):
    """Periodic restocking, as the simulator applies it (the router only sees the receipts).

    Every ``every_hours`` (a review), each node x SKU is ordered back up to its
    ``target`` level: its initial on-hand from ``stock``. The order quantity is the
    target minus the inventory position (on hand + already on order), so a lead
    time longer than the period does not order twice. The units arrive
    ``lead_time_hours`` after the review; 0 restores the stock at the review.
    """

    every_hours: float = Field(default=24.0, gt=0.0, description="hours between reviews, from the start")
    target: Literal["initial"] = Field(default="initial", description="order-up-to level: the initial on-hand")
    lead_time_hours: float = Field(default=0.0, ge=0.0, description="hours from a review to the receipt")


class CarrierWorld(_Frozen):
    """One carrier's hidden behaviour in the simulated world (see :class:`WorldSpec`)."""

    exception_probability: float | None = Field(
        default=None, ge=0.0, le=1.0, description="share of parcels hit by an exception; None: the world's default"
    )
    daily_capacity_shipments: float = Field(
        default=float("inf"), gt=0.0, description="parcels a day the carrier's network takes before transit stretches"
    )


class WorldSpec(_Frozen):
    """What the simulated world does that the router's estimate does not know (the simulator only).

    ``lane_bias_sd``: each (carrier service, origin node, destination region)
    lane has a fixed transit factor, log-normal with mean 1 and this standard
    deviation, drawn from ``seed`` (the scenario's ``seed`` when absent), never
    from a simulation's seed: a lane's bias persists across runs and days.
    ``exception_probability``: per parcel, the chance of an exception (a
    mis-sort, a missed scan) that adds a delay drawn uniformly from
    ``exception_delay_hours``; a carrier may override it in ``carriers``.
    ``carriers.<id>.daily_capacity_shipments``: a carrier's transit on a UTC day
    is multiplied by ``1 + max(0, shipped that day / capacity - 1)``.
    """

    seed: int | None = Field(default=None, description="seed of the lane biases; default: the scenario's seed")
    lane_bias_sd: float = Field(default=0.15, ge=0.0, le=2.0)
    exception_probability: float = Field(default=0.02, ge=0.0, le=1.0)
    exception_delay_hours: tuple[float, float] = (24.0, 72.0)
    carriers: dict[str, CarrierWorld] = Field(default_factory=dict)

    @field_validator("exception_delay_hours")
    @classmethod
    def _delay_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not (0.0 <= lo <= hi):
            raise ValueError(f"exception_delay_hours must be [low, high] with 0 <= low <= high, got {list(v)}")
        return v


class ScenarioFile(_Frozen):
    """The YAML document, as written. :func:`parse_scenario` cross-checks references."""

    name: str = Field(min_length=1)
    description: str = ""
    source: str = ""
    seed: int = 0
    start: datetime = datetime(2026, 11, 2, tzinfo=timezone.utc)
    horizon_days: float = Field(default=1.0, gt=0.0)
    regions: tuple[Region, ...] = ()
    nodes: tuple[Node, ...] = Field(min_length=1)
    carriers: tuple[Carrier, ...] = Field(min_length=1)
    lanes: tuple[Lane, ...] = ()
    skus: tuple[Sku, ...] = Field(min_length=1)
    stock: dict[str, dict[str, int]] = Field(default_factory=dict)
    tiers: tuple[Tier, ...] = (Tier(name="standard"),)
    demand: DemandSpec = DemandSpec()
    disruptions: tuple[Disruption, ...] = ()
    replenishment: Replenishment | None = None
    world: WorldSpec = WorldSpec()
    params: StrategyParams = StrategyParams()
    boundary: BoundaryParams = BoundaryParams()

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)


class Scenario:
    """A validated scenario with index maps; immutable by convention (no setters)."""

    def __init__(self, spec: ScenarioFile, path: Path | None = None) -> None:
        self.spec = spec
        self.path = path
        self.name = spec.name
        self.seed = spec.seed
        self.start = spec.start
        self.nodes = spec.nodes
        self.regions = spec.regions
        self.carriers = spec.carriers
        self.skus = spec.skus
        self.tiers = {t.name: t for t in spec.tiers}
        self.demand = spec.demand
        self.disruptions = spec.disruptions
        self.params = spec.params
        self.boundary = spec.boundary
        self.world = spec.world
        self.world_seed = spec.seed if spec.world.seed is None else spec.world.seed
        self.node_index = {n.id: i for i, n in enumerate(spec.nodes)}
        self.sku_index = {s.id: i for i, s in enumerate(spec.skus)}
        self.region_index = {r.id: i for i, r in enumerate(spec.regions)}
        self.carrier_index = {c.id: i for i, c in enumerate(spec.carriers)}
        # (carrier, service) options flattened; lanes are node x option.
        self.options: list[tuple[str, str]] = [(c.id, s.name) for c in spec.carriers for s in c.services]

    def __repr__(self) -> str:
        return (
            f"Scenario({self.name!r}, nodes={len(self.nodes)}, regions={len(self.regions)}, "
            f"skus={len(self.skus)}, options={len(self.options)})"
        )


def _check_references(spec: ScenarioFile) -> None:
    def dup(kind: str, ids: list[str]) -> None:
        seen: set[str] = set()
        for i, x in enumerate(ids):
            if x in seen:
                raise ScenarioError(f"{kind}[{i}].id", f"duplicate id {x!r}")
            seen.add(x)

    dup("nodes", [n.id for n in spec.nodes])
    dup("regions", [r.id for r in spec.regions])
    dup("carriers", [c.id for c in spec.carriers])
    dup("skus", [s.id for s in spec.skus])
    dup("tiers", [t.name for t in spec.tiers])
    nodes = {n.id for n in spec.nodes}
    regions = {r.id for r in spec.regions}
    skus = {s.id for s in spec.skus}
    services = {c.id: {s.name for s in c.services} for c in spec.carriers}
    tiers = {t.name for t in spec.tiers}

    for i, n in enumerate(spec.nodes):
        if n.region is not None and regions and n.region not in regions:
            raise ScenarioError(f"nodes[{i}].region", f"unknown region {n.region!r}")
    for i, lane in enumerate(spec.lanes):
        if lane.node not in nodes:
            raise ScenarioError(f"lanes[{i}].node", f"unknown node {lane.node!r}")
        if lane.carrier not in services:
            raise ScenarioError(f"lanes[{i}].carrier", f"unknown carrier {lane.carrier!r}")
        if lane.service is not None and lane.service not in services[lane.carrier]:
            raise ScenarioError(
                f"lanes[{i}].service", f"carrier {lane.carrier!r} has no service {lane.service!r}"
            )
    for node_id, row in spec.stock.items():
        if node_id not in nodes:
            raise ScenarioError(f"stock.{node_id}", f"unknown node {node_id!r}")
        for sku, qty in row.items():
            if sku not in skus:
                raise ScenarioError(f"stock.{node_id}.{sku}", f"unknown sku {sku!r}")
            if qty < 0:
                raise ScenarioError(f"stock.{node_id}.{sku}", f"on-hand units must be >= 0, got {qty}")
    for i, t in enumerate(spec.tiers):
        for node_id in t.node_priority:
            if node_id not in nodes:
                raise ScenarioError(f"tiers[{i}].node_priority", f"unknown node {node_id!r}")
    for tier in spec.demand.tier_mix:
        if tier not in tiers:
            raise ScenarioError(f"demand.tier_mix.{tier}", f"unknown tier {tier!r} (tiers: {sorted(tiers)})")
    for i, d in enumerate(spec.disruptions):
        if isinstance(d, NodeClosure) and d.node not in nodes:
            raise ScenarioError(f"disruptions[{i}].node", f"unknown node {d.node!r}")
        if isinstance(d, LaneSlowdown):
            if d.node is not None and d.node not in nodes:
                raise ScenarioError(f"disruptions[{i}].node", f"unknown node {d.node!r}")
            if d.carrier is not None and d.carrier not in services:
                raise ScenarioError(f"disruptions[{i}].carrier", f"unknown carrier {d.carrier!r}")
        if isinstance(d, WeatherEvent) and d.region not in regions:
            raise ScenarioError(f"disruptions[{i}].region", f"unknown region {d.region!r}")
    for carrier in spec.world.carriers:
        if carrier not in services:
            raise ScenarioError(f"world.carriers.{carrier}", f"unknown carrier {carrier!r}")
    for i, e in enumerate(spec.params.excluded_nodes):
        if e not in nodes:
            raise ScenarioError(f"params.excluded_nodes[{i}]", f"unknown node {e!r}")
    if spec.params.targets is not None:
        check_targets(spec.params.targets, tiers, regions)


def check_targets(targets: ServiceTargets, tiers: Collection[str], regions: Collection[str]) -> None:
    """Every target names a tier and (if any) a region of the scenario; ScenarioError naming the field."""
    for i, tg in enumerate(targets.targets):
        if tg.tier not in tiers:
            raise ScenarioError(f"params.targets.targets[{i}].tier", f"unknown tier {tg.tier!r} (tiers: {sorted(tiers)})")
        if tg.region is not None and tg.region not in regions:
            raise ScenarioError(f"params.targets.targets[{i}].region", f"unknown region {tg.region!r}")


def parse_scenario(data: object, *, source: str | None = None) -> Scenario:
    """Validate a scenario given as a mapping (the parsed YAML)."""
    if not isinstance(data, dict):
        raise ScenarioError("<root>", "a scenario must be a mapping of fields", source=source)
    try:
        spec = ScenarioFile.model_validate(data)
    except ValidationError as exc:
        raise pydantic_field_error(exc, ScenarioError, source=source) from None
    try:
        _check_references(spec)
    except ScenarioError as exc:
        raise ScenarioError(exc.field, exc.reason, source=source) from None
    return Scenario(spec, Path(source) if source else None)


def _merge(base: dict, override: dict) -> dict:
    """Mappings merge key by key; anything else (lists included) is replaced whole."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> object:
    """Parse one YAML file, resolving ``extends: other.yaml`` (relative to the file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError("<file>", "no such scenario file", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            "<file>", f"cannot read the scenario: not UTF-8 text (byte {exc.start}: {exc.reason})", source=str(path)
        ) from None
    except OSError as exc:
        raise ScenarioError("<file>", f"cannot read the scenario: {exc.strerror or exc}", source=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (binary data)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ScenarioError(
            f"character {exc.position}", f"not valid YAML: {exc.reason} (#x{code:04x})", source=str(path)
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<file>"
        raise ScenarioError(where, f"not valid YAML: {getattr(exc, 'problem', exc)}", source=str(path)) from None
    if isinstance(data, dict) and "extends" in data:
        # A variant names its base and overrides only what differs (e.g. the same
        # network with another demand peak or disruption): no copy to drift apart.
        base_name = data.pop("extends")
        if not isinstance(base_name, str) or not base_name:
            raise ScenarioError("extends", "must name a scenario file, relative to this one", source=str(path))
        base_path = (path.parent / base_name).resolve()
        if base_path in chain or base_path == path.resolve():
            raise ScenarioError("extends", f"{base_name!r} extends itself (a cycle)", source=str(path))
        base = _read_yaml(base_path, chain + (path.resolve(),))
        if not isinstance(base, dict):
            raise ScenarioError("<root>", "a scenario must be a mapping of fields", source=str(base_path))
        data = _merge(base, data)
    return data


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file.

    A file may start from another with ``extends: base.yaml`` and override fields:
    mappings merge key by key, lists and values replace the base's.

    Raises :class:`~router.errors.ScenarioError` naming the file and the field.
    """
    path = Path(path)
    scenario = parse_scenario(_read_yaml(path), source=str(path))
    scenario.path = path
    return scenario
