"""Service-level targets: price lateness per tier so that each tier meets its on-time target.

An operator states targets ("vip 98 % on time, plus 95 %, standard 90 %"), not a
price for a late order. Each target is a constraint on expected on-time, and the
``late_risk`` term's weight for that segment (USD for a certain miss) is its
Lagrange multiplier. :class:`LatePriceController` moves each multiplier after
every decision of its segment by a stochastic dual step, the same kind of update
:func:`router.solver.lp.track_prices` makes for stock (Balseiro, Lu & Mirrokni,
"The best of many worlds: dual mirror descent for online allocation problems",
Operations Research 71(1) 2023), in log space so that one gain serves a $5 and a
$300 price::

    est    = (1 - r) - c                   r: late risk of the plan just chosen
                                           c: outcome correction (below)
    gap    = target' - est                 in points (x 100)
    rate   = segment decisions per hour over the window
    price <- clip(price x exp(gain x gap / rate), min_price, max_price)

Summed over an hour of the segment's orders the exponent is ``gain`` x the mean
gap in points: a one-point shortfall held for an hour multiplies the price by
``exp(gain)``, whatever the segment's volume (a sale day's tenfold demand moves
prices no faster than a calm day's).

*Outcome correction.* The plan's late risk is a forecast. As deliveries report
(:meth:`LatePriceController.observe_outcome`), ``c`` is the mean forecast on-time
minus the realised on-time of the segment's orders whose promise fell in the
window, shrunk by ``n / (n + outcome_prior)``: a model that promises more than the
carriers deliver raises the price until the realised rate meets the target. An
outcome counts at its order's promise time, not when it is reported: on-time
deliveries report before late ones, so counting by report time would see the
fast half of each day's orders first and think the network better than it is.
An order whose promise passed with no report counts when its report arrives.

*Guard rail.* Some targets no price can buy (a 24 h promise beyond every lane's
reach). The controller tracks the best reachable on-time of the window: 1 - the
mean of the lowest late risk among each decision's candidates (what an infinite
price would have chosen), corrected by ``c``. When the target exceeds it, the
controller aims half a point below the best reachable rate instead (``target'``)
and reports the target infeasible with that rate; the price never passes
``max_price_usd`` in any case.

The published price lives in the live state (:meth:`router.state.LiveState.set_late_price`):
the next decision of that segment reads it in its view, so every record holds
the price it was scored with and a replay is exact.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict, deque
from dataclasses import dataclass

from router.params import ServiceTarget, ServiceTargets

__all__ = ["INFEASIBLE_SLACK", "LatePriceController", "SegmentStatus", "floor_for", "segment_index"]

#: When a target is beyond reach the controller aims this far below the best reachable on-time.
INFEASIBLE_SLACK = 0.005
#: Decisions a segment needs in its window before it is judged feasible or not.
MIN_DECISIONS_FOR_VERDICT = 30
#: How long a decision waits for its outcome before it is forgotten (hours after the window).
PENDING_HOURS = 24.0 * 14


def segment_index(targets: ServiceTargets, tier: str, region: str | None) -> int | None:
    """Index of the target an order falls under: its tier in its region first, else its tier anywhere."""
    fallback = None
    for i, t in enumerate(targets.targets):
        if t.tier != tier:
            continue
        if t.region is not None and t.region == region:
            return i
        if t.region is None:
            fallback = i
    return fallback


def floor_for(targets: ServiceTargets | None, tier: str, region: str | None) -> float | None:
    """The hard late-risk floor of an order's segment (``max_late_risk``), None when there is none."""
    if targets is None:
        return None
    i = segment_index(targets, tier, region)
    return None if i is None else targets.targets[i].max_late_risk


@dataclass(frozen=True)
class SegmentStatus:
    """What the controller knows of one target segment now (the record's ``service_target``)."""

    segment: str
    target: float
    price_usd: float
    decisions: int  # in the window
    expected_on_time: float | None  # 1 - mean late risk of the window's chosen plans
    outcomes: int  # in the window
    realised_on_time: float | None  # share of the window's reported outcomes on time
    correction: float  # forecast minus realised on-time, shrunk (0 with no outcome)
    best_reachable: float | None  # 1 - mean lowest candidate late risk, corrected
    aim: float  # the on-time the price is steered to (the target, or just below the best reachable)
    feasible: bool | None  # None until the window holds enough decisions
    capped: bool  # the price sits at max_price_usd
    slack: bool  # the price sits at min_price_usd with expected on-time above the aim: the target binds nothing

    @property
    def reason(self) -> str:
        if self.feasible is False:
            return (
                f"target {self.target:.1%} is beyond reach: the best reachable on-time of recent "
                f"{self.segment} orders is {self.best_reachable:.1%} (the lowest-risk plan of each); "
                f"the price aims at {self.aim:.1%} and is capped"
            )
        return ""

    def sentence(self) -> str:
        recent = "no recent decision" if self.expected_on_time is None else f"recent {self.segment} on-time {self.expected_on_time:.1%}"
        if self.realised_on_time is not None:
            recent += f" expected, {self.realised_on_time:.1%} delivered ({self.outcomes} outcomes)"
        text = f"Late risk priced at ${self.price_usd:.2f} for {self.segment} now: {recent} against a {self.target:.1%} target"
        if self.feasible is False:
            text += f" (beyond reach: best reachable {self.best_reachable:.1%})"
        elif self.capped:
            text += " (price at its cap)"
        elif self.slack:
            text += " (met at the lowest price: the target does not bind)"
        return text + "."

    def to_json(self) -> dict:
        def r(x: float | None) -> float | None:
            return None if x is None else round(float(x), 6)

        return {
            "segment": self.segment,
            "target": self.target,
            "price_usd": round(self.price_usd, 6),
            "decisions": self.decisions,
            "expected_on_time": r(self.expected_on_time),
            "outcomes": self.outcomes,
            "realised_on_time": r(self.realised_on_time),
            "correction": r(self.correction),
            "best_reachable": r(self.best_reachable),
            "aim": r(self.aim),
            "feasible": self.feasible,
            "capped": self.capped,
            "slack": self.slack,
            "reason": self.reason,
        }


class _Segment:
    __slots__ = ("spec", "price", "decisions", "sum_risk", "sum_best", "outcomes", "sum_forecast", "sum_on_time", "first_t")

    def __init__(self, spec: ServiceTarget, price: float) -> None:
        self.spec = spec
        self.price = price
        self.decisions: deque[tuple[float, float, float]] = deque()  # (t, risk, lowest candidate risk)
        self.sum_risk = 0.0
        self.sum_best = 0.0
        self.outcomes: deque[tuple[float, float, float]] = deque()  # (t, forecast on-time, on-time 0/1)
        self.sum_forecast = 0.0
        self.sum_on_time = 0.0
        self.first_t: float | None = None


class LatePriceController:
    """Per target segment, a lateness price moved by a dual step after each decision (see the module).

    Parameters
    ----------
    targets : ServiceTargets
    initial_price_usd : dict
        Starting price per segment key (the fixed ``late_risk_usd`` x tier multiplier
        is the natural start); clipped to [min_price_usd, max_price_usd].

    Times are hours on any one clock (the router uses hours since the scenario start).
    Not thread-safe on its own: the router calls it under the state lock.
    """

    def __init__(self, targets: ServiceTargets, initial_price_usd: dict[str, float]) -> None:
        self.targets = targets
        self._segments = [
            _Segment(t, self._clip(float(initial_price_usd.get(t.key, targets.min_price_usd)))) for t in targets.targets
        ]
        self.keys = tuple(t.key for t in targets.targets)
        # order id -> (segment, forecast on-time, decision time, promise time), awaiting its outcome
        self._pending: OrderedDict[str, tuple[int, float, float, float]] = OrderedDict()
        # outcomes reported before their promise: (promise time, seq, segment, forecast, on-time)
        self._due: list[tuple[float, int, int, float, float]] = []
        self._seq = 0
        self.updates = 0

    # ---------------------------------------------------------------- lookups
    def segment(self, tier: str, region: str | None) -> int | None:
        return segment_index(self.targets, tier, region)

    def price(self, segment: int) -> float:
        return self._segments[segment].price

    def _clip(self, price: float) -> float:
        return min(max(price, self.targets.min_price_usd), self.targets.max_price_usd)

    # --------------------------------------------------------------- windows
    def _expire(self, s: _Segment, t: float) -> None:
        horizon = t - self.targets.window_hours
        dq = s.decisions
        while dq and dq[0][0] <= horizon:
            _, risk, best = dq.popleft()
            s.sum_risk -= risk
            s.sum_best -= best
        oq = s.outcomes
        while oq and oq[0][0] <= horizon:
            _, forecast, ok = oq.popleft()
            s.sum_forecast -= forecast
            s.sum_on_time -= ok
        if not dq:  # re-anchor sums on an empty window (no drift from float round-off)
            s.sum_risk = s.sum_best = 0.0
        if not oq:
            s.sum_forecast = s.sum_on_time = 0.0

    def _correction(self, s: _Segment) -> float:
        n = len(s.outcomes)
        if n == 0:
            return 0.0
        shrink = n / (n + self.targets.outcome_prior)
        return shrink * (s.sum_forecast - s.sum_on_time) / n

    # ----------------------------------------------------------------- status
    def status(self, segment: int, t: float | None = None) -> SegmentStatus:
        s = self._segments[segment]
        if t is not None:
            self._expire(s, t)
        n, n_out = len(s.decisions), len(s.outcomes)
        corr = self._correction(s)
        expected = 1.0 - s.sum_risk / n if n else None
        best = 1.0 - s.sum_best / n - corr if n else None
        target = s.spec.on_time
        feasible: bool | None = None
        aim = target
        if best is not None and n >= MIN_DECISIONS_FOR_VERDICT:
            feasible = target <= best
            if not feasible:
                aim = best - INFEASIBLE_SLACK
        return SegmentStatus(
            segment=s.spec.key,
            target=target,
            price_usd=s.price,
            decisions=n,
            expected_on_time=expected,
            outcomes=n_out,
            realised_on_time=s.sum_on_time / n_out if n_out else None,
            correction=corr,
            best_reachable=best,
            aim=aim,
            feasible=feasible,
            capped=s.price >= self.targets.max_price_usd,
            slack=s.price <= self.targets.min_price_usd and expected is not None and expected - corr > aim,
        )

    def report(self, t: float | None = None) -> list[dict]:
        """Every segment's :class:`SegmentStatus` as JSON (for reports and ``router frontier``)."""
        return [self.status(i, t).to_json() for i in range(len(self._segments))]

    # ---------------------------------------------------------------- updates
    def observe_decision(
        self,
        segment: int,
        t: float,
        risk: float,
        best_risk: float,
        order_id: str | None = None,
        promise_t: float | None = None,
    ) -> float:
        """One decision of ``segment`` at time ``t`` chose a plan with late risk ``risk``; returns the new price.

        ``best_risk`` is the lowest late risk among the decision's candidates (what an
        unbounded price would have bought). With ``order_id`` the decision waits for
        its outcome (:meth:`observe_outcome`), which counts at ``promise_t`` (default ``t``).
        """
        risk, best_risk = float(risk), float(best_risk)
        if not (0.0 <= risk <= 1.0 and 0.0 <= best_risk <= 1.0):
            raise ValueError(f"late risks must be probabilities, got {risk!r} and {best_risk!r}")
        self._harvest(t)
        s = self._segments[segment]
        if s.first_t is None:
            s.first_t = t
        s.decisions.append((t, risk, best_risk))
        s.sum_risk += risk
        s.sum_best += best_risk
        self._expire(s, t)
        status = self.status(segment)
        # decisions per hour in the window; the first hour counts as a whole hour
        span = min(self.targets.window_hours, max(t - s.first_t, 1.0))
        rate = max(len(s.decisions), 1) / span
        gap_points = 100.0 * (status.aim - ((1.0 - risk) - status.correction))
        s.price = self._clip(s.price * math.exp(self.targets.gain * gap_points / rate))
        if order_id is not None:
            self._pending[order_id] = (segment, 1.0 - risk, t, t if promise_t is None else float(promise_t))
            self._pending.move_to_end(order_id)
            limit = t - self.targets.window_hours - PENDING_HOURS
            while self._pending and next(iter(self._pending.values()))[2] < limit:
                self._pending.popitem(last=False)
        self.updates += 1
        return s.price

    def observe_outcome(self, order_id: str, t: float, on_time: bool) -> bool:
        """The outcome of ``order_id`` became known at ``t``; returns False when the order is not awaited.

        Only orders decided under a target are awaited; an outcome reported twice counts
        once. It enters the window at the order's promise time, or at ``t`` when that is later.
        """
        entry = self._pending.pop(order_id, None)
        if entry is None:
            return False
        segment, forecast, _, promise_t = entry
        ok = 1.0 if on_time else 0.0
        if promise_t > t:
            heapq.heappush(self._due, (promise_t, self._seq, segment, forecast, ok))
            self._seq += 1
        else:
            self._count(segment, t, forecast, ok)
        return True

    def _harvest(self, t: float) -> None:
        """Count the outcomes whose promise time has come."""
        due = self._due
        while due and due[0][0] <= t:
            at, _, segment, forecast, ok = heapq.heappop(due)
            self._count(segment, at, forecast, ok)

    def _count(self, segment: int, t: float, forecast: float, ok: float) -> None:
        s = self._segments[segment]
        s.outcomes.append((t, forecast, ok))
        s.sum_forecast += forecast
        s.sum_on_time += ok
        self._expire(s, t)
