"""Every knob of a strategy, with safe defaults that validate themselves.

Weights are in USD-equivalents so that every term of a score reads as money:
``late_risk_usd = 18`` means "a 100 % chance of missing the promise is worth
paying $18 to avoid" for a standard customer; the tier multiplies it. 18 was chosen
on seeds 1-3 of the simulator's four bench scenarios (benchmarks/strategies.py): at 12
a carrier meltdown it could not foresee cost it more on-time than nearest lost (plans
with little slack), at 24 and above it paid more per order than nearest. On the
held-out seeds 101-105 the optimizer still beats nearest on both cost and on-time in
all four, every 95 % interval clear of zero (benchmarks/README.md). It is a fixed
price, not a target: on other networks it trades cost for on-time.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from router.errors import ScenarioError, pydantic_field_error

__all__ = ["BoundaryParams", "RouterOptions", "ScoreWeights", "ServiceTarget", "ServiceTargets", "StrategyParams"]


class ScoreWeights(NamedTuple):
    """The six weights of the score terms for one order, in USD per unit of each term's value.

    ``lateness`` and ``late_risk`` already carry the customer tier's multiplier. The
    split search's bounds, its compiled kernel and the score terms read the same
    numbers; a NamedTuple is still a plain tuple for the compiled kernel.
    """

    cost: float
    eta: float
    lateness: float
    late_risk: float
    load: float
    split: float


class ServiceTarget(BaseModel):
    """One on-time target: the share of a tier's orders (optionally in one region) delivered by the promise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tier: str = Field(min_length=1, description="the customer tier the target is for")
    region: str | None = Field(
        default=None, description="only orders to this destination region (default: every region of the tier)"
    )
    on_time: float = Field(gt=0.0, lt=1.0, description="target share of orders delivered by their promise")
    max_late_risk: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="hard floor: never choose a plan whose late risk exceeds this when one at or below it exists",
    )

    @property
    def key(self) -> str:
        """The segment's name in records and reports: ``vip`` or ``vip@new-york-ny``."""
        return self.tier if self.region is None else f"{self.tier}@{self.region}"


class ServiceTargets(BaseModel):
    """On-time targets per tier (and region) and how the controller prices lateness to meet them.

    Each target is a constraint on expected on-time; its lateness price (USD for a
    certain miss, the ``late_risk`` term's weight for that segment) is the
    constraint's multiplier, moved after every decision by a dual step (see
    :mod:`router.targets`). The defaults were chosen on simulation seeds 1-3 of the
    four bench scenarios (benchmarks/frontier.py ``--tune``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: tuple[ServiceTarget, ...] = Field(min_length=1)
    window_hours: float = Field(
        default=24.0, gt=0.0, le=24.0 * 28, description="recent decisions and outcomes the controller averages over"
    )
    # 0.12: the best of 0.02 / 0.05 / 0.12 / 0.25 / 0.5 on seeds 1-3 of the four bench
    # scenarios (benchmarks/frontier.py --tune: the smallest mean distance of each tier's
    # realised on-time to its target)
    gain: float = Field(
        default=0.12,
        gt=0.0,
        le=10.0,
        description="log-price step per hour per point of on-time gap (a 1-point shortfall held for an hour "
        "multiplies the price by exp(gain))",
    )
    min_price_usd: float = Field(default=1.0, gt=0.0, description="the price never falls below this")
    max_price_usd: float = Field(
        default=500.0, gt=0.0, description="the cap: a target the network cannot meet never drives the price past it"
    )
    outcome_prior: float = Field(
        default=200.0,
        ge=0.0,
        description="pseudo-count of the realised-outcome correction: with n outcomes in the window the "
        "correction (realised minus expected on-time) counts n / (n + outcome_prior)",
    )

    @model_validator(mode="after")
    def _check(self) -> ServiceTargets:
        if self.min_price_usd > self.max_price_usd:
            raise ValueError(f"min_price_usd {self.min_price_usd} exceeds max_price_usd {self.max_price_usd}")
        seen: set[str] = set()
        for t in self.targets:
            if t.key in seen:
                raise ValueError(f"two targets for segment {t.key!r}")
            seen.add(t.key)
        return self


class StrategyParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_splits: int = Field(default=3, ge=1, le=6, description="most legs (nodes) one order may ship from")
    max_candidate_nodes: int = Field(
        default=12,
        ge=1,
        le=5000,
        description="size of an order's candidate pool: the nearest nodes holding one of its lines, plus as many "
        "nearest nodes holding all of them, plus nodes to cover a short line (rules.node_exclusions)",
    )
    top_k: int = Field(default=3, ge=1, le=50, description="plans kept in the decision record: the chosen one and its runners-up")
    safety_stock_units: int = Field(default=0, ge=0, description="units per node and SKU never promised")
    excluded_nodes: tuple[str, ...] = Field(default=(), description="nodes never used")

    cost_weight: float = Field(default=1.0, ge=0.0, description="multiplier on shipping + handling USD")
    eta_hour_usd: float = Field(default=0.02, ge=0.0, description="USD per hour of expected delivery time")
    late_hour_usd: float = Field(default=0.5, ge=0.0, description="USD per expected hour past the promise")
    late_risk_usd: float = Field(default=18.0, ge=0.0, description="USD for a certain miss of the promise")
    load_usd: float = Field(default=2.0, ge=0.0, description="USD per unit of squared node load ratio")
    split_penalty_usd: float = Field(default=1.0, ge=0.0, description="USD per shipment beyond the first")
    stock_value_weight: float = Field(
        default=1.0,
        ge=0.0,
        description="multiplier on the shadow price of the stock a plan uses (state's stock prices, USD per unit)",
    )

    targets: ServiceTargets | None = Field(
        default=None,
        description="on-time targets per tier: the late_risk price of a targeted segment is set by the "
        "controller (router.targets) instead of late_risk_usd x the tier multiplier",
    )

    allow_quantity_split: bool = Field(
        default=True, description="let the OR-Tools split solver divide one line's units between nodes"
    )
    solver_time_limit_s: float = Field(default=2.0, gt=0.0, le=600.0)

    @classmethod
    def from_toml(cls, path: str | Path) -> StrategyParams:
        """Read params from a TOML file (its ``[params]`` table, or the whole file).

        Raises :class:`~router.errors.ScenarioError` naming the file and the field.
        """
        try:
            with open(path, "rb") as fh:
                data = tomllib.loads(fh.read().decode("utf-8"))
        except OSError as exc:
            raise ScenarioError("<file>", f"cannot read the params: {exc.strerror or exc}", source=str(path)) from None
        except UnicodeDecodeError as exc:
            raise ScenarioError(
                "<file>", f"cannot read the params: not UTF-8 text (byte {exc.start}: {exc.reason})", source=str(path)
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError("<file>", f"not valid TOML: {exc}", source=str(path)) from None
        try:
            return cls.model_validate(data.get("params", data))
        except ValidationError as exc:
            raise pydantic_field_error(exc, ScenarioError, source=str(path)) from None

    def score_weights(self, tier_multiplier: float = 1.0, late_risk_usd: float | None = None) -> ScoreWeights:
        """The score weights for a customer whose tier multiplies lateness by ``tier_multiplier``.

        ``late_risk_usd`` is the controller's price for the order's segment (the view's
        ``late_risk_usd``); when None the fixed ``late_risk_usd`` x the tier multiplier.
        """
        return ScoreWeights(
            self.cost_weight,
            self.eta_hour_usd,
            self.late_hour_usd * tier_multiplier,
            self.late_risk_weight(tier_multiplier, late_risk_usd),
            self.load_usd,
            self.split_penalty_usd,
        )

    def late_risk_weight(self, tier_multiplier: float, price_usd: float | None = None) -> float:
        """USD for a certain miss: the controller's ``price_usd`` for the order's target segment
        (a view's ``late_risk_usd``) when there is one, else ``late_risk_usd`` x the tier multiplier."""
        return self.late_risk_usd * tier_multiplier if price_usd is None else price_usd

    def params_hash(self) -> str:
        """Short, stable hash of every value: the decision record's ``params_hash``."""
        blob = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(blob).hexdigest()[:16]


class RouterOptions(BaseModel):
    """How a :class:`~router.engine.Router` runs (not what it decides: that is :class:`StrategyParams`).

    Passed to the router explicitly; every field has a safe default.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    compiled_splits: bool = Field(
        default=True,
        description="enumerate split plans with the compiled loop (numba); False runs the numpy reference",
    )
    reserve_retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description="times a decision is taken again when the ledger's stock was taken by another writer",
    )
    dest_cache_size: int = Field(
        default=4096, ge=1, description="destinations whose node distances and lane geometry are kept"
    )
    warm_up: bool = Field(
        default=True,
        description="solve one tiny split MIP when the router is built (once per process), so loading "
        "OR-Tools and HiGHS (about 0.5 s, 25 MB) does not land on the first order that needs the MIP",
    )
    # A wrong plan is a bug in the router, not a cause to fall back, so this mode breaks
    # the "route() never raises on a valid order" promise on purpose: tests, development
    # and canaries. Off, routing never touches the validator.
    check_plans: bool = Field(
        default=False,
        description="debug mode: check every chosen plan with the independent validator before reserving; "
        "InvalidPlanError lists what it breaks",
    )


class BoundaryParams(BaseModel):
    """Limits on what an order from outside may say before the router will route it.

    An order that breaks one gets an :class:`~router.errors.InvalidOrderError` naming
    the field, the value and the limit; nothing is reserved or recorded. These are
    not strategy knobs (they do not change which plan wins, only whether the order
    is routed at all), so they live in the scenario's ``boundary`` section and not
    in the ``params_hash`` of decision records.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_clock_skew_minutes: float = Field(
        default=5.0,
        ge=0.0,
        description="created_at may lie this far in the future of the router's clock (clocks of two services disagree)",
    )
    # A week: longer than the longest tier promise of the shipped scenarios (120 h), so
    # an order still inside its promise (a backlog, a re-route) is never refused; far
    # shorter than what a copied example, a replayed file or a mis-set clock produces
    # (weeks to decades), which would otherwise be routed as hundreds of hours late.
    max_order_age_hours: float = Field(
        default=168.0, gt=0.0, description="created_at may lie this far in the past of the router's clock"
    )
    # 600 mi: the farthest a place of the contiguous US lies from the national scenario's
    # 120 metro centroids is 574 mi (north-east Montana); London is 3,271 mi from the
    # nearest, Honolulu 2,395 mi. A tighter default would refuse real addresses (2.7 % of
    # US towns above 15,000 people are over 150 mi from the nearest metro centroid);
    # a scenario with dense regions can set its own.
    max_region_distance_miles: float = Field(
        default=600.0,
        gt=0.0,
        description="a destination given by coordinates may lie this far from the region it is routed as",
    )
