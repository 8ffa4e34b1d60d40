"""The Router: route one order or a batch, record why, replay and explain.

The path of one :meth:`Router.route` call:

1. validate the order against the scenario (unknown SKU, tier, region...): a
   typed :class:`~router.errors.InvalidOrderError` naming the field, nothing changed;
2. build the :class:`~router.candidates.OrderContext` and copy a
   :class:`~router.state.StateView` (the slice of live state the decision reads);
3. :func:`decide`, a pure function of (network, view, context, strategy, params,
   seed): candidates, scores, ranking along the strategy's fallback chain;
4. check-and-reserve the chosen plan's units atomically; if another thread took
   the stock meanwhile, decide again under the lock;
5. append the decision record (inputs, scores, rationale) and its reservations to
   the ledger in one transaction, still under the lock, so a failed write
   releases the reservation and raises :class:`~router.errors.LedgerError`.

Replay re-runs step 3 on the stored view and context, which is why the view
and context, not the live state, are the decision's inputs.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from pydantic import ValidationError

import router
from router.candidates import CandidateSet, OrderContext, destination_lanes
from router.domain import Leg, LegLine, Order, Plan
from router.errors import InvalidOrderError, LedgerError, RouterError, pydantic_field_error
from router.network import Network, build_network
from router.params import StrategyParams
from router.rationale import build_rationale, factors_at, factors_for, round6, round_np
from router.scenario import Scenario, load_scenario
from router.scoring import Scores
from router.solver.choose import scored_candidates
from router.solver.validate import Violation, check_plan, validate_plan
from router.state import LiveState, StateView
from router.strategies import fallback_chain, get_strategy

__all__ = [
    "DEFAULT_LEDGER_URL",
    "Decision",
    "DecisionInputs",
    "ReplayResult",
    "Router",
    "decide",
    "decision_inputs",
    "open_ledger_url",
    "register_ledger_opener",
]

RECORD_SCHEMA = "decision.v1"
RISK_MODEL_VERSION = "analytic-normal-v1"
DEFAULT_LEDGER_URL = "sqlite:///router-ledger.sqlite"


@dataclass(frozen=True)
class Decision:
    """What route() returns: the id to quote, the plan (None when nothing can serve), the why."""

    decision_id: str
    order_id: str
    status: str  # "routed" | "unfulfillable"
    strategy: str
    rationale: dict
    record: dict = field(repr=False)
    latency_ms: float = 0.0

    @property
    def sentence(self) -> str:
        return self.rationale.get("sentence", "")

    @cached_property
    def plan(self) -> Plan | None:
        """The chosen :class:`~router.domain.Plan`, or None when nothing can serve the order.

        Built on first access from ``record["chosen"]`` (the very dict that is
        recorded), so it always equals the record. Building the nested pydantic
        models costs ~25 us, a tenth of a routing decision, and callers that
        only quote the decision id or forward the record never need it.
        """
        chosen = self.record["chosen"]
        return None if chosen is None else Router._plan_from_dict(chosen)


@dataclass(frozen=True)
class ReplayResult:
    decision_id: str
    strategy: str
    matches: bool
    original_plan: str | None
    replayed_plan: str | None
    original_score: float | None
    replayed_score: float | None
    differences: tuple[str, ...]
    replayed: dict


@dataclass(frozen=True, eq=False)
class Outcome:
    """The pure result of :func:`decide` (no side effects yet)."""

    cs: CandidateSet
    scores: Scores
    ranking: np.ndarray
    strategy: str
    fallback: dict


def decide(
    net: Network,
    view: StateView,
    ctx: OrderContext,
    params: StrategyParams,
    skus: tuple[str, ...],
    strategy: str,
    *,
    seed: int = 0,
    explain: bool = True,
) -> Outcome:
    """Rank the order's candidates with ``strategy``, falling back along its chain on failure.

    A strategy that raises is replaced by the next in its chain and the cause is
    kept in ``fallback``; if every strategy fails, the candidates' index order is
    used (generation order: nearest nodes first) so a valid order still gets a plan.
    ``explain=False`` (no rationale will be written) skips the exclusion reasons only.
    """
    cs, scores = scored_candidates(net, view, ctx, params, skus, seed=seed, explain=explain)
    chain = fallback_chain(strategy)
    causes: list[dict] = []
    if len(cs) == 0:
        return Outcome(cs, scores, np.zeros(0, dtype=np.int64), strategy, {"requested": strategy, "used": strategy, "causes": []})
    for name in chain:
        try:
            ranking = np.asarray(get_strategy(name).rank(cs, scores, ctx), dtype=np.int64)
            if ranking.shape != (len(cs),) or not np.isfinite(scores.total[ranking[0]]):
                raise RouterError(f"strategy {name} returned an invalid ranking")
            return Outcome(cs, scores, ranking, name, {"requested": strategy, "used": name, "causes": causes})
        except Exception as exc:  # noqa: BLE001 - any strategy failure must fall back, and is recorded
            causes.append({"strategy": name, "error": f"{type(exc).__name__}: {exc}"})
    ranking = np.arange(len(cs), dtype=np.int64)
    return Outcome(cs, scores, ranking, "index_order", {"requested": strategy, "used": "index_order", "causes": causes})


def _ctx_to_json(ctx: OrderContext) -> dict:
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
    }


def _ctx_from_json(d: dict) -> OrderContext:
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
    )


@dataclass(frozen=True, eq=False)
class DecisionInputs:
    """What a recorded decision read, rebuilt from its record: enough to replay or check it."""

    view: StateView
    context: OrderContext
    params: StrategyParams
    seed: int


def decision_inputs(record: dict) -> DecisionInputs:
    """The stored view, order context, params and seed of a full decision record.

    Raises
    ------
    RouterError
        The record has no stored inputs (a lean record of ``route(explain=False)``).
    """
    if "inputs" not in record:
        raise RouterError(f"decision {record.get('decision_id')!r} stores no inputs (schema {record.get('schema')!r})")
    return DecisionInputs(
        view=StateView.from_json(record["inputs"]["view"]),
        context=_ctx_from_json(record["inputs"]["context"]),
        params=StrategyParams.model_validate(record["strategy"]["params"]),
        seed=int(record["seed"]),
    )


_LEDGER_OPENERS: list[Callable[[str], object]] = []


def register_ledger_opener(opener: Callable[[str], object]) -> None:
    """Let a ledger package (which sits above the engine) open ledgers from URLs.

    router.ledger registers itself when the package is imported, which any
    ``import router...`` does first; the engine depends only on the protocol.
    """
    if opener not in _LEDGER_OPENERS:
        _LEDGER_OPENERS.append(opener)


def open_ledger_url(url: str) -> object:
    if not _LEDGER_OPENERS:
        raise LedgerError("no ledger backend is registered: import router.ledger")
    return _LEDGER_OPENERS[-1](url)


class Router:
    """Routes orders on one scenario's network against live state, recording every decision.

    Parameters
    ----------
    scenario : Scenario
        The validated network, catalogue, tiers and initial stock.
    ledger : DecisionLedger or str or None
        Where decisions go: a ledger object, a database URL (``sqlite:///file`` or
        ``postgresql+psycopg://...``), or None to keep no record (benchmarks).
    params : StrategyParams, optional
        Defaults to the scenario's ``params``.
    strategy : str
        Default strategy name (``optimizer``).
    seed : int
        Seed of every solver call; recorded in each decision.
    clock : callable returning an aware datetime, optional
        Injected for tests, replays and simulations; defaults to ``datetime.now(UTC)``.
    check_plans : bool
        Debug mode: check every chosen plan with the independent validator
        (:mod:`router.solver.validate`) before anything is reserved, and raise
        :class:`~router.errors.InvalidPlanError` listing what it breaks. A wrong plan is
        a bug in the router, not a cause to fall back, so this mode breaks the
        "route() never raises on a valid order" promise on purpose; it is for tests,
        development and canaries. Off (the default), routing does not touch the validator.
    """

    DEST_CACHE_SIZE = 4096  # destinations whose node distances are kept

    def __init__(
        self,
        scenario: Scenario,
        *,
        ledger: object | str | None = None,
        params: StrategyParams | None = None,
        strategy: str = "optimizer",
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        check_plans: bool = False,
    ) -> None:
        get_strategy(strategy)
        self.scenario = scenario
        self.network = build_network(scenario)
        self.state = LiveState(self.network, scenario)
        self.params = params or scenario.params
        self.strategy = strategy
        self.seed = seed
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.check_plans = check_plans
        self._skus = self.network.sku_ids
        self._tier_rank = {}
        for name, tier in scenario.tiers.items():
            rank = np.full(self.network.n_nodes, len(tier.node_priority), dtype=np.int64)
            for pos, nid in enumerate(tier.node_priority):
                rank[scenario.node_index[nid]] = pos
            self._tier_rank[name] = rank
        self._all_options = np.ones(self.network.n_options, dtype=bool)
        self._service_masks = {
            s: np.array([x == s for x in self.network.option_service]) for s in set(self.network.option_service)
        }
        if isinstance(ledger, str):
            ledger = open_ledger_url(ledger)
        self.ledger = ledger
        self.recorded = 0
        self.failed_writes = 0
        self._params_meta_for: StrategyParams | None = None
        self._params_meta: tuple[str, dict] = ("", {})
        # (lat, lon, region given) -> (miles to every node, region index, destination_lanes).
        # Orders to one destination repeat (a simulation draws region centroids), and the
        # haversine of every node plus the lane geometry cost about 15 us per order; the
        # cache is bounded and cleared when full, so arbitrary live coordinates cannot
        # grow it without limit.
        self._dest_cache: dict[tuple[float, float, str | None], tuple[np.ndarray, int, tuple]] = {}

    @classmethod
    def from_scenario(
        cls,
        path: str | Path,
        *,
        ledger: object | str | None = DEFAULT_LEDGER_URL,
        params: StrategyParams | None = None,
        strategy: str = "optimizer",
        seed: int | None = None,
        clock: Callable[[], datetime] | None = None,
        check_plans: bool = False,
    ) -> Router:
        """Load a scenario file; by default decisions go to ``router-ledger.sqlite`` here."""
        scenario = load_scenario(path)
        return cls(
            scenario,
            ledger=ledger,
            params=params,
            strategy=strategy,
            seed=scenario.seed if seed is None else seed,
            clock=clock,
            check_plans=check_plans,
        )

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()

    # ------------------------------------------------------------ validation
    def _validate(self, order: Order | dict) -> Order:
        if not isinstance(order, Order):
            try:
                order = Order.model_validate(order)
            except ValidationError as exc:
                raise pydantic_field_error(exc, InvalidOrderError) from None
        idx = self.scenario.sku_index
        for i, line in enumerate(order.lines):
            if line.sku not in idx:
                raise InvalidOrderError(f"lines[{i}].sku", f"unknown sku {line.sku!r}")
        if order.customer.tier not in self.scenario.tiers:
            raise InvalidOrderError(
                "customer.tier",
                f"unknown tier {order.customer.tier!r}; known: {', '.join(sorted(self.scenario.tiers))}",
            )
        if order.service_level is not None and order.service_level not in self._service_masks:
            raise InvalidOrderError(
                "service_level",
                f"unknown service level {order.service_level!r}; known: {', '.join(sorted(self._service_masks))}",
            )
        dest = order.destination
        if dest.region is not None and dest.region not in self.scenario.region_index:
            raise InvalidOrderError("destination.region", f"unknown region {dest.region!r}")
        return order

    def _destination_point(self, dest) -> tuple[float, float]:
        """(lat, lon) of a destination (an order's, or its JSON): its coordinates, else its region's centroid."""
        if isinstance(dest, dict):
            lat, lon, region = dest.get("lat"), dest.get("lon"), dest.get("region")
        else:
            lat, lon, region = dest.lat, dest.lon, dest.region
        if lat is not None and lon is not None:
            return float(lat), float(lon)
        r = self.scenario.region_index[region]
        return float(self.network.region_lat[r]), float(self.network.region_lon[r])

    def _context(self, order: Order, now: datetime) -> OrderContext:
        net = self.network
        sku_idx = np.fromiter((self.scenario.sku_index[ln.sku] for ln in order.lines), dtype=np.int64)
        qty = np.fromiter((ln.qty for ln in order.lines), dtype=np.int64)
        dest = order.destination
        key = (dest.lat, dest.lon, dest.region)
        hit = self._dest_cache.get(key)
        if hit is None:
            if dest.lat is not None:
                lat, lon = dest.lat, dest.lon
                region = self.scenario.region_index[dest.region] if dest.region else net.nearest_region(lat, lon)
            else:
                region = self.scenario.region_index[dest.region]  # type: ignore[index]
                lat, lon = float(net.region_lat[region]), float(net.region_lon[region])
            miles = net.distances_miles(lat, lon)
            miles.setflags(write=False)  # shared by every order to this point
            if len(self._dest_cache) >= self.DEST_CACHE_SIZE:
                self._dest_cache.clear()
            lanes = destination_lanes(net, miles)
            for arr in lanes:
                arr.setflags(write=False)
            hit = self._dest_cache[key] = (miles, int(region), lanes)
        miles, region, lanes = hit
        tier = self.scenario.tiers[order.customer.tier]
        promised = order.promised_by or (order.created_at + timedelta(hours=tier.promise_hours))
        hour = now.astimezone(timezone.utc)
        return OrderContext(
            sku_idx=sku_idx,
            qty=qty,
            weight_lb=net.sku_weight_lb[sku_idx],
            volume_cuft=net.sku_volume_cuft[sku_idx],
            dist_miles=miles,
            dest_region=region,
            dest_weather=self.state.weather_at_region(region),
            promise_hours=(promised - now).total_seconds() / 3600.0,
            now_hour_utc=hour.hour + hour.minute / 60.0 + hour.second / 3600.0,
            tier=tier.name,
            tier_multiplier=tier.lateness_multiplier,
            tier_node_rank=self._tier_rank[tier.name],
            option_allowed=self._service_masks[order.service_level] if order.service_level else self._all_options,
            dest_lanes=lanes,
        )

    # --------------------------------------------------------------- routing
    def route(self, order: Order | dict, *, strategy: str | None = None, explain: bool = True) -> Decision:
        """Choose, reserve and record a plan for one order.

        ``explain=False`` skips the rationale and the full record (plan and status
        only) when no ledger is configured: for simulations that only need the plan.
        With a ledger every decision is fully recorded regardless.

        Raises
        ------
        InvalidOrderError
            The order breaks a rule (the field and the reason are named); nothing is
            reserved or recorded.
        LedgerError
            The ledger write failed; the reservation was released.
        """
        order = self._validate(order)
        strategy = strategy or self.strategy
        get_strategy(strategy)
        with self.state.lock:
            decision, alloc = self._decide_and_reserve(
                order, strategy, time.perf_counter(), explain or self.ledger is not None
            )
            if self.ledger is not None:
                try:
                    self.ledger.append_decision(decision.record, self._allocations(alloc))
                    self.recorded += 1
                except Exception as exc:
                    self.failed_writes += 1
                    self.state.release(*alloc)
                    raise LedgerError(f"decision {decision.decision_id} not recorded: {exc}") from exc
        return decision

    def _decide_and_reserve(self, order: Order, strategy: str, t0: float, explain: bool = True):
        """Decide on a view and reserve the plan; the caller holds the state lock (re-entrant)."""
        now = self.clock()
        ctx = self._context(order, now)
        view = self.state.view(ctx.sku_idx)
        out = decide(self.network, view, ctx, self.params, self._skus, strategy, seed=self.seed, explain=explain)
        if self.check_plans and len(out.ranking):
            # before the reservation, so a plan that fails the check changes nothing
            check_plan(
                self.network,
                view,
                ctx,
                self.params,
                self._plan_dict(out, ctx, int(out.ranking[0])),
                skus=self._skus,
                destination=self._destination_point(order.destination),
                subject=f"order {order.order_id!r}: the plan chosen by {out.strategy}",
            )
        alloc = self._reserve(out, ctx)
        if alloc is None:  # pragma: no cover - the view was taken under the same lock
            raise RouterError("reservation failed under the lock")
        if not explain:
            return self._build_lean(order, now, ctx, out, t0), alloc
        return self._build(order, now, ctx, view, out, t0), alloc

    def route_batch(self, orders: Iterable[Order | dict], *, strategy: str | None = None) -> list[Decision]:
        """Route orders one after the other and record them in one ledger transaction.

        Each order sees the reservations of those before it. Every order is validated
        before any is routed, so one bad order changes nothing (InvalidOrderError names
        it by position: ``orders[3].lines[0].sku``). If the ledger write fails, every
        reservation of the batch is released and LedgerError is raised.
        """
        validated = []
        for i, o in enumerate(orders):
            try:
                validated.append(self._validate(o))
            except InvalidOrderError as exc:
                raise InvalidOrderError(f"orders[{i}].{exc.field}", exc.reason) from None
        strategy = strategy or self.strategy
        get_strategy(strategy)
        decisions, allocs = [], []
        with self.state.lock:
            try:
                for order in validated:
                    d, a = self._decide_and_reserve(order, strategy, time.perf_counter())
                    decisions.append(d)
                    allocs.append(a)
                if self.ledger is not None and decisions:
                    self.ledger.append_decisions([(d.record, self._allocations(a)) for d, a in zip(decisions, allocs)])
                    self.recorded += len(decisions)
            except Exception as exc:
                for a in allocs:
                    self.state.release(*a)
                if isinstance(exc, LedgerError):
                    self.failed_writes += len(decisions)
                elif self.ledger is not None and not isinstance(exc, RouterError):
                    self.failed_writes += len(decisions)
                    raise LedgerError(f"batch of {len(decisions)} decisions not recorded: {exc}") from exc
                raise
        return decisions

    def _reservation(self, out: Outcome, ctx: OrderContext):
        nodes, skus, qty, lanes = [], [], [], []
        if len(out.ranking):
            # one tolist per array rather than numpy scalars per leg and line
            c, cs = int(out.ranking[0]), out.cs
            sku_idx = ctx.sku_idx.tolist()
            for n, o, units in zip(cs.leg_node[c].tolist(), cs.leg_opt[c].tolist(), cs.leg_units[c].tolist()):
                if n < 0:
                    continue
                lanes.append((n, o))
                for k, u in enumerate(units):
                    if u:
                        nodes.append(n)
                        skus.append(sku_idx[k])
                        qty.append(u)
        # plain lists: the state iterates them in Python anyway (arrays were converted back)
        return nodes, skus, qty, lanes

    def _reserve(self, out: Outcome, ctx: OrderContext):
        """Check-and-reserve the chosen plan; the allocation arrays, or None if the stock is gone."""
        alloc = self._reservation(out, ctx)
        if len(out.ranking) == 0:
            return alloc  # nothing to reserve for an unfulfillable order
        return alloc if self.state.try_reserve(*alloc) else None

    def _allocations(self, alloc) -> list[tuple[str, str, int]]:
        n, k, q, _ = alloc
        return [(self.network.node_ids[a], self._skus[b], int(c)) for a, b, c in zip(n, k, q)]

    # ------------------------------------------------------------- records
    def _plan_dict(self, out: Outcome, ctx: OrderContext, c: int) -> dict:
        """Candidate ``c`` as the JSON of a :class:`~router.domain.Plan` (plain dicts: this is the hot path)."""
        cs, net, skus = out.cs, self.network, self._skus
        nodes = cs.leg_node[c].tolist()
        opts = cs.leg_opt[c].tolist()
        # np.round(x, 3) / np.round(x, 6), bit for bit, on the few numbers of one plan
        miles = [round_np(x, 1e3) for x in cs.leg_miles[c].tolist()]
        ship = [round_np(x) for x in cs.leg_shipping_usd[c].tolist()]
        hand = [round_np(x) for x in cs.leg_handling_usd[c].tolist()]
        eta = [round_np(x) for x in cs.leg_eta_hours[c].tolist()]
        risk = [round_np(x) for x in cs.leg_risk[c].tolist()]
        sku_idx = ctx.sku_idx.tolist()
        all_units = cs.leg_units[c].tolist()
        legs = []
        for j, n in enumerate(nodes):
            if n < 0:
                continue
            units = all_units[j]
            legs.append(
                {
                    "node_id": net.node_ids[n],
                    "carrier_id": net.option_carrier[opts[j]],
                    "service": net.option_service[opts[j]],
                    "lines": [{"sku": skus[sku_idx[k]], "qty": u} for k, u in enumerate(units) if u > 0],
                    "distance_miles": miles[j],
                    "shipping_cost_usd": ship[j],
                    "handling_cost_usd": hand[j],
                    "eta_hours": eta[j],
                    "late_risk": risk[j],
                }
            )
        s = out.scores
        return {
            "legs": legs,
            "cost_usd": round(s.terms[0].values[c].item(), 6),
            "eta_hours": round(s.term("eta").values[c].item(), 6),
            "promise_hours": round(float(ctx.promise_hours), 6),
            "late_risk": round(s.term("late_risk").values[c].item(), 6),
            "score": round(s.total[c].item(), 6),
            "kind": "single" if len(legs) == 1 else "split",
        }

    def _top_candidates(self, out: Outcome, top_idx: list[int], factors: list[list[dict]] | None = None) -> list[dict]:
        """The ranked top-K in compact form: legs as (node, carrier, service, units per order line).

        ``factors`` are ``factors_for(out.scores, top_idx)`` when the caller has them already.
        """
        cs, net = out.cs, self.network
        if factors is None:
            factors = factors_for(out.scores, top_idx)
        node_ids, carrier, service = net.node_ids, net.option_carrier, net.option_service
        sources = CandidateSet.SOURCES
        # One tolist per array for the whole top-K instead of three per candidate.
        all_nodes = cs.leg_node[top_idx].tolist()
        all_opts = cs.leg_opt[top_idx].tolist()
        all_units = cs.leg_units[top_idx].tolist()
        all_src = cs.source[top_idx].tolist()
        totals = round6(out.scores.total[top_idx]).tolist()
        return [
            {
                "rank": r + 1,
                "source": sources[all_src[r]],
                "legs": [
                    [node_ids[n], carrier[o], service[o], u]
                    for n, o, u in zip(all_nodes[r], all_opts[r], all_units[r])
                    if n >= 0
                ],
                # the factors of these plans are in the rationale (chosen, runners_up): stored once
                "score": totals[r],
            }
            for r in range(len(top_idx))
        ]

    def _params_json(self, params: StrategyParams) -> tuple[str, dict]:
        """``params_hash()`` and the JSON dump of the (frozen) params, computed once per params object.

        Hashing and dumping the params cost ~5 us per record; each record still
        gets its own copy of the dict (lists copied too) so no two records share
        mutable state.
        """
        if self._params_meta_for is not params:
            self._params_meta = (params.params_hash(), params.model_dump(mode="json"))
            self._params_meta_for = params
        h, d = self._params_meta
        return h, {k: (list(v) if isinstance(v, list) else v) for k, v in d.items()}

    @staticmethod
    def _plan_from_dict(d: dict) -> Plan:
        # model_construct: the numbers come from our own arrays, validated already.
        legs = tuple(
            Leg.model_construct(
                **{**leg, "lines": tuple(LegLine.model_construct(**ln) for ln in leg["lines"])}
            )
            for leg in d["legs"]
        )
        return Plan.model_construct(**{**d, "legs": legs})

    def _build_lean(self, order: Order, now: datetime, ctx: OrderContext, out: Outcome, t0: float) -> Decision:
        """Plan and status only: no rationale, no inputs (nothing will be reviewed or replayed)."""
        chosen_dict = self._plan_dict(out, ctx, int(out.ranking[0])) if len(out.ranking) else None
        latency_ms = (time.perf_counter() - t0) * 1000.0
        record = {
            "schema": RECORD_SCHEMA + "-lean",
            "decision_id": uuid.uuid4().hex,
            "order_id": order.order_id,
            "created_at": now.isoformat(),
            "status": "routed" if chosen_dict else "unfulfillable",
            "strategy": {"name": out.strategy, "requested": out.fallback["requested"]},
            "chosen": chosen_dict,
            "fallback": out.fallback,
            "latency_ms": round(latency_ms, 4),
        }
        return Decision(
            decision_id=record["decision_id"],
            order_id=order.order_id,
            status=record["status"],
            strategy=out.strategy,
            rationale={},
            record=record,
            latency_ms=latency_ms,
        )

    def _build(
        self, order: Order, now: datetime, ctx: OrderContext, view: StateView, out: Outcome, t0: float
    ) -> Decision:
        decision_id = uuid.uuid4().hex
        strat = get_strategy(out.strategy) if out.strategy != "index_order" else None
        params = self.params
        if len(out.ranking):
            chosen = int(out.ranking[0])
            top_idx = out.ranking[: params.top_k].tolist()
            chosen_dict = self._plan_dict(out, ctx, chosen)
            # The rationale's runners-up and the record's candidates show the same
            # factors: compute them once (they are the same numbers, rounded once).
            top_factors = factors_for(out.scores, top_idx)
            rationale = build_rationale(
                out.cs,
                out.scores,
                out.ranking,
                self.network,
                ctx,
                strategy_name=out.strategy,
                strategy_rule=strat.rule if strat else "candidate generation order",
                top_k=params.top_k,
                factors=top_factors,
                queue_orders=view.queue_orders,
            )
            status = "routed"
            top = self._top_candidates(out, top_idx, top_factors)
        else:
            chosen_dict = None
            status = "unfulfillable"
            reasons = "; ".join(e["detail"] for e in out.cs.excluded[:6]) or "no node can ship it"
            rationale = {
                "sentence": f"No plan: no node or combination of up to {params.max_splits} nodes can ship "
                f"every line ({reasons}).",
                "chosen": None,
                "runners_up": [],
                "excluded": list(out.cs.excluded),
                "candidates_considered": 0,
            }
            top = []
        params_hash, params_json = self._params_json(params)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        record = {
            "schema": RECORD_SCHEMA,
            "decision_id": decision_id,
            "order_id": order.order_id,
            "created_at": now.isoformat(),
            "status": status,
            "scenario": self.scenario.name,
            "strategy": {
                "name": out.strategy,
                "requested": out.fallback["requested"],
                "version": strat.version if strat else "0",
                "params_hash": params_hash,
                "params": params_json,
            },
            "state": {"version": view.version, "hash": view.state_hash},
            "risk_model": {"version": RISK_MODEL_VERSION},
            "code_version": router.__version__,
            "seed": self.seed,
            "order": order.model_dump(mode="json"),
            "inputs": {"context": _ctx_to_json(ctx), "view": view.to_json()},
            "candidates": top,
            "chosen": chosen_dict,
            "rationale": rationale,
            "fallback": out.fallback,
            "canary": None,
            "solver": out.cs.solver
            or {"name": "array-enumeration", "status": "optimal" if chosen_dict is not None else "infeasible"},
            "latency_ms": round(latency_ms, 4),
        }
        return Decision(decision_id, order.order_id, status, out.strategy, rationale, record, latency_ms)

    # ------------------------------------------------------- review & replay
    def _require_ledger(self):
        if self.ledger is None:
            raise RouterError("this router keeps no ledger (ledger=None): nothing to look up")
        return self.ledger

    def validate_record(self, record: dict) -> list[Violation]:
        """Check a full decision record's chosen plan with the independent validator.

        The plan is checked against the record's own stored view, context and params
        (and the order's destination), on this router's network; see
        :func:`router.solver.validate.validate_plan`. An unfulfillable decision has no
        plan and nothing to break: the list is empty.

        Raises
        ------
        RouterError
            The record stores no inputs (a lean record).
        """
        if record.get("chosen") is None:
            return []
        inputs = decision_inputs(record)
        return validate_plan(
            self.network,
            inputs.view,
            inputs.context,
            inputs.params,
            record["chosen"],
            skus=self._skus,
            destination=self._destination_point(record["order"]["destination"]),
            check_risk=record.get("risk_model", {}).get("version") == RISK_MODEL_VERSION,
        )

    def explain(self, decision_id: str) -> dict:
        """The stored rationale of a decision (sentence, factors, runners-up, exclusions)."""
        rec = self._require_ledger().get_decision(decision_id)
        return {"decision_id": decision_id, "order_id": rec["order_id"], "status": rec["status"], **rec["rationale"]}

    def replay(self, decision_id: str, *, strategy: str | None = None) -> ReplayResult:
        """Re-derive a decision from its stored inputs; with ``strategy``, a counterfactual.

        The stored view and context, params and seed feed the same pure
        :func:`decide`; ``matches`` says whether the chosen plan and every
        factor of it came out the same.
        """
        rec = self._require_ledger().get_decision(decision_id)
        params = StrategyParams.model_validate(rec["strategy"]["params"])
        ctx = _ctx_from_json(rec["inputs"]["context"])
        view = StateView.from_json(rec["inputs"]["view"])
        name = strategy or rec["strategy"]["requested"]
        out = decide(self.network, view, ctx, params, self._skus, name, seed=int(rec["seed"]))
        if len(out.ranking):
            c = int(out.ranking[0])
            plan = self._plan_dict(out, ctx, c)
            factors = factors_at(out.scores, c)
            score = float(round(float(out.scores.total[c]), 6))
        else:
            plan, factors, score = None, [], None
        orig = rec["chosen"]
        diffs = []
        if (orig is None) != (plan is None) or (orig and plan and orig["legs"] != plan["legs"]):
            diffs.append("chosen plan differs")
        orig_factors = rec["rationale"]["chosen"]["factors"] if rec["rationale"].get("chosen") else []
        if orig_factors != factors:
            diffs.append("score factors differ")
        from router.rationale import plan_label

        return ReplayResult(
            decision_id=decision_id,
            strategy=out.strategy,
            matches=not diffs,
            original_plan=rec["rationale"]["chosen"]["plan"] if rec["rationale"].get("chosen") else None,
            replayed_plan=plan_label(out.cs, self.network, int(out.ranking[0])) if plan else None,
            original_score=orig["score"] if orig else None,
            replayed_score=score,
            differences=tuple(diffs),
            replayed={"chosen": plan, "factors": factors},
        )
