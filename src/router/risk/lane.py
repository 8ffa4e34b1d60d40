"""The learned delay risk as the router uses it: every lane of an order scored in one compiled call.

:class:`LaneRiskModel` implements :class:`router.legs.LaneRisk`: given the
analytic lane metrics of one order it builds the features
(:func:`router.features.lane_features`) and evaluates the compiled trees
(:class:`router.risk.compiled.CompiledRisk`) on all lanes at once. It also
explains a lane's probability feature by feature (path attribution that adds up
to the model's output).

The feature domain (node, region, carrier and service codes) belongs to one
network: a model is loaded only for a network whose ids match the card's
(:func:`network_domain`).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from router.context import OrderContext
from router.errors import ModelLoadError
from router.features import FEATURE_LABELS, FEATURES, lane_features
from router.legs import LaneMetrics
from router.network import Network
from router.rules import usable_options
from router.state import StateView

__all__ = ["LaneRiskModel", "UnavailableRisk", "network_domain"]


def network_domain(net: Network) -> dict:
    """The ids behind the category codes of :data:`~router.features.FEATURES` (stored in the model card)."""
    return {
        "nodes": list(net.node_ids),
        "regions": list(net.region_ids),
        "carriers": sorted(set(net.option_carrier)),
        "services": sorted(set(net.option_service)),
    }


class LaneRiskModel:
    """A loaded delay-risk model version, callable as a :class:`router.legs.LaneRisk`.

    Parameters
    ----------
    compiled : CompiledRisk
        The fitted trees and calibration as arrays.
    version : str
        Recorded in every decision's ``risk_model.version``.
    card : dict, optional
        The model card (features, training data, metrics).
    model : DelayRiskModel, optional
        The scikit-learn estimator the arrays were compiled from.
    """

    def __init__(self, compiled, version: str, card: dict | None = None, model=None) -> None:
        self.compiled = compiled
        self.version = version
        self.card = card or {}
        self.model = model
        # The lane history of every (node, option) lane to one destination region depends on
        # the region alone: looked up once per region and network, then indexed per order
        # (the generic key lookup costs more than the trees on a few dozen rows).
        self._history: dict[tuple[int, int], np.ndarray] = {}
        self._codes = {name: i for i, (name, _) in enumerate(FEATURES)}
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"LaneRiskModel({self.version!r})"

    @classmethod
    def load(cls, directory: str | Path, network: Network | None = None) -> LaneRiskModel:
        """Load ``models/delay_risk/<version>/``; refuses a model whose features or network differ.

        Raises :class:`~router.errors.ModelLoadError` with one sentence naming what differs.
        """
        from router.risk.store import load_model

        directory = Path(directory)
        model, card = load_model(directory, features=FEATURES)
        if network is not None:
            want = network_domain(network)
            have = card.get("network_domain")
            if have != want:
                raise ModelLoadError(
                    f"delay-risk model {directory.name} was trained on another network "
                    f"(its nodes, regions, carriers or services differ from scenario's); "
                    f"train one for this network with `router train-risk`"
                )
        return cls(model.compile(), str(card.get("version", directory.name)), card, model)

    def __call__(self, net: Network, view: StateView, ctx: OrderContext, lanes: LaneMetrics) -> np.ndarray:
        """P(late) of every lane; the model scores the lanes a plan could use, the rest keep the analytic risk.

        A plan can only ship on a lane that exists, has room today, offers an
        allowed service, from an open node holding some of the order's SKUs (every
        candidate generator and the split MIP draw from that set). Scoring only
        those lanes is about a third of the rows on the national network.
        """
        rows = np.flatnonzero(usable_options(net, view, ctx) & (~view.closed & (view.avail > 0).any(axis=1))[:, None])
        out = lanes.risk.copy()
        x = lane_features(net, view, ctx, lanes)
        # kept for explain() of the same decision (the record's rationale), per thread
        self._local.last = (view, ctx, x)
        if len(rows):
            out[rows] = self.compiled.predict(self._with_history(net, ctx, x[rows], rows))
        return out

    def _with_history(self, net: Network, ctx: OrderContext, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``x`` with the model's lane history columns, from the per-region cache (exactly as LaneHistory.transform)."""
        history = getattr(self.compiled, "lane_history", None)
        if history is None:
            return x
        key = (id(net), int(ctx.dest_region))
        h_all = self._history.get(key)
        if h_all is None:
            full = lane_features_codes(net, int(ctx.dest_region), len(FEATURES), self._codes)
            h_all = history.transform(full)[:, 0].copy()
            if len(self._history) > 4096:
                self._history.clear()
            self._history[key] = h_all
        h = h_all[rows]
        if history.n_columns == 1:
            return np.column_stack([x, h])
        z = (x[:, history.slack_col] - x[:, history.transit_col] * np.expm1(h)) / x[:, history.sigma_col]
        return np.column_stack([x, h, z])

    def explain(
        self, net: Network, view: StateView, ctx: OrderContext, lanes: LaneMetrics | None, flat: np.ndarray,
        digits: int | None = None,
    ) -> list[dict]:
        """Per lane in ``flat`` (``node * O + option``): P(late), the base rate and every feature's contribution.

        The contributions add up to ``p - base`` (path attribution through the
        trees, mapped through the calibration; see
        :meth:`router.risk.compiled.CompiledRisk.contributions`).
        """
        flat = np.asarray(flat, dtype=np.int64)
        last = getattr(self._local, "last", None)
        if last is not None and last[0] is view and last[1] is ctx:
            full = last[2]  # the features this decision was scored on
        else:
            if lanes is None:
                from router.legs import lane_metrics

                lanes = lane_metrics(net, view, ctx)
            full = lane_features(net, view, ctx, lanes)
        x = self._with_history(net, ctx, full[flat], flat)
        p = self.compiled.predict(x)
        base, contrib = self.compiled.contributions(x)
        if digits is not None:
            contrib = np.round(contrib, digits)
        names = list(self.compiled.feature_names)
        return [
            {
                "lane": int(lane),
                "p": float(p[i]),
                "base": float(base[i]),
                "contributions": dict(zip(names, contrib[i].tolist())),
                "values": dict(zip(names, x[i].tolist())),
            }
            for i, lane in enumerate(flat.tolist())
        ]


class UnavailableRisk:
    """Stands in for a configured model that could not be loaded: every call fails, so the
    analytic risk is used and each record's ``risk_model.fallback`` says why."""

    def __init__(self, version: str, reason: str) -> None:
        self.version = version
        self.reason = reason

    def __call__(self, net, view, ctx, lanes) -> np.ndarray:
        raise ModelLoadError(self.reason)


def top_contributions(explained: dict, net: Network, region_ids: tuple[str, ...], k: int = 2) -> list[tuple[str, float]]:
    """The ``k`` largest contributions in words, the lane's identity features taken together.

    Node, destination region, carrier and service together name the lane, and
    what the model learned about a lane (its bias) is spread over them, so they
    are summed into one "lane ..." contribution.
    """
    contrib = dict(explained["contributions"])
    values = explained["values"]
    identity = ("node", "dest_region", "carrier", "service", "lane_history")
    lane_c = sum(contrib.pop(name) for name in identity if name in contrib)
    n, o = divmod(explained["lane"], net.n_options)
    region = int(values["dest_region"])
    dest = region_ids[region] if 0 <= region < len(region_ids) else "?"
    lane = f"lane {net.option_carrier[o]} {net.option_service[o]} {net.node_ids[n]} to {dest}"
    items: list[tuple[str | None, float]] = [(None, lane_c), *contrib.items()]
    items.sort(key=lambda t: -abs(t[1]))
    return [(lane if name is None else _describe(name, values[name]), c) for name, c in items[:k]]


def _describe(name: str, value: float) -> str:
    label = FEATURE_LABELS.get(name, name)
    if name.endswith("_h"):
        return f"{label} {value:.0f} h"
    if name in ("load_ratio", "analytic_risk"):
        return f"{label} {value:.2f}"
    if name == "lane_adjusted_z":
        return f"margin after the lane's bias {value:+.1f} sd"
    if name == "closure_in_window":
        return label if value >= 0.5 else f"no {label}"
    if name == "distance_miles":
        return f"{label} {value:.0f} mi"
    return f"{label} {value:g}"


def explain_plans(
    model: LaneRiskModel,
    net: Network,
    view: StateView,
    ctx: OrderContext,
    region_ids: tuple[str, ...],
    plans: list[tuple[str, list]],
    top: int = 2,
) -> tuple[list[dict], str]:
    """Per-feature contributions of each leg of the given plans, and a sentence for the rationale.

    ``plans`` is ``[(label, [[node_id, carrier, service, ...], ...]), ...]`` (the
    record's candidates: the chosen plan and the runner-up). Each leg's
    contributions add up to its probability minus the model's base rate.
    """
    last = getattr(model._local, "last", None)
    if last is not None and last[0] is view and last[1] is ctx:
        lanes = None  # the decision's own features are kept: no need for the lane metrics again
    else:
        from router.legs import lane_metrics

        lanes = lane_metrics(net, view, ctx)
    node_index = {n: i for i, n in enumerate(net.node_ids)}
    opt_index = {k: i for i, k in enumerate(zip(net.option_carrier, net.option_service))}
    # every leg of every plan in one call: one feature build, one prediction, one attribution
    flat = np.array(
        [node_index[leg[0]] * net.n_options + opt_index[(leg[1], leg[2])] for _, legs in plans for leg in legs],
        dtype=np.int64,
    )
    explained = iter(model.explain(net, view, ctx, lanes, flat, digits=9))
    out, words = [], []
    base = 0.0
    for label, legs in plans:
        entry_legs = []
        parts = []
        for leg in legs:
            e = next(explained)
            base = e["base"]
            named = top_contributions(e, net, region_ids, top)
            entry_legs.append(
                {
                    "node": leg[0],
                    "carrier": leg[1],
                    "service": leg[2],
                    "p_late": round(e["p"], 6),
                    "base": round(e["base"], 6),
                    "top": [[name, round(c, 6)] for name, c in named],
                    "contributions": e["contributions"],
                }
            )
            parts.append(f"{leg[0]} {e['p']:.2f}: " + ", ".join(f"{name} {c:+.2f}" for name, c in named))
        out.append({"plan": label, "legs": entry_legs})
        words.append(f"{label} " + "; ".join(parts))
    sentence = f"Late risk by model {model.version} (base {base:.2f}): " + " | ".join(words) + "."
    return out, sentence


def lane_features_codes(net: Network, region: int, width: int, codes: dict[str, int]) -> np.ndarray:
    """A feature matrix of every (node, option) lane to ``region`` holding only the lane's codes (NaN elsewhere)."""
    from router.features import _codes as option_codes

    car, svc, _ = option_codes(net)
    x = np.full((net.n_nodes, net.n_options, width), np.nan)
    x[:, :, codes["node"]] = np.arange(net.n_nodes, dtype=float)[:, None]
    x[:, :, codes["dest_region"]] = region
    x[:, :, codes["carrier"]] = car[None, :]
    x[:, :, codes["service"]] = svc[None, :]
    return x.reshape(net.n_nodes * net.n_options, width)
