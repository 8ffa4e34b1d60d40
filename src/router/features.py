"""Delay-risk features: one row per (node, carrier option) lane of an order, at decision time.

:func:`lane_features` is the one function that builds them, for training and
for inference alike. It reads only what a decision read: the network, the
state view and the order context (both stored in every full decision record),
and the analytic lane metrics computed from them (:func:`router.legs.lane_metrics`).
Rebuilding a record's view and context from the ledger therefore rebuilds the
rows the router scored, bit for bit, and no row can use anything that happened
after its decision (point-in-time by construction).

Rows are in the lanes' flat order ``node * O + option``, like every array of
:class:`~router.legs.LaneMetrics`. Category columns hold integer codes (node,
destination region, carrier, service index in the network); a model treats
them as categories, not numbers. :data:`FEATURES` lists every column with its
kind; the model card stores that list and a loader refuses a model whose list
differs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from router.context import OrderContext
from router.legs import LaneMetrics
from router.network import Network
from router.state import StateView

__all__ = [
    "CATEGORICAL",
    "FEATURES",
    "FEATURE_LABELS",
    "LANE_LEFT_CAP",
    "feature_names",
    "lane_features",
]

# (name, dtype): "float64" a number, "category" an integer code.
FEATURES: tuple[tuple[str, str], ...] = (
    ("eta_h", "float64"),  # analytic ETA: queue + cut-off wait + transit x congestion x weather
    ("transit_h", "float64"),  # its transit part: transit x congestion x weather
    ("sigma_h", "float64"),  # analytic spread of the ETA
    ("analytic_risk", "float64"),  # the analytic estimate, P(normal arrival > promise)
    ("slack_h", "float64"),  # promise - analytic ETA
    ("promise_h", "float64"),  # hours from the decision to the promise
    ("queue_h", "float64"),  # pick queue / throughput at the node
    ("load_ratio", "float64"),  # queue / a day's pick capacity
    ("lane_left", "float64"),  # shipments the lane still takes today (capped, see LANE_LEFT_CAP)
    ("cutoff_wait_h", "float64"),  # hours from the end of the queue to the next cut-off
    ("congestion", "float64"),  # lane transit multiplier (base x live x scheduled)
    ("weather_origin", "float64"),  # weather severity at the node's region
    ("weather_dest", "float64"),  # weather severity at the destination region
    ("closure_in_window", "float64"),  # 1 when a scheduled closure of the node starts before the promise
    ("distance_miles", "float64"),
    ("units", "float64"),  # units of the whole order
    ("tier_multiplier", "float64"),  # the customer tier's lateness multiplier
    ("hour_utc", "float64"),
    ("weekday", "float64"),
    ("carrier_volume_today", "float64"),  # shipments routed today with the lane's carrier, all nodes
    ("node", "category"),
    ("dest_region", "category"),
    ("carrier", "category"),
    ("service", "category"),
)

#: Column indices of the category features.
CATEGORICAL: tuple[int, ...] = tuple(i for i, (_, kind) in enumerate(FEATURES) if kind == "category")

#: Words for each feature in a rationale sentence.
FEATURE_LABELS: dict[str, str] = {
    "eta_h": "ETA",
    "transit_h": "transit",
    "sigma_h": "ETA spread",
    "analytic_risk": "analytic risk",
    "slack_h": "slack to promise",
    "promise_h": "hours to promise",
    "queue_h": "pick queue",
    "load_ratio": "node load",
    "lane_left": "lane capacity left",
    "cutoff_wait_h": "wait for cut-off",
    "congestion": "congestion",
    "weather_origin": "weather at origin",
    "weather_dest": "weather at destination",
    "closure_in_window": "closure before promise",
    "distance_miles": "distance",
    "units": "units",
    "tier_multiplier": "tier",
    "hour_utc": "hour",
    "weekday": "weekday",
    "carrier_volume_today": "carrier volume today",
    "node": "origin",
    "dest_region": "destination",
    "carrier": "carrier",
    "service": "service",
}

# Unlimited lanes are stored as this many shipments left: a finite number that a
# linear baseline can scale, and far above any daily lane limit in the scenarios.
LANE_LEFT_CAP = 1000.0


def feature_names() -> tuple[str, ...]:
    return tuple(name for name, _ in FEATURES)


@lru_cache(maxsize=16)
def _codes(net: Network) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(carrier code per option, service code per option, carrier index matrix [C, O]) of a network."""
    carriers = sorted(set(net.option_carrier))
    services = sorted(set(net.option_service))
    car = np.array([carriers.index(c) for c in net.option_carrier], dtype=float)
    svc = np.array([services.index(s) for s in net.option_service], dtype=float)
    same = (car[:, None] == car[None, :]).astype(float)  # [O, O]: options of one carrier
    for a in (car, svc, same):
        a.setflags(write=False)
    return car, svc, same


def lane_features(net: Network, view: StateView, ctx: OrderContext, lanes: LaneMetrics) -> np.ndarray:
    """float64[N * O, F]: the features of every lane of this order (columns as :data:`FEATURES`).

    A view without ``shipped_today`` or ``closure_ahead_h`` (a record older than
    these fields) gives NaN in those columns, which a tree model reads as missing.
    """
    n_nodes, n_opt = net.n_nodes, net.n_options
    x = np.empty((n_nodes, n_opt, len(FEATURES)))
    queue_h = lanes.queue_h
    eta = lanes.eta.reshape(n_nodes, n_opt)
    wait = np.mod(net.cutoff_hour_utc - (ctx.now_hour_utc + queue_h), 24.0)
    x[:, :, 0] = eta
    x[:, :, 1] = eta - queue_h[:, None] - wait[:, None]
    x[:, :, 2] = lanes.sigma.reshape(n_nodes, n_opt)
    x[:, :, 3] = lanes.risk.reshape(n_nodes, n_opt)
    x[:, :, 4] = ctx.promise_hours - eta
    x[:, :, 5] = ctx.promise_hours
    x[:, :, 6] = queue_h[:, None]
    x[:, :, 7] = (view.queue_orders / (view.throughput_per_hour * 24.0))[:, None]
    x[:, :, 8] = np.minimum(view.lane_left, LANE_LEFT_CAP)
    x[:, :, 9] = wait[:, None]
    x[:, :, 10] = view.congestion
    x[:, :, 11] = view.weather_node[:, None]
    x[:, :, 12] = ctx.dest_weather
    if view.closure_ahead_h is None:
        x[:, :, 13] = np.nan
    else:
        x[:, :, 13] = (view.closure_ahead_h < ctx.promise_hours)[:, None]
    x[:, :, 14] = ctx.dist_miles[:, None]
    x[:, :, 15] = float(ctx.qty.sum())
    x[:, :, 16] = ctx.tier_multiplier
    x[:, :, 17] = ctx.now_hour_utc
    x[:, :, 18] = ctx.weekday
    car, svc, same = _codes(net)
    if view.shipped_today is None:
        x[:, :, 19] = np.nan
    else:
        x[:, :, 19] = (same @ view.shipped_today)[None, :]
    x[:, :, 20] = np.arange(n_nodes, dtype=float)[:, None]
    x[:, :, 21] = ctx.dest_region
    x[:, :, 22] = car[None, :]
    x[:, :, 23] = svc[None, :]
    return x.reshape(n_nodes * n_opt, len(FEATURES))

