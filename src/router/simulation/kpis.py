"""KPIs of a simulation run: per-order tables and summaries overall, by tier, region and node.

Definitions (``routed`` orders got a plan; the others are unfulfilled):

* ``on_time_rate`` = orders delivered by their promise / routed orders;
  ``late_orders`` = routed orders delivered after it. Every order is exactly one
  of on time, late or unfulfilled.
* ``fill_rate`` = routed orders / orders; ``unfulfilled_lines`` counts every
  line of an unfulfillable order (plans cover all lines or none).
* ``cost_per_order_usd`` = mean plan cost (shipping + handling) of routed orders.
* ``shipments_per_order`` = mean legs per routed order; ``split_rate`` = share of
  routed orders shipped in more than one leg.
* ``mean_delivery_hours`` / ``p95_delivery_hours``: order arrival to delivery of
  its last leg (numpy's linear-interpolation percentile).
* node ``utilisation`` = picking hours / the run's demand horizon (the initial
  backlog counts: it is work the node did).
* ``decisions_per_s`` = orders / wall seconds inside ``Router.route``; it is a
  timing, kept under ``timing`` and left out when ``timing=False`` so that the
  rest compares equal across identical runs.

Values that have no meaning for an empty group (a rate over zero orders) are
None, not NaN, so that two KPI dicts compare equal with ``==``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from router.simulation.simulator import SimResult

__all__ = ["kpis", "legs_frame", "outcomes_frame"]


def outcomes_frame(result: SimResult) -> pd.DataFrame:
    """One row per order: tier, region, node(s), times, status, cost, shipments."""
    legs = result.legs
    nodes_of: list[list[str]] = [[] for _ in range(result.n_orders)]
    for i, n in zip(legs.order.tolist(), legs.node.tolist()):
        nodes_of[i].append(result.node_ids[n])
    routed = result.routed
    status = np.where(~routed, "unfulfilled", np.where(result.on_time, "on_time", "late"))
    return pd.DataFrame(
        {
            "order_id": list(result.order_id),
            "tier": [result.tier_names[t] for t in result.tier.tolist()],
            "region": [result.region_ids[r] if r >= 0 else None for r in result.region.tolist()],
            "nodes": ["+".join(x) for x in nodes_of],
            "arrival_hours": result.arrival_hours,
            "promise_hours": result.promise_hours,
            "delivered_hours": result.delivered_hours,
            "delivery_hours": result.delivery_hours,
            "status": status,
            "on_time": result.on_time,
            "cost_usd": np.where(routed, result.cost_usd, np.nan),
            "shipments": result.shipments,
            "n_lines": result.n_lines,
            "unfulfilled_lines": result.unfulfilled_lines,
        }
    )


def legs_frame(result: SimResult) -> pd.DataFrame:
    """One row per leg: order, node, carrier, service, pick, departure, transit, delivery."""
    legs = result.legs
    return pd.DataFrame(
        {
            "order_id": [result.order_id[i] for i in legs.order.tolist()],
            "node": [result.node_ids[n] for n in legs.node.tolist()],
            "carrier": [result.option_labels[o][0] for o in legs.option.tolist()],
            "service": [result.option_labels[o][1] for o in legs.option.tolist()],
            "cost_usd": legs.cost_usd,
            "routed_hours": legs.routed_hours,
            "pick_start_hours": legs.pick_start_hours,
            "pick_done_hours": legs.pick_done_hours,
            "depart_hours": legs.depart_hours,
            "transit_hours": legs.transit_hours,
            "delivered_hours": legs.delivered_hours,
        }
    )


def _num(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _mean(x: np.ndarray) -> float | None:
    return _num(x.mean()) if len(x) else None


def _orders_summary(r: SimResult, mask: np.ndarray) -> dict:
    routed = mask & r.routed
    n_orders, n_routed = int(mask.sum()), int(routed.sum())
    on_time = int((mask & r.on_time).sum())
    hours = r.delivery_hours[routed]
    ships = r.shipments[routed]
    return {
        "orders": n_orders,
        "routed_orders": n_routed,
        "on_time_orders": on_time,
        "late_orders": n_routed - on_time,
        "unfulfilled_orders": n_orders - n_routed,
        "unfulfilled_lines": int(r.unfulfilled_lines[mask].sum()),
        "fill_rate": n_routed / n_orders if n_orders else None,
        "on_time_rate": on_time / n_routed if n_routed else None,
        "cost_per_order_usd": _mean(r.cost_usd[routed]),
        "shipments_per_order": _mean(ships.astype(float)),
        "split_rate": _mean((ships > 1).astype(float)),
        "mean_delivery_hours": _mean(hours),
        "p95_delivery_hours": _num(np.percentile(hours, 95)) if len(hours) else None,
    }


def _node_summary(r: SimResult, n: int) -> dict:
    legs = r.legs
    lm = legs.node == n
    orders = np.zeros(r.n_orders, dtype=bool)
    orders[legs.order[lm]] = True
    leg_late = legs.delivered_hours[lm] > r.promise_hours[legs.order[lm]]
    summary = _orders_summary(r, orders)
    return {
        "legs": int(lm.sum()),
        "orders": summary["orders"],
        "on_time_rate": summary["on_time_rate"],
        "late_legs": int(leg_late.sum()),
        "leg_cost_usd": _num(legs.cost_usd[lm].sum()),
        "mean_pick_wait_hours": _mean(legs.pick_done_hours[lm] - legs.routed_hours[lm]),
        "mean_leg_delivery_hours": _mean(legs.delivered_hours[lm] - legs.routed_hours[lm]),
        "busy_hours": _num(r.busy_hours[n]),
        "utilisation": _num(r.busy_hours[n] / r.horizon_hours) if r.horizon_hours > 0 else None,
    }


def kpis(result: SimResult, *, timing: bool = True) -> dict:
    """The run's KPIs: ``overall``, ``by_tier``, ``by_region``, ``by_node`` and (optionally) ``timing``.

    Parameters
    ----------
    result : SimResult
    timing : bool
        Include wall-clock figures (``decisions_per_s``...). Leave them out to
        compare runs: without them the dict is a pure function of the scenario,
        strategy and seed.
    """
    r = result
    every = np.ones(r.n_orders, dtype=bool)
    overall = _orders_summary(r, every)
    by_node = {nid: _node_summary(r, n) for n, nid in enumerate(r.node_ids)}
    util = [v["utilisation"] for v in by_node.values() if v["utilisation"] is not None]
    overall["max_node_utilisation"] = max(util) if util else None
    out = {
        "scenario": r.scenario,
        "strategy": r.strategy,
        "seed": r.seed,
        "horizon_hours": r.horizon_hours,
        "overall": overall,
        "by_tier": {name: _orders_summary(r, r.tier == t) for t, name in enumerate(r.tier_names) if (r.tier == t).any()},
        "by_region": {
            rid: _orders_summary(r, r.region == g) for g, rid in enumerate(r.region_ids) if (r.region == g).any()
        },
        "by_node": by_node,
    }
    if r.targets:
        # Service-level targets: each segment's controller status, and the realised
        # on-time of its orders after the first 20 % of the horizon (the controller's
        # warm-up), which is what a target is judged on.
        warm = r.arrival_hours >= 0.2 * r.horizon_hours
        tier_index = {name: t for t, name in enumerate(r.tier_names)}
        region_index = {rid: g for g, rid in enumerate(r.region_ids)}
        segs = []
        for st in r.targets:
            tier, _, region = st["segment"].partition("@")
            mask = warm & (r.tier == tier_index.get(tier, -1))
            if region:
                mask &= r.region == region_index.get(region, -2)
            summary = _orders_summary(r, mask)
            segs.append({**st, "realised_after_warmup": summary["on_time_rate"], "orders_after_warmup": int(mask.sum())})
        out["targets"] = segs
    if timing:
        t = r.timings
        m = max(r.n_orders, 1)
        out["timing"] = {
            **t,
            "routing_ms_per_order": 1000.0 * t.get("routing_s", 0.0) / m,
            "world_ms_per_order": 1000.0 * t.get("world_s", 0.0) / m,
        }
    return out
