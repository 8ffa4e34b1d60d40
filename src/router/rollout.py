"""Rollout of strategy versions: modes (off, shadow, canary, on), circuit breakers, health and guards.

A strategy version (a :class:`~router.strategies.Strategy` with a ``name`` and a
``version``, e.g. a declared strategy whose version is its content hash) is in one
mode at a time:

``off``
    not used (the default of every version that is not the router's own).
``shadow``
    decides on the same view as the live decision and the record keeps what it would
    have done (``record["shadow"]``); it never reserves stock.
``canary`` p %
    decides a sticky share of the orders that request the router's default strategy
    (the control). An order is in the canary when
    ``blake2b(f"{name}:{version}:{key}") mod 10000 < round(p * 100)``, where ``key`` is
    the order id (``RolloutOptions.sticky="order"``, the default) or the customer id
    (``"customer"``): the same key always lands in the same arm of a canary version, on
    every worker, and the shares are exact to 0.01 %.
``on``
    the active version of its name: it replaces that name's strategy in the router's
    set (``off`` returns the name to the version the router was built with).

One canary and one shadow run at a time: the latest mode change wins. Orders that
request another strategy explicitly are not part of the experiment. Every decision
of an experiment says its arm (``record["canary"]``); with neither a canary nor a
shadow, ``record["canary"]`` stays null.

Mode changes are records: with a ledger that keeps strategy modes
(:class:`~router.ledger.StrategyStore`) they are appended there, with actor and reason,
and every router on the ledger applies them at a decision boundary (:meth:`Rollout.sync`
polls the log's last ``seq``, at most every ``poll_ms``): the ledger is the one source
of what is active, so every worker agrees.

Every strategy a decision requests has a **circuit breaker**: after
``breaker_failures`` (3) consecutive failures (its stage raised and the fallback chain
decided) it opens, and decisions go straight to its fallback chain; after
``breaker_cooldown_s`` (injected clock) ONE decision tries it again (half open): a
good trial closes the breaker, a bad one opens it again. The record's ``breaker``
says the state and why.

Per strategy version the rollout counts decisions, errors, fallbacks, latency (p99
over the last ``latency_window`` decisions) and, as outcomes arrive
(:meth:`Rollout.observe_outcome`), on-time. **Guards** watch the canary: error rate,
p99 latency, and on-time below control beyond a margin, each once it has its minimum
sample; a tripped guard sets the canary ``off`` by itself with a mode record naming
the guard and its numbers.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from router.strategies import Strategy, StrategySet

__all__ = [
    "ARMS",
    "MODES",
    "Breaker",
    "GuardOptions",
    "Health",
    "Rollout",
    "RolloutOptions",
    "canary_bucket",
    "health_from_records",
    "in_canary",
]

_log = logging.getLogger(__name__)

#: The modes of a strategy version.
MODES = ("off", "shadow", "canary", "on")
#: The arms a decision of an experiment is in.
ARMS = ("control", "canary")
_BUCKETS = 10_000
# outcomes wait for their decision's arm this long (orders), oldest forgotten first
_REMEMBER = 200_000


def canary_bucket(key: str, salt: str) -> int:
    """The key's bucket in 0..9999 for the canary ``salt`` (``name:version``): a stable hash, no random state."""
    digest = hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _BUCKETS


def in_canary(key: str, percent: float, salt: str) -> bool:
    """Whether ``key`` is in a ``percent`` % canary of ``salt``: sticky, the same on every worker."""
    return canary_bucket(key, salt) < round(percent * 100)


@dataclass(frozen=True)
class GuardOptions:
    """When a canary rolls back by itself; each guard waits for its minimum sample."""

    max_error_rate: float = 0.05
    min_decisions: int = 50
    max_p99_ms: float = 250.0
    min_latency_samples: int = 100
    on_time_margin: float = 0.05
    min_outcomes: int = 50


@dataclass(frozen=True)
class RolloutOptions:
    """How the rollout runs: canary key, polling, breaker, health window, guards."""

    sticky: str = "order"  # "order" | "customer"
    poll_ms: float = 200.0
    breaker_failures: int = 3
    breaker_cooldown_s: float = 60.0
    latency_window: int = 1000
    guards: GuardOptions = field(default_factory=GuardOptions)

    def __post_init__(self) -> None:
        if self.sticky not in ("order", "customer"):
            raise ValueError(f"sticky must be 'order' or 'customer', got {self.sticky!r}")
        if self.breaker_failures < 1:
            raise ValueError("breaker_failures must be >= 1")


class Breaker:
    """One strategy's circuit breaker: closed, open (skip it) or half open (one trial)."""

    def __init__(self, failures_to_open: int, cooldown_s: float) -> None:
        self.failures_to_open = failures_to_open
        self.cooldown = timedelta(seconds=cooldown_s)
        self.state = "closed"
        self.failures = 0  # consecutive
        self.opened_at: datetime | None = None
        self.reason = ""
        self.opened = 0  # times opened

    def admit(self, now: datetime) -> str:
        """``closed`` (run it), ``half_open`` (run it as the one trial) or ``open`` (skip it)."""
        if self.state == "open":
            assert self.opened_at is not None
            if now - self.opened_at >= self.cooldown:
                self.state = "half_open"
                return "half_open"
            return "open"
        return self.state

    def result(self, ok: bool, now: datetime, why: str = "") -> None:
        if ok:
            self.state, self.failures, self.reason = "closed", 0, ""
            return
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.failures_to_open:
            trial = self.state == "half_open"
            self.state, self.opened_at, self.opened = "open", now, self.opened + 1
            self.reason = (
                f"the half-open trial failed ({why})"
                if trial
                else f"{self.failures} consecutive failures (last: {why})"
            )

    def info(self, name: str, version: str, state: str) -> dict:
        retry = None if self.opened_at is None else (self.opened_at + self.cooldown).isoformat()
        return {
            "strategy": name,
            "version": version,
            "state": state,
            "reason": self.reason if state == "open" else f"cool-down over: one trial ({self.reason})",
            "consecutive_failures": self.failures,
            "retry_at": retry,
        }


class Health:
    """One strategy version's counters: decisions, errors, fallbacks, latency window, outcomes."""

    def __init__(self, window: int) -> None:
        self.decisions = 0
        self.errors = 0
        self.fallbacks = 0
        self.latency_ms: deque[float] = deque(maxlen=window)
        self.outcomes = 0
        self.on_time = 0

    def p99_ms(self) -> float | None:
        return float(np.percentile(np.fromiter(self.latency_ms, float), 99)) if self.latency_ms else None

    def on_time_rate(self) -> float | None:
        return self.on_time / self.outcomes if self.outcomes else None

    def to_json(self) -> dict:
        p99 = self.p99_ms()
        rate = self.on_time_rate()
        return {
            "decisions": self.decisions,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "error_rate": round(self.errors / self.decisions, 6) if self.decisions else None,
            "p99_ms": None if p99 is None else round(p99, 4),
            "outcomes": self.outcomes,
            "on_time": None if rate is None else round(rate, 6),
        }


@dataclass
class Plan:
    """What one decision runs: the strategy set and name, its arm and breaker (see :meth:`Rollout.plan`)."""

    strategies: StrategySet
    name: str
    key: tuple[str, str] | None  # (name, version) of the strategy the arm requests
    arm: dict | None
    breaker: str  # "closed" | "half_open" | "open"
    skipped_to: str | None = None


class Rollout:
    """The modes, breakers and health of one router's strategies.

    Parameters
    ----------
    base : StrategySet
        The router's strategies as built: ``off`` of an ``on`` version returns to these.
    control : str
        The router's default strategy: the control arm of canaries and shadows.
    clock : callable
        The injected clock (breaker cool-downs, mode record times).
    store : StrategyStore, optional
        Where mode changes and versions live (the ledger); None keeps them in memory.
    loader : callable (name, body) -> Strategy, optional
        Builds a stored version from its body (the router passes the strategy-file
        compiler); without one only versions known to ``base`` can be used.
    """

    def __init__(
        self,
        base: StrategySet,
        control: str,
        *,
        clock: Callable[[], datetime],
        options: RolloutOptions | None = None,
        store: Any = None,
        loader: Callable[[str, dict], Strategy] | None = None,
    ) -> None:
        self.base = base
        self.control = control
        self.clock = clock
        self.options = options or RolloutOptions()
        self.store = store
        self.loader = loader
        self.current = base  # the set with every "on" version in place
        self.modes: dict[tuple[str, str], dict] = {}  # latest mode record per version
        self.on: dict[str, Strategy] = {}  # name -> the "on" version
        self.canary: tuple[Strategy, float, StrategySet, str] | None = None  # strategy, percent, set, salt
        self.shadow: tuple[Strategy, StrategySet] | None = None
        self.active = False  # a canary or a shadow runs
        self.unresolved: dict[tuple[str, str], str] = {}
        self.breakers: dict[tuple[str, str], Breaker] = {}
        self.health: dict[tuple[str, str], Health] = {}
        self.trips: list[dict] = []
        self._arms: OrderedDict[str, tuple[tuple[str, str], str]] = OrderedDict()
        self.seq = 0
        self._polled = -float("inf")
        self._checks = 0
        self.sync(force=True)

    # ------------------------------------------------------------------ modes
    def resolve(self, name: str, version: str) -> Strategy | None:
        """The strategy ``name`` at ``version``: known to the set, else built from the store's body."""
        got = self.base.get_version(name, version)
        if got is not None:
            return got
        if self.store is None:
            return None
        row = self.store.get_strategy_version(version)
        if row is None or row["name"] != name:
            return None
        if self.loader is None:
            return None
        strategy = self.loader(name, row["body"])
        if str(strategy.version) != str(version):
            raise ValueError(f"stored version {version!r} of {name!r} compiles to version {strategy.version!r}")
        self.base.add_version(strategy)
        return strategy

    def set_mode(
        self,
        name: str,
        version: str,
        mode: str,
        *,
        percent: float = 0.0,
        actor: str,
        reason: str,
        guard: dict | None = None,
    ) -> dict:
        """Record a mode change (in the store when there is one) and apply it; return the record."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not 0.0 <= float(percent) <= 100.0:
            raise ValueError(f"canary percent must be within 0-100, got {percent}")
        if mode != "off" and self.resolve(name, str(version)) is None:
            raise ValueError(f"strategy {name!r} version {version!r} is unknown here and not stored in the ledger")
        now = self.clock().isoformat()
        if self.store is not None:
            row = self.store.append_mode(
                name, str(version), mode, canary_percent=float(percent), actor=actor, reason=reason,
                created_at=now, guard=guard,
            )
            self.sync(force=True)
            return row
        row = {
            "name": name, "version": str(version), "mode": mode, "canary_percent": float(percent),
            "actor": actor, "reason": reason, "guard": guard, "created_at": now, "seq": self.seq + 1,
        }
        self._apply([row])
        return row

    def sync(self, force: bool = False) -> bool:
        """Apply the store's mode changes made since the last one applied; True when something changed.

        Polls the log's head at most every ``poll_ms`` (always with ``force``): a decision
        boundary costs a clock read, and one indexed read when the interval has passed.
        """
        if self.store is None:
            return False
        now = time.monotonic()
        if not force and (now - self._polled) * 1000.0 < self.options.poll_ms:
            return False
        self._polled = now
        if self.store.modes_head() == self.seq:
            return False
        self._apply(self.store.modes_since(self.seq))
        return True

    def _apply(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self.seq = max(self.seq, int(row.get("seq", self.seq + 1)))
            key = (row["name"], str(row["version"]))
            self.modes[key] = row
            mode = row["mode"]
            if mode != "off":
                try:
                    strategy = self.resolve(*key)
                except Exception as exc:  # noqa: BLE001 - a version that cannot be built stays off, visibly
                    strategy, why = None, f"{type(exc).__name__}: {exc}"
                else:
                    why = "unknown version: not in this router's set and not buildable from the ledger"
                if strategy is None:
                    self.unresolved[key] = why
                    _log.warning("strategy %s version %s set %s but unresolved: %s", key[0], key[1], mode, why)
                    mode = "off"
                else:
                    self.unresolved.pop(key, None)
            self._drop(key)
            if mode == "on":
                self.on[key[0]] = strategy  # type: ignore[assignment]
            elif mode == "canary":
                self.canary = (strategy, float(row["canary_percent"]), self.base, f"{key[0]}:{key[1]}")  # type: ignore[assignment]
            elif mode == "shadow":
                self.shadow = (strategy, self.base)  # type: ignore[assignment]
        self._rebuild()

    def _drop(self, key: tuple[str, str]) -> None:
        if self.canary is not None and _key(self.canary[0]) == key:
            self.canary = None
        if self.shadow is not None and _key(self.shadow[0]) == key:
            self.shadow = None
        if key[0] in self.on and _key(self.on[key[0]]) == key:
            del self.on[key[0]]

    def _rebuild(self) -> None:
        current = self.base
        for _name, strategy in sorted(self.on.items(), key=lambda kv: kv[0]):
            current = current.with_strategy(strategy, self._fallback_for(current, strategy))
        self.current = current
        if self.canary is not None:
            s, pct, _, salt = self.canary
            self.canary = (s, pct, current.with_strategy(s, self._fallback_for(current, s)), salt)
        if self.shadow is not None:
            s = self.shadow[0]
            self.shadow = (s, current.with_strategy(s, self._fallback_for(current, s)))
        self.active = self.canary is not None or self.shadow is not None

    def _fallback_for(self, current: StrategySet, strategy: Strategy) -> tuple[str, ...]:
        """The strategy's own declared fallback (names of the set), else as its name does, else the control's chain."""
        declared = getattr(strategy, "fallback", None)
        if declared:
            return tuple(f for f in declared if f in current and f != strategy.name)
        if strategy.name in current:
            return current.chain(strategy.name)[1:]
        return current.chain(self.control) if self.control in current else ()

    # -------------------------------------------------------------- decisions
    def plan(self, order: Any, requested: str) -> Plan:
        """The strategy set and name one decision runs, its arm, and its breaker's verdict."""
        strategies, name, arm = self.current, requested, None
        if self.active and requested == self.control:
            control = strategies.get(requested)
            arm = {"arm": "control", "strategy": control.name, "version": str(control.version), "percent": 0.0}
            if self.canary is not None:
                cand, pct, cset, salt = self.canary
                arm["percent"] = pct
                key = order.order_id if self.options.sticky == "order" else order.customer.customer_id
                if in_canary(key, pct, salt):
                    strategies, name = cset, cand.name
                    arm = {"arm": "canary", "strategy": cand.name, "version": str(cand.version), "percent": pct}
        strategy = strategies.get(name)
        key = (name, str(strategy.version))
        breaker = self.breakers.get(key)
        state = "closed" if breaker is None else breaker.admit(self.clock())
        plan = Plan(strategies, name, key, arm, state)
        if state == "open":
            chain = strategies.chain(name)
            if len(chain) > 1:
                plan.skipped_to = chain[1]
                plan.name = chain[1]
            else:
                plan.breaker = "open_no_fallback"  # nothing to route to instead: it runs anyway
        return plan

    def after(self, plan: Plan, out: Any, record: dict | None, latency_ms: float, order_id: str) -> None:
        """Count the decision, move the breaker, note the arm and fallback in the record, run the guards."""
        key = plan.key
        assert key is not None
        name = key[0]
        health = self.health.get(key)
        if health is None:
            health = self.health[key] = Health(self.options.latency_window)
        health.decisions += 1
        health.latency_ms.append(latency_ms)
        fallback = out.fallback
        if plan.skipped_to is not None:
            health.fallbacks += 1
            opened = self.breakers[key]
            fallback["requested"] = name
            fallback["causes"].insert(
                0, {"strategy": name, "stage": "breaker", "error": f"circuit open: {opened.reason}"}
            )
            info = {**opened.info(name, key[1], "open"), "routed_to": plan.skipped_to}
            if record is not None and "strategy" in record:
                record["strategy"]["requested"] = name
        else:
            failed = next((c for c in fallback["causes"] if c["strategy"] == name), None)
            if out.strategy != name:
                health.fallbacks += 1
            if failed is not None:
                health.errors += 1
            breaker = self.breakers.get(key)
            if failed is not None or breaker is not None:
                if breaker is None:
                    breaker = self.breakers[key] = Breaker(
                        self.options.breaker_failures, self.options.breaker_cooldown_s
                    )
                why = "" if failed is None else f"{failed['stage']}: {failed['error']}"
                breaker.result(failed is None, self.clock(), why)
            info = None
            if plan.breaker == "half_open":
                assert breaker is not None
                info = {
                    "strategy": name,
                    "version": key[1],
                    "state": "half_open",
                    "reason": "cool-down over: this decision was the one trial",
                    "trial": "passed" if failed is None else "failed",
                    "now": breaker.state,
                }
        if record is not None:
            if plan.arm is not None:
                record["canary"] = plan.arm
            if info is not None:
                record["breaker"] = info
        if plan.arm is not None:
            self._remember(order_id, key, plan.arm["arm"])
            if plan.arm["arm"] == "canary":
                self._checks += 1
                if failed_or_slow(health, self.options.guards) or self._checks % 16 == 0:
                    self.check_guards()

    def shadow_for(self, view: Any, ctx: Any, decide: Callable[[StrategySet, str], Any], plan_dict: Callable) -> dict | None:
        """What the shadow version would have done on the same inputs (nothing reserved), or None."""
        if self.shadow is None:
            return None
        strategy, sset = self.shadow
        key = _key(strategy)
        health = self.health.get(key)
        if health is None:
            health = self.health[key] = Health(self.options.latency_window)
        t0 = time.perf_counter()
        out = decide(sset, strategy.name)
        ms = (time.perf_counter() - t0) * 1000.0
        health.decisions += 1
        health.latency_ms.append(ms)
        if out.strategy != strategy.name:
            health.fallbacks += 1
        if any(c["strategy"] == strategy.name for c in out.fallback["causes"]):
            health.errors += 1
        chosen = out.chosen
        return {
            "strategy": strategy.name,
            "version": str(strategy.version),
            "used": out.strategy,
            "plan": None if chosen is None else plan_dict(out, chosen),
            "score": None if chosen is None else round(float(out.scores.total[chosen]), 6),
            "fallback": out.fallback if out.fallback["causes"] else None,
            "latency_ms": round(ms, 4),
        }

    def _remember(self, order_id: str, key: tuple[str, str], arm: str) -> None:
        self._arms[order_id] = (key, arm)
        if len(self._arms) > _REMEMBER:
            self._arms.popitem(last=False)

    def observe_outcome(self, order_id: str, on_time: bool) -> bool:
        """Count a delivered order of an experiment for its arm; False when the order is not one."""
        got = self._arms.pop(order_id, None)
        if got is None:
            return False
        key, arm = got
        health = self.health.get(key)
        if health is None:
            health = self.health[key] = Health(self.options.latency_window)
        health.outcomes += 1
        health.on_time += bool(on_time)
        if arm == "canary":
            self.check_guards()
        return True

    # ----------------------------------------------------------------- guards
    def check_guards(self) -> dict | None:
        """Roll the canary back (mode off, with a record naming the guard) when a guard trips; the trip or None."""
        if self.canary is None:
            return None
        cand = self.canary[0]
        key = _key(cand)
        h = self.health.get(key)
        if h is None:
            return None
        g = self.options.guards
        trip = None
        if h.decisions >= g.min_decisions and h.errors / h.decisions > g.max_error_rate:
            trip = {
                "guard": "error_rate",
                "value": round(h.errors / h.decisions, 6),
                "threshold": g.max_error_rate,
                "samples": h.decisions,
                "errors": h.errors,
            }
        if trip is None and len(h.latency_ms) >= g.min_latency_samples:
            p99 = h.p99_ms()
            if p99 is not None and p99 > g.max_p99_ms:
                trip = {"guard": "p99_latency", "value": round(p99, 4), "threshold": g.max_p99_ms,
                        "samples": len(h.latency_ms), "unit": "ms"}
        if trip is None and h.outcomes >= g.min_outcomes:
            control = self.current.get(self.control)
            c = self.health.get(_key(control))
            rate = h.on_time_rate()
            crate = None if c is None or c.outcomes < g.min_outcomes else c.on_time_rate()
            if rate is not None and crate is not None and rate < crate - g.on_time_margin:
                trip = {"guard": "on_time_vs_control", "value": round(rate, 6), "control": round(crate, 6),
                        "margin": g.on_time_margin, "threshold": round(crate - g.on_time_margin, 6),
                        "samples": h.outcomes, "control_samples": c.outcomes}  # type: ignore[union-attr]
        if trip is None:
            return None
        reason = _trip_sentence(cand, trip)
        trip = {**trip, "strategy": cand.name, "version": str(cand.version)}
        try:
            self.set_mode(cand.name, str(cand.version), "off", actor=f"guard:{trip['guard']}", reason=reason, guard=trip)
        except Exception:  # noqa: BLE001 - the ledger refused: roll back here anyway, and say so
            _log.exception("guard %s tripped but the mode record was not written", trip["guard"])
            self._drop(key)
            self._rebuild()
        self.trips.append({**trip, "reason": reason})
        return trip

    # ----------------------------------------------------------------- status
    def status(self) -> dict:
        """Modes, the running canary and shadow, breakers and health: what ``router strategy status`` shows."""
        return {
            "control": self.control,
            "modes": [dict(r) for r in self.modes.values()],
            "on": {n: str(s.version) for n, s in self.on.items()},
            "canary": None
            if self.canary is None
            else {"strategy": self.canary[0].name, "version": str(self.canary[0].version), "percent": self.canary[1]},
            "shadow": None
            if self.shadow is None
            else {"strategy": self.shadow[0].name, "version": str(self.shadow[0].version)},
            "breakers": [
                {"strategy": k[0], "version": k[1], "state": b.state, "consecutive_failures": b.failures,
                 "opened": b.opened, "reason": b.reason}
                for k, b in self.breakers.items()
            ],
            "health": [{"strategy": k[0], "version": k[1], **h.to_json()} for k, h in self.health.items()],
            "unresolved": [{"strategy": k[0], "version": k[1], "why": w} for k, w in self.unresolved.items()],
            "trips": list(self.trips),
        }


def failed_or_slow(health: Health, guards: GuardOptions) -> bool:
    """Cheap pre-check: only an error since the last check makes every canary decision re-check the guards."""
    return health.errors > 0 and health.decisions >= guards.min_decisions


def _key(strategy: Strategy) -> tuple[str, str]:
    return (strategy.name, str(strategy.version))


def _trip_sentence(cand: Strategy, trip: dict) -> str:
    what = f"canary {cand.name} {str(cand.version)[:12]} rolled back by guard {trip['guard']}"
    if trip["guard"] == "error_rate":
        return f"{what}: error rate {trip['value']:.1%} over {trip['samples']} decisions > {trip['threshold']:.1%}"
    if trip["guard"] == "p99_latency":
        return f"{what}: p99 latency {trip['value']:.1f} ms over {trip['samples']} decisions > {trip['threshold']} ms"
    return (
        f"{what}: on-time {trip['value']:.1%} over {trip['samples']} outcomes < control {trip['control']:.1%} "
        f"- margin {trip['margin']:.1%}"
    )


def health_from_records(records: Iterable[dict], outcomes: dict[str, bool] | None = None) -> list[dict]:
    """Health per (strategy, version, arm) read off recorded decisions: what every worker did.

    ``outcomes`` maps decision ids to on-time. A breaker's last recorded state per
    strategy is reported too (``open`` or ``half_open`` when the last record said so).
    """
    rows: dict[tuple[str, str, str], dict] = {}
    lat: dict[tuple[str, str, str], list[float]] = {}
    for rec in records:
        canary = rec.get("canary") or {}
        strat = rec.get("strategy") or {}
        name = canary.get("strategy") or strat.get("requested") or strat.get("name") or "?"
        version = str(canary.get("version") or strat.get("version") or "?")
        arm = canary.get("arm") or "-"
        k = (name, version, arm)
        row = rows.setdefault(
            k, {"strategy": name, "version": version, "arm": arm, "decisions": 0, "errors": 0, "fallbacks": 0,
                "outcomes": 0, "on_time": 0, "breaker": "closed", "shadowed": 0}
        )
        row["decisions"] += 1
        fb = rec.get("fallback") or {}
        if any(c.get("strategy") == name and c.get("stage") != "breaker" for c in fb.get("causes") or ()):
            row["errors"] += 1
        if fb.get("used") != fb.get("requested"):
            row["fallbacks"] += 1
        if rec.get("shadow"):
            row["shadowed"] += 1
        if row["decisions"] == 1:  # records come newest first: the first one seen has the last state
            row["breaker"] = (rec.get("breaker") or {}).get("state", "closed")
        lat.setdefault(k, []).append(float(rec.get("latency_ms") or 0.0))
        if outcomes is not None and rec.get("decision_id") in outcomes:
            row["outcomes"] += 1
            row["on_time"] += bool(outcomes[rec["decision_id"]])
    out = []
    for k, row in rows.items():
        row["p99_ms"] = round(float(np.percentile(lat[k], 99)), 4) if lat[k] else None
        row["on_time_rate"] = round(row["on_time"] / row["outcomes"], 6) if row["outcomes"] else None
        out.append(row)
    return sorted(out, key=lambda r: (r["strategy"], r["version"], r["arm"]))
