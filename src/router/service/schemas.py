"""Request and response bodies of the HTTP API, apart from the domain models.

The domain's :class:`~router.domain.Order` is what the engine routes; :class:`OrderIn` is
what a caller may send: the same fields plus an optional ``contact`` block of personal
data, which never reaches the engine and is masked or dropped before anything is
stored (``ROUTER_PII_POLICY``). Every example here is a valid request against the
default scenario (``scenarios/national.yaml``); the tests post them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BatchIn",
    "BatchOut",
    "Contact",
    "DecisionList",
    "ErrorOut",
    "EventsIn",
    "EventsOut",
    "OrderIn",
    "OutcomeIn",
    "OutcomesIn",
    "OutcomesOut",
    "OverrideIn",
    "ReleaseIn",
    "ReplayIn",
    "ReplayOut",
    "RerouteFilter",
    "RerouteIn",
    "RerouteOut",
    "RouteOut",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Contact(_In):
    """Personal data some callers attach to an order. Never routed on; masked or dropped before storage."""

    name: str | None = Field(default=None, max_length=200)
    street: str | None = Field(default=None, max_length=400)
    phone: str | None = Field(default=None, max_length=50)
    email: str | None = Field(default=None, max_length=320)


class CustomerIn(_In):
    customer_id: str = Field(min_length=1, max_length=200)
    tier: str = Field(default="standard", min_length=1, max_length=50)


class DestinationIn(_In):
    lat: float | None = Field(default=None, ge=-90.0, le=90.0)
    lon: float | None = Field(default=None, ge=-180.0, le=180.0)
    region: str | None = Field(default=None, min_length=1, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)


class LineIn(_In):
    sku: str = Field(min_length=1, max_length=100)
    qty: int = Field(gt=0, le=1_000_000, strict=True)


ORDER_EXAMPLE: dict[str, Any] = {
    "order_id": "ORD-1001",
    "customer": {"customer_id": "C-77", "tier": "vip"},
    "destination": {"region": "new-york-ny"},
    "lines": [{"sku": "SKU-001", "qty": 1}, {"sku": "SKU-002", "qty": 2}],
    "value_usd": 42.5,
    "contact": {"name": "Ada Lovelace", "email": "ada@example.com"},
}


class OrderIn(_In):
    """An order to route. ``created_at`` is when it was placed (ISO 8601; the promise counts from it),
    absent: when the service received it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ORDER_EXAMPLE]})

    order_id: str = Field(min_length=1, max_length=200)
    customer: CustomerIn
    destination: DestinationIn
    lines: list[LineIn] = Field(min_length=1, max_length=200)
    value_usd: float = Field(default=0.0, ge=0.0)
    created_at: str | None = Field(
        default=None, min_length=1, max_length=40, description="ISO 8601, e.g. 2026-11-02T09:00:00Z; default: now"
    )
    promised_by: str | None = Field(default=None, max_length=40)
    service_level: str | None = Field(default=None, max_length=50)
    contact: Contact | None = None

    def order_dict(self, received_at: str) -> dict:
        """The domain order's fields (the contact block left out; ``created_at`` defaults to ``received_at``)."""
        out = self.model_dump(exclude={"contact"}, exclude_none=False)
        if out["created_at"] is None:
            out["created_at"] = received_at
        return out


class BatchIn(_In):
    """Orders routed one after another (each sees the reservations of those before) and recorded together."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"orders": [ORDER_EXAMPLE]}]})

    orders: list[OrderIn] = Field(min_length=1)


class LegOut(BaseModel):
    node_id: str
    carrier_id: str
    service: str
    lines: list[dict[str, Any]]
    distance_miles: float
    shipping_cost_usd: float
    handling_cost_usd: float
    eta_hours: float
    late_risk: float


class PlanOut(BaseModel):
    legs: list[LegOut]
    cost_usd: float
    eta_hours: float
    promise_hours: float
    late_risk: float
    score: float
    kind: Literal["single", "split"]


class RouteOut(BaseModel):
    """A routing decision: the id to quote, the plan (null when nothing can serve the order), why."""

    decision_id: str
    order_id: str
    status: Literal["routed", "unfulfillable"]
    strategy: str
    plan: PlanOut | None
    sentence: str
    state_version: int | None = Field(description="the live-state version the decision read")
    events_seq: int = Field(description="the last live-state event this worker had applied")
    reserve_retries: int = Field(description="times the decision was taken again after another writer took the stock")
    latency_ms: float


class BatchOut(BaseModel):
    decisions: list[RouteOut]


class DecisionList(BaseModel):
    """One page of decision records, oldest first; ``next_cursor`` fetches the next page (null: no more)."""

    items: list[dict[str, Any]]
    next_cursor: int | None


class OverrideIn(_In):
    """Replace a decision's plan: a rank among its scored candidates (1 = runner-up), or explicit legs."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"candidate_rank": 1, "actor": "ops@example.com", "reason": "WH-EWR short of pickers"}]},
    )

    actor: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)
    candidate_rank: int | None = Field(default=None, ge=0, le=1000)
    plan: dict[str, Any] | None = Field(
        default=None, description="{legs: [{node_id, carrier_id, service, lines: [{sku, qty}]}]}"
    )


class ReplayIn(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"strategy": "nearest"}]})

    strategy: str | None = Field(default=None, max_length=50, description="another strategy: a counterfactual")


class ReleaseIn(_In):
    """Where an order stands now: picking started (``released``) or ``shipped``; re-routing no longer moves it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"state": "released"}]})

    state: Literal["released", "shipped"] = "released"


class RerouteFilter(_In):
    """Select among the open orders: a leg at one of ``nodes``, a destination in ``regions``, a customer tier in ``tiers``."""

    nodes: list[str] | None = Field(default=None, min_length=1, max_length=1000)
    regions: list[str] | None = Field(default=None, min_length=1, max_length=1000)
    tiers: list[str] | None = Field(default=None, min_length=1, max_length=100)


class RerouteIn(_In):
    """Re-optimise open orders (routed, not released) jointly: all of them, the ones named, or a filter's."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"apply": False, "time_limit_s": 5}]},
    )

    order_ids: list[str] | None = Field(
        default=None, min_length=1, max_length=100_000,
        description="re-route these orders only (unknown, released and shipped ones are skipped, with the reason)",
    )
    filter: RerouteFilter | None = None
    apply: bool = Field(default=False, description="false (default): a dry run that changes nothing")
    time_limit_s: float = Field(default=10.0, gt=0, le=600, description="the solver's limit, seconds")
    move_cost_usd: float | None = Field(default=None, ge=0, le=10_000, description="what one move costs (default 0.50)")


class RerouteOut(BaseModel):
    job_id: str
    created_at: str
    strategy: str
    applied: bool
    orders: int
    moved: int
    unplaced: int
    skipped: int
    objective: float
    bound: float
    gap: float | None
    kpis_before: dict[str, Any]
    kpis_after: dict[str, Any]
    solver: dict[str, Any]
    timings: dict[str, Any]
    moves: list[dict[str, Any]]
    unplaced_orders: list[dict[str, Any]]
    skipped_orders: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]


class ReplayOut(BaseModel):
    decision_id: str
    strategy: str
    matches: bool
    original_plan: str | None
    replayed_plan: str | None
    original_score: float | None
    replayed_score: float | None
    differences: list[str]


class EventsIn(_In):
    """Live-state events, applied in order, all or none: stock counts and receipts, shipments, node
    load, lane congestion, closures, weather, stock prices (see docs/http-api.md)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {"type": "load_update", "node": "WH-EWR", "queue_orders": 400},
                        {"type": "weather_update", "region": "new-york-ny", "severity": 0.6},
                        {"type": "stock_adjust", "node": "WH-EWR", "sku": "SKU-001", "delta": 25},
                    ]
                }
            ]
        },
    )

    events: list[dict[str, Any]] = Field(min_length=1)


class EventsOut(BaseModel):
    applied: int
    events_seq: int = Field(description="the sequence number of the last event: every worker applies up to it")
    state_version: int


class OutcomeIn(_In):
    decision_id: str = Field(min_length=1, max_length=200)
    delivered_at: str = Field(min_length=1, max_length=40, description="ISO 8601")
    leg: int | None = Field(default=None, ge=0, le=100, description="the plan's leg (all legs when absent)")


class OutcomesIn(_In):
    model_config = ConfigDict(extra="forbid")

    outcomes: list[OutcomeIn] = Field(min_length=1)


class OutcomesOut(BaseModel):
    recorded: list[dict[str, Any]]


class ErrorOut(BaseModel):
    """Every error: what kind, the field at fault (when a field is), and the reason in one sentence."""

    error: dict[str, Any] = Field(
        json_schema_extra={"example": {"type": "invalid_order", "field": "lines[0].sku", "reason": "unknown sku 'X'"}}
    )
