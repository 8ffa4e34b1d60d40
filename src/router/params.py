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
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.errors import ScenarioError, pydantic_field_error

__all__ = ["BoundaryParams", "RouterOptions", "ScoreWeights", "StrategyParams"]


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


class StrategyParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_splits: int = Field(default=3, ge=1, le=6, description="most legs (nodes) one order may ship from")
    max_candidate_nodes: int = Field(
        default=12, ge=1, le=500, description="nodes considered per order, nearest first"
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

    def score_weights(self, tier_multiplier: float = 1.0) -> ScoreWeights:
        """The score weights for a customer whose tier multiplies lateness by ``tier_multiplier``."""
        return ScoreWeights(
            self.cost_weight,
            self.eta_hour_usd,
            self.late_hour_usd * tier_multiplier,
            self.late_risk_usd * tier_multiplier,
            self.load_usd,
            self.split_penalty_usd,
        )

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
