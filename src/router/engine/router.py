"""The Router: route one order or a batch, record why, replay and explain.

A thin facade over the parts of a decision:

1. validate the order against the scenario (unknown SKU, tier, region...): a
   typed :class:`~router.errors.InvalidOrderError` naming the field, nothing changed;
2. build the order context (:class:`~router.context.ContextBuilder`, shared with
   the simulator) and copy a :class:`~router.state.StateView` (the slice of live
   state the decision reads);
3. :func:`~router.engine.decide.decide`, a pure function of (network, view,
   context, params, strategies, seed): candidates, scores, ranking along the
   strategy's fallback chain;
4. check-and-reserve the chosen plan in the live state (this process's cache of
   the stock), then append the record (:class:`~router.engine.records.RecordBuilder`)
   with its reservations to the ledger in one transaction, in which the ledger's
   stock table checks every reserved unit again with a conditional update. If
   another process took the units first, the ledger refuses the whole write, the
   router refreshes those cells from the ledger and decides again (at most
   ``RouterOptions.reserve_retries`` times; the record counts the retries).

Every failure after validation ends in a recorded decision: a failing stage of a
strategy walks its fallback chain (see :mod:`router.engine.decide`); a failure
to build the context, reserve or build the record is recorded as an
unfulfillable decision naming the stage. Only a ledger that cannot be written
raises (:class:`~router.errors.LedgerError`), since then nothing can be recorded;
the reservation is released.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property, partial
from pathlib import Path

from pydantic import ValidationError

from router.context import ContextBuilder, OrderContext
from router.domain import Destination, Order, Plan, check_created_at
from router.engine.decide import Ranked, decide
from router.engine.inputs import DecisionInputs, decision_inputs  # noqa: F401  (re-exported)
from router.engine.records import RISK_MODEL_VERSION, RecordBuilder, plan_from_dict
from router.errors import (
    InvalidOrderError,
    InvalidPlanError,
    LedgerError,
    ReplayError,
    ReservationConflict,
    RouterError,
    UnknownStrategyError,
    pydantic_field_error,
)
from router.ledger import DEFAULT_URL, DecisionLedger, open_ledger
from router.legs import LaneRisk
from router.network import Network, build_network
from router.params import RouterOptions, StrategyParams
from router.risk.champion import load_champion, load_version
from router.risk.lane import LaneRiskModel, UnavailableRisk, explain_plans
from router.rollout import Rollout, RolloutOptions
from router.scenario import Scenario, check_targets, load_scenario
from router.solver.validate import Violation, check_plan, validate_plan
from router.state import LiveState, StateView
from router.strategies import Strategy, StrategySet, default_strategies
from router.targets import LatePriceController

__all__ = ["DEFAULT_LEDGER_URL", "Decision", "DecisionInputs", "Router", "decision_inputs"]

#: The embedded default: a SQLite file in the working directory.
DEFAULT_LEDGER_URL = DEFAULT_URL


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
        return None if chosen is None else plan_from_dict(chosen)

    @classmethod
    def from_record(cls, record: dict, latency_ms: float | None = None) -> Decision:
        return cls(
            decision_id=record["decision_id"],
            order_id=record["order_id"],
            status=record["status"],
            strategy=record["strategy"]["name"],
            rationale=record.get("rationale") or {},
            record=record,
            latency_ms=record.get("latency_ms", 0.0) if latency_ms is None else latency_ms,
        )


def _named(decision: Decision, decision_id: str | None, annotations: dict | None = None) -> Decision:
    """The decision under the caller's id (its record too), with the caller's annotations in the record."""
    if decision_id is not None:
        decision.record["decision_id"] = decision_id
    if annotations:
        decision.record.update(annotations)
    return Decision.from_record(decision.record, decision.latency_ms)


# An allocation: (node indices, sku indices, units, lanes [(node, option)]), plain lists.
_Alloc = tuple[list[int], list[int], list[int], list[tuple[int, int]]]
_NOTHING: _Alloc = ([], [], [], [])


class Router:
    """Routes orders on one scenario's network against live state, recording every decision.

    Parameters
    ----------
    scenario : Scenario
        The validated network, catalogue, tiers and initial stock.
    ledger : DecisionLedger or str or None
        Where decisions go: a ledger object, a database URL (``sqlite:///file`` or
        ``postgresql+psycopg://...``), or None to keep no record (simulations,
        benchmarks). The default is the embedded SQLite file
        ``router-ledger.sqlite`` in the working directory, as for :meth:`from_scenario`.
        A ledger also holds the truth about stock (see ``stock_pool``).
    params : StrategyParams, optional
        Defaults to the scenario's ``params``.
    strategy : str
        Default strategy name (``optimizer``).
    strategies : StrategySet, optional
        The strategies this router may use and their fallback chains; defaults to
        :func:`~router.strategies.default_strategies`.
    seed : int
        Seed of every solver call; recorded in each decision.
    clock : callable returning an aware datetime, optional
        Injected for tests, replays and simulations; defaults to ``datetime.now(UTC)``.
    options : RouterOptions, optional
        How the router runs (compiled split search, reservation retries, caches).
    stock_pool : str, optional
        The name of the stock this router reserves from in the ledger; defaults to
        the scenario's name. Every router (in any process) on the same ledger and
        pool shares one stock: the ledger refuses a reservation that another
        took first. A simulation uses a pool of its own.
    risk_model : "champion", a model folder, a LaneRisk, or None
        Who estimates each lane's late risk. ``"champion"`` (the default) loads this
        network's champion from ``models/delay_risk`` (:mod:`router.risk.champion`),
        or uses the analytic estimate when none was trained for the network; a
        folder loads that version; None always uses the analytic estimate. A model
        that cannot be loaded or fails leaves the analytic risk in its place, and
        every record's ``risk_model.fallback`` says why.
    rollout : RolloutOptions, optional
        Canary key, how often the ledger's mode log is polled, circuit breaker and
        guards (:mod:`router.rollout`). Strategy versions in shadow, canary or on mode
        come from the ledger's mode log (or :meth:`set_strategy_mode` without a ledger).
    strategy_loader : callable (name, body) -> Strategy, optional
        Builds a version stored in the ledger from its body (defaults to the strategy-file
        compiler when installed).
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        ledger: DecisionLedger | str | None = DEFAULT_LEDGER_URL,
        params: StrategyParams | None = None,
        strategy: str = "optimizer",
        strategies: StrategySet | None = None,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        options: RouterOptions | None = None,
        stock_pool: str | None = None,
        risk_model: LaneRisk | str | Path | None = "champion",
        rollout: RolloutOptions | None = None,
        strategy_loader: Callable[[str, dict], Strategy] | None = None,
    ) -> None:
        self.strategies = strategies if strategies is not None else default_strategies()
        self._check_strategy(strategy)
        self.scenario = scenario
        self.network: Network = build_network(scenario)
        self.state = LiveState(self.network, scenario)
        self.params = params or scenario.params
        self.options = options or RouterOptions()
        self.strategy = strategy
        self.seed = seed
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._skus = self.network.sku_ids
        self.contexts = ContextBuilder(scenario, self.network, cache_size=self.options.dest_cache_size)
        if self.options.warm_up:
            # the split MIP's one-time load (OR-Tools, HiGHS) now, not on some order hours in
            from router.solver.split import warm_up

            warm_up()
        self.risk: LaneRisk | None = self._risk_model(risk_model)
        # how a worker process loads the same model (batch re-routing partitions); None: it cannot
        self._risk_spec = str(risk_model) if isinstance(risk_model, str | Path) else (None if risk_model is None else object())
        # called with (view, context, ranked) after every decision on live state: how a
        # simulation collects the exact inputs each decision read (delay-risk training rows)
        self.observer: Callable[[StateView, OrderContext, Ranked], None] | None = None
        self.records = RecordBuilder(
            self.network, self._skus, self.strategies, scenario_name=scenario.name, seed=seed
        )
        if isinstance(ledger, str):
            ledger = open_ledger(ledger)
        self.ledger = ledger
        self.stock_pool = stock_pool or scenario.name
        self.recorded = 0
        self.failed_writes = 0
        self.reserve_conflicts = 0
        # The service-level controller (router.targets): None unless the params state targets.
        self.targets: LatePriceController | None = None
        self._target_obs: list[tuple[int, float, float, float, str, float]] = []
        if self.params.targets is not None:
            self._start_targets()
        if self.ledger is not None:
            self._attach_stock()
        # modes, breakers, health and guards of the strategies (router.rollout); the ledger's
        # mode log, when it keeps one, is the source every router on it agrees on
        store = self.ledger if self.ledger is not None and hasattr(self.ledger, "modes_head") else None
        self.rollout = Rollout(
            self.strategies, strategy, clock=self.clock, options=rollout, store=store,
            loader=strategy_loader or self._compile_stored,
        )
        self._use_strategies()

    # --------------------------------------------------------------- rollout
    def _compile_stored(self, name: str, body: dict) -> Strategy:
        """A strategy version stored in the ledger (a strategy file's spec as JSON), compiled for this network."""
        from router.strategy_spec import StrategySpec, compile_strategy

        spec = StrategySpec.model_validate(body)
        if spec.name != name:
            raise ValueError(f"the stored body declares strategy {spec.name!r}, not {name!r}")
        return compile_strategy(spec, self.scenario, self.network)

    def _use_strategies(self) -> None:
        """Route on the rollout's current set (every ``on`` version in place)."""
        current = self.rollout.current
        if current is not self.strategies:
            self.strategies = current
            self.records.strategies = current

    def _sync_rollout(self) -> None:
        """At a decision boundary: apply the ledger's new mode changes (polled at most every ``poll_ms``)."""
        if self.rollout.store is not None:
            self.rollout.sync()
        if self.rollout.current is not self.strategies:
            self._use_strategies()

    def add_strategy_version(
        self, strategy: Strategy, *, body: dict | None = None, author: str = "", reason: str = ""
    ) -> bool:
        """Make a strategy version known (for modes and replay) without using it; store ``body`` in the ledger.

        Returns True when the ledger stored a new version (False: no body, no ledger, or already stored).
        """
        self.rollout.base.add_version(strategy)
        store = self.rollout.store
        if body is None or store is None:
            return False
        return bool(
            store.put_strategy_version(
                strategy.name, str(strategy.version), body, author=author, reason=reason,
                created_at=self.clock().isoformat(),
            )
        )

    def set_strategy_mode(
        self, name: str, version: str, mode: str, *, percent: float = 0.0, actor: str, reason: str
    ) -> dict:
        """Put a strategy version off, in shadow, on a ``percent`` % canary, or on; return the mode record.

        With a ledger the change is appended to its mode log (actor, reason, time) and every
        router on the ledger picks it up at its next decision boundary.
        """
        with self.state.lock:
            row = self.rollout.set_mode(name, version, mode, percent=percent, actor=actor, reason=reason)
            self._use_strategies()
        return row

    def strategy_status(self) -> dict:
        """Modes, the running canary and shadow, breaker states and health counters of this router."""
        with self.state.lock:
            self._sync_rollout()
            return self.rollout.status()

    def strategies_for(self, name: str, version: str | None) -> StrategySet:
        """The strategy set with ``name`` at ``version`` in place (replay of a decision taken by another version).

        Raises ReplayError when that version is neither known here nor stored in the ledger.
        """
        if version is None:
            return self.strategies
        if name in self.strategies and str(self.strategies.get(name).version) == str(version):
            return self.strategies
        try:
            found = self.rollout.resolve(name, str(version))
        except Exception as exc:  # noqa: BLE001 - a stored body that no longer compiles
            raise ReplayError(f"strategy {name!r} version {version!r} cannot be rebuilt: {exc}") from None
        if found is None:
            raise ReplayError(
                f"strategy {name!r} version {version!r} is neither known to this router nor stored in the ledger"
            )
        return self.strategies.with_strategy(found, self.rollout._fallback_for(self.strategies, found))

    def _start_targets(self) -> None:
        """Check the targets against this scenario and publish each segment's starting price.

        A segment starts at the fixed price its tier would pay (late_risk_usd x the
        tier's multiplier), so a router with targets begins where one without starts.
        """
        targets = self.params.targets
        assert targets is not None
        check_targets(targets, self.scenario.tiers, self.scenario.region_index)  # params given apart from the scenario
        start = {
            t.key: self.params.late_risk_usd * self.scenario.tiers[t.tier].lateness_multiplier for t in targets.targets
        }
        self.targets = LatePriceController(targets, start)
        for i, key in enumerate(self.targets.keys):
            self.state.set_late_price(key, self.targets.price(i))

    def _hours(self, when: datetime) -> float:
        return (when - self.scenario.start).total_seconds() / 3600.0

    def _apply_target_obs(self) -> None:
        """After a decision (or a batch) is kept: move each segment's price by its dual step and publish it."""
        if not self._target_obs:
            return
        assert self.targets is not None
        for seg, t, risk, best, order_id, promise_t in self._target_obs:
            price = self.targets.observe_decision(seg, t, risk, best, order_id, promise_t)
            self.state.set_late_price(self.targets.keys[seg], price)
        self._target_obs = []

    def observe_outcome(self, order_id: str, delivered_at: datetime, on_time: bool) -> bool:
        """Report a delivered order to the service-level controller (realised on-time corrects its forecast).

        The outcome also counts for the strategy health of the rollout (on-time of the canary
        against control, see :mod:`router.rollout`) when the order was part of an experiment.
        Returns False when neither a target nor the rollout awaited the order (no targets,
        another segment, or already reported). The ledger's outcome records are separate: see
        :meth:`router.ledger.DecisionLedger.append_outcome`.
        """
        with self.state.lock:
            seen = self.rollout.observe_outcome(order_id, on_time)
            self._use_strategies()
            if self.targets is None:
                return seen
            return self.targets.observe_outcome(order_id, self._hours(delivered_at), on_time) or seen

    def target_report(self) -> list[dict]:
        """Each target segment's price, recent expected and realised on-time, best reachable rate and verdict."""
        if self.targets is None:
            return []
        with self.state.lock:
            return self.targets.report(self._hours(self.clock()))

    @classmethod
    def from_scenario(
        cls,
        path: str | Path,
        *,
        ledger: DecisionLedger | str | None = DEFAULT_LEDGER_URL,
        seed: int | None = None,
        **kwargs,
    ) -> Router:
        """Load a scenario file; by default decisions go to ``router-ledger.sqlite`` here, as for ``Router(...)``.

        ``seed`` defaults to the scenario's; every other keyword is passed to :class:`Router`.
        """
        scenario = load_scenario(path)
        return cls(scenario, ledger=ledger, seed=scenario.seed if seed is None else seed, **kwargs)

    def _risk_model(self, spec: LaneRisk | str | Path | None) -> LaneRisk | None:
        if spec is None:
            return None
        if isinstance(spec, str) and spec == "champion":
            return load_champion(self.network)
        if isinstance(spec, str | Path):
            try:
                return LaneRiskModel.load(spec, self.network)
            except Exception as exc:  # noqa: BLE001 - an unloadable model leaves the analytic risk, recorded
                return UnavailableRisk(Path(spec).name, str(exc))
        return spec

    def risk_for_record(self, rec: dict) -> LaneRisk | None:
        """The risk model a recorded decision used: this router's when the versions agree, else that version
        loaded from ``models/delay_risk``; None for the analytic estimate.

        Raises ReplayError when the version is no longer there.
        """
        version = (rec.get("risk_model") or {}).get("version", RISK_MODEL_VERSION)
        if version == RISK_MODEL_VERSION:
            return None
        if self.risk is not None and getattr(self.risk, "version", None) == version:
            return self.risk
        try:
            return load_version(version, self.network)
        except RouterError as exc:
            raise ReplayError(f"decision {rec.get('decision_id', '?')} was scored by delay-risk model {version!r}: {exc}") from None

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()

    # ---------------------------------------------------------------- stock
    def _attach_stock(self) -> None:
        """Make the ledger's stock table the truth and this state its cache.

        Cells missing from the pool are seeded with the scenario's initial stock;
        the state then takes every cell's on-hand and reserved from the ledger, and
        every later stock event goes through the ledger first.
        """
        net, state = self.network, self.state
        initial = {
            (net.node_ids[n], net.sku_ids[k]): int(state.on_hand[n, k])
            for n in range(net.n_nodes)
            for k in range(len(net.sku_ids))
        }
        ledger = self.ledger
        assert ledger is not None  # called only with a ledger
        levels = ledger.open_stock(self.stock_pool, initial)
        self._load_levels(levels)
        pool = self.stock_pool

        def sink(node: int, sku: int, change: dict) -> tuple[int, int]:
            return ledger.change_stock(pool, net.node_ids[node], net.sku_ids[sku], **change)

        state.stock_sink = sink

    def _load_levels(self, levels: dict[tuple[str, str], tuple[int, int]]) -> None:
        state = self.state
        with state.lock:
            for (node, sku), (on_hand, reserved) in levels.items():
                n = self.scenario.node_index.get(node)
                k = self.scenario.sku_index.get(sku)
                if n is None or k is None:
                    continue  # a node or SKU this scenario no longer has: nothing routes to it
                state.on_hand[n, k] = on_hand
                state.reserved[n, k] = reserved
            state._touch()

    def refresh_stock(self) -> None:
        """Re-read every cell of this router's stock pool from the ledger (other processes' changes)."""
        if self.ledger is not None:
            self._load_levels(self.ledger.stock_levels(self.stock_pool))

    # ------------------------------------------------------------ validation
    def _check_strategy(self, name: str) -> None:
        if name not in self.strategies:
            raise UnknownStrategyError(name, self.strategies.names())

    def validate(self, order: Order | dict) -> Order:
        """The order as a validated Order, or InvalidOrderError naming the field and the rule.

        Beyond the model's own checks: SKU, tier, service level and region must exist in
        the scenario, and the scenario's ``boundary`` limits hold: coordinates near the
        region they are routed as, ``created_at`` neither ahead of the router's clock nor
        too old for it (see docs/decision-records.md, "Orders that get no record").
        """
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
        services = self.contexts.service_masks
        if order.service_level is not None and order.service_level not in services:
            raise InvalidOrderError(
                "service_level",
                f"unknown service level {order.service_level!r}; known: {', '.join(sorted(services))}",
            )
        dest = order.destination
        if dest.region is not None and dest.region not in self.scenario.region_index:
            raise InvalidOrderError("destination.region", f"unknown region {dest.region!r}")
        boundary = self.scenario.boundary
        if dest.lat is not None and dest.lon is not None:
            region = self.scenario.region_index[dest.region] if dest.region else None
            self.network.check_destination(dest.lat, dest.lon, region, boundary.max_region_distance_miles)
        # against the router's clock (injected in simulations and replays), not the wall clock
        check_created_at(order, self.clock(), boundary)
        return order

    # --------------------------------------------------------------- routing
    def decide(
        self, view: StateView, ctx: OrderContext, strategy: str | None = None, *, params: StrategyParams | None = None,
        seed: int | None = None, explain: bool = True, risk: LaneRisk | None | str = "router",
        strategies: StrategySet | None = None,
    ) -> Ranked:
        """The pure decision on given inputs (a stored view and context): nothing is reserved or recorded.

        ``risk`` defaults to this router's risk model; pass None for the analytic estimate.
        ``strategies`` defaults to this router's set (a canary's or a replayed version's set otherwise).
        """
        name = strategy or self.strategy
        sset = self.strategies if strategies is None else strategies
        if name not in sset:
            raise UnknownStrategyError(name, sset.names())
        return decide(
            self.network,
            view,
            ctx,
            params or self.params,
            self._skus,
            sset,
            name,
            seed=self.seed if seed is None else seed,
            explain=explain,
            compiled_splits=self.options.compiled_splits,
            risk=self.risk if isinstance(risk, str) else risk,
        )

    def route(
        self,
        order: Order | dict,
        *,
        strategy: str | None = None,
        explain: bool = True,
        decision_id: str | None = None,
        annotations: dict | None = None,
    ) -> Decision:
        """Choose, reserve and record a plan for one order.

        ``explain=False`` skips the rationale and the full record (plan and status
        only) when no ledger is configured: for simulations that only need the plan.
        With a ledger every decision is fully recorded regardless.

        ``decision_id`` names the decision (default: a random id). The ledger records an
        id once, so a caller that derives it from its request (the HTTP service does, from
        an ``Idempotency-Key``) can never record one request twice.
        ``annotations`` are stored in the record as they are (the HTTP service notes the
        events it had applied, the request id and which personal fields it masked).

        Raises
        ------
        InvalidOrderError
            The order breaks a rule (the field and the reason are named); nothing is
            reserved or recorded.
        UnknownStrategyError
            ``strategy`` is not one of this router's strategies; nothing changed.
        LedgerError
            The ledger could not be written; the reservation was released.
        """
        order = self.validate(order)
        strategy = strategy or self.strategy
        self._check_strategy(strategy)
        t0 = time.perf_counter()
        explain = explain or self.ledger is not None
        with self.state.lock:
            self._sync_rollout()
            self._target_obs = []
            if self.ledger is None:
                decision = self._decide_and_reserve(order, strategy, t0, explain)[0]
                self._apply_target_obs()
                return decision if decision_id is None and not annotations else _named(decision, decision_id, annotations)
            retries = 0
            while True:
                self._target_obs = []
                decision, alloc = self._decide_and_reserve(order, strategy, t0, explain, retries)
                if decision_id is not None or annotations:
                    decision = _named(decision, decision_id, annotations)
                try:
                    self.ledger.append_decision(decision.record, self._allocations(alloc), pool=self.stock_pool)
                    self.recorded += 1
                    self._apply_target_obs()
                    return decision
                except ReservationConflict as exc:
                    self._after_conflict(alloc, exc)
                    retries += 1
                    if retries > self.options.reserve_retries:
                        return self._record_failure(order, strategy, "reserve", exc, t0, retries, decision_id)
                except Exception as exc:
                    self.failed_writes += 1
                    self.state.release(*alloc)
                    raise LedgerError(f"decision {decision.decision_id} not recorded: {exc}") from exc

    def _after_conflict(self, alloc: _Alloc, exc: ReservationConflict) -> None:
        """Another writer took the stock: undo our cache's reservation and refresh the cells it named."""
        self.reserve_conflicts += 1
        self.state.release(*alloc)
        self._load_levels(exc.levels)

    def _record_failure(
        self,
        order: Order,
        strategy: str,
        stage: str,
        exc: BaseException,
        t0: float,
        retries: int = 0,
        decision_id: str | None = None,
    ) -> Decision:
        record = self.records.failed(order, self.clock(), strategy, stage, exc, t0)
        if decision_id is not None:
            record["decision_id"] = decision_id
        record["state"] = {"reserve_retries": retries}
        if self.ledger is not None:
            try:
                self.ledger.append_decision(record, [], pool=self.stock_pool)
                self.recorded += 1
            except Exception as err:
                self.failed_writes += 1
                raise LedgerError(f"decision {record['decision_id']} not recorded: {err}") from err
        return Decision.from_record(record)

    def _decide_and_reserve(
        self, order: Order, strategy: str, t0: float, explain: bool = True, retries: int = 0
    ) -> tuple[Decision, _Alloc]:
        """Decide on a view and reserve the plan in the live state; the caller holds the state lock.

        Never raises for a valid order: a stage that fails outside the fallback
        chain (context, view, reserve, record) gives a recorded unfulfillable decision.
        """
        now = self.clock()
        stage = "context"
        try:
            ctx = self.contexts.build(order, now, self.state.weather_at_region)
            stage = "view"
            at_hours = self._hours(now)
            seg = None
            if self.targets is not None:
                seg = self.targets.segment(ctx.tier, self.network.region_ids[ctx.dest_region] if ctx.dest_region >= 0 else None)
            view = self.state.view(ctx.sku_idx, at_hours, None if seg is None else self.targets.keys[seg])  # type: ignore[union-attr]
            stage = "decide"
            plan = self.rollout.plan(order, strategy)
            out = self.decide(view, ctx, plan.name, explain=explain, strategies=plan.strategies)
            if self.observer is not None:
                self.observer(view, ctx, out)
            if self.options.check_plans and len(out.ranking):
                # before the reservation, so a plan that fails the check changes nothing
                check_plan(
                    self.network,
                    view,
                    ctx,
                    self.params,
                    self.records.plan_dict(out, ctx, int(out.ranking[0])),
                    skus=self._skus,
                    destination=self.contexts.resolve(order.destination)[:2],
                    subject=f"order {order.order_id!r}: the plan chosen by {out.strategy}",
                )
            stage = "reserve"
            alloc = self._reserve(out, ctx)
        except InvalidPlanError:
            raise  # debug mode: a wrong plan is a bug to see, not a cause to fall back
        except Exception as exc:  # noqa: BLE001 - every failure after validation is recorded, never raised
            record = self.records.failed(order, now, strategy, stage, exc, t0)
            record["state"] = {"reserve_retries": retries}
            return Decision.from_record(record), _NOTHING
        try:
            if explain:
                record = self.records.full(
                    order, now, ctx, view, out, self.params, t0,
                    strategies=None if plan.strategies is self.strategies else plan.strategies,
                )
                record["state"]["reserve_retries"] = retries
                self._explain_risk(record, view, ctx)
            else:
                record = self.records.lean(order, now, ctx, out, t0)
            self.rollout.after(plan, out, record, record["latency_ms"], order.order_id)
            if plan.arm is not None and self.rollout.shadow is not None:
                record["shadow"] = self._shadow(view, ctx)
            self._use_strategies()
            if seg is not None and len(out.ranking):
                self._note_target(record, seg, at_hours, out, order.order_id, explain, ctx.promise_hours)
        except Exception as exc:  # noqa: BLE001 - no record, no reservation: release and record the failure
            self.state.release(*alloc)
            record = self.records.failed(order, now, strategy, "record", exc, t0)
            record["state"] = {"reserve_retries": retries}
            return Decision.from_record(record), _NOTHING
        return Decision.from_record(record, (time.perf_counter() - t0) * 1000.0), alloc

    def _shadow(self, view: StateView, ctx: OrderContext) -> dict | None:
        """What the shadow version would have chosen on the same view: recorded, never reserved."""

        def run(sset: StrategySet, name: str) -> Ranked:
            return self.decide(view, ctx, name, strategies=sset)

        return self.rollout.shadow_for(view, ctx, run, lambda out, c: self.records.plan_dict(out, ctx, c))

    def _note_target(
        self, record: dict, seg: int, at_hours: float, out: Ranked, order_id: str, explain: bool, promise_hours: float
    ) -> None:
        """Queue the controller's update for this decision; a full record gets the segment's status and sentence."""
        assert self.targets is not None
        late = out.scores.term("late_risk").values
        risk = float(late[int(out.ranking[0])])
        self._target_obs.append(
            (
                seg,
                at_hours,
                min(max(risk, 0.0), 1.0),
                min(max(float(late.min()), 0.0), 1.0),
                order_id,
                at_hours + float(promise_hours),
            )
        )
        if explain:
            status = self.targets.status(seg, at_hours)
            record["service_target"] = status.to_json()
            floor = self.targets.targets.targets[seg].max_late_risk
            record["service_target"]["max_late_risk"] = floor
            sentence = status.sentence()
            record["rationale"]["target_sentence"] = sentence
            record["rationale"]["sentence"] += " " + sentence

    def _explain_risk(self, record: dict, view: StateView, ctx: OrderContext) -> None:
        """Add the learned model's per-feature contributions for the chosen plan and the runner-up."""
        risk = self.risk
        if not isinstance(risk, LaneRiskModel) or record["risk_model"].get("version") != risk.version:
            return
        cands = record["candidates"]
        if not cands:
            return
        # the runner-up the sentence compares with: the best plan on other nodes (rationale._alternative),
        # else the next plan at all
        nodes = {leg[0] for leg in cands[0]["legs"]}
        others = [c for c in cands[1:] if {leg[0] for leg in c["legs"]} != nodes] or cands[1:2]
        plans = [("chosen", cands[0]["legs"])] + [("runner-up", c["legs"]) for c in others[:1]]
        detail, sentence = explain_plans(risk, self.network, view, ctx, self.network.region_ids, plans)
        record["risk_model"]["explain"] = detail
        record["rationale"]["risk_sentence"] = sentence
        record["rationale"]["sentence"] += " " + sentence

    def route_batch(
        self,
        orders: Iterable[Order | dict],
        *,
        strategy: str | None = None,
        decision_ids: Sequence[str] | None = None,
        annotations: Sequence[dict] | None = None,
    ) -> list[Decision]:
        """Route orders one after the other and record them in one ledger transaction.

        Each order sees the reservations of those before it. Every order is validated
        before any is routed, so one bad order changes nothing (InvalidOrderError names
        it by position: ``orders[3].lines[0].sku``). If another process took stock
        meanwhile, the ledger refuses the batch, the router refreshes the cells and
        routes the whole batch again (bounded as for :meth:`route`). If the ledger
        write fails, every reservation of the batch is released and LedgerError is raised.
        ``decision_ids`` and ``annotations``, one per order, as for :meth:`route`.
        """
        validated = []
        orders = list(orders)
        for name, given in (("decision_ids", decision_ids), ("annotations", annotations)):
            if given is not None and len(given) != len(orders):
                raise RouterError(f"{name}: {len(given)} for {len(orders)} orders")
        for i, o in enumerate(orders):
            try:
                validated.append(self.validate(o))
            except InvalidOrderError as exc:
                raise InvalidOrderError(f"orders[{i}].{exc.field}", exc.reason) from None
        strategy = strategy or self.strategy
        self._check_strategy(strategy)
        with self.state.lock:
            self._sync_rollout()
            retries = 0
            while True:
                decisions, allocs = [], []
                self._target_obs = []  # prices move after the batch is kept, not inside it
                for i, order in enumerate(validated):
                    d, a = self._decide_and_reserve(order, strategy, time.perf_counter(), True, retries)
                    if decision_ids is not None or annotations is not None:
                        d = _named(
                            d,
                            None if decision_ids is None else decision_ids[i],
                            None if annotations is None else annotations[i],
                        )
                    decisions.append(d)
                    allocs.append(a)
                if self.ledger is None or not decisions:
                    self._apply_target_obs()
                    return decisions
                try:
                    self.ledger.append_decisions(
                        [(d.record, self._allocations(a)) for d, a in zip(decisions, allocs)], pool=self.stock_pool
                    )
                    self.recorded += len(decisions)
                    self._apply_target_obs()
                    return decisions
                except ReservationConflict as exc:
                    for a in allocs:
                        self.state.release(*a)
                    self.reserve_conflicts += 1
                    self._load_levels(exc.levels)
                    retries += 1
                    if retries > self.options.reserve_retries:
                        raise LedgerError(
                            f"batch of {len(decisions)} decisions not recorded: stock taken by other writers "
                            f"{retries} times ({exc})"
                        ) from exc
                except Exception as exc:
                    for a in allocs:
                        self.state.release(*a)
                    self.failed_writes += len(decisions)
                    if isinstance(exc, LedgerError):
                        raise
                    raise LedgerError(f"batch of {len(decisions)} decisions not recorded: {exc}") from exc

    def _reservation(self, out: Ranked, ctx: OrderContext) -> _Alloc:
        nodes: list[int] = []
        skus: list[int] = []
        qty: list[int] = []
        lanes: list[tuple[int, int]] = []
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
        return nodes, skus, qty, lanes

    def _reserve(self, out: Ranked, ctx: OrderContext) -> _Alloc:
        """Check-and-reserve the chosen plan in the live state; raises when the stock is gone."""
        alloc = self._reservation(out, ctx)
        if len(out.ranking) == 0:
            return alloc  # nothing to reserve for an unfulfillable order
        if not self.state.try_reserve(*alloc):
            # the view was taken under the same lock, so this means the state changed under it
            raise RouterError("the chosen plan's stock was not available at reservation")
        return alloc

    def _allocations(self, alloc: _Alloc) -> list[tuple[str, str, int]]:
        n, k, q, _ = alloc
        return [(self.network.node_ids[a], self._skus[b], int(c)) for a, b, c in zip(n, k, q)]

    # ------------------------------------------------------- review & replay
    def _require_ledger(self) -> DecisionLedger:
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
        dest = Destination.model_validate(record["order"]["destination"])
        return validate_plan(
            self.network,
            inputs.view,
            inputs.context,
            inputs.params,
            record["chosen"],
            skus=self._skus,
            destination=self.contexts.resolve(dest)[:2],
            check_risk=record.get("risk_model", {}).get("version") == RISK_MODEL_VERSION,
        )

    def explain(self, decision_id: str) -> dict:
        """The stored rationale of a decision (sentence, factors, runners-up, exclusions)."""
        rec = self._require_ledger().get_decision(decision_id)
        return {"decision_id": decision_id, "order_id": rec["order_id"], "status": rec["status"], **rec["rationale"]}

    def override(
        self,
        decision_id: str,
        *,
        actor: str,
        reason: str,
        plan: dict | None = None,
        candidate_rank: int | None = None,
    ) -> dict:
        """Replace a decision's plan by a person's choice and move its reservation.

        Give exactly one of ``plan`` (``{"legs": [{node_id, carrier_id, service, lines:
        [{sku, qty}]}]}``) and ``candidate_rank`` (a rank among the candidates the
        decision scored; 1 is the runner-up). See :func:`router.engine.override.override`:
        the plan is checked against current stock, the reservation moves atomically, and
        a new ledger entry points at the decision with actor, reason and the score delta
        of the human choice against the engine's. Returns that entry's body.

        Raises
        ------
        UnknownDecisionError, InvalidOverrideError, OverrideConflict
            Nothing changed.
        """
        from router.engine.override import override

        return override(self, decision_id, actor=actor, reason=reason, plan=plan, candidate_rank=candidate_rank)

    # ------------------------------------------------------------ order states
    def release(self, order_id: str, *, state: str = "released") -> None:
        """Mark an order released to picking (or ``state="shipped"``): re-routing no longer moves it.

        Raises
        ------
        UnknownOrderError
            No decision routed the order into this router's stock pool (an InvalidEventError).
        InvalidEventError
            The order is already in that state or past it.
        RouterError
            This router keeps no ledger.
        """
        ledger = self._require_ledger()
        ledger.mark_orders(self.stock_pool, [order_id], state, self.clock().isoformat())

    def open_backlog(
        self, order_ids: Sequence[str] | None = None, *, filter: dict | None = None
    ) -> tuple[list, list[dict]]:
        """The ledger's open orders (routed, not released), as re-routing sees them, and what was skipped.

        ``order_ids`` names orders (unknown, released or shipped ones are skipped, with the
        reason); ``filter`` selects among all open orders by ``nodes`` (a leg at one of
        them), ``regions`` (destination region) and ``tiers``. A filter that selects
        nothing raises InvalidRerouteError.
        """
        from router.engine.override import _current_plan
        from router.engine.reroute import InvalidRerouteError, OpenOrder

        ledger = self._require_ledger()
        pool = self.stock_pool
        skipped: list[dict] = []
        if order_ids is not None:
            ids = list(dict.fromkeys(order_ids))
            states = ledger.order_states(pool, ids)
            pairs = []
            for oid in ids:
                got = states.get(oid)
                if got is None:
                    skipped.append({"order_id": oid, "reason": "unknown order: no routed decision holds it"})
                elif got[1] != "routed":
                    skipped.append({"order_id": oid, "reason": f"{got[1]}: no longer movable"})
                else:
                    pairs.append((oid, got[0]))
        else:
            pairs = ledger.open_orders(pool)
        backlog = []
        for oid, did in pairs:
            rec = ledger.get_decision(did)
            plan = _current_plan(self, rec)
            if plan is None:
                skipped.append({"order_id": oid, "reason": f"decision {did} holds no plan"})
                continue
            backlog.append(OpenOrder(Order.model_validate(rec["order"]), did, plan))
        if filter:
            unknown = set(filter) - {"nodes", "regions", "tiers"}
            if unknown:
                raise InvalidRerouteError(f"filter.{sorted(unknown)[0]}", "filter by nodes, regions or tiers")
            nodes = set(filter.get("nodes") or ())
            regions = set(filter.get("regions") or ())
            tiers = set(filter.get("tiers") or ())
            for name, given, known in (
                ("nodes", nodes, set(self.network.node_ids)),
                ("regions", regions, set(self.scenario.region_index)),
                ("tiers", tiers, set(self.scenario.tiers)),
            ):
                if given - known:
                    raise InvalidRerouteError(f"filter.{name}", f"unknown: {', '.join(sorted(given - known))}")
            total = len(backlog)

            def keep(oo) -> bool:
                if nodes and not {leg["node_id"] for leg in oo.plan.get("legs", [])} & nodes:
                    return False
                if regions and oo.order.destination.region not in regions:
                    return False
                return not (tiers and oo.order.customer.tier not in tiers)

            backlog = [oo for oo in backlog if keep(oo)]
            if not backlog:
                raise InvalidRerouteError("filter", f"matches none of the {total} open orders")
        return backlog, skipped

    def reroute(
        self,
        order_ids: Sequence[str] | None = None,
        *,
        filter: dict | None = None,
        backlog: Sequence | None = None,
        apply: bool = False,
        time_limit_s: float = 10.0,
        strategy: str | None = None,
        options=None,
        progress: Callable[[str, int, int], None] | None = None,
        mapper: Callable[[Callable, list], list] | None = None,
    ):
        """Re-optimise open orders jointly; a dry run (changes nothing) unless ``apply``.

        The backlog is ``backlog`` (a list of :class:`~router.engine.reroute.OpenOrder`, for
        a router without a ledger: the simulator), else the ledger's open orders, all of
        them or those ``order_ids`` names or ``filter`` selects (see :meth:`open_backlog`).
        ``options`` is a :class:`~router.engine.reroute.RerouteOptions` (``time_limit_s``
        overrides its limit). With ``options.partitions > 1``, ``mapper(fn, items)`` runs the
        partitions (``functools.partial(router.distributed.ordered_map, backend="dask")``
        for Dask); without one they run in this process. Returns the :class:`~router.engine.reroute.ReroutePlan`:
        moves with from/to plans, term deltas and a sentence, KPIs before and after,
        bound and gap, unplaced and skipped orders with reasons. With ``apply``, the
        moves are written as one new decision each, superseding the old, and the
        reservations swap, all or nothing.

        Raises
        ------
        InvalidRerouteError
            A bad argument (a time limit <= 0, a filter that selects nothing); nothing changed.
        RerouteConflict
            Applying found the state changed since planning; nothing changed.
        """
        from dataclasses import replace

        from router.engine.reroute import InvalidRerouteError, RerouteOptions, apply_moves, plan_reroute

        opts = options or RerouteOptions()
        if not isinstance(time_limit_s, int | float) or not time_limit_s > 0 or time_limit_s != time_limit_s:
            raise InvalidRerouteError("time_limit_s", f"must be a number of seconds > 0, got {time_limit_s!r}")
        opts = replace(opts, time_limit_s=float(time_limit_s))
        opts.check()
        if strategy is not None:
            self._check_strategy(strategy)
        skipped: list[dict] = []
        if backlog is None:
            backlog, skipped = self.open_backlog(order_ids, filter=filter)
        elif order_ids is not None or filter:
            raise InvalidRerouteError("backlog", "give a backlog or order_ids/filter, not both")
        factory = None
        if isinstance(self._risk_spec, str | None):
            # how a worker builds this router without its ledger (a partition only generates columns)
            factory = partial(
                Router, self.scenario, ledger=None, params=self.params, strategy=self.strategy,
                strategies=self.strategies, seed=self.seed, options=self.options, risk_model=self._risk_spec,
            )
        key = None
        if factory is not None:
            key = "|".join((self.scenario.name, self.network.content_hash, self.records.params_json(self.params)[0],
                            str(self._risk_spec), self.strategy, str(self.seed)))
        plan = plan_reroute(self, list(backlog), opts=opts, strategy=strategy, skipped=skipped, progress=progress,
                            factory=factory, mapper=mapper, router_key=key)
        if apply:
            apply_moves(self, plan)
        return plan

    def replay(self, decision_id: str, *, strategy: str | None = None):
        """Re-derive a decision from its stored inputs; with ``strategy``, a counterfactual.

        See :func:`router.engine.replay.replay_record`.
        """
        from router.engine.replay import replay_record

        return replay_record(self, self._require_ledger().get_decision(decision_id), strategy=strategy)
